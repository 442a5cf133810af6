"""API fixtures: the app on PostgreSQL (with row-level security) and SQLite, real Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import build_state, create_app
from api.provider_client import ProviderSigningAuth
from api.settings import ApiSettings, ProviderAuthSettings
from api.state import ApiState
from models.cache.settings import CacheSettings
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.settings import StorageSettings
from pipelines.access.service import SCOPES, issue_api_key
from pipelines.evaluation import service as evaluation_service
from pipelines.golden_datasets.service import import_golden_dataset
from pipelines.organizations import ensure_organization
from tests.conftest import fresh_database_url

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

    def provider_auth(self, key_id: str = "key-2026a") -> ProviderSigningAuth:
        return ProviderSigningAuth(key_id, PROVIDER_KEYS[key_id])


def _completed_run(state: ApiState, org_id: uuid.UUID, dataset: str, tmp: Path) -> uuid.UUID:
    """A finished evaluation made through the services (the flow is tested in tests/flows)."""
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
        row["id"]: (row["expected"] if int(row["id"][1:]) % 3 else "checked unit") for row in rows
    }
    with transaction(state.sessions) as session:
        import_golden_dataset(
            session,
            organization_id=org_id,
            actor="test",
            name=dataset,
            task="text_generation",
            data="\n".join(json.dumps(r) for r in rows).encode(),
            filename="g.jsonl",
            storage_dir=state.storage.golden_dataset_dir,
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
            storage_dir=state.storage.golden_dataset_dir,
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


@pytest.fixture(params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    """The app on a fresh database of each backend with real Redis under a per-test prefix."""
    prefix = f"sftest:{uuid.uuid4().hex[:10]}:"
    monkeypatch.setenv("STREAMFLOW_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with fresh_database_url(request.param, tmp_path) as url:
        storage = StorageSettings(home=tmp_path / "home", database_url=url)
        # Seed as the platform (system scope); the app itself connects with the RLS role.
        seed_engine = make_engine(storage.resolved_database_url())
        launcher = RecordingLauncher()
        state = build_state(
            api=ApiSettings(
                database_app_role="streamflow_app" if request.param == "postgresql" else None,
                rate_limit_per_minute=10_000,
                rate_limits_per_minute={},
                rate_limit_per_address_per_minute=10_000,
            ),
            storage=storage,
            cache_settings=CacheSettings(
                redis_url=REDIS_URL, key_prefix=prefix, redis_socket_timeout_seconds=5
            ),
            provider_auth=ProviderAuthSettings(provider_keys=PROVIDER_KEYS),
            launcher=launcher,
        )
        seed = make_sessionmaker(seed_engine)
        tenants = []
        with transaction(seed) as session:
            ensure_organization(
                session, slug="provider", name="Provider", kind="provider", actor="test"
            )
            for slug in ("tenant-a", "tenant-b"):
                org, _ = ensure_organization(
                    session, slug=slug, name=slug, kind="tenant", actor="test"
                )
                issued = issue_api_key(
                    session, organization_id=org.id, name="test key", scopes=SCOPES, actor="test"
                )
                tenants.append((slug, org.id, issued.plaintext, issued.key.id))
        seeded_state = _seed_state(state, seed)
        built = []
        for slug, org_id, plaintext, key_id in tenants:
            run_id = _completed_run(seeded_state, org_id, f"{slug}-notes", tmp_path)
            built.append(
                Tenant(
                    slug,
                    org_id,
                    plaintext,
                    key_id,
                    run_id,
                    f"{slug}-notes",
                    {"Authorization": f"Bearer {plaintext}"},
                )
            )
        app = create_app(state)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield World(client, state, launcher, built[0], built[1], request.param, prefix)
        seed_engine.dispose()
        state.engine.dispose()
        _drop_redis_prefix(prefix)


def _seed_state(state: ApiState, seed_sessions: Any) -> ApiState:
    """The same state with platform-scoped sessions, for seeding rows RLS would hide."""
    from dataclasses import replace

    return replace(state, sessions=seed_sessions)


def _drop_redis_prefix(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
