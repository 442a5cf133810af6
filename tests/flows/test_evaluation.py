"""The evaluation flow end to end on PostgreSQL and SQLite, with a real MLflow store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import mlflow
import pytest
from sqlalchemy import func, select

from flows.evaluation import evaluate_model_version
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.tables import AuditLogEntry, EvaluationExampleScore, EvaluationMetric, EvaluationRun
from pipelines.errors import InvalidInput
from pipelines.evaluation import service
from pipelines.golden_datasets.service import import_golden_dataset
from pipelines.organizations import ensure_organization, get_organization

NOTES = [
    (
        f"n{i:03d}",
        f"Technician arrived at 9:{i % 60:02d}. Found a leaking valve number {i}. "
        f"Replaced the valve and tested the line. Customer signed off.",
        f"Replaced leaking valve {i} and tested the line.",
        ["hvac", "plumbing", "electrical"][i % 3],
    )
    for i in range(30)
]


class FirstSentence:
    """A tiny extractive summariser for tests."""

    def predict(self, texts: list[str]) -> list[str]:
        return [text.split(". ")[0] + "." for text in texts]


class FailsOnMarker:
    """Fails while a marker file exists, to stand in for a run killed half way."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def predict(self, texts: list[str]) -> list[str]:
        if Path(self.marker).exists() and any("number 25" in t for t in texts):
            raise RuntimeError("worker lost")
        return [text.split(". ")[1] + "." for text in texts]


def _setup(rt: Runtime, tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "input": x, "expected": y, "slice": s}) for i, x, y, s in NOTES]
    with transaction(rt.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="test"
        )
        import_golden_dataset(
            session,
            organization_id=provider.id,
            actor="test",
            name="notes",
            task="text_generation",
            data="\n".join(lines).encode(),
            filename="notes.jsonl",
            storage_dir=rt.storage.golden_dataset_dir,
        )


def _predictions_file(tmp_path: Path, name: str, transform) -> Path:
    path = tmp_path / name
    path.write_text(
        "\n".join(json.dumps({"id": i, "prediction": transform(x, y)}) for i, x, y, _ in NOTES)
    )
    return path


def _count(rt: Runtime, table, **where) -> int:
    with rt.sessions() as session:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(getattr(table, column) == value)
        return session.scalar(query) or 0


class TestEvaluateModelVersion:
    def test_predictions_file_run_stores_scores_metrics_and_mlflow_run(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """A predictions-file run stores one score per example, metrics with CIs, an MLflow run."""
        _setup(streamflow, tmp_path)
        path = _predictions_file(tmp_path, "preds.jsonl", lambda x, y: y if "1" in x[:40] else x)
        outcome = evaluate_model_version(
            organization="provider",
            actor="test",
            dataset="notes",
            predictions_path=str(path),
            batch_size=7,
        )
        assert not outcome.reused
        with streamflow.sessions() as session:
            run = session.get(EvaluationRun, uuid.UUID(outcome.run_id))
            assert run is not None
            assert run.status == "completed"
            assert run.batch_count == 5
            metrics = {
                (m.slice, m.name): m
                for m in session.scalars(
                    select(EvaluationMetric).where(EvaluationMetric.run_id == run.id)
                )
            }
        assert _count(streamflow, EvaluationExampleScore, run_id=run.id) == len(NOTES)
        overall = metrics[("", "rougeL_f")]
        assert overall.n == len(NOTES)
        assert overall.ci_low is not None
        assert overall.ci_high is not None
        assert overall.ci_low <= overall.value <= overall.ci_high
        assert ("", "quality_score") in metrics
        assert {s for s, _ in metrics} == {"", "hvac", "plumbing", "electrical"}
        tracked = mlflow.get_run(run.mlflow_run_id)
        assert tracked.data.metrics["rougeL_f"] == pytest.approx(overall.value, abs=1e-12)
        assert tracked.data.tags["golden_dataset.sha256"]

    def test_same_inputs_return_the_finished_run_and_force_recomputes(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """The same subject, dataset version and config reuse the run; --force makes a new one."""
        _setup(streamflow, tmp_path)
        path = _predictions_file(tmp_path, "preds.jsonl", lambda x, y: y)
        first = evaluate_model_version(
            organization="provider", actor="test", dataset="notes", predictions_path=str(path)
        )
        again = evaluate_model_version(
            organization="provider", actor="test", dataset="notes@1", predictions_path=str(path)
        )
        forced = evaluate_model_version(
            organization="provider",
            actor="test",
            dataset="notes",
            predictions_path=str(path),
            force=True,
        )
        assert again.reused
        assert again.run_id == first.run_id
        assert not forced.reused
        assert forced.run_id != first.run_id
        assert _count(streamflow, EvaluationRun) == 2

    def test_run_killed_half_way_resumes_with_exactly_one_score_per_example(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """A run that dies after some batches resumes from them and ends with one score each."""
        _setup(streamflow, tmp_path)
        marker = tmp_path / "fail"
        marker.write_text("x")
        ref = register_agent(
            f"flaky-{uuid.uuid4().hex[:6]}",
            BuiltAgent(FailsOnMarker(str(marker)), "summarizer", "text_generation"),
            actor="test",
        )
        with pytest.raises(RuntimeError, match="worker lost"):
            evaluate_model_version(
                organization="provider",
                actor="test",
                dataset="notes",
                model=f"{ref.name}@{ref.version}",
                batch_size=10,
            )
        with streamflow.sessions() as session:
            run = session.scalars(select(EvaluationRun)).one()
            assert run.status == "failed"
        stored_before = _count(streamflow, EvaluationExampleScore, run_id=run.id)
        assert stored_before == 20
        marker.unlink()
        resumed = evaluate_model_version(
            organization="provider",
            actor="test",
            dataset="notes",
            model=f"{ref.name}@{ref.version}",
            batch_size=10,
        )
        assert resumed.resumed
        assert resumed.run_id == str(run.id)
        assert resumed.batches_scored == 1
        assert _count(streamflow, EvaluationExampleScore, run_id=run.id) == len(NOTES)
        with streamflow.sessions() as session:
            assert session.get(EvaluationRun, run.id).status == "completed"
            actions = set(session.scalars(select(AuditLogEntry.action)))
        assert {
            "evaluation_run.created",
            "evaluation_run.failed",
            "evaluation_run.completed",
            "model_version.registered",
        } <= actions

    def test_model_version_by_alias_and_paired_comparison(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """Champion and challenger evaluated by alias compare pairwise with CIs and McNemar."""
        _setup(streamflow, tmp_path)
        name = f"summ-{uuid.uuid4().hex[:6]}"
        register_agent(
            name,
            BuiltAgent(FirstSentence(), "summarizer", "text_generation"),
            alias="champion",
            actor="test",
        )
        register_agent(
            name,
            BuiltAgent(FailsOnMarker(str(tmp_path / "absent")), "summarizer", "text_generation"),
            alias="challenger",
            actor="test",
        )
        a = evaluate_model_version(
            organization="provider", actor="test", dataset="notes", model=f"{name}@champion"
        )
        b = evaluate_model_version(
            organization="provider", actor="test", dataset="notes", model=f"{name}@challenger"
        )
        with streamflow.sessions() as session:
            org = get_organization(session, "provider")
            result = service.compare_runs(
                session, organization_id=org.id, run_a=a.run_id, run_b=b.run_id[:8]
            )
            assert result.run_a.model_alias == "champion"
        names = {row.name for row in result.comparison.overall}
        assert {"rougeL_f", "bleu", "chrf", "exact_match", "quality_score"} <= names
        rouge = next(row for row in result.comparison.overall if row.name == "rougeL_f")
        assert rouge.ci_low is not None
        assert rouge.ci_low <= rouge.difference <= rouge.ci_high
        assert result.comparison.mcnemar[0].metric == "exact_match"
        assert {row.slice for row in result.comparison.slices} == {"hvac", "plumbing", "electrical"}
        assert all(
            row.p_value_holm is None or row.p_value_holm >= (row.p_value or 0)
            for row in result.comparison.slices
        )

    def test_predictions_not_covering_the_dataset_are_rejected_before_anything_is_written(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """A predictions file missing ids fails with the ids named and writes no run."""
        _setup(streamflow, tmp_path)
        path = tmp_path / "partial.jsonl"
        path.write_text(json.dumps({"id": "n000", "prediction": "x"}))
        with pytest.raises(InvalidInput, match="no prediction"):
            evaluate_model_version(
                organization="provider", actor="test", dataset="notes", predictions_path=str(path)
            )
        assert _count(streamflow, EvaluationRun) == 0
