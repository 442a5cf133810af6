"""An evaluation started through the provider API runs the real flow in the background worker."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import redis
from fastapi.testclient import TestClient

from api.app import build_state, create_app
from api.provider_client import ProviderSigningAuth
from api.settings import ApiSettings, ProviderAuthSettings
from flows.launcher import BackgroundThreadLauncher
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.cache.keys import run_detail_key
from models.cache.settings import CacheSettings
from models.db.engine import transaction
from pipelines.access.service import issue_api_key
from pipelines.golden_datasets.service import import_golden_dataset
from pipelines.organizations import ensure_organization
from tests.conftest import TENANT_LOGIN, as_login

SECRET = "s" * 40


class Echo:
    """Answers with the input, so every example scores exactly."""

    def predict(self, texts: list[str]) -> list[str]:
        return list(texts)


class TestEvaluationStartedThroughTheApi:
    def test_run_is_pollable_until_completed_and_then_served_warm_from_the_cache(
        self, streamflow: Runtime, tmp_path: Path, monkeypatch
    ) -> None:
        """POST starts the flow; polling shows progress to `completed`; the cache was warmed."""
        prefix = f"sftest:{uuid.uuid4().hex[:8]}:"
        monkeypatch.setenv("STREAMFLOW_REDIS_URL", "redis://127.0.0.1:6379/0")
        monkeypatch.setenv("STREAMFLOW_KEY_PREFIX", prefix)
        rows = [
            {"id": f"x{i}", "input": f"fixed leak {i}", "expected": f"fixed leak {i}"}
            for i in range(12)
        ]
        with transaction(streamflow.sessions) as session:
            ensure_organization(session, slug="provider", name="P", kind="provider", actor="test")
            tenant, _ = ensure_organization(
                session, slug="tenant-x", name="X", kind="tenant", actor="test"
            )
            key = issue_api_key(
                session, organization_id=tenant.id, name="k", scopes=["results:read"], actor="test"
            )
            import_golden_dataset(
                session,
                organization_id=tenant.id,
                actor="test",
                name="tenant-notes",
                task="text_generation",
                data="\n".join(json.dumps(r) for r in rows).encode(),
                filename="n.jsonl",
                storage_dir=streamflow.storage.golden_dataset_dir,
            )
        model = f"echo-{uuid.uuid4().hex[:6]}"
        register_agent(
            model,
            BuiltAgent(Echo(), "summarizer", "text_generation"),
            alias="champion",
            actor="test",
        )
        launcher = BackgroundThreadLauncher()
        url = streamflow.storage.resolved_database_url()
        postgres = streamflow.engine.dialect.name == "postgresql"
        state = build_state(
            api=ApiSettings(database_tenant_url=as_login(url, TENANT_LOGIN) if postgres else None),
            storage=streamflow.storage,
            cache_settings=CacheSettings(redis_url="redis://127.0.0.1:6379/0", key_prefix=prefix),
            provider_auth=ProviderAuthSettings(provider_keys={"ops": SECRET}),
            launcher=launcher,
        )
        try:
            with TestClient(create_app(state), raise_server_exceptions=False) as client:
                started = client.post(
                    "/provider/v1/evaluations",
                    json={
                        "organization": "tenant-x",
                        "model": f"{model}@champion",
                        "dataset": "tenant-notes",
                    },
                    auth=ProviderSigningAuth("ops", SECRET),
                )
                assert started.status_code == 202, started.text
                run_id = started.json()["run_id"]
                headers = {"Authorization": f"Bearer {key.plaintext}"}
                statuses = []
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    polled = client.get(f"/v1/evaluations/{run_id}", headers=headers)
                    assert polled.status_code == 200, polled.text
                    statuses.append(polled.json()["status"])
                    if statuses[-1] in ("completed", "failed"):
                        break
                    time.sleep(0.5)
                launcher.wait(timeout=60)
                assert statuses[-1] == "completed", statuses
                assert set(statuses) <= {"pending", "running", "completed"}, statuses
                detail = polled.json()
                exact = next(m for m in detail["metrics"] if m["name"] == "exact_match")
                assert exact["value"] == 1.0
                assert detail["progress"] == {"batches_done": 1, "batches_total": 1}
        finally:
            state.tenant_engine.dispose()
            state.engine.dispose()
        store = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        try:
            cached = store.get(f"{prefix}cache:k:{run_detail_key(tenant.id, run_id)}")
            assert cached is not None
            assert json.loads(cached)["status"] == "completed"
            for stale in store.scan_iter(match=f"{prefix}*"):
                store.delete(stale)
        finally:
            store.close()


class FailingLauncher:
    """A launcher whose orchestrator cannot be reached."""

    def launch(self, parameters: dict) -> None:
        raise RuntimeError(
            "Timed out while attempting to connect to ephemeral Prefect API server\n"
            "Traceback (most recent call last):\n  File ..."
        )

    def shutdown(self) -> None:
        return None


class TestLaunchFailure:
    def test_a_run_whose_flow_cannot_be_launched_is_failed_with_the_reason(
        self, streamflow: Runtime
    ) -> None:
        """The run answers 202 as `pending`; the failed launch then marks it `failed` with one
        line naming the cause and the fix, never a traceback."""
        rows = [{"id": f"x{i}", "input": f"leak {i}", "expected": f"leak {i}"} for i in range(3)]
        with transaction(streamflow.sessions) as session:
            ensure_organization(session, slug="provider", name="P", kind="provider", actor="test")
            tenant, _ = ensure_organization(
                session, slug="tenant-y", name="Y", kind="tenant", actor="test"
            )
            import_golden_dataset(
                session,
                organization_id=tenant.id,
                actor="test",
                name="notes",
                task="text_generation",
                data="\n".join(json.dumps(r) for r in rows).encode(),
                filename="n.jsonl",
                storage_dir=streamflow.storage.golden_dataset_dir,
            )
        model = f"echo-{uuid.uuid4().hex[:6]}"
        register_agent(model, BuiltAgent(Echo(), "summarizer", "text_generation"), actor="test")
        state = build_state(
            api=ApiSettings(),
            storage=streamflow.storage,
            cache_settings=CacheSettings(redis_url=None),
            provider_auth=ProviderAuthSettings(provider_keys={"ops": SECRET}),
            launcher=FailingLauncher(),
        )
        try:
            with TestClient(create_app(state), raise_server_exceptions=False) as client:
                started = client.post(
                    "/provider/v1/evaluations",
                    json={"organization": "tenant-y", "model": f"{model}@1", "dataset": "notes"},
                    auth=ProviderSigningAuth("ops", SECRET),
                )
                assert started.status_code == 202, started.text
                assert started.json()["status"] == "pending"
                polled = client.get(
                    started.json()["provider_status_url"],
                    auth=ProviderSigningAuth("ops", SECRET),
                )
        finally:
            state.engine.dispose()
        status = polled.json()
        assert status["status"] == "failed"
        assert status["error"] == (
            "the flow could not be started: RuntimeError: Timed out while attempting to connect "
            "to ephemeral Prefect API server; check that the orchestrator is reachable, then "
            "start the evaluation again"
        )
