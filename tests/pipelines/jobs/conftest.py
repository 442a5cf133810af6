"""Fixtures of the jobs tests: a migrated database per backend with a tenant, a webhook
receiver on 127.0.0.1 (one per session), a clock that moves only when told."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from flows.dispatcher import Dispatcher, JobSettings
from models.db.engine import make_engine, make_sessionmaker, transaction
from pipelines.organizations import ensure_organization
from pipelines.webhooks.service import DeliverySettings, register_endpoint
from tests.conftest import (
    BACKENDS,
    PLATFORM_LOGIN,
    TemplateCache,
    as_login,
    migrated_database_url,
)


class Clock:
    """Aware UTC time that moves only when told to."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook receiver on loopback. Paths choose its behaviour:

    `/ok/<k>` answers 204; `/flaky/<k>` 500 twice, then 200; `/gone/<k>` 410; `/hang/<k>`
    answers after `hang_seconds`; `/hang-once/<k>` hangs the first time, then 200;
    `/busy/<k>` 429 with `Retry-After: 120` once, then 200; `/slow/<k>` answers 204 after
    0.2 s, noting the most requests it had in flight at once (`peak`)."""

    port: int
    received: list[Received] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    hang_seconds: float = 2.0
    in_flight: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)

    def url(self, behaviour: str) -> str:
        return f"http://127.0.0.1:{self.port}/{behaviour}/{uuid.uuid4().hex}"

    def at(self, url: str) -> list[Received]:
        path = url.split(str(self.port), 1)[1]
        with self.lock:
            return [r for r in self.received if r.path == path]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with receiver.lock:
                receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                seen = receiver.counts[self.path] = receiver.counts.get(self.path, 0) + 1
            kind = self.path.split("/")[1]
            status, headers = 204, {}
            if kind == "flaky" and seen <= 2:
                status = 500
            elif kind == "gone":
                status = 410
            elif kind == "busy" and seen == 1:
                status, headers = 429, {"Retry-After": "120"}
            elif kind == "hang" or (kind == "hang-once" and seen == 1):
                time.sleep(60 if kind == "hang-once" else receiver.hang_seconds)
            elif kind == "slow":
                with receiver.lock:
                    now = receiver.in_flight[self.path] = receiver.in_flight.get(self.path, 0) + 1
                    receiver.peak[self.path] = max(receiver.peak.get(self.path, 0), now)
                time.sleep(0.2)
                with receiver.lock:
                    receiver.in_flight[self.path] -= 1
            elif kind == "redirect":
                status, headers = 302, {"Location": "http://127.0.0.1:1/elsewhere"}
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass

    return Handler


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(Receiver(0)))
    server.daemon_threads = True
    found = Receiver(server.server_address[1])
    server.RequestHandlerClass = _handler(found)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield found
    server.shutdown()
    server.server_close()


@dataclass
class JobWorld:
    """A migrated database of one backend with a tenant, and a dispatcher over it.

    On PostgreSQL `url` is the platform's login (a member of `streamflow_system`, under
    row-level security), as production's dispatcher logs in."""

    backend: str
    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    tenant_id: uuid.UUID
    clock: Clock
    receiver: Receiver

    def dispatcher(self, timeout_seconds: float = 1.5, **settings: Any) -> Dispatcher:
        # The default stays under the receiver's 2 s hang with room for a loaded machine's
        # slow answers (0.5 s once timed out a healthy answer in CI).
        return Dispatcher(
            sessions=self.sessions,
            settings=JobSettings(**{"lease_seconds": 60, **settings}),
            delivery=DeliverySettings(
                timeout_seconds=timeout_seconds, allow_private_addresses=True
            ),
            clock=self.clock,
            draw=lambda: 0.5,
        )

    def endpoint(self, behaviour: str, event_types: list[str] | None = None) -> tuple[str, str]:
        """(url, secret) of a new endpoint of the tenant on the receiver."""
        return self.endpoint_at(self.receiver.url(behaviour), event_types)

    def endpoint_at(self, url: str, event_types: list[str] | None = None) -> tuple[str, str]:
        with transaction(self.sessions) as session:
            view = register_endpoint(
                session,
                organization_id=self.tenant_id,
                url=url,
                event_types=event_types,
                description="test",
                actor="test",
                now=self.clock(),
            )
        assert view.secret is not None
        return url, view.secret


@pytest.fixture(params=BACKENDS)
def job_world(
    request: pytest.FixtureRequest,
    migrated_templates: TemplateCache,
    tmp_path: Path,
    receiver: Receiver,
) -> Iterator[JobWorld]:
    with migrated_database_url(migrated_templates, request.param, tmp_path) as owner_url:
        url = as_login(owner_url, PLATFORM_LOGIN) if request.param == "postgresql" else owner_url
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            tenant, _ = ensure_organization(
                session, slug="acme", name="Acme", kind="tenant", actor="test"
            )
        try:
            yield JobWorld(request.param, url, engine, sessions, tenant.id, Clock(), receiver)
        finally:
            engine.dispose()


def body_of(received: Received) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(received.body)
    return document
