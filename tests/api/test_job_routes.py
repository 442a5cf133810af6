"""Background job routes: webhook endpoints and deliveries, reports and AI tasks (tenants) and
the job queue (provider), on PostgreSQL (row-level security) and SQLite."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from flows.dispatcher import Dispatcher, JobSettings, dispatch_once
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import AuditLogEntry, EvaluationRun, Job, UsageEvent
from pipelines.evaluation import service as evaluation
from pipelines.evaluation.scoring import MetricRow
from pipelines.webhooks.service import DeliverySettings, emit_event
from tests.api.conftest import World
from tests.api.test_provider_routes import signed
from tests.api.test_route_coverage import covers
from tests.api.test_tenant_routes import registry_template, walk  # noqa: F401 - a fixture

P = "/provider/v1"


@pytest.fixture
def platform(world: World) -> Iterator[sessionmaker[Session]]:
    """Sessions acting for the whole platform, as the dispatcher does."""
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _dispatcher(platform: sessionmaker[Session], **kwargs: Any) -> Dispatcher:
    return Dispatcher(
        sessions=platform,
        settings=JobSettings(),
        delivery=DeliverySettings(timeout_seconds=2, allow_private_addresses=True),
        clock=lambda: datetime.now(UTC),
        draw=lambda: 0.5,
        **kwargs,
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _audited(platform: sessionmaker[Session], action: str) -> list[AuditLogEntry]:
    with platform() as session:
        return list(session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)))


def _endpoint(world: World, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = world.client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "event_types": ["evaluation.completed"]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _emit(platform: sessionmaker[Session], organization_id: uuid.UUID) -> list[uuid.UUID]:
    with transaction(platform) as session:
        jobs = emit_event(
            session,
            organization_id=organization_id,
            event_type="evaluation.completed",
            subject_id=uuid.uuid4().hex,
            data={"links": {"evaluation": "/v1/evaluations/x"}},
            now=datetime.now(UTC),
        )
        return [job.id for job in jobs]


class TestWebhookEndpoints:
    @covers("POST /v1/webhook-endpoints", cross_tenant=True, audit=True)
    @covers("GET /v1/webhook-endpoints", cross_tenant=True)
    @covers("POST /v1/webhook-endpoints/{endpoint_id}/secret", cross_tenant=True, audit=True)
    @covers("DELETE /v1/webhook-endpoints/{endpoint_id}", cross_tenant=True, audit=True)
    def test_register_rotate_and_disable(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """The secret shows once; rotation gives a new one; B can't touch A's endpoint."""
        a, b = world.tenant_a, world.tenant_b
        created = _endpoint(world, "https://hooks.example.com/a", a.headers)
        assert created["secret"].startswith("whsec_")
        (row,) = _audited(platform, "webhook_endpoint.created")
        assert (row.target_id, row.organization_id) == (created["id"], a.organization_id)

        listed = walk(world, "/v1/webhook-endpoints", a.headers, limit=1)
        assert [e["id"] for e in listed] == [created["id"]]
        assert listed[0]["secret"] is None
        assert walk(world, "/v1/webhook-endpoints", b.headers, limit=1) == []

        url = f"/v1/webhook-endpoints/{created['id']}"
        assert world.client.post(f"{url}/secret", headers=b.headers).status_code == 404
        assert world.client.delete(url, headers=b.headers).status_code == 404
        rotated = world.client.post(f"{url}/secret", headers=a.headers)
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["secret"] not in (None, created["secret"])
        assert len(_audited(platform, "webhook_endpoint.secret_rotated")) == 1

        disabled = world.client.delete(url, headers=a.headers)
        assert disabled.json()["status"] == "disabled"
        assert world.client.delete(url, headers=a.headers).json()["status"] == "disabled"
        assert len(_audited(platform, "webhook_endpoint.disabled")) == 1
        assert world.client.post(f"{url}/secret", headers=a.headers).status_code == 409

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"url": "ftp://example.com/x"}, "url"),
            ({"url": "not a url"}, "url"),
            ({"url": "https://user:pw@example.com/"}, "url"),
            ({"url": "https://example.com/", "event_types": ["nope"]}, "event_types"),
        ],
    )
    def test_bad_endpoints_are_refused(
        self, world: World, body: dict[str, Any], field: str
    ) -> None:
        response = world.client.post(
            "/v1/webhook-endpoints", json=body, headers=world.tenant_a.headers
        )
        assert response.status_code == 422, response.text
        assert field in response.text


class TestDeliveries:
    @covers("GET /v1/webhook-deliveries", cross_tenant=True)
    @covers("GET /v1/webhook-deliveries/{delivery_id}/attempts", cross_tenant=True)
    @covers("POST /v1/webhook-deliveries/{delivery_id}/replay", cross_tenant=True, audit=True)
    def test_list_attempts_and_replay(self, world: World, platform: sessionmaker[Session]) -> None:
        a, b = world.tenant_a, world.tenant_b
        endpoint = _endpoint(world, f"http://127.0.0.1:{_closed_port()}/hook", a.headers)
        (delivery_id,) = _emit(platform, a.organization_id)
        assert dispatch_once(_dispatcher(platform)).statuses == {"queued": 1}

        deliveries = walk(world, "/v1/webhook-deliveries", a.headers, limit=1)
        assert [(d["id"], d["endpoint_id"], d["attempts"]) for d in deliveries] == [
            (str(delivery_id), endpoint["id"], 1)
        ]
        assert deliveries[0]["message_id"] == f"msg_{delivery_id.hex}"
        one = world.client.get(
            "/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]}, headers=a.headers
        )
        assert len(one.json()["items"]) == 1
        assert walk(world, "/v1/webhook-deliveries", b.headers, limit=5) == []
        other = world.client.get(
            "/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]}, headers=b.headers
        )
        assert other.status_code == 404

        attempts_url = f"/v1/webhook-deliveries/{delivery_id}/attempts"
        attempts = walk(world, attempts_url, a.headers, limit=1)
        assert [(t["number"], t["outcome"]) for t in attempts] == [(1, "failed")]
        assert "ConnectError" in attempts[0]["error"]
        assert world.client.get(attempts_url, headers=b.headers).status_code == 404

        replay_url = f"/v1/webhook-deliveries/{delivery_id}/replay"
        assert world.client.post(replay_url, headers=a.headers).status_code == 409  # still trying
        cancelled = signed(world, "POST", f"{P}/jobs/{delivery_id}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        assert world.client.post(replay_url, headers=b.headers).status_code == 404
        replayed = world.client.post(replay_url, headers=a.headers)
        assert replayed.status_code == 202, replayed.text
        assert replayed.json()["message_id"] == f"msg_{delivery_id.hex}"
        assert replayed.json()["id"] != str(delivery_id)
        (row,) = _audited(platform, "webhook_delivery.replayed")
        assert row.target_id == str(delivery_id)


class TestReports:
    @covers("POST /v1/evaluations/{run_id}/reports", cross_tenant=True, audit=True)
    @covers("GET /v1/reports/{report_id}", cross_tenant=True)
    @covers("GET /v1/reports/{report_id}/content", cross_tenant=True)
    def test_a_report_is_made_in_the_background(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        a, b = world.tenant_a, world.tenant_b
        url = f"/v1/evaluations/{a.run_id}/reports"
        assert world.client.post(url, headers=b.headers).status_code == 404
        requested = world.client.post(url, headers=a.headers)
        assert requested.status_code == 202, requested.text
        report = requested.json()
        assert report["status"] == "queued"
        assert world.client.post(url, headers=a.headers).json()["id"] == report["id"]  # once
        assert len(_audited(platform, "report.requested")) == 1
        content = f"/v1/reports/{report['id']}/content"
        assert world.client.get(content, headers=a.headers).status_code == 409

        assert dispatch_once(_dispatcher(platform)).statuses == {"succeeded": 1}
        done = world.client.get(f"/v1/reports/{report['id']}", headers=a.headers).json()
        assert done["status"] == "succeeded"
        assert done["links"]["csv"] == f"{content}?format=csv"
        html = world.client.get(content, headers=a.headers)
        assert html.headers["content-type"].startswith("text/html")
        assert str(a.run_id) in html.text
        assert "rougeL_f" in html.text
        csv = world.client.get(content, params={"format": "csv"}, headers=a.headers)
        assert csv.text.splitlines()[0] == "slice,metric,value,ci_low,ci_high,n"
        assert world.client.get(f"/v1/reports/{report['id']}", headers=b.headers).status_code == 404
        assert world.client.get(content, headers=b.headers).status_code == 404


class TestAiTasks:
    @covers("POST /v1/ai-tasks", cross_tenant=True, audit=True)
    @covers("GET /v1/ai-tasks/{task_id}", cross_tenant=True)
    @covers("GET /v1/ai-tasks/{task_id}/outputs", cross_tenant=True)
    def test_the_champion_answers_in_batches(
        self,
        world: World,
        platform: sessionmaker[Session],
        registry_template: Path,  # noqa: F811 - the fixture imported above
    ) -> None:
        a, b = world.tenant_a, world.tenant_b
        registry_file = make_url(world.state.registry.resolved_tracking_uri()).database
        assert registry_file is not None
        shutil.copy(registry_template, registry_file)
        submitted = world.client.post(
            "/v1/ai-tasks",
            json={"agent_type": "intent_classifier", "inputs": [f"t{i}" for i in range(5)]},
            headers=a.headers,
        )
        assert submitted.status_code == 202, submitted.text
        task = submitted.json()
        assert (task["status"], task["input_count"]) == ("queued", 5)
        assert len(_audited(platform, "ai_task.submitted")) == 1
        outputs = f"/v1/ai-tasks/{task['id']}/outputs"
        assert world.client.get(outputs, headers=a.headers).json()["items"] == []

        batches: list[list[str]] = []

        def predict(ref: Any, inputs: list[str]) -> list[str]:
            batches.append(inputs)
            return [f"{ref}:{text}" for text in inputs]

        dispatcher = _dispatcher(platform, predict=predict)
        dispatcher.settings = JobSettings(ai_batch_size=2)
        assert dispatch_once(dispatcher).statuses == {"succeeded": 1}
        assert [len(batch) for batch in batches] == [2, 2, 1]
        done = world.client.get(f"/v1/ai-tasks/{task['id']}", headers=a.headers).json()
        assert (done["status"], done["model"]) == ("succeeded", "intent-classifier@2")
        listed = walk(world, outputs, a.headers, limit=2)
        assert [o["output"] for o in listed] == [f"intent-classifier@2:t{i}" for i in range(5)]
        assert [o["index"] for o in listed] == list(range(5))
        usage = world.client.get("/v1/usage", headers=a.headers)
        assert usage.status_code == 200, usage.text
        with platform() as session:
            [event] = session.scalars(select(UsageEvent)).all()
        assert (event.event_id, event.organization_id) == (
            f"ai_task:{task['id']}",
            a.organization_id,
        )
        assert (event.agent_type, event.model_version) == (
            "intent_classifier",
            "intent-classifier@2",
        )
        assert (event.tokens_in, event.tokens_out, event.requests) == (5, 5, 5)
        assert world.client.get(f"/v1/ai-tasks/{task['id']}", headers=b.headers).status_code == 404
        assert world.client.get(outputs, headers=b.headers).status_code == 404
        mine = world.client.post(
            "/v1/ai-tasks", json={"agent_type": "summarizer", "inputs": ["x"]}, headers=b.headers
        )
        assert mine.status_code == 202
        with platform() as session:
            owners = {j.id: j.organization_id for j in session.scalars(select(Job))}
        assert owners[uuid.UUID(mine.json()["id"])] == b.organization_id


class TestProviderJobs:
    @covers("GET /provider/v1/jobs", "GET /provider/v1/jobs/{job_id}")
    @covers("POST /provider/v1/jobs/{job_id}/retry", audit=True)
    @covers("POST /provider/v1/jobs/{job_id}/cancel", audit=True)
    @covers("POST /provider/v1/jobs/retry-dead", audit=True)
    def test_list_filter_show_cancel_and_retry(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        a, b = world.tenant_a, world.tenant_b
        _endpoint(world, f"http://127.0.0.1:{_closed_port()}/hook", a.headers)
        _endpoint(world, f"http://127.0.0.1:{_closed_port()}/hook", b.headers)
        (job_a,) = _emit(platform, a.organization_id)
        (job_b,) = _emit(platform, b.organization_id)

        listed = signed(world, "GET", f"{P}/jobs", params={"organization": "tenant-a"}).json()
        assert [j["id"] for j in listed["items"]] == [str(job_a)]
        both = signed(world, "GET", f"{P}/jobs", params={"kind": "webhook", "status": "queued"})
        assert {j["id"] for j in both.json()["items"]} == {str(job_a), str(job_b)}
        bad = signed(world, "GET", f"{P}/jobs", params={"organization": "nobody"})
        assert bad.status_code == 404

        cancelled = signed(world, "POST", f"{P}/jobs/{job_a}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        assert signed(world, "POST", f"{P}/jobs/{job_a}/cancel").status_code == 200
        retried = signed(world, "POST", f"{P}/jobs/{job_a}/retry")
        assert retried.json()["status"] == "queued"
        assert signed(world, "POST", f"{P}/jobs/{job_a}/retry").status_code == 409
        assert len(_audited(platform, "job.cancelled")) == 1

        with transaction(platform) as session:
            dead = session.get(Job, job_b)
            assert dead is not None
            dead.status = "dead"
        again = signed(world, "POST", f"{P}/jobs/retry-dead", json={"kind": "webhook"})
        assert again.json() == {"retried": [str(job_b)]}
        assert {r.target_id for r in _audited(platform, "job.retried")} == {
            str(job_a),
            str(job_b),
        }
        detail = signed(world, "GET", f"{P}/jobs/{job_b}").json()
        assert (detail["job"]["status"], detail["job"]["organization"]) == ("queued", "tenant-b")
        assert signed(world, "GET", f"{P}/jobs/{uuid.uuid4()}").status_code == 404


class TestOutboxAndMetrics:
    @covers("GET /v1/webhook-deliveries", cross_tenant=True)
    def test_finishing_a_run_queues_its_webhook_in_the_same_transaction(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """complete_run rolled back queues nothing; committed, one delivery per endpoint."""
        a = world.tenant_a
        _endpoint(world, "https://hooks.example.com/a", a.headers)
        with transaction(platform) as session:
            metrics = EvaluationRepository(session).metrics(a.run_id)
            # The seeded run is completed, which is final: make it the running run a flow
            # finishes.
            session.execute(
                update(EvaluationRun)
                .where(EvaluationRun.id == a.run_id)
                .values(status="running", finished_at=None)
            )
        rows = [MetricRow(m.slice, m.name, m.value, m.ci_low, m.ci_high, m.n) for m in metrics]

        def finish(session: Session) -> None:
            evaluation.complete_run(
                session,
                organization_id=a.organization_id,
                run_id=a.run_id,
                actor="test",
                metrics=rows,
                mlflow_run_id=None,
            )

        with pytest.raises(RuntimeError), transaction(platform) as session:  # noqa: PT012
            finish(session)
            raise RuntimeError("the flow died before committing")
        assert walk(world, "/v1/webhook-deliveries", a.headers, limit=5) == []
        with transaction(platform) as session:
            finish(session)
        (delivery,) = walk(world, "/v1/webhook-deliveries", a.headers, limit=5)
        assert (delivery["event_type"], delivery["status"]) == ("evaluation.completed", "queued")

    def test_metrics_show_the_queue(self, world: World, platform: sessionmaker[Session]) -> None:
        _endpoint(world, "https://hooks.example.com/a", world.tenant_a.headers)
        _emit(platform, world.tenant_a.organization_id)
        body = world.client.get("/metrics").text
        assert 'streamflow_jobs_queued{kind="webhook"} 1.0' in body
        assert 'streamflow_jobs_queued{kind="email"} 0.0' in body
        assert "streamflow_jobs_dead 0.0" in body
        assert "streamflow_jobs_oldest_queued_age_seconds" in body


def test_endpoints_subscribe_to_every_event_of_the_catalogue() -> None:
    """The API takes its event types from the one catalogue (adding one is one line there)."""
    from api.schemas.jobs import WebhookEndpointCreate
    from pipelines.webhooks.events import EventType

    body = WebhookEndpointCreate(url="https://hooks.example.com/x", event_types=list(EventType))
    assert body.event_types == list(EventType)
    assert {"challenger.promoted", "certificate.expiring"} <= set(EventType)
