"""What an evaluation run files alongside its metrics in MLflow: intervals, slices, confusion
matrix and the per-example table (pure: rows in, documents and frames out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pipelines.evaluation.classification import classes_of, confusion_matrix
from pipelines.evaluation.scoring import ALL_EXAMPLES, CLASSIFICATION, MetricRow

INTERVALS = "intervals.json"
SLICES = "metrics_by_slice.csv"
CONFUSION_MATRIX = "confusion_matrix.json"
EXAMPLES = "examples.parquet"


def documents(
    task: str, options: Mapping[str, Any], metrics: Sequence[MetricRow], scores: pd.DataFrame
) -> dict[str, Any]:
    """JSON artifacts: the overall intervals with how they were computed, and for
    classification the confusion matrix (rows expected, columns predicted)."""
    found: dict[str, Any] = {
        INTERVALS: {
            "method": "percentile bootstrap over examples",
            "confidence": options.get("confidence"),
            "resamples": options.get("n_resamples"),
            "seed": options.get("seed"),
            "metrics": {
                m.name: {"value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n}
                for m in metrics
                if m.slice == ALL_EXAMPLES
            },
        }
    }
    if task == CLASSIFICATION and {"label", "prediction"} <= set(scores.columns):
        labels = scores["label"].astype(str).tolist()
        predictions = scores["prediction"].astype(str).tolist()
        classes = classes_of(labels, predictions)
        found[CONFUSION_MATRIX] = {
            "labels": list(classes),
            "rows": "expected label",
            "columns": "predicted label",
            "matrix": confusion_matrix(labels, predictions, classes).tolist(),
        }
    return found


def slice_table(metrics: Sequence[MetricRow]) -> pd.DataFrame:
    """Every metric per slice (`(all)` for the whole dataset) with its CI and size."""
    return pd.DataFrame(
        [
            {
                "slice": m.slice or "(all)",
                "metric": m.name,
                "value": m.value,
                "ci_low": m.ci_low,
                "ci_high": m.ci_high,
                "n": m.n,
            }
            for m in metrics
        ],
        columns=["slice", "metric", "value", "ci_low", "ci_high", "n"],
    )


def example_table(
    scores: pd.DataFrame,
    slices: Sequence[str],
    ids: Sequence[str],
    predictions: Sequence[str],
    golden: pd.DataFrame,
) -> pd.DataFrame:
    """One row per example: id, slice, input, expected, prediction and every score.

    `golden` is the dataset version's rows indexed by id.
    """
    table = pd.DataFrame(
        {
            "example_id": list(ids),
            "slice": list(slices),
            "input": golden["input"].reindex(list(ids)).astype(str).to_numpy(),
            "expected": golden["expected"].reindex(list(ids)).astype(str).to_numpy(),
            "prediction": list(predictions),
        }
    )
    extra = scores.drop(columns=[c for c in ("label", "prediction") if c in scores.columns])
    return pd.concat([table, extra.reset_index(drop=True)], axis=1)
