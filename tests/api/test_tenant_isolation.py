"""Every tenant route refuses callers without a valid key and hides other tenants' data."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from models.db.engine import make_engine, make_sessionmaker, transaction
from pipelines.ai_tasks.service import submit_ai_task
from pipelines.notices.service import NoticeDraft, create_notice
from pipelines.reports.service import request_report
from pipelines.serving.service import Prediction, record_served
from pipelines.webhooks.service import emit_event, register_endpoint
from tests.api.conftest import World
from tests.api.test_domain_routes import domain_with_certificate
from tests.api.test_route_coverage import app_routes, covers

TENANT_ROUTES = sorted(route for route in app_routes() if route.split(" ", 1)[1].startswith("/v1/"))


CREATES = {
    "POST /v1/webhook-endpoints": {"url": "https://hooks.example.com/b"},
    "POST /v1/ai-tasks": {"agent_type": "summarizer", "inputs": ["b's text"]},
}
"""Routes that create a new object of the caller's own: B's call must show nothing of A's."""


def _url(path: str, world: World) -> str:
    for placeholder in (
        "{notice_id}",
        "{endpoint_id}",
        "{delivery_id}",
        "{report_id}",
        "{task_id}",
        "{domain_id}",
        "{certificate_id}",
    ):
        path = path.replace(placeholder, str(uuid.uuid4()))
    return path.replace("{run_id}", str(world.tenant_a.run_id)).replace(
        "{key_id}", str(world.tenant_a.api_key_id)
    )


class TestTenantIsolation:
    @covers(*TENANT_ROUTES, auth=True)
    def test_every_tenant_route_refuses_missing_and_wrong_keys(self, world: World) -> None:
        """Each /v1 route answers 401 problem+json without a key and with an unknown one."""
        assert TENANT_ROUTES
        for route in TENANT_ROUTES:
            method, path = route.split(" ", 1)
            url = _url(path, world)
            if path == "/v1/comparisons":
                url += f"?run_a={world.tenant_a.run_id}&run_b={world.tenant_a.run_id}"
            for headers in ({}, {"Authorization": "Bearer sf_abcdefabcdef_nope"}):
                response = world.client.request(method, url, headers=headers)
                assert response.status_code == 401, (route, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
                assert response.headers["www-authenticate"] == "Bearer"

    @covers(*TENANT_ROUTES, cross_tenant=True)
    def test_every_tenant_route_hides_another_tenants_objects(self, world: World) -> None:
        """Derived from the route table: B gets 404 for each of A's objects, never sees them listed.

        A route naming an object (`{run_id}`, `{key_id}`, `{notice_id}`) is called by tenant B
        with tenant A's object; a listing is read by B and must hold none of A's objects. A new
        route with another kind of parameter fails here until it gets one of A's objects.
        """
        a, b = world.tenant_a, world.tenant_b
        domain_id, certificate_id, hostname = domain_with_certificate(world, a.organization_id)
        owned_by_a = {
            "{run_id}": str(a.run_id),
            "{key_id}": str(a.api_key_id),
            "{notice_id}": _notice_only_for(world, "tenant-a"),
            **_jobs_of(world, a.organization_id, a.run_id),
            "{domain_id}": domain_id,
            "{certificate_id}": certificate_id,
        }
        traces_of_a = [
            *owned_by_a.values(),
            a.dataset,
            a.slug,
            str(a.organization_id),
            "streamflow-verification=a-token",
        ]
        unknown = []
        for route in TENANT_ROUTES:
            method, path = route.split(" ", 1)
            if route == "POST /v1/agents/{agent_type}/predict":
                # Agent types are the platform's, shared by every tenant: B's prediction holds
                # nothing of A's (here no agent is registered, so it is not found).
                response = world.client.post(
                    path.replace("{agent_type}", "summarizer"),
                    json={"input": "b's text"},
                    headers=b.headers,
                )
                assert response.status_code in (200, 404), (route, response.text)
                assert [t for t in traces_of_a if t in response.text] == [], route
                continue
            if route == "POST /v1/feedback":
                # Feedback on A's request is refused as not found.
                response = world.client.post(
                    path,
                    json={
                        "request_id": _request_of(world, a.organization_id),
                        "kind": "label",
                        "value": "x",
                    },
                    headers=b.headers,
                )
                assert response.status_code == 404, (route, response.text)
                continue
            placeholders = set(re.findall(r"\{[a-z_]+\}", path))
            if placeholders - set(owned_by_a):
                unknown.append(route)
                continue
            url = path
            for placeholder in placeholders:
                url = url.replace(placeholder, owned_by_a[placeholder])
            if route == "POST /v1/domains":
                # B claiming A's hostname gets a pending claim of its own: nothing of A's.
                response = world.client.post(url, json={"hostname": hostname}, headers=b.headers)
                assert response.status_code == 201, response.text
                assert response.json()["status"] == "pending"
                assert [t for t in traces_of_a if t in response.text] == [], route
                continue
            if route == "GET /v1/comparisons":
                for pair in ((a.run_id, b.run_id), (b.run_id, a.run_id), (a.run_id, a.run_id)):
                    response = world.client.get(
                        f"{url}?run_a={pair[0]}&run_b={pair[1]}", headers=b.headers
                    )
                    assert response.status_code == 404, (route, pair, response.text)
                continue
            if route == "GET /v1/evaluation-plans":
                for pair in ((a.run_id, b.run_id), (b.run_id, a.run_id), (a.run_id, a.run_id)):
                    response = world.client.get(
                        f"{url}?run_a={pair[0]}&run_b={pair[1]}&effect=0.02", headers=b.headers
                    )
                    assert response.status_code == 404, (route, pair, response.text)
                continue
            response = world.client.request(method, url, headers=b.headers)
            if placeholders:
                assert response.status_code == 404, (route, response.text)
                assert response.headers["content-type"].startswith("application/problem+json")
            elif route in CREATES:
                response = world.client.request(method, url, json=CREATES[route], headers=b.headers)
                assert response.status_code in (201, 202), (route, response.text)
                assert [t for t in traces_of_a if t in response.text] == [], route
            else:
                assert method == "GET", f"{route}: a mutation without an object to aim at"
                assert response.status_code == 200, (route, response.text)
                assert [t for t in traces_of_a if t in response.text] == [], route
        assert unknown == [], "give these routes one of tenant A's objects in this test"
        # B's refusals changed nothing of A's: the key still works and the notice is unread.
        assert world.client.get("/v1/evaluations", headers=a.headers).status_code == 200
        notices = world.client.get("/v1/notices", headers=a.headers).json()["items"]
        assert [n["acknowledged_at"] for n in notices] == [None]

    @covers("GET /v1/quality-scores", cross_tenant=True)
    def test_quality_scores_hold_nothing_of_another_tenant(self, world: World) -> None:
        """Quality scores list only the caller's own runs, each tenant its one run."""
        a, b = world.tenant_a, world.tenant_b
        for tenant in (a, b):
            response = world.client.get("/v1/quality-scores", headers=tenant.headers)
            assert response.status_code == 200, response.text
            run_ids = [item["run_id"] for item in response.json()["items"]]
            assert run_ids == [str(tenant.run_id)]


def _request_of(world: World, organization_id: uuid.UUID) -> str:
    """A served request of the organisation, as the traffic log records it."""
    request_id = uuid.uuid4().hex
    with world.state.sessions() as session, session.begin():
        record_served(
            session,
            Prediction(request_id, organization_id, "summarizer", "s@1", "in", "out", 1.0),
            now=datetime.now(UTC),
            text_limit=100,
        )
    return request_id


def _jobs_of(world: World, organization_id: uuid.UUID, run_id: uuid.UUID) -> dict[str, str]:
    """A webhook endpoint, a delivery, a report and an AI task of one tenant."""
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        with transaction(make_sessionmaker(engine)) as session:
            now = datetime.now(UTC)
            endpoint = register_endpoint(
                session,
                organization_id=organization_id,
                url="https://hooks.example.com/a",
                event_types=None,
                description="",
                actor="test",
                now=now,
            )
            (delivery,) = emit_event(
                session,
                organization_id=organization_id,
                event_type="evaluation.completed",
                subject_id=str(run_id),
                data={},
                now=now,
            )
            report = request_report(
                session, organization_id=organization_id, run_id=run_id, actor="test", now=now
            )
            task = submit_ai_task(
                session,
                organization_id=organization_id,
                agent_type="summarizer",
                inputs=["a's text"],
                idempotency_key=None,
                actor="test",
                now=now,
            )
            return {
                "{endpoint_id}": str(endpoint.id),
                "{delivery_id}": str(delivery.id),
                "{report_id}": str(report.id),
                "{task_id}": str(task.id),
            }
    finally:
        engine.dispose()


def _notice_only_for(world: World, slug: str) -> str:
    """A notice addressed only to the tenant `slug`, created as the provider."""
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        with transaction(make_sessionmaker(engine)) as session:
            now = datetime.now(UTC)
            draft = NoticeDraft(
                title="your quota",
                body="quota body",
                audience=[slug],
                starts_at=now - timedelta(minutes=1),
            )
            return str(create_notice(session, draft=draft, actor="provider:test", now=now).id)
    finally:
        engine.dispose()
