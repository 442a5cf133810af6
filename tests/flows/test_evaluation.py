"""The evaluation flow end to end on PostgreSQL and SQLite, with a real MLflow store."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from sqlalchemy import func, select

from flows import evaluation
from flows.evaluation import evaluate_model_version, run_evaluation
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.db.tables import (
    AuditLogEntry,
    EvaluationComparison,
    EvaluationExampleScore,
    EvaluationMetric,
    EvaluationRun,
)
from models.registry import client as registry
from pipelines.errors import InvalidInput, NotFound
from pipelines.evaluation import service
from pipelines.evaluation.views import comparison_payload, stored_comparison
from pipelines.organizations import get_organization
from tests.flows.conftest import import_golden_rows

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
    rows = [{"id": i, "input": x, "expected": y, "slice": s} for i, x, y, s in NOTES]
    import_golden_rows(rt, "notes", rows)


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
        outcome = run_evaluation(
            "provider",
            "test",
            dataset="notes",
            predictions_path=str(path),
            agent_type="summarizer",
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
        assert tracked.data.tags["streamflow.organization"] == "provider"
        assert "tok:13a" in tracked.data.params["signature.sacrebleu.bleu"]
        assert tracked.data.params["signature.rouge_score"].startswith("rouge-score ")
        assert tracked.data.params["option.text_normalization"] == "nfc-newlines-strip"
        artifacts = {a.path for a in MlflowClient().list_artifacts(run.mlflow_run_id)}
        assert {"intervals.json", "metrics_by_slice.csv", "examples.parquet"} <= artifacts
        assert "confusion_matrix.json" not in artifacts  # text generation has none
        intervals = mlflow.artifacts.load_dict(f"{tracked.info.artifact_uri}/intervals.json")
        assert intervals["metrics"]["rougeL_f"]["ci_low"] == pytest.approx(overall.ci_low)
        assert intervals["resamples"] == 200
        folder = mlflow.artifacts.download_artifacts(
            run_id=run.mlflow_run_id, dst_path=str(tmp_path)
        )
        examples = pd.read_parquet(Path(folder) / "examples.parquet")
        assert len(examples) == len(NOTES)
        assert examples["example_id"].tolist() == sorted(i for i, *_ in NOTES)
        by_slice = pd.read_csv(Path(folder) / "metrics_by_slice.csv")
        hvac = by_slice[(by_slice["slice"] == "hvac") & (by_slice["metric"] == "rougeL_f")]
        assert hvac["value"].item() == pytest.approx(metrics[("hvac", "rougeL_f")].value)

    def test_classification_run_files_its_confusion_matrix_over_the_label_set(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """A classification run stores and logs the label set × label set confusion matrix;
        a stray predicted label is counted beside it, never as a class."""
        rows = [
            {"id": f"t{i}", "input": f"ticket {i}", "expected": ["billing", "refund"][i % 2]}
            for i in range(10)
        ]
        import_golden_rows(streamflow, "intents", rows, task="classification")
        path = tmp_path / "labels.jsonl"
        path.write_text(
            "\n".join(
                json.dumps(
                    {"id": r["id"], "prediction": "spam" if r["id"] == "t3" else r["expected"]}
                )
                for r in rows
            )
        )
        outcome = run_evaluation(
            "provider",
            "test",
            dataset="intents",
            predictions_path=str(path),
            agent_type="intent_classifier",
        )
        with streamflow.sessions() as session:
            run = session.get(EvaluationRun, uuid.UUID(outcome.run_id))
            assert run is not None
            stored = run.confusion_matrix
            assert run.scoring_signatures is not None
        assert stored is not None
        assert stored["labels"] == ["billing", "refund"]
        assert stored["matrix"] == [[5, 0], [0, 4]]
        assert stored["out_of_set"] == [0, 1]
        tracked = mlflow.get_run(run.mlflow_run_id)
        logged = mlflow.artifacts.load_dict(f"{tracked.info.artifact_uri}/confusion_matrix.json")
        assert logged["matrix"] == stored["matrix"]
        assert logged["out_of_set_values"] == {"spam": 1}
        assert tracked.data.params["labels"] == "billing,refund"
        assert "signature.scikit_learn" in tracked.data.params

    def test_same_inputs_return_the_finished_run_and_force_recomputes(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """The same subject, dataset version and config reuse the run; --force makes a new one."""
        _setup(streamflow, tmp_path)
        path = _predictions_file(tmp_path, "preds.jsonl", lambda x, y: y)
        first = run_evaluation(
            "provider", "test", dataset="notes", predictions_path=str(path), agent_type="summarizer"
        )
        # The dataset's earlier run decides the agent type from now on.
        again = run_evaluation("provider", "test", dataset="notes@1", predictions_path=str(path))
        forced = run_evaluation(
            "provider", "test", dataset="notes", predictions_path=str(path), force=True
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
            assert run.error == "RuntimeError: worker lost"
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
            tags = mlflow.get_run(result.run_a.mlflow_run_id).data.tags
            # The challenger's completion compared it with the champion's run and stored the
            # very document the API would compute (the champion's own run compared nothing).
            stored = stored_comparison(
                session,
                organization_id=org.id,
                run_a=uuid.UUID(a.run_id),
                run_b=uuid.UUID(b.run_id),
            )
            assert stored == comparison_payload(result)
            assert session.scalar(select(func.count()).select_from(EvaluationComparison)) == 1
            assert session.scalar(
                select(func.count())
                .select_from(AuditLogEntry)
                .where(AuditLogEntry.action == "evaluation_comparison.stored")
            )
        assert tags["streamflow.model_alias"] == "champion"
        assert tags["streamflow.model_uri"] == f"models:/{name}/1"
        logged = registry.model_version_info(name, "1").model_id
        linked = MlflowClient().get_logged_model(logged).metrics or []
        assert {m.key for m in linked} >= {"rougeL_f", "quality_score"}
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
            run_evaluation(
                "provider",
                "test",
                dataset="notes",
                predictions_path=str(path),
                agent_type="summarizer",
            )
        assert _count(streamflow, EvaluationRun) == 0


def _flow_must_not_start(**_: object) -> None:
    raise AssertionError("the flow started for a request that should have been refused")


class TestRefusedBeforeTheFlowStarts:
    def test_wrong_references_and_tasks_are_one_line_errors_in_milliseconds(
        self, streamflow: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Unknown model, alias or dataset and a model of the wrong task are refused at once,
        with the fix named, before any flow starts and without a run."""
        _setup(streamflow, tmp_path)
        name = f"clf-{uuid.uuid4().hex[:6]}"
        register_agent(name, BuiltAgent(FirstSentence(), "intent_classifier", "classification"))
        monkeypatch.setattr(evaluation, "evaluate_model_version", _flow_must_not_start)
        cases = [
            ({"model": "nobody@champion"}, NotFound, "model 'nobody' is not registered"),
            ({"model": f"{name}@challenger"}, NotFound, f"{name} has no alias 'challenger'"),
            ({"model": f"{name}@1", "dataset": "nope"}, NotFound, "golden dataset 'nope'"),
            (
                {"model": f"{name}@1"},
                InvalidInput,
                "is a classification model but golden dataset 'notes' is a text_generation",
            ),
            ({"predictions_path": str(tmp_path / "absent.csv")}, InvalidInput, "predictions:"),
        ]
        for change, error, message in cases:
            started = time.perf_counter()
            with pytest.raises(error, match=message) as raised:
                run_evaluation("provider", "test", **({"dataset": "notes"} | change))
            assert time.perf_counter() - started < 2.0
            assert "\n" not in str(raised.value)
        assert _count(streamflow, EvaluationRun) == 0

    def test_agent_module_that_cannot_be_imported_is_refused(
        self, streamflow: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A model whose agent module is gone is refused, naming the module and the fix."""
        _setup(streamflow, tmp_path)
        folder = tmp_path / "agents"
        folder.mkdir()
        module = f"gone_agent_{uuid.uuid4().hex[:6]}"
        (folder / f"{module}.py").write_text(
            "class Agent:\n    def predict(self, texts):\n        return list(texts)\n"
        )
        monkeypatch.syspath_prepend(str(folder))
        agent = __import__(module).Agent()
        name = f"gone-{uuid.uuid4().hex[:6]}"
        register_agent(name, BuiltAgent(agent, "summarizer", "text_generation"))
        monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(folder)])
        monkeypatch.delitem(sys.modules, module)
        monkeypatch.setattr(evaluation, "evaluate_model_version", _flow_must_not_start)
        with pytest.raises(service.AgentUnavailable, match=f"agent module '{module}' cannot"):
            run_evaluation("provider", "test", dataset="notes", model=f"{name}@1")
        assert _count(streamflow, EvaluationRun) == 0
