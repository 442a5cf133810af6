"""The provider API end to end: HMAC signatures, every endpoint, audit rows, idempotency and
rate limits, through the app on SQLite and on PostgreSQL with row-level security."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from api.app import build_state, create_app
from api.idempotency import StoredResponse, claim_key, store_response
from api.provider_client import sign_request
from api.settings import ApiSettings, ProviderAuthSettings
from api.state import ApiState
from models.cache.settings import CacheSettings
from models.db.engine import make_engine
from models.registry import client as registry
from models.settings import RegistrySettings
from pipelines.access.service import SCOPES
from pipelines.agents.summarizers import LeadSentenceSummarizer
from tests.api.conftest import (
    PROVIDER_KEYS,
    REDIS_URL,
    RecordingLauncher,
    SeededTemplates,
    World,
)
from tests.api.test_route_coverage import app_routes, covers
from tests.conftest import copy_sqlite

P = "/provider/v1"
PROBLEM = "application/problem+json"
BAD_SIGNATURE = "/problems/invalid-signature"
PROVIDER_ROUTES = sorted(route for route in app_routes() if route.split(" ", 1)[1].startswith(P))
SAMPLE_PATH_VALUES = {
    "{slug}": "tenant-b",
    "{run_id}": "6b0f5a8e-4c1d-4e8a-9f2b-3c7d1e0a5b94",
    "{notice_id}": "6b0f5a8e-4c1d-4e8a-9f2b-3c7d1e0a5b94",
    "{job_id}": "6b0f5a8e-4c1d-4e8a-9f2b-3c7d1e0a5b94",
    "{certificate_id}": "6b0f5a8e-4c1d-4e8a-9f2b-3c7d1e0a5b94",
    "{experiment_id}": "6b0f5a8e-4c1d-4e8a-9f2b-3c7d1e0a5b94",
}


# --- helpers shared with test_health.py -------------------------------------------------


def signed(
    world: World,
    method: str,
    url: str,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    key_id: str = "key-2026a",
    client: TestClient | None = None,
) -> httpx.Response:
    """A request signed by provider key `key_id` (through `client`, default the world's)."""
    return (client or world.client).request(
        method, url, json=json, params=params, headers=headers, auth=world.provider_auth(key_id)
    )


def closed_port() -> int:
    """A local TCP port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextmanager
def app_like(
    world: World,
    *,
    api: ApiSettings | None = None,
    redis_url: str | None = REDIS_URL,
    sessions: sessionmaker[Session] | None = None,
    redis_timeout_seconds: float = 2,
) -> Iterator[tuple[TestClient, ApiState]]:
    """Another app on the world's database (and Redis prefix), with other limits or Redis URL.

    Apps made by this function share their Redis prefix, like processes of one deployment.
    """
    state = build_state(
        api=api or world.state.api,
        storage=world.state.storage,
        cache_settings=CacheSettings(
            redis_url=redis_url,
            key_prefix=f"{world.redis_prefix}other:",
            redis_socket_timeout_seconds=redis_timeout_seconds,
        ),
        provider_auth=ProviderAuthSettings(provider_keys=PROVIDER_KEYS),  # type: ignore[arg-type]
        launcher=RecordingLauncher(),
    )
    if sessions is not None:
        state = replace(state, sessions=sessions)
    with TestClient(create_app(state), raise_server_exceptions=False) as client:
        yield client, state


def assert_problem(response: httpx.Response, status: int, kind: str, *fragments: str) -> None:
    """The response is a problem+json of this status and type whose detail has the fragments."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"] == kind
    for fragment in fragments:
        assert fragment in problem["detail"]


def audit_rows(world: World, **filters: Any) -> list[dict[str, Any]]:
    """Audit rows matching `filters`, newest first, read through the provider API."""
    response = signed(world, "GET", f"{P}/audit-log", params={"limit": 200, **filters})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["items"]
    return rows


def sample_url(route: str) -> tuple[str, str]:
    method, template = route.split(" ", 1)
    for placeholder, value in SAMPLE_PATH_VALUES.items():
        template = template.replace(placeholder, value)
    return method, template


def tenant_status(world: World, slug: str) -> str:
    tenants = signed(world, "GET", f"{P}/tenants", params={"limit": 200}).json()["items"]
    return next(str(t["status"]) for t in tenants if t["slug"] == slug)


@pytest.fixture(scope="session")
def summarizer_store(
    tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates
) -> Path:
    """An MLflow store holding `notes-summarizer@1` aliased `champion`, registered once.

    Logging a pyfunc model costs seconds; each test gets a copy of this store. The artifacts
    stay in the session's folder, which tests only read.
    """
    folder = tmp_path_factory.mktemp("summarizer")
    store = folder / "mlflow.db"
    copy_sqlite(seeded_templates.mlflow(), store)
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    settings = RegistrySettings(home=folder, mlflow_tracking_uri=f"sqlite:///{store}")
    registry.configure(settings)
    try:
        ref = registry.register_model_version(
            "notes-summarizer",
            LeadSentenceSummarizer(),
            agent_type="summarizer",
            task="text_generation",
            experiment=registry.experiment_id(settings),
        )
        registry.set_alias(ref.name, "champion", ref.version)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    assert str(ref) == "notes-summarizer@1"
    return store


@pytest.fixture
def summarizer(world: World, summarizer_store: Path) -> str:
    """`notes-summarizer@1`, a registered summariser model version aliased `champion`."""
    tracking_uri = world.state.registry.resolved_tracking_uri()
    copy_sqlite(summarizer_store, Path(tracking_uri.removeprefix("sqlite:///")))
    return "notes-summarizer@1"


# --- signatures ---------------------------------------------------------------------------


class TestSignatures:
    @covers(*PROVIDER_ROUTES, auth=True)
    @pytest.mark.parametrize("route", PROVIDER_ROUTES)
    def test_every_route_refuses_unsigned_requests(self, world: World, route: str) -> None:
        """Each provider route answers an unsigned request, even one with a tenant's API key,
        with a 401 problem naming the missing signature headers."""
        method, url = sample_url(route)
        body = {} if method in ("POST", "PATCH") else None
        assert_problem(world.client.request(method, url, json=body), 401, BAD_SIGNATURE, "missing")
        with_tenant_key = world.client.request(
            method, url, json=body, headers=world.tenant_a.headers
        )
        assert_problem(with_tenant_key, 401, BAD_SIGNATURE, "X-StreamFlow-Signature")

    @pytest.mark.parametrize("key_id", sorted(PROVIDER_KEYS))
    def test_each_active_key_authenticates(self, world: World, key_id: str) -> None:
        """Both keys of a rotation are accepted, and the audit names the key that signed."""
        response = signed(world, "POST", f"{P}/tenants/tenant-b/suspend", key_id=key_id)
        assert response.status_code == 200, response.text
        assert response.headers["ratelimit"]
        rows = audit_rows(world, action="organization.suspended")
        assert [row["actor"] for row in rows] == [f"provider:{key_id}"]

    def test_tampered_body_is_refused(self, world: World) -> None:
        """A body changed after signing fails the signature, and nothing is created."""
        url = f"{P}/tenants"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "POST", url, b'{"a":1}')
        response = world.client.post(
            url,
            content=b'{"slug":"forged","name":"Forged"}',
            headers={**headers, "Content-Type": "application/json"},
        )
        assert_problem(response, 401, BAD_SIGNATURE, "does not match", "The server signed")
        assert audit_rows(world, action="organization.created", actor="provider:key-2026a") == []

    def test_tampered_path_is_refused(self, world: World) -> None:
        """A request signed for one tenant's path cannot be sent to another tenant's."""
        signed_path = f"{P}/tenants/tenant-a/suspend"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "POST", signed_path)
        response = world.client.post(f"{P}/tenants/tenant-b/suspend", headers=headers)
        assert_problem(response, 401, BAD_SIGNATURE, "does not match")
        assert tenant_status(world, "tenant-b") == "active"
        assert tenant_status(world, "tenant-a") == "active"

    def test_tampered_query_is_refused(self, world: World) -> None:
        """Changing a query parameter after signing fails the signature."""
        headers = sign_request(
            "key-2026a", PROVIDER_KEYS["key-2026a"], "GET", f"{P}/tenants?limit=1"
        )
        response = world.client.get(f"{P}/tenants?limit=2", headers=headers)
        assert_problem(response, 401, BAD_SIGNATURE, "does not match")

    def test_tampered_timestamp_is_refused(self, world: World) -> None:
        """A timestamp changed after signing (to stretch a request's life) fails the signature."""
        url = f"{P}/tenants"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "GET", url)
        headers["X-StreamFlow-Timestamp"] = str(int(headers["X-StreamFlow-Timestamp"]) + 1)
        assert_problem(world.client.get(url, headers=headers), 401, BAD_SIGNATURE, "does not match")

    @pytest.mark.parametrize("offset", [-3600, 3600], ids=["expired", "future"])
    def test_timestamps_outside_the_tolerance_are_refused(self, world: World, offset: int) -> None:
        """A correctly signed request whose timestamp is far in the past or future is refused."""
        url = f"{P}/tenants"
        headers = sign_request(
            "key-2026a", PROVIDER_KEYS["key-2026a"], "GET", url, timestamp=int(time.time()) + offset
        )
        response = world.client.get(url, headers=headers)
        assert_problem(response, 401, BAD_SIGNATURE, "X-StreamFlow-Timestamp", "within 300 s")

    def test_replayed_nonce_is_refused(self, world: World) -> None:
        """The same signed request sent twice is accepted once, then refused as a replay."""
        url = f"{P}/tenants/tenant-b/suspend"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "POST", url)
        assert world.client.post(url, headers=headers).status_code == 200
        replay = world.client.post(url, headers=headers)
        assert_problem(replay, 401, BAD_SIGNATURE, "X-StreamFlow-Nonce", "already used")

    def test_unknown_key_id_is_refused(self, world: World) -> None:
        """A key id that is not configured (never issued or rotated out) is refused."""
        url = f"{P}/tenants"
        headers = sign_request("key-2025z", "z" * 40, "GET", url)
        response = world.client.get(url, headers=headers)
        assert_problem(response, 401, BAD_SIGNATURE, "'key-2025z' is not an active key")

    def test_redis_down_fails_closed(self, world: World) -> None:
        """Without Redis the nonce cannot be checked: signed requests get 503, probes still 200."""
        with app_like(world, redis_url=f"redis://127.0.0.1:{closed_port()}/0") as (client, _):
            response = signed(world, "GET", f"{P}/tenants", client=client)
            assert_problem(
                response, 503, "/problems/replay-protection-unavailable", "replay protection"
            )
            assert response.headers["retry-after"]
            assert client.get("/healthz").status_code == 200


# --- tenants and their keys ---------------------------------------------------------------


class TestTenants:
    @covers(f"POST {P}/tenants", audit=True)
    def test_create_tenant_is_audited(self, world: World) -> None:
        """Creating a tenant answers 201 with it and audits who created it in which request."""
        response = signed(world, "POST", f"{P}/tenants", json={"slug": "acme", "name": "Acme Ltd"})
        assert response.status_code == 201, response.text
        created = response.json()
        assert (created["slug"], created["name"], created["status"]) == (
            "acme",
            "Acme Ltd",
            "active",
        )
        [row] = audit_rows(world, action="organization.created", organization="acme")
        assert row["actor"] == "provider:key-2026a"
        assert row["target_id"] == created["id"]
        assert row["details"] == {"slug": "acme", "kind": "tenant"}
        assert row["request_id"] == response.headers["x-request-id"]

    def test_taken_or_invalid_slug_is_refused(self, world: World) -> None:
        """An existing slug is a 409, a malformed one a 422 naming the field."""
        taken = signed(world, "POST", f"{P}/tenants", json={"slug": "tenant-a", "name": "A"})
        assert_problem(taken, 409, "/problems/conflict", "'tenant-a' exists already")
        bad = signed(world, "POST", f"{P}/tenants", json={"slug": "Not OK", "name": "x"})
        assert_problem(bad, 422, "/problems/invalid-input", "body.slug")

    def test_list_tenants_pages_by_slug(self, world: World) -> None:
        """Tenants (never the provider) come by slug, one page per cursor."""
        signed(world, "POST", f"{P}/tenants", json={"slug": "acme", "name": "Acme"})
        slugs, cursor = [], None
        for _ in range(5):
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = signed(world, "GET", f"{P}/tenants", params=params).json()
            slugs += [tenant["slug"] for tenant in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert slugs == ["acme", "tenant-a", "tenant-b"]
        bad_cursor = signed(world, "GET", f"{P}/tenants", params={"cursor": "nonsense"})
        assert_problem(bad_cursor, 422, "/problems/invalid-input", "cursor")

    @covers(
        f"POST {P}/tenants/{{slug}}/suspend", f"POST {P}/tenants/{{slug}}/reactivate", audit=True
    )
    def test_suspension_locks_out_the_tenants_keys_until_reactivated(self, world: World) -> None:
        """A suspended tenant's key gets 401 on /v1; reactivating restores it; both are audited."""
        headers = world.tenant_a.headers
        assert world.client.get("/v1/evaluations", headers=headers).status_code == 200
        suspended = signed(world, "POST", f"{P}/tenants/tenant-a/suspend")
        assert suspended.status_code == 200
        assert suspended.json()["status"] == "suspended"
        for url in ("/v1/evaluations", f"/v1/evaluations/{world.tenant_a.run_id}", "/v1/notices"):
            refused = world.client.get(url, headers=headers)
            assert_problem(refused, 401, "/problems/unauthenticated", "suspended")
        assert (
            world.client.get("/v1/evaluations", headers=world.tenant_b.headers).status_code == 200
        )
        again = signed(world, "POST", f"{P}/tenants/tenant-a/suspend")
        assert again.json()["status"] == "suspended"
        reactivated = signed(world, "POST", f"{P}/tenants/tenant-a/reactivate")
        assert reactivated.json()["status"] == "active"
        assert world.client.get("/v1/evaluations", headers=headers).status_code == 200
        rows = audit_rows(world, organization="tenant-a", actor="provider:key-2026a")
        assert [row["action"] for row in rows] == [
            "organization.reactivated",
            "organization.suspended",
        ]
        assert {row["target_id"] for row in rows} == {str(world.tenant_a.organization_id)}

    @pytest.mark.parametrize("slug", ["nobody", "provider"])
    def test_unknown_tenant_is_not_found(self, world: World, slug: str) -> None:
        """Suspending a slug that is not a tenant (or is the provider) is a 404."""
        response = signed(world, "POST", f"{P}/tenants/{slug}/suspend")
        assert_problem(response, 404, "/problems/not-found", f"tenant {slug!r} not found")


class TestApiKeys:
    def test_documented_scopes_are_the_scopes_keys_may_carry(self) -> None:
        """The OpenAPI document enumerates exactly the scopes the service accepts."""
        from api.app import create_app

        schemas = create_app().openapi()["components"]["schemas"]
        assert set(schemas["ApiKeyScope"]["enum"]) == set(SCOPES)

    @covers(f"POST {P}/tenants/{{slug}}/api-keys", audit=True)
    def test_issued_key_works_for_its_tenant_only(self, world: World) -> None:
        """The issued key is returned once, authenticates as its tenant, and is audited."""
        response = signed(
            world,
            "POST",
            f"{P}/tenants/tenant-b/api-keys",
            json={"name": "ci pipeline", "scopes": ["results:read"]},
        )
        assert response.status_code == 201, response.text
        issued = response.json()
        assert issued["api_key"].startswith(f"sf_{issued['prefix']}_")
        assert (issued["organization"], issued["scopes"]) == ("tenant-b", ["results:read"])
        headers = {"Authorization": f"Bearer {issued['api_key']}"}
        runs = world.client.get("/v1/evaluations", headers=headers)
        assert runs.status_code == 200
        assert [run["id"] for run in runs.json()["items"]] == [str(world.tenant_b.run_id)]
        other = world.client.get(f"/v1/evaluations/{world.tenant_a.run_id}", headers=headers)
        assert other.status_code == 404
        [row] = audit_rows(world, action="api_key.issued", actor="provider:key-2026a")
        assert row["organization"] == "tenant-b"
        assert row["target_id"] == issued["id"]
        assert row["details"]["prefix"] == issued["prefix"]
        assert issued["api_key"] not in json.dumps(row)

    def test_invalid_key_requests_are_refused(self, world: World) -> None:
        """Unknown scopes, past or zone-less expiry times and unknown tenants are refused."""
        url = f"{P}/tenants/tenant-b/api-keys"
        unknown_scope = signed(world, "POST", url, json={"name": "x", "scopes": ["admin"]})
        assert_problem(unknown_scope, 422, "/problems/invalid-input", "body.scopes")
        past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        expired = signed(
            world, "POST", url, json={"name": "x", "scopes": ["predict"], "expires_at": past}
        )
        assert_problem(expired, 422, "/problems/invalid-input", "expires_at")
        naive = signed(
            world,
            "POST",
            url,
            json={"name": "x", "scopes": ["predict"], "expires_at": "2099-01-01T00:00:00"},
        )
        assert_problem(naive, 422, "/problems/invalid-input", "body.expires_at")
        nobody = signed(
            world, "POST", f"{P}/tenants/nobody/api-keys", json={"name": "x", "scopes": ["predict"]}
        )
        assert_problem(nobody, 404, "/problems/not-found")
        assert audit_rows(world, action="api_key.issued", actor="provider:key-2026a") == []


# --- evaluations --------------------------------------------------------------------------


class TestEvaluations:
    @covers(f"POST {P}/evaluations", audit=True)
    @covers(f"GET {P}/evaluations/{{run_id}}")
    def test_start_creates_a_pollable_run_and_launches_its_flow(
        self, world: World, summarizer: str
    ) -> None:
        """Starting an evaluation answers 202 with a run that both APIs can poll, launches the
        flow for that run once the run is committed, and audits the run's creation."""
        response = signed(
            world,
            "POST",
            f"{P}/evaluations",
            json={"organization": "tenant-a", "model": summarizer, "dataset": "tenant-a-notes"},
        )
        assert response.status_code == 202, response.text
        started = response.json()
        run_id = started["run_id"]
        assert started["status"] in ("pending", "running")
        assert started["reused"] is False
        assert started["status_url"] == f"/v1/evaluations/{run_id}"
        assert world.launcher.launched == [
            {"organization": "tenant-a", "actor": "provider:key-2026a", "run_id": run_id}
        ]
        polled = signed(world, "GET", started["provider_status_url"])
        assert polled.status_code == 200, polled.text
        status = polled.json()
        assert status["status"] in ("pending", "running")
        assert status["model"] == {"name": "notes-summarizer", "version": "1", "alias": None}
        assert status["progress"] == {"batches_done": 0, "batches_total": 1, "examples": 12}
        tenant_view = world.client.get(started["status_url"], headers=world.tenant_a.headers)
        assert tenant_view.status_code == 200
        assert tenant_view.json()["status"] == status["status"]
        [row] = audit_rows(world, action="evaluation_run.created", actor="provider:key-2026a")
        assert (row["organization"], row["target_id"]) == ("tenant-a", run_id)
        assert row["details"]["subject"] == "model:notes-summarizer@1"

    def test_alias_resolves_to_its_version(self, world: World, summarizer: str) -> None:
        """`NAME@ALIAS` evaluates the version the alias points at, and remembers the alias."""
        response = signed(
            world,
            "POST",
            f"{P}/evaluations",
            json={
                "organization": "tenant-b",
                "model": "notes-summarizer@champion",
                "dataset": "tenant-b-notes@1",
            },
        )
        assert response.status_code == 202, response.text
        status = signed(world, "GET", response.json()["provider_status_url"]).json()
        assert status["model"] == {"name": "notes-summarizer", "version": "1", "alias": "champion"}

    def test_unknown_inputs_are_refused_clearly(self, world: World, summarizer: str) -> None:
        """Unknown models, datasets and organisations are 404s, a malformed model a 422."""
        url = f"{P}/evaluations"
        base = {"organization": "tenant-a", "model": summarizer, "dataset": "tenant-a-notes"}
        cases = [
            ({"model": "nobody@1"}, 404, "model version nobody@1 is not registered"),
            ({"model": "notes-summarizer@7"}, 404, "notes-summarizer@7 is not registered"),
            ({"model": "notes-summarizer@challenger"}, 404, "no alias 'challenger'"),
            ({"model": "no-version"}, 422, "must be NAME@VERSION or NAME@ALIAS"),
            ({"dataset": "tenant-b-notes"}, 404, "golden dataset 'tenant-b-notes' not found"),
            ({"organization": "nobody"}, 404, "organization 'nobody' not found"),
        ]
        for change, status, fragment in cases:
            response = signed(world, "POST", url, json={**base, **change})
            kind = "/problems/not-found" if status == 404 else "/problems/invalid-input"
            assert_problem(response, status, kind, fragment)
        assert world.launcher.launched == []
        assert audit_rows(world, action="evaluation_run.created", actor="provider:key-2026a") == []

    def test_status_is_scoped_to_the_organisation(self, world: World) -> None:
        """A run is found under its own organisation only; the organisation is required."""
        url = f"{P}/evaluations/{world.tenant_a.run_id}"
        own = signed(world, "GET", url, params={"organization": "tenant-a"})
        assert own.status_code == 200
        assert own.json()["status"] == "completed"
        assert own.json()["progress"]["batches_done"] == own.json()["progress"]["batches_total"]
        other = signed(world, "GET", url, params={"organization": "tenant-b"})
        assert_problem(other, 404, "/problems/not-found", str(world.tenant_a.run_id))
        missing = signed(world, "GET", url)
        assert_problem(missing, 422, "/problems/invalid-input", "query.organization")


# --- audit log ----------------------------------------------------------------------------


class TestAuditLog:
    @covers(f"GET {P}/audit-log")
    def test_filters_and_pages_newest_first(self, world: World) -> None:
        """Rows filter by organisation, actor, action and time, newest first, page by page."""
        before = datetime.now(UTC)
        for action in ("suspend", "reactivate", "suspend"):
            assert signed(world, "POST", f"{P}/tenants/tenant-b/{action}").status_code == 200
        mine = audit_rows(world, actor="provider:key-2026a")
        assert [row["action"] for row in mine] == [
            "organization.suspended",
            "organization.reactivated",
            "organization.suspended",
        ]
        ids = [row["id"] for row in mine]
        assert ids == sorted(ids, reverse=True)
        assert [r["id"] for r in audit_rows(world, action="organization.reactivated")] == [ids[1]]
        seeded = audit_rows(world, organization="tenant-a", actor="test")
        assert seeded
        assert {row["organization"] for row in seeded} == {"tenant-a"}
        recent = audit_rows(world, since=before.isoformat(), organization="tenant-b")
        assert [row["id"] for row in recent] == ids
        assert audit_rows(world, until=before.isoformat(), actor="provider:key-2026a") == []
        paged, cursor = [], None
        while True:
            params = {"actor": "provider:key-2026a", "limit": 2}
            if cursor:
                params["cursor"] = cursor
            page = signed(world, "GET", f"{P}/audit-log", params=params).json()
            paged += [row["id"] for row in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert paged == ids

    def test_invalid_filters_are_refused(self, world: World) -> None:
        """An unknown organisation is a 404; reversed or zone-less times are 422s."""
        url = f"{P}/audit-log"
        unknown = signed(world, "GET", url, params={"organization": "nobody"})
        assert_problem(unknown, 404, "/problems/not-found", "'nobody'")
        now = datetime.now(UTC)
        reversed_range = signed(
            world, "GET", url, params={"since": now.isoformat(), "until": now.isoformat()}
        )
        assert_problem(reversed_range, 422, "/problems/invalid-input", "until")
        naive = signed(world, "GET", url, params={"since": "2026-01-01T00:00:00"})
        assert_problem(naive, 422, "/problems/invalid-input", "query.since")


# --- notices ------------------------------------------------------------------------------


def _notice(world: World, **fields: Any) -> dict[str, Any]:
    body = {"title": "Maintenance", "body": "Read-only from 02:00 to 03:00 UTC.", **fields}
    response = signed(world, "POST", f"{P}/notices", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


class TestNotices:
    @covers(f"POST {P}/notices", f"PATCH {P}/notices/{{notice_id}}", audit=True)
    @covers(f"POST {P}/notices/{{notice_id}}/retire", audit=True)
    @covers(f"GET {P}/notices")
    def test_lifecycle_is_audited_and_reaches_the_audience_only(self, world: World) -> None:
        """A notice for one tenant is shown to it alone, follows updates, disappears once
        retired, and each change is audited."""
        created = _notice(world, severity="warning", audience=["tenant-a"])
        assert (created["status"], created["audience"]) == ("active", ["tenant-a"])

        def titles(tenant_headers: dict[str, str]) -> list[str]:
            page = world.client.get("/v1/notices", headers=tenant_headers).json()
            return [notice["title"] for notice in page["items"]]

        assert titles(world.tenant_a.headers) == ["Maintenance"]
        assert titles(world.tenant_b.headers) == []
        url = f"{P}/notices/{created['id']}"
        updated = signed(
            world, "PATCH", url, json={"title": "Maintenance moved", "audience": ["*"]}
        )
        assert updated.status_code == 200, updated.text
        assert (updated.json()["title"], updated.json()["audience"]) == ("Maintenance moved", ["*"])
        assert updated.json()["severity"] == "warning"
        assert titles(world.tenant_b.headers) == ["Maintenance moved"]
        retired = signed(world, "POST", f"{url}/retire")
        assert retired.status_code == 200
        assert retired.json()["status"] == "retired"
        assert titles(world.tenant_a.headers) == []
        listed = signed(world, "GET", f"{P}/notices").json()["items"]
        assert [(n["id"], n["status"]) for n in listed] == [(created["id"], "retired")]
        rows = audit_rows(world, actor="provider:key-2026a")
        assert [(row["action"], row["target_id"]) for row in rows] == [
            ("system_notice.retired", created["id"]),
            ("system_notice.updated", created["id"]),
            ("system_notice.created", created["id"]),
        ]
        assert rows[1]["details"] == {"fields": ["audience", "title"]}
        assert rows[2]["details"] == {"severity": "warning", "audience": "listed", "tenants": 1}

    def test_schedule_decides_the_status(self, world: World) -> None:
        """A notice is scheduled before starts_at, active until ends_at, expired after."""
        now = datetime.now(UTC)
        future = _notice(world, starts_at=(now + timedelta(days=1)).isoformat())
        past = _notice(
            world,
            starts_at=(now - timedelta(days=2)).isoformat(),
            ends_at=(now - timedelta(days=1)).isoformat(),
        )
        current = _notice(world, ends_at=(now + timedelta(days=1)).isoformat())
        assert (future["status"], past["status"], current["status"]) == (
            "scheduled",
            "expired",
            "active",
        )
        listed = signed(world, "GET", f"{P}/notices").json()["items"]
        assert {n["id"]: n["status"] for n in listed} == {
            future["id"]: "scheduled",
            past["id"]: "expired",
            current["id"]: "active",
        }
        shown = world.client.get("/v1/notices", headers=world.tenant_a.headers).json()["items"]
        assert [n["id"] for n in shown] == [current["id"]]

    def test_invalid_notice_changes_are_refused(self, world: World) -> None:
        """Unknown audiences and reversed schedules are 422s, unknown notices 404s, and a
        retired notice cannot change (409)."""
        bad_audience = signed(
            world,
            "POST",
            f"{P}/notices",
            json={"title": "t", "body": "b", "audience": ["provider"]},
        )
        assert_problem(bad_audience, 422, "/problems/invalid-input", "'provider' is not a tenant")
        now = datetime.now(UTC)
        reversed_schedule = signed(
            world,
            "POST",
            f"{P}/notices",
            json={
                "title": "t",
                "body": "b",
                "starts_at": now.isoformat(),
                "ends_at": (now - timedelta(hours=1)).isoformat(),
            },
        )
        assert_problem(reversed_schedule, 422, "/problems/invalid-input", "ends_at")
        unknown = signed(world, "PATCH", f"{P}/notices/{uuid.uuid4()}", json={"title": "x"})
        assert_problem(unknown, 404, "/problems/not-found")
        notice = _notice(world)
        signed(world, "POST", f"{P}/notices/{notice['id']}/retire")
        late = signed(world, "PATCH", f"{P}/notices/{notice['id']}", json={"title": "x"})
        assert_problem(late, 409, "/problems/conflict", "retired")


# --- idempotency --------------------------------------------------------------------------


class TestIdempotency:
    def test_retry_replays_the_first_response(self, world: World) -> None:
        """A retry with the same key and body gets the first status and body, doing nothing."""
        body = {"slug": "acme", "name": "Acme"}
        headers = {"Idempotency-Key": "create-acme-1"}
        first = signed(world, "POST", f"{P}/tenants", json=body, headers=headers)
        retry = signed(world, "POST", f"{P}/tenants", json=body, headers=headers)
        assert (first.status_code, retry.status_code) == (201, 201)
        assert retry.json() == first.json()
        assert retry.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        assert len(audit_rows(world, action="organization.created", organization="acme")) == 1

    def test_same_key_with_another_body_is_refused(self, world: World) -> None:
        """Reusing a key for a different request is a 422 and creates nothing."""
        headers = {"Idempotency-Key": "create-1"}
        first = signed(
            world, "POST", f"{P}/tenants", json={"slug": "acme", "name": "A"}, headers=headers
        )
        assert first.status_code == 201
        other = signed(
            world, "POST", f"{P}/tenants", json={"slug": "globex", "name": "G"}, headers=headers
        )
        assert_problem(other, 422, "/problems/invalid-input", "Idempotency-Key 'create-1'")
        elsewhere = signed(
            world,
            "POST",
            f"{P}/tenants/acme/api-keys",
            json={"name": "x", "scopes": ["predict"]},
            headers=headers,
        )
        assert_problem(elsewhere, 422, "/problems/invalid-input", "Idempotency-Key 'create-1'")
        assert audit_rows(world, action="api_key.issued", organization="acme") == []
        slugs = [t["slug"] for t in signed(world, "GET", f"{P}/tenants").json()["items"]]
        assert "globex" not in slugs

    def test_failed_request_stores_nothing(self, world: World) -> None:
        """A request that fails leaves its key free: the key then works for another body."""
        headers = {"Idempotency-Key": "attempt-7"}
        failed = signed(
            world, "POST", f"{P}/tenants", json={"slug": "tenant-a", "name": "A"}, headers=headers
        )
        assert failed.status_code == 409
        fresh = signed(
            world, "POST", f"{P}/tenants", json={"slug": "fresh", "name": "F"}, headers=headers
        )
        assert fresh.status_code == 201
        assert "idempotent-replayed" not in fresh.headers

    def test_api_key_replay_never_reveals_the_secret_again(self, world: World) -> None:
        """A replayed key issuance has the same key id but a null secret; one key is issued."""
        body = {"name": "ci", "scopes": ["results:read"]}
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        url = f"{P}/tenants/tenant-b/api-keys"
        first = signed(world, "POST", url, json=body, headers=headers)
        retry = signed(world, "POST", url, json=body, headers=headers)
        assert (first.status_code, retry.status_code) == (201, 201)
        assert first.json()["api_key"].startswith("sf_")
        assert retry.json() == {**first.json(), "api_key": None}
        assert len(audit_rows(world, action="api_key.issued", actor="provider:key-2026a")) == 1

    def test_evaluation_retry_launches_once(self, world: World, summarizer: str) -> None:
        """A retried evaluation start returns the same run and does not launch a second flow."""
        body = {"organization": "tenant-a", "model": summarizer, "dataset": "tenant-a-notes"}
        headers = {"Idempotency-Key": "eval-1"}
        first = signed(world, "POST", f"{P}/evaluations", json=body, headers=headers)
        retry = signed(world, "POST", f"{P}/evaluations", json=body, headers=headers)
        assert (first.status_code, retry.status_code) == (202, 202)
        assert retry.json() == first.json()
        assert len(world.launcher.launched) == 1

    def test_notice_retry_creates_one_notice(self, world: World) -> None:
        """A retried notice creation returns the first notice and creates no second one."""
        body = {"title": "t", "body": "b"}
        headers = {"Idempotency-Key": "notice-1"}
        first = signed(world, "POST", f"{P}/notices", json=body, headers=headers)
        retry = signed(world, "POST", f"{P}/notices", json=body, headers=headers)
        assert retry.json() == first.json()
        assert len(signed(world, "GET", f"{P}/notices").json()["items"]) == 1

    def test_keys_outlive_a_signing_key_rotation(self, world: World) -> None:
        """Finding 13: records belong to the provider, not to the key that signed: a retry
        signed with the next key after a rotation replays the first response (one API key)."""
        headers = {"Idempotency-Key": "issue-ci-key"}
        url = f"{P}/tenants/tenant-b/api-keys"
        body = {"name": "ci", "scopes": ["results:read"]}
        first = signed(world, "POST", url, json=body, headers=headers)
        rotated = signed(world, "POST", url, json=body, headers=headers, key_id="key-2026b")
        assert (first.status_code, rotated.status_code) == (201, 201)
        assert rotated.headers["idempotent-replayed"] == "true"
        assert rotated.json() == {**first.json(), "api_key": None}
        assert len(audit_rows(world, action="api_key.issued", actor="provider:key-2026a")) == 1
        assert audit_rows(world, action="api_key.issued", actor="provider:key-2026b") == []

    def test_overlong_key_is_refused(self, world: World) -> None:
        """A key longer than 200 characters is a 422 naming the header."""
        response = signed(
            world,
            "POST",
            f"{P}/notices",
            json={"title": "a", "body": "b"},
            headers={"Idempotency-Key": "k" * 201},
        )
        assert_problem(response, 422, "/problems/invalid-input", "Idempotency-Key")

    def test_concurrent_duplicate_waits_and_replays(self, world: World) -> None:
        """A duplicate arriving while the first request is uncommitted waits for it, then gets
        its stored response rather than doing the work twice."""
        sessions = world.state.sessions
        now = datetime.now(UTC)
        claim = partial(claim_key, scope="test", key="race", fingerprint="f" * 64, now=now)
        outcome: list[StoredResponse | BaseException | None] = []

        def duplicate() -> None:
            try:
                with sessions() as session, session.begin():
                    outcome.append(claim(session))
            except BaseException as error:  # reported by the assertion below
                outcome.append(error)

        with sessions() as first, first.begin():
            assert claim(first) is None
            racer = threading.Thread(target=duplicate)
            racer.start()
            if world.backend == "postgresql":
                _wait_for_lock_wait(world.state.storage.resolved_database_url())
            store_response(first, scope="test", key="race", status_code=201, body='{"id": 1}')
        racer.join(timeout=60)
        assert outcome == [StoredResponse(201, '{"id": 1}')]


def _wait_for_lock_wait(url: str) -> None:
    """Return once another backend waits on a lock (the duplicate's INSERT blocks on ours)."""
    # The app's role may not see other sessions' wait events; the platform's login may.
    engine = make_engine(url)
    try:
        for _ in range(600):
            with engine.connect() as connection:
                waiting = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ).scalar_one()
            if waiting:
                return
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError("the duplicate request never waited for the first one's lock")


# --- rate limits --------------------------------------------------------------------------


class TestRateLimits:
    def test_address_limit_applies_before_authentication(self, world: World) -> None:
        """Past the per-address limit of failed signatures even signed requests get 429 with
        Retry-After and RateLimit headers."""
        api = world.state.api.model_copy(update={"rate_limit_per_address_per_minute": 2})
        with app_like(world, api=api) as (client, _):
            ok = signed(world, "GET", f"{P}/tenants", client=client)
            assert ok.status_code == 200
            assert ok.headers["ratelimit-policy"].startswith('"default";q=')
            forged = sign_request("key-2026a", "f" * 40, "GET", f"{P}/tenants")
            for _ in range(2):
                assert client.get(f"{P}/tenants", headers=forged).status_code == 401
            assert client.get(f"{P}/tenants", headers=forged).status_code == 429
            refused = signed(world, "GET", f"{P}/tenants", client=client)
            assert_problem(refused, 429, "/problems/rate-limited", "rate limit of 2")
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["ratelimit"].startswith('"default";r=0;t=')
            assert refused.headers["ratelimit-policy"] == '"default";q=2;w=60'

    def test_key_limit_is_per_provider_key(self, world: World) -> None:
        """Past its per-key limit one provider key gets 429 while the other key still works."""
        api = world.state.api.model_copy(update={"rate_limit_per_minute": 2})
        with app_like(world, api=api) as (client, _):
            for _ in range(2):
                assert signed(world, "GET", f"{P}/tenants", client=client).status_code == 200
            refused = signed(world, "GET", f"{P}/tenants", client=client)
            assert_problem(refused, 429, "/problems/rate-limited")
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["ratelimit"]
            other = signed(world, "GET", f"{P}/tenants", client=client, key_id="key-2026b")
            assert other.status_code == 200
