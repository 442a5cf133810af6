"""API fixtures: the app on PostgreSQL (with row-level security) and SQLite, real Redis."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.app import build_state, create_app
from api.provider_client import ProviderSigningAuth
from api.settings import ApiSettings, ProviderAuthSettings
from api.state import ApiState
from models.cache.settings import CacheSettings
from models.db.engine import make_sessionmaker, transaction
from models.settings import StorageSettings
from pipelines.access.service import SCOPES, issue_api_key
from pipelines.evaluation import service as evaluation_service
from pipelines.golden_datasets.service import import_golden_dataset
from pipelines.organizations import ensure_organization
from tests.api.test_route_coverage import ATTRIBUTE
from tests.conftest import (
    PLATFORM_LOGIN,
    TENANT_LOGIN,
    DatabaseTemplate,
    as_login,
    build_template,
    copy_sqlite,
)
from tests.redis_server import PrivateRedis

REDIS_URL = "redis://127.0.0.1:6379/0"
PROVIDER_KEYS = {"key-2026a": "a" * 40, "key-2026b": "b" * 48}


class RecordingLauncher:
    """Records flow launches; evaluations started through the API run in tests/flows."""

    def __init__(self) -> None:
        self.launched: list[dict[str, Any]] = []

    def launch(self, parameters: dict[str, Any]) -> None:
        self.launched.append(parameters)

    def shutdown(self) -> None:
        return None


@dataclass
class Tenant:
    """A seeded tenant: its slug, id, an all-scopes API key and one completed evaluation run."""

    slug: str
    organization_id: uuid.UUID
    api_key: str
    api_key_id: uuid.UUID
    run_id: uuid.UUID
    dataset: str
    headers: dict[str, str] = field(default_factory=dict)


class RequestedRoutes:
    """ASGI middleware noting `METHOD /path template` of every request the app routed."""

    def __init__(self, app: Any, seen: set[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            if scope["type"] == "http" and route is not None:
                self.seen.add(f"{scope['method']} {route.path}")


@dataclass
class World:
    """The app under test with two tenants and a signing provider."""

    client: TestClient
    state: ApiState
    launcher: RecordingLauncher
    tenant_a: Tenant
    tenant_b: Tenant
    backend: str
    redis_prefix: str
    requested: set[str] = field(default_factory=set)

    def provider_auth(self, key_id: str = "key-2026a") -> ProviderSigningAuth:
        return ProviderSigningAuth(key_id, PROVIDER_KEYS[key_id])


def completed_run(
    sessions: sessionmaker[Session],
    storage_dir: Path,
    org_id: uuid.UUID,
    dataset: str,
    *,
    wrong_every: int = 3,
) -> uuid.UUID:
    """A finished evaluation made through the services (the flow is tested in tests/flows).

    Every `wrong_every`-th example is predicted wrong; the rest repeat the reference.
    """
    rows = [
        {
            "id": f"e{i}",
            "input": f"note {i}",
            "expected": f"replaced valve {i} and tested",
            "slice": "hvac" if i % 2 else "plumbing",
        }
        for i in range(12)
    ]
    predictions = {
        row["id"]: (row["expected"] if int(row["id"][1:]) % wrong_every else "checked unit")
        for row in rows
    }
    with transaction(sessions) as session:
        import_golden_dataset(
            session,
            organization_id=org_id,
            actor="test",
            name=dataset,
            task="text_generation",
            data="\n".join(json.dumps(r) for r in rows).encode(),
            filename="g.jsonl",
            storage_dir=storage_dir,
        )
        prepared = evaluation_service.prepare_evaluation(
            session,
            organization_id=org_id,
            actor="test",
            request=evaluation_service.EvaluationRequest(
                dataset=dataset,
                agent_type="summarizer",
                predictions=evaluation_service.PredictionsFile(
                    "p.jsonl", predictions, uuid.uuid4().hex
                ),
                options=evaluation_service.ScoringOptions(n_resamples=100),
            ),
            storage_dir=storage_dir,
            flow_run_id=None,
        )
        ordered = [predictions[i] for i in prepared.examples["id"]]
        scores = evaluation_service.score_batch(
            task="text_generation",
            examples=prepared.examples,
            predictions=ordered,
            options=evaluation_service.ScoringOptions(n_resamples=100),
        )
        evaluation_service.store_batch(
            session,
            run_id=prepared.run_id,
            batch_index=0,
            examples=prepared.examples,
            predictions=ordered,
            scores=scores,
        )
        metrics = evaluation_service.aggregate_run(
            session, organization_id=org_id, run_id=prepared.run_id
        )
        evaluation_service.complete_run(
            session,
            organization_id=org_id,
            run_id=prepared.run_id,
            actor="test",
            metrics=metrics,
            mlflow_run_id=None,
        )
    return prepared.run_id


@dataclass
class SeededTemplate:
    """A template database holding the provider and two tenants, and the home it refers to."""

    database: DatabaseTemplate
    home: Path
    tenants: list[Tenant]


def _seed_template(backend: str, folder: Path) -> SeededTemplate:
    """Seed as the platform (system scope): the provider, two tenants with keys and a run each."""
    home = folder / "home"
    storage_dir = StorageSettings(home=home).golden_dataset_dir
    tenants: list[Tenant] = []

    def seed(engine: Engine) -> None:
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            ensure_organization(
                session, slug="provider", name="Provider", kind="provider", actor="test"
            )
            issued_keys = []
            for slug in ("tenant-a", "tenant-b"):
                org, _ = ensure_organization(
                    session, slug=slug, name=slug, kind="tenant", actor="test"
                )
                issued = issue_api_key(
                    session, organization_id=org.id, name="test key", scopes=SCOPES, actor="test"
                )
                issued_keys.append((slug, org.id, issued.plaintext, issued.key.id))
        for slug, org_id, plaintext, key_id in issued_keys:
            dataset = f"{slug}-notes"
            run_id = completed_run(sessions, storage_dir, org_id, dataset)
            tenants.append(
                Tenant(slug, org_id, plaintext, key_id, run_id, dataset, _bearer(plaintext))
            )

    database = build_template(backend, folder, seed)
    return SeededTemplate(database, home, tenants)


def _bearer(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


def _mlflow_store(path: Path) -> Path:
    """An empty MLflow tracking and registry store: MLflow's own migrations take seconds."""
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return path


class SeededTemplates:
    """Seeded templates built on first use, one per backend, dropped at the end of the session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built: dict[str, SeededTemplate] = {}
        self._mlflow: Path | None = None

    def mlflow(self) -> Path:
        """The empty MLflow store each test copies."""
        if self._mlflow is None:
            self._mlflow = _mlflow_store(self.folder / "mlflow.db")
        return self._mlflow

    def get(self, backend: str) -> SeededTemplate:
        if backend not in self.built:
            folder = self.folder / backend
            folder.mkdir(parents=True)
            self.built[backend] = _seed_template(backend, folder)
        return self.built[backend]

    def drop_all(self) -> None:
        for template in self.built.values():
            template.database.drop()
        self.built.clear()


@pytest.fixture(scope="session")
def seeded_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededTemplates]:
    """The seeded world's databases, built once per session or xdist worker."""
    templates = SeededTemplates(tmp_path_factory.mktemp("seeded"))
    yield templates
    templates.drop_all()


@contextmanager
def open_world(backend: str, folder: Path, seeded_templates: SeededTemplates) -> Iterator[World]:
    """The app on its own copy (in `folder`) of the seeded database of `backend`, with its own
    MLflow store and real Redis under a prefix of its own."""
    prefix = f"sftest:{uuid.uuid4().hex[:10]}:"
    copy_sqlite(seeded_templates.mlflow(), folder / "mlflow.db")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("STREAMFLOW_MLFLOW_TRACKING_URI", f"sqlite:///{folder / 'mlflow.db'}")
        template = seeded_templates.get(backend)
        home = folder / "home"
        shutil.copytree(template.home, home)
        with template.database.copy(folder) as url:
            yield from _world_on(backend, url, home, template, prefix)


def _world_on(
    backend: str, url: str, home: Path, template: SeededTemplate, prefix: str
) -> Iterator[World]:
    """The app on the database at `url`, its TestClient running, closed afterwards."""
    launcher = RecordingLauncher()
    # On PostgreSQL the API logs in as production's do: the platform's login for provider
    # requests, a tenant login (row-level security per API key) for `/v1`.
    postgres = backend == "postgresql"
    state = build_state(
        api=ApiSettings(
            database_tenant_url=as_login(url, TENANT_LOGIN) if postgres else None,
            rate_limit_per_minute=10_000,
            rate_limits_per_minute={},
            rate_limit_per_address_per_minute=10_000,
        ),
        storage=StorageSettings(
            home=home, database_url=as_login(url, PLATFORM_LOGIN) if postgres else url
        ),
        cache_settings=CacheSettings(
            redis_url=REDIS_URL, key_prefix=prefix, redis_socket_timeout_seconds=5
        ),
        provider_auth=ProviderAuthSettings(provider_keys=PROVIDER_KEYS),
        launcher=launcher,
    )
    tenant_a, tenant_b = (replace(t, headers=dict(t.headers)) for t in template.tenants)
    requested: set[str] = set()
    app = create_app(state)
    app.add_middleware(RequestedRoutes, seen=requested)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(client, state, launcher, tenant_a, tenant_b, backend, prefix, requested)
    finally:
        state.tenant_engine.dispose()
        state.engine.dispose()
        _drop_redis_prefix(prefix)


@pytest.fixture(params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, seeded_templates: SeededTemplates
) -> Iterator[World]:
    """The app on its own copy of the seeded database of each backend, real Redis per prefix."""
    with open_world(request.param, tmp_path, seeded_templates) as opened:
        yield opened


@pytest.fixture(scope="session")
def private_redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    """A `redis-server` of this session alone, on a free port, for fault injection."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis(private_redis_server: PrivateRedis) -> PrivateRedis:
    """The private Redis, healthy and empty."""
    private_redis_server.reset()
    return private_redis_server


@pytest.fixture
def platform(world: World) -> sessionmaker[Session]:
    """Sessions that act for the whole platform (the platform's login), to seed and inspect."""
    return world.state.sessions


def _drop_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def claims_are_exercised(request: pytest.FixtureRequest) -> Iterator[None]:
    """A coverage claim (`covers`) counts only if the test really requested the route.

    Checked for tests on `world`; a test parametrized over `route` claims that one route.
    """
    if "world" not in request.fixturenames:
        yield
        return
    world: World = request.getfixturevalue("world")
    yield
    if getattr(request.node, "rep_call_failed", True):
        return
    claimed = {claim.route for claim in getattr(request.function, ATTRIBUTE, ())}
    params = getattr(request.node, "callspec", None)
    if params is not None and "route" in params.params:
        claimed &= {params.params["route"]}
    assert sorted(claimed - world.requested) == [], "claimed by covers() but never requested"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call":
        item.rep_call_failed = report.failed  # type: ignore[attr-defined]
    return report
