"""The CLI's renderings of a run: the confusion matrix and partial macro averages are shown."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from rich.console import Console

from flows.reporting import print_run
from pipelines.evaluation.read_models import EvaluationDetail


def _detail() -> EvaluationDetail:
    metric = {"ci_low": None, "ci_high": None, "n": 12}
    return EvaluationDetail.model_validate(
        {
            "id": uuid.UUID(int=1),
            "status": "completed",
            "task": "classification",
            "agent_type": "intent_classifier",
            "subject": "predictions p.jsonl",
            "model": None,
            "predictions_file": "p.jsonl",
            "examples": 12,
            "golden_dataset": {"name": "intents", "version": 1, "sha256": "0" * 64},
            "created_at": datetime(2026, 12, 1, tzinfo=UTC),
            "finished_at": datetime(2026, 12, 1, tzinfo=UTC),
            "progress": {"batches_done": 1, "batches_total": 1},
            "config": {},
            "mlflow_run_id": None,
            "error": None,
            "quality_score": None,
            "metrics": [{"name": "f1_macro", "value": 0.9, **metric}],
            "slices": [
                {
                    "slice": "easy",
                    "metrics": [{"name": "f1_macro", "value": 1.0, **metric}],
                    "averaged_over": ["billing", "refund"],
                }
            ],
            "labels": ["billing", "other", "refund"],
            "averaged_over": ["billing", "other", "refund"],
            "confusion_matrix": {
                "labels": ["billing", "other", "refund"],
                "matrix": [[5, 0, 0], [0, 2, 1], [0, 0, 2]],
                "out_of_set": [0, 0, 2],
                "out_of_set_values": {"complaint": 2},
            },
            "scoring_signatures": {"scikit_learn": "scikit-learn 1.9"},
        }
    )


def test_show_draws_the_confusion_matrix_and_says_what_slices_average_over() -> None:
    """`eval show` prints the label set × label set counts, strays aside, and the labels a
    slice's macro averages run over when some are absent from it."""
    console = Console(record=True, width=140)
    print_run(console, _detail(), slices=True)
    text = console.export_text()
    assert "confusion matrix (label set × label set)" in text
    assert "out of set" in text
    assert "'complaint' ×2" in text
    assert "slice easy: macro averages over the 2 of 3 labels present in it" in text
    assert "scikit_learn: scikit-learn 1.9" in text
