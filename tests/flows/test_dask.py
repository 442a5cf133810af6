"""Batch tasks on a real Dask cluster (prefect-dask) score exactly as the in-process run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from sqlalchemy import select

from flows.evaluation import run_evaluation
from flows.runtime import Runtime
from models.db.tables import EvaluationExampleScore, EvaluationMetric
from tests.flows.conftest import import_golden_rows

NOTES = [
    (
        f"n{i:03d}",
        f"Technician arrived at 9:{i % 60:02d}. Found a worn belt on unit {i}. Replaced it.",
        f"Replaced worn belt on unit {i}.",
        ["hvac", "plumbing", "electrical"][i % 3],
    )
    for i in range(40)
]


def _setup(rt: Runtime, tmp_path: Path) -> Path:
    rows = [{"id": i, "input": x, "expected": y, "slice": s} for i, x, y, s in NOTES]
    import_golden_rows(rt, "notes", rows)
    path = tmp_path / "predictions.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"id": i, "prediction": x.split(". ")[1] if int(i[1:]) % 4 else y})
            for i, x, y, _ in NOTES
        )
    )
    return path


def _results(rt: Runtime, run_id: str) -> tuple[dict[str, dict], list[tuple]]:
    with rt.sessions() as session:
        scores = {
            row.example_id: row.scores
            for row in session.scalars(
                select(EvaluationExampleScore).where(EvaluationExampleScore.run_id == run_id)
            )
        }
        metrics = sorted(
            (m.slice, m.name, m.value, m.ci_low, m.ci_high, m.n)
            for m in session.scalars(
                select(EvaluationMetric).where(EvaluationMetric.run_id == run_id)
            )
        )
    return scores, metrics


def _worker_database_urls(address: str) -> set[str | None]:
    with Client(address) as client:
        found = client.run(lambda: os.environ.get("STREAMFLOW_DATABASE_URL"))
    return set(found.values())


@pytest.mark.slow
class TestDaskTaskRunner:
    # On PostgreSQL only: what is under test is where the tasks run, not the storage backend.
    @pytest.mark.parametrize("streamflow", ["postgresql"], indirect=True)
    def test_two_worker_processes_give_identical_scores_and_metrics(
        self, streamflow: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With STREAMFLOW_DASK_ADDRESS, batches run on the cluster's worker processes, which
        receive the flow's settings, and every score and metric equals the in-process run."""
        import uuid

        predictions = _setup(streamflow, tmp_path)
        in_process = run_evaluation(
            "provider",
            "test",
            dataset="notes",
            predictions_path=str(predictions),
            agent_type="summarizer",
            batch_size=9,
        )
        # The workers start with a database URL that is not the flow's: only the settings the
        # flow forwards let them store their batches in the right place.
        with LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"STREAMFLOW_DATABASE_URL": "sqlite:////nonexistent/elsewhere.db"},
        ) as cluster:
            assert _worker_database_urls(cluster.scheduler_address) == {
                "sqlite:////nonexistent/elsewhere.db"
            }
            monkeypatch.setenv("STREAMFLOW_DASK_ADDRESS", cluster.scheduler_address)
            on_dask = run_evaluation(
                "provider",
                "test",
                dataset="notes",
                predictions_path=str(predictions),
                agent_type="summarizer",
                batch_size=9,
                force=True,
            )
            assert _worker_database_urls(cluster.scheduler_address) == {
                os.environ["STREAMFLOW_DATABASE_URL"]
            }
        assert on_dask.run_id != in_process.run_id
        assert on_dask.batches_scored == 5
        scores_here, metrics_here = _results(streamflow, uuid.UUID(in_process.run_id))
        scores_dask, metrics_dask = _results(streamflow, uuid.UUID(on_dask.run_id))
        assert len(scores_dask) == len(NOTES)
        assert scores_dask == scores_here
        assert metrics_dask == metrics_here
