"""The API's edge against abuse (issue 8's findings): oversized bodies, unsigned provider
requests, repeated query parameters, NUL and extreme values (on every route, from the route
table), spoofed addresses, expired keys, costly comparisons asked for at once, Redis faults on a
private server (out of memory, stopped, frozen), and what errors and logs may show."""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import redis
import structlog
import uvicorn
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from structlog.testing import capture_logs
from typer.testing import CliRunner

from api.edge import body_limit
from api.principals import PrincipalCache
from api.provider_client import sign_request
from api.settings import ProviderAuthSettings
from api.state import ApiState
from flows.cli.serve import app as serve_cli
from flows.cli.serve import uvicorn_options
from models.cache.keys import comparison_key
from models.db.tables import IdempotencyRecord
from pipelines.access.service import Principal
from pipelines.evaluation.service import failure_reason
from pipelines.logging import configure_logging
from tests.api.conftest import PROVIDER_KEYS, REDIS_URL, World
from tests.api.test_provider_routes import app_like, signed
from tests.api.test_provider_routes import summarizer as summarizer
from tests.api.test_provider_routes import summarizer_store as summarizer_store
from tests.api.test_tenant_routes import perfect_run
from tests.models.cache.conftest import FakeClock
from tests.redis_server import FAULTS, PrivateRedis

P = "/provider/v1"
MIB = 1024 * 1024
PRINCIPAL = Principal(uuid.uuid4(), "acme", uuid.uuid4(), frozenset({"results:read"}))


class ReceiveRecorder:
    """An ASGI `receive` streaming `chunks` chunks of `size` bytes, counting what was read."""

    def __init__(self, chunks: int, size: int = MIB) -> None:
        self.chunks = chunks
        self.size = size
        self.read_bytes = 0

    async def __call__(self) -> dict[str, Any]:
        if self.read_bytes >= self.chunks * self.size:
            return {"type": "http.disconnect"}
        self.read_bytes += self.size
        more = self.read_bytes < self.chunks * self.size
        return {"type": "http.request", "body": b"x" * self.size, "more_body": more}


def call_app(
    world: World,
    method: str,
    path: str,
    headers: dict[str, str],
    receive: ReceiveRecorder,
    query: bytes = b"",
) -> tuple[int, dict[str, Any]]:
    """Send one request straight to the app's ASGI interface; (status, JSON body)."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.9", 40000),
        "server": ("testserver", 80),
    }
    app = world.client.app
    world.client.portal.call(app, scope, receive, send)  # type: ignore[union-attr]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body)


FORGED_SIGNATURE = {
    "X-StreamFlow-Key-Id": "key-2026a",
    "X-StreamFlow-Timestamp": "1700000000",
    "X-StreamFlow-Nonce": "n" * 32,
    "X-StreamFlow-Signature": "v1=" + "0" * 64,
    "Content-Type": "application/json",
}


class TestBodyLimits:
    """Finding 1: nothing reads an anonymous or oversized body."""

    def test_an_unsigned_streamed_post_is_refused_before_a_byte_is_read(self, world: World) -> None:
        receive = ReceiveRecorder(chunks=300)
        status, problem = call_app(
            world, "POST", f"{P}/tenants", {"content-type": "application/json"}, receive
        )
        assert status == 401
        assert problem["type"] == "/problems/invalid-signature"
        assert "missing X-StreamFlow-Key-Id" in problem["detail"]
        assert receive.read_bytes == 0

    def test_an_unsigned_declared_large_post_is_refused_before_a_byte_is_read(
        self, world: World
    ) -> None:
        receive = ReceiveRecorder(chunks=300)
        headers = {"content-type": "application/json", "content-length": str(300 * MIB)}
        status, _ = call_app(world, "POST", f"{P}/tenants", headers, receive)
        assert status == 413  # the size is refused first, ahead of routing
        assert receive.read_bytes == 0

    def test_a_declared_oversized_body_gets_413_unread(self, world: World) -> None:
        receive = ReceiveRecorder(chunks=300)
        headers = {**FORGED_SIGNATURE, "content-length": str(300 * MIB)}
        status, problem = call_app(world, "POST", f"{P}/tenants", headers, receive)
        assert status == 413
        assert problem["type"] == "/problems/payload-too-large"
        assert str(world.state.api.max_body_bytes) in problem["detail"]
        assert receive.read_bytes == 0

    def test_a_chunked_oversized_body_is_cut_once_over_the_limit(self, world: World) -> None:
        receive = ReceiveRecorder(chunks=300, size=64 * 1024)
        status, problem = call_app(world, "POST", f"{P}/tenants", FORGED_SIGNATURE, receive)
        assert status == 413
        assert problem["type"] == "/problems/payload-too-large"
        assert receive.read_bytes <= world.state.api.max_body_bytes + 64 * 1024

    def test_a_tenant_route_refuses_a_declared_oversized_body(self, world: World) -> None:
        receive = ReceiveRecorder(chunks=300)
        headers = {**world.tenant_a.headers, "content-length": str(300 * MIB)}
        path = f"/v1/notices/{world.tenant_a.run_id}/acknowledgement"
        status, _ = call_app(world, "POST", path, headers, receive)
        assert status == 413
        assert receive.read_bytes == 0

    def test_a_per_path_limit_admits_a_larger_body(self, world: World) -> None:
        """A path given a larger limit reads a body the default would refuse."""
        world.state.api.max_body_bytes_by_path = {f"{P}/tenants": 4 * MIB}
        receive = ReceiveRecorder(chunks=2)
        headers = {**FORGED_SIGNATURE, "content-length": str(2 * MIB)}
        status, problem = call_app(world, "POST", f"{P}/tenants", headers, receive)
        # Read in full (and refused as not JSON), not cut off by the size limit.
        assert status == 422, problem
        assert problem["errors"][0]["field"].startswith("body")
        assert receive.read_bytes == 2 * MIB

    @pytest.mark.parametrize("world", ["sqlite"], indirect=True)  # the edge: no storage
    def test_every_route_refuses_an_oversized_body_unread(self, world: World) -> None:
        """Derived from the route table: every operation, with or without a body of its own,
        answers a declared oversized body with 413 before reading a byte."""
        operations = _operations(world)
        assert len(operations) >= 15
        for method, template, _ in operations:
            path = _sample_path(template)
            headers = world.tenant_a.headers if path.startswith("/v1/") else FORGED_SIGNATURE
            receive = ReceiveRecorder(chunks=2)
            limit = body_limit(world.state.api, path)
            too_large = {**headers, "content-length": str(limit + 1)}
            status, problem = call_app(world, method, path, too_large, receive)
            assert (status, problem["type"]) == (413, "/problems/payload-too-large"), template
            assert receive.read_bytes == 0, template

    def test_a_signed_request_within_the_limit_still_works(self, world: World) -> None:
        body = json.dumps({"slug": "acme-edge", "name": "Acme"}).encode()
        headers = sign_request(
            "key-2026a", PROVIDER_KEYS["key-2026a"], "POST", f"{P}/tenants", body
        )
        response = world.client.post(
            f"{P}/tenants", content=body, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text


class TestRepeatedQueryParameters:
    """Finding 10: a repeated scalar parameter is refused, so its order cannot change meaning."""

    def test_a_signed_query_reordered_on_the_wire_is_refused(self, world: World) -> None:
        signed_url = f"{P}/tenants?limit=1&limit=3"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "GET", signed_url)
        response = world.client.get(f"{P}/tenants?limit=3&limit=1", headers=headers)
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["query.limit"]

    def test_a_repeated_parameter_is_refused_even_as_signed(self, world: World) -> None:
        url = f"{P}/audit-log?organization=tenant-a&organization=tenant-b"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "GET", url)
        response = world.client.get(url, headers=headers)
        assert response.status_code == 422, response.text
        assert "query.organization: sent more than once" in response.json()["detail"]

    def test_a_tenant_route_refuses_a_repeated_parameter(self, world: World) -> None:
        response = world.client.get(
            "/v1/evaluations?limit=1&limit=3", headers=world.tenant_a.headers
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["query.limit"]

    @pytest.mark.parametrize("world", ["sqlite"], indirect=True)  # the edge: no storage
    def test_every_query_parameter_refuses_repetition(self, world: World) -> None:
        """Derived from the route table: each query parameter of each operation, sent twice."""
        checked = 0
        for method, template, operation in _operations(world):
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                name = parameter["name"]
                query = f"{name}=1&{name}=2".encode()
                status, problem = call_app(
                    world, method, _sample_path(template), {}, ReceiveRecorder(0), query
                )
                assert status == 422, (template, name)
                assert [e["field"] for e in problem["errors"]] == [f"query.{name}"]
                checked += 1
        assert checked >= 10

    def test_distinct_parameters_still_work(self, world: World) -> None:
        url = f"{P}/tenants?limit=1"
        headers = sign_request("key-2026a", PROVIDER_KEYS["key-2026a"], "GET", url)
        response = world.client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) == 1


class TestExpiringKeys:
    """Finding 8: a remembered key is never remembered past its `expires_at`."""

    def test_the_cache_forgets_a_key_when_it_expires(self) -> None:
        clock = FakeClock()
        cache = PrincipalCache(10, clock=clock)
        now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        expiring = replace(PRINCIPAL, expires_at=now + timedelta(seconds=2))
        lasting = replace(PRINCIPAL, expires_at=now + timedelta(days=1))
        cache.put("sf_x_expiring", expiring, now=now)
        cache.put("sf_x_lasting", lasting, now=now)
        clock.advance(1.9)
        assert cache.get("sf_x_expiring") == expiring
        clock.advance(0.1)
        assert cache.get("sf_x_expiring") is None
        assert cache.get("sf_x_lasting") == lasting
        clock.advance(8.0)
        assert cache.get("sf_x_lasting") is None

    def test_an_already_expired_key_is_not_remembered(self) -> None:
        cache = PrincipalCache(10, clock=FakeClock())
        now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        cache.put("sf_x_gone", replace(PRINCIPAL, expires_at=now), now=now)
        assert cache.get("sf_x_gone") is None

    def test_an_expired_key_stops_working_despite_the_cache(self, world: World) -> None:
        """Through the app: a key used just before it expires is refused just after."""
        assert world.state.principals.ttl_seconds >= 5
        expires_at = datetime.now(UTC) + timedelta(seconds=2)
        body = {"name": "short", "scopes": ["results:read"], "expires_at": expires_at.isoformat()}
        issued = world.client.post(
            f"{P}/tenants/{world.tenant_a.slug}/api-keys",
            json=body,
            auth=world.provider_auth(),
        )
        assert issued.status_code == 201, issued.text
        headers = {"Authorization": f"Bearer {issued.json()['api_key']}"}
        assert world.client.get("/v1/evaluations", headers=headers).status_code == 200
        time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.1)
        refused = world.client.get("/v1/evaluations", headers=headers)
        assert refused.status_code == 401
        assert "expired" in refused.json()["detail"]


def _cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "9" * 40,
    "-1",
    _cursor("0001-01-01T00:00:00+01:00", str(uuid.uuid4())),
    _cursor("9999-12-31T23:59:59-01:00", str(uuid.uuid4())),
    _cursor("a\x00b", "\x00"),
]
"""Values that once made routes answer 500: NUL bytes, the edges of the datetime range (also
inside cursors, which tenants can forge), numbers beyond 64 bits."""

VALID_BODIES: dict[str, dict[str, Any]] = {
    "TenantCreate": {"slug": "fuzz-tenant", "name": "Fuzz"},
    "ApiKeyCreate": {"name": "fuzz", "scopes": ["results:read"]},
    "EvaluationStart": {"organization": "tenant-a", "model": "m@1", "dataset": "d"},
    "NoticeCreate": {"title": "t", "body": "b"},
    "NoticeUpdate": {"title": "t"},
    "WebhookEndpointCreate": {"url": "https://hooks.example.com/fuzz"},
    "AiTaskCreate": {"agent_type": "summarizer", "inputs": ["fuzz"]},
    "JobsRetry": {"kind": "webhook"},
    "DomainCreate": {"hostname": "fuzz.example.com"},
    "CertificateRevocation": {"reason": 4},
    "UsageBatch": {
        "events": [
            {"event_id": "fuzz-1", "tenant": "tenant-a", "occurred_at": "2026-03-01T00:00:00Z"}
        ]
    },
    "PlanCreate": {
        "tenant": "tenant-a",
        "effective_from": "2026-03-01",
        "monthly_fee_micros": 1,
        "included_tokens": 1,
        "overage_micros_per_1k_tokens": 1,
    },
    "AiCostCreate": {
        "model_version": "m@1",
        "effective_from": "2026-03-01",
        "micros_per_1k_tokens_in": 1,
        "micros_per_1k_tokens_out": 1,
    },
    "InfrastructureCreate": {"effective_from": "2026-03-01"},
    "TiersCreate": {
        "effective_from": "2026-03-01",
        "tiers": [{"name": "t", "min_rate_bps": 0, "discount_bps": 0}],
    },
    "GateBody": {"min_n": 100, "guardrails": [{"metric": "error_rate", "margin": 0.01}]},
    "PredictRequest": {"input": "fuzz"},
    "FeedbackCreate": {"request_id": "0" * 32, "kind": "rating", "value": "1"},
    "ExperimentCreate": {"kind": "shadow", "agent_type": "fuzz", "challenger": "m@2", "mde": 0.1},
}
"""A valid body of each request schema, so that fuzzed parameters reach the handler."""


def _operations(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    document = world.client.app.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def _sample_path(template: str) -> str:
    """A concrete path of a route template: every `{placeholder}` a fresh UUID."""
    parts = [uuid.uuid4().hex if p.startswith("{") else p for p in template.split("/")]
    return "/".join(parts)


def _body_schema(operation: dict[str, Any]) -> str | None:
    content = operation.get("requestBody", {}).get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


class FuzzRequests:
    """Authenticated requests to any route of the world, with parameters substituted."""

    def __init__(self, world: World) -> None:
        self.world = world
        run_id = str(world.tenant_a.run_id)
        self.baseline = {
            "run_id": run_id,
            "run_a": run_id,
            "run_b": run_id,
            "organization": "tenant-a",
            "slug": "no-such-tenant",
            "notice_id": str(uuid.uuid4()),
            "key_id": str(uuid.uuid4()),
            "endpoint_id": str(uuid.uuid4()),
            "delivery_id": str(uuid.uuid4()),
            "report_id": str(uuid.uuid4()),
            "task_id": str(uuid.uuid4()),
            "job_id": str(uuid.uuid4()),
        }

    def send(
        self,
        method: str,
        template: str,
        operation: dict[str, Any],
        overrides: dict[str, str],
        body: Any,
    ) -> httpx.Response:
        path, query = template, []
        for parameter in operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            value = overrides.get(name, self.baseline.get(name))
            if where == "path":
                path = path.replace(f"{{{name}}}", quote(value or "x", safe=""))
            elif where == "query" and value is not None:
                query.append((name, value))
        url = path + (f"?{urlencode(query, quote_via=quote)}" if query else "")
        if template.startswith(f"{P}/"):
            return self.world.client.request(
                method, url, json=body, auth=self.world.provider_auth()
            )
        headers = self.world.tenant_a.headers if template.startswith("/v1/") else {}
        return self.world.client.request(method, url, json=body, headers=headers)


class TestHostileValues:
    """Finding 7: NUL bytes and extreme values on every route's parameters and body fields
    (derived from the route table) are 4xx, never 5xx."""

    def test_every_request_body_schema_has_a_valid_sample(self, world: World) -> None:
        used = {_body_schema(op) for _, _, op in _operations(world)} - {None}
        assert used == set(VALID_BODIES)

    def test_parameters_never_answer_5xx(self, world: World) -> None:
        requests = FuzzRequests(world)
        failures, sent = [], 0
        for method, template, operation in _operations(world):
            schema = _body_schema(operation)
            body = VALID_BODIES[schema] if schema else None
            for parameter in operation.get("parameters", []):
                if parameter["in"] not in ("path", "query"):
                    continue
                for value in HOSTILE_VALUES:
                    response = requests.send(
                        method, template, operation, {parameter["name"]: value}, body
                    )
                    sent += 1
                    if response.status_code >= 500:
                        failures.append((method, template, parameter["name"], value))
                    if "\x00" in value and parameter["in"] == "query":
                        assert response.status_code == 422, (template, response.text)
                        fields = [e["field"] for e in response.json()["errors"]]
                        assert fields == [f"query.{parameter['name']}"]
        assert sent >= 100
        assert failures == []

    def test_body_fields_never_answer_5xx(self, world: World) -> None:
        requests = FuzzRequests(world)
        document = world.client.app.openapi()  # type: ignore[attr-defined]
        failures = []
        for method, template, operation in _operations(world):
            schema = _body_schema(operation)
            if schema is None:
                continue
            for field in document["components"]["schemas"][schema]["properties"]:
                for value in [*HOSTILE_VALUES[:4], ["\x00"]]:
                    body = {**VALID_BODIES[schema], field: value}
                    response = requests.send(method, template, operation, {}, body)
                    if response.status_code >= 500:
                        failures.append((method, template, field, value))
                    if value in ("\x00", "a\x00b", ["\x00"]):
                        assert response.status_code == 422, (template, field, response.text)
                        assert f"body.{field}" in response.json()["detail"]
        assert failures == []

    def test_an_extreme_cursor_names_the_field(self, world: World) -> None:
        cursor = _cursor("0001-01-01T00:00:00+01:00", str(uuid.uuid4()))
        response = world.client.get(
            "/v1/evaluations", params={"cursor": cursor}, headers=world.tenant_a.headers
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["cursor"]

    def test_a_nul_in_a_path_is_refused(self, world: World) -> None:
        response = world.client.get(
            f"{P}/evaluations/ab%00cd?organization=tenant-a", auth=world.provider_auth()
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["path"]


class TestAddressLimits:
    """Finding 4: address limits can't be spoofed and never throttle working credentials."""

    def test_serve_trusts_no_forwarding_header_by_default(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[dict[str, Any]] = []
        monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append(kwargs))
        monkeypatch.delenv("STREAMFLOW_FORWARDED_ALLOW_IPS", raising=False)
        runner = CliRunner()
        assert runner.invoke(serve_cli, []).exit_code == 0
        monkeypatch.setenv("STREAMFLOW_FORWARDED_ALLOW_IPS", "10.0.0.5,10.0.0.6")
        assert runner.invoke(serve_cli, []).exit_code == 0
        assert [(c["proxy_headers"], c["forwarded_allow_ips"]) for c in calls] == [
            (False, ""),
            (True, "10.0.0.5,10.0.0.6"),
        ]

    def test_rotating_forwarded_for_does_not_escape_the_limit(self, world: World) -> None:
        api = world.state.api.model_copy(update={"rate_limit_per_address_per_minute": 3})
        with app_like(world, api=api) as (client, _):
            statuses = [
                client.get(
                    "/v1/evaluations",
                    headers={
                        "Authorization": f"Bearer sf_guess{i}_{'x' * 30}",
                        "X-Forwarded-For": f"198.51.100.{i}",
                    },
                ).status_code
                for i in range(6)
            ]
        assert statuses == [401, 401, 401, 429, 429, 429]

    def test_authenticated_traffic_is_not_cut_by_the_address_limit(self, world: World) -> None:
        """Every request authenticates from the database (no auth cache), from one address."""
        api = world.state.api.model_copy(
            update={"rate_limit_per_address_per_minute": 2, "auth_cache_seconds": 0}
        )
        with app_like(world, api=api) as (client, _):
            statuses = [
                client.get("/v1/evaluations", headers=world.tenant_a.headers).status_code
                for _ in range(8)
            ]
            signed_statuses = [
                client.get(f"{P}/tenants", auth=world.provider_auth()).status_code for _ in range(5)
            ]
        assert statuses == [200] * 8
        assert signed_statuses == [200] * 5


class TestSecretsInErrors:
    """Finding 12: a settings error never shows any part of a provider secret."""

    def test_a_too_short_secret_is_not_echoed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        secret = "Qm7ZxK2vTfW9pLr4"
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps({"ops-key": secret}))
        shown = self._refusal()
        assert f"'ops-key' is {len(secret)} bytes; it must be at least 32" in shown
        assert self._leaked(secret, shown) == []

    def test_a_valid_secret_beside_a_short_one_is_not_echoed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        secret = "Qm7ZxK2vTfW9pLr4" * 2 + "J5hY8"
        keys = {"ops-key": secret, "new-key": "short"}
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps(keys))
        shown = self._refusal()
        assert "'new-key' is 5 bytes" in shown
        assert self._leaked(secret, shown) == []

    @staticmethod
    def _refusal() -> str:
        with pytest.raises(ValidationError) as raised:
            ProviderAuthSettings()
        return f"{raised.value}\n{raised.value!r}\n{raised.value.errors()}"

    @staticmethod
    def _leaked(secret: str, shown: str) -> list[str]:
        """Every 4-character piece of `secret` that appears in `shown`."""
        return [secret[i : i + 4] for i in range(len(secret) - 3) if secret[i : i + 4] in shown]

    def test_a_secret_of_the_wrong_type_is_not_echoed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("STREAMFLOW_PROVIDER_KEYS", json.dumps({"ops-key": 987654321}))
        with pytest.raises(ValidationError) as raised:
            ProviderAuthSettings()
        shown = f"{raised.value}\n{raised.value.errors()}"
        assert "provider_keys.ops-key" in shown
        assert "987654321" not in shown
        assert "6543" not in shown


class TestSmallerFindings:
    """Finding 13: no open redirect through Host; /metrics can be protected or turned off."""

    def test_a_trailing_slash_does_not_redirect_to_the_host_header(self, world: World) -> None:
        response = world.client.get(
            "/v1/evaluations/",
            headers={**world.tenant_a.headers, "Host": "evil.example"},
            follow_redirects=False,
        )
        assert response.status_code == 404
        assert "location" not in response.headers

    def test_metrics_require_the_token_when_one_is_set(self, world: World) -> None:
        world.state.api.metrics_token = SecretStr("scrape-token-123")
        assert world.client.get("/metrics").status_code == 401
        wrong = world.client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = world.client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
        assert right.status_code == 200
        assert "streamflow_evaluation_runs" in right.text

    def test_metrics_can_be_turned_off(self, world: World) -> None:
        assert world.client.get("/metrics").status_code == 200
        world.state.api.metrics_enabled = False
        off = world.client.get("/metrics")
        assert off.status_code == 404
        assert "streamflow_" not in off.text


async def _echo_client(scope: Any, receive: Any, send: Any) -> None:
    """An ASGI app answering with the client address uvicorn gave it."""
    body = str(scope["client"][0]).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _uvicorn(options: dict[str, Any]) -> Iterator[str]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    config = uvicorn.Config(_echo_client, log_level="warning", lifespan="off", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


class TestForwardedForOverHttp:
    """Finding 4 through a real uvicorn: the options `serve` passes decide the client address."""

    def test_the_header_is_ignored_without_trusted_proxies(self) -> None:
        with _uvicorn(uvicorn_options(None)) as url:
            seen = httpx.get(url, headers={"X-Forwarded-For": "198.51.100.7"}).text
        assert seen == "127.0.0.1"

    def test_the_header_is_used_from_a_trusted_proxy(self) -> None:
        with _uvicorn(uvicorn_options("127.0.0.1")) as url:
            seen = httpx.get(url, headers={"X-Forwarded-For": "198.51.100.7"}).text
        assert seen == "198.51.100.7"


def _computed(state: ApiState) -> float:
    """Comparisons this app computed (cache misses that ran)."""
    value = state.metrics.registry.get_sample_value(
        "streamflow_expensive_reads_computed_total", {"kind": "comparison"}
    )
    return value or 0.0


def _refused(state: ApiState, reason: str) -> float:
    value = state.metrics.registry.get_sample_value(
        "streamflow_expensive_reads_refused_total", {"kind": "comparison", "reason": reason}
    )
    return value or 0.0


def _wait_for(condition: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.01)


@contextmanager
def _held_elsewhere(world: World, key: str) -> Iterator[None]:
    """The computation of `key` is locked by another process (of `app_like`'s deployment)."""
    store = redis.Redis.from_url(REDIS_URL)
    lock = f"{world.redis_prefix}other:flight:{key}"
    try:
        assert store.set(lock, b"another-process", nx=True, px=60_000)
        yield
    finally:
        store.delete(lock)
        store.close()


class TestComparisonCost:
    """Finding 5: a comparison is computed once however many ask at once, within a cap on
    computations, and never of a run with itself."""

    def test_a_run_compared_with_itself_is_refused(self, world: World) -> None:
        a = world.tenant_a
        response = world.client.get(
            f"/v1/comparisons?run_a={a.run_id}&run_b={a.run_id}", headers=a.headers
        )
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert (error["field"], error["pointer"]) == ("run_b", "#/run_b")
        assert "same run as run_a" in error["message"]
        assert _computed(world.state) == 0

    @pytest.mark.parametrize("world", ["postgresql"], indirect=True)  # as in production
    def test_identical_cold_requests_compute_once_across_processes(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """Six identical requests to two API processes, arriving while the comparison is being
        computed: all get the same document, computed once in all."""
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        url = f"/v1/comparisons?run_a={a.run_id}&run_b={better}"
        key = comparison_key(a.organization_id, a.run_id, better)
        with (
            app_like(world) as (one, first),
            app_like(world) as (two, second),
            ThreadPoolExecutor(6) as pool,
        ):
            with _held_elsewhere(world, key):
                sent = [pool.submit(c.get, url, headers=a.headers) for c in (one, two) * 3]
                _wait_for(
                    lambda: (
                        first.expensive_reads.flights.callers(key) == 3
                        and second.expensive_reads.flights.callers(key) == 3
                    )
                )
                # Three callers per process, one task between them.
                assert first.expensive_reads.flights.in_flight() == 1
                assert second.expensive_reads.flights.in_flight() == 1
            responses = [future.result(timeout=60) for future in sent]
        assert [r.status_code for r in responses] == [200] * 6, responses[0].text
        assert len({r.content for r in responses}) == 1
        assert _computed(first) + _computed(second) == 1

    @pytest.mark.parametrize("world", ["postgresql"], indirect=True)  # as in production
    def test_a_request_waits_for_another_process_only_so_long(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        key = comparison_key(a.organization_id, a.run_id, better)
        api = world.state.api.model_copy(update={"comparison_wait_seconds": 0.3})
        with app_like(world, api=api) as (client, state), _held_elsewhere(world, key):
            response = client.get(
                f"/v1/comparisons?run_a={a.run_id}&run_b={better}", headers=a.headers
            )
        assert response.status_code == 503, response.text
        assert response.json()["type"] == "/problems/busy"
        assert response.headers["retry-after"] == "5"
        assert (_refused(state, "waited"), _computed(state)) == (1, 0)

    @pytest.mark.parametrize("world", ["postgresql"], indirect=True)  # as in production
    def test_beyond_the_cap_a_cold_comparison_is_refused_and_a_cached_one_served(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        forward = f"/v1/comparisons?run_a={a.run_id}&run_b={better}"
        backward = f"/v1/comparisons?run_a={better}&run_b={a.run_id}"
        api = world.state.api.model_copy(update={"comparison_concurrency": 1})
        with app_like(world, api=api) as (client, state):
            cached = client.get(forward, headers=a.headers)
            assert cached.status_code == 200, cached.text
            with state.expensive_reads.slots.take("comparison"):  # one computation running
                busy = client.get(backward, headers=a.headers)
                again = client.get(forward, headers=a.headers)
            later = client.get(backward, headers=a.headers)
        assert busy.status_code == 503, busy.text
        assert busy.json()["type"] == "/problems/busy"
        assert busy.headers["retry-after"] == "5"
        assert (again.status_code, again.content) == (200, cached.content)
        assert later.status_code == 200
        assert (_computed(state), _refused(state, "busy")) == (2, 1)


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


@pytest.mark.parametrize("world", ["postgresql"], indirect=True)
class TestRedisFaults:
    """Finding 2 on a private redis-server: out of memory, stopped or frozen, the API keeps
    answering tenants (cache, rate limits and single flight fail open, logged and counted)
    while signed provider requests fail closed with 503 (their nonces cannot be checked)."""

    @pytest.mark.parametrize("fault", FAULTS)
    def test_reads_fail_open_and_signed_requests_fail_closed(
        self,
        world: World,
        platform: sessionmaker[Session],
        private_redis: PrivateRedis,
        fault: str,
    ) -> None:
        a = world.tenant_a
        better = perfect_run(platform, world, a)
        reads = [
            f"/v1/evaluations/{a.run_id}",
            "/v1/evaluations",
            f"/v1/comparisons?run_a={a.run_id}&run_b={better}",
        ]
        # The production timeout of Redis calls: what bounds a request while Redis is frozen.
        with app_like(world, redis_url=private_redis.url, redis_timeout_seconds=0.25) as (
            client,
            state,
        ):
            assert signed(world, "GET", f"{P}/tenants", client=client).status_code == 200
            with capture_logs() as logs, private_redis.fault(fault):
                answered = [_timed(lambda u=u: client.get(u, headers=a.headers)) for u in reads]
                refused, _ = _timed(lambda: signed(world, "GET", f"{P}/tenants", client=client))
            mended = signed(world, "GET", f"{P}/tenants", client=client)
        assert [r.status_code for r, _ in answered] == [200, 200, 200], answered[0][0].text
        # No request hangs on a frozen Redis (an unbounded socket read would wait forever).
        assert max(seconds for _, seconds in answered) < 10
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == "/problems/replay-protection-unavailable"
        assert refused.headers["retry-after"] == "5"
        assert mended.status_code == 200, mended.text
        events = {entry["event"] for entry in logs}
        assert {
            "cache.unavailable",
            "rate_limit.redis_unavailable",
            "flight.unavailable",
            "nonce.redis_unavailable",
        } <= events, events
        assert state.metrics.cache_counters.snapshot()["errors"] >= 1
        assert state.metrics.rate_limit_counters.snapshot()["errors"] >= 1
        assert state.metrics.flight_counters.snapshot()["errors"] >= 1
        nonces = state.metrics.registry.get_sample_value(
            "streamflow_redis_errors_total", {"component": "nonces"}
        )
        assert nonces == 1


class TestWhatErrorsShow:
    """Finding 13: logs carry no statement parameters or stored values; error bodies no server
    paths."""

    def test_a_database_error_is_logged_without_its_values(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        """A unique violation logged as the API logs it (SQLAlchemy would print the parameters,
        PostgreSQL quotes the key in DETAIL): no value appears.

        Under row-level security PostgreSQL leaves the DETAIL out itself, so on PostgreSQL a
        second violation is in a table without it (a temporary one), as an owner's would be."""
        secret = f"prediction text {uuid.uuid4().hex}"
        stream = io.StringIO()
        root = logging.getLogger()
        saved_handlers, saved_level = root.handlers[:], root.level
        saved_config = structlog.get_config()
        configure_logging(level="INFO", stream=stream)
        try:
            with platform() as session:
                for _ in range(2):
                    session.add(
                        IdempotencyRecord(
                            scope="logs",
                            key=secret[-40:],
                            request_hash="0" * 64,
                            status_code=0,
                            response_body=secret,
                        )
                    )
                try:
                    session.flush()
                except IntegrityError:
                    structlog.get_logger().exception("request.failed")
                else:
                    pytest.fail("the duplicate was stored")
                session.rollback()
            if world.backend == "postgresql":
                with platform() as session, session.begin():
                    session.execute(text("CREATE TEMPORARY TABLE quoted (k text PRIMARY KEY)"))
                    try:
                        session.execute(text("INSERT INTO quoted VALUES (:k), (:k)"), {"k": secret})
                    except IntegrityError:
                        structlog.get_logger().exception("request.failed")
                    else:
                        pytest.fail("the duplicate was stored")
        finally:
            root.handlers, root.level = saved_handlers, saved_level
            structlog.configure(**saved_config)
        lines = stream.getvalue().splitlines()
        assert len(lines) == (2 if world.backend == "postgresql" else 1)
        for line in lines:
            assert json.loads(line)["event"] == "request.failed"
            assert "IntegrityError" in json.loads(line)["exception"]
            assert secret[-40:] not in line
            assert secret[-12:] not in line
        assert "INSERT INTO idempotency_records" in json.loads(lines[0])["exception"]
        if world.backend == "postgresql":
            quoted = json.loads(lines[1])["exception"]
            assert "INSERT INTO quoted" in quoted
            assert "DETAIL: (hidden: it quotes stored values)" in quoted

    @pytest.mark.parametrize("world", ["sqlite"], indirect=True)  # files, not the database
    @pytest.mark.usefixtures("summarizer")
    def test_error_bodies_never_show_a_server_path(self, world: World) -> None:
        """A golden dataset file gone from the store: the provider learns which one, not where
        the server keeps it; a run failed by a missing file says the file's name only."""
        for stored in world.state.storage.golden_dataset_dir.rglob("*.parquet"):
            stored.unlink()
        body = {
            "organization": "tenant-a",
            "model": "notes-summarizer@1",
            "dataset": "tenant-a-notes",
        }
        response = signed(world, "POST", f"{P}/evaluations", json=body)
        assert response.status_code == 404, response.text
        assert "missing from the golden dataset store" in response.json()["detail"]
        assert str(world.state.storage.home) not in response.text
        assert str(world.state.storage.home.parent) not in response.text
        missing = FileNotFoundError(2, "No such file or directory", "/srv/streamflow/x/v1.parquet")
        assert (
            failure_reason(missing) == "FileNotFoundError: No such file or directory (v1.parquet)"
        )
