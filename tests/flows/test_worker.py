"""`streamflow worker` serves the deployments; launches go through it while it runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.deployments import EVALUATION_DEPLOYMENT, served_by_a_worker
from flows.launcher import LocalLauncher
from flows.orchestrator import ServerRecord
from flows.runtime import Runtime
from models.db.tables import EvaluationRun
from tests.conftest import TemplateCache, migrated_database_url
from tests.flows.conftest import _runtime_on, import_golden_rows

STREAMFLOW = str(Path(sys.executable).with_name("streamflow"))


@pytest.fixture
def sqlite_streamflow(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlflow_store: str,
    migrated_templates: TemplateCache,
) -> Iterator[Runtime]:
    monkeypatch.setenv("STREAMFLOW_MLFLOW_TRACKING_URI", mlflow_store)
    with migrated_database_url(migrated_templates, "sqlite", tmp_path) as url:
        yield from _runtime_on(url, tmp_path, monkeypatch)


@pytest.fixture
def worker(sqlite_streamflow: Runtime, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `streamflow worker` process on this test's home and database (output in worker.log).

    It looks for launched runs every second rather than Prefect's default ten.
    """
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(
            [STREAMFLOW, "--log-level", "INFO", "worker"],
            env={**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
class TestWorker:
    def test_a_launch_runs_on_the_served_deployment_not_in_process(
        self,
        sqlite_streamflow: Runtime,
        worker: subprocess.Popen[bytes],
        orchestrator: ServerRecord,
        tmp_path: Path,
    ) -> None:
        """While a worker serves the evaluation deployment, the local launcher hands it the run;
        the run completes with its flow run belonging to that deployment."""
        rows = [{"id": f"n{i}", "input": f"note {i}", "expected": f"fixed {i}"} for i in range(8)]
        import_golden_rows(sqlite_streamflow, "worker-notes", rows)
        predictions = tmp_path / "predictions.jsonl"
        predictions.write_text(
            "\n".join(json.dumps({"id": r["id"], "prediction": r["expected"]}) for r in rows)
        )
        _wait_for(
            lambda: served_by_a_worker(EVALUATION_DEPLOYMENT, orchestrator.api_url),
            180,
            "the worker to serve the deployment",
        )
        launcher = LocalLauncher()
        launcher.launch(
            {
                "organization": "provider",
                "actor": "test",
                "dataset": "worker-notes",
                "predictions_path": str(predictions),
                "agent_type": "summarizer",
            }
        )
        assert launcher.thread.futures == []

        def completed() -> EvaluationRun | None:
            with sqlite_streamflow.sessions() as session:
                found = session.query(EvaluationRun).one_or_none()
                return found if found is not None and found.status == "completed" else None

        try:
            _wait_for(lambda: completed() is not None, 240, "the run to complete")
        except AssertionError:
            print((tmp_path / "worker.log").read_text()[-5000:])
            raise
        run = completed()
        assert run is not None
        assert run.flow_run_id is not None

        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(run.flow_run_id)
            deployment = client.read_deployment_by_name(EVALUATION_DEPLOYMENT)
        assert flow_run.deployment_id == deployment.id
