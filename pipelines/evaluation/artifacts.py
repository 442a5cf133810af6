"""What an evaluation run files alongside its metrics in MLflow: intervals, slices, confusion
matrix and the per-example table (pure: rows in, documents and frames out)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from pipelines.evaluation.classification import confusion_matrix, out_of_set_counts
from pipelines.evaluation.scoring import ALL_EXAMPLES, MetricRow

INTERVALS = "intervals.json"
SLICES = "metrics_by_slice.csv"
CONFUSION_MATRIX = "confusion_matrix.json"
EXAMPLES = "examples.parquet"
STRAY_VALUES_SHOWN = 20
"""Out-of-set predicted values a confusion matrix lists (the most frequent)."""


def confusion_document(scores: pd.DataFrame, labels: Sequence[str]) -> dict[str, Any]:
    """The confusion matrix over the label set (rows expected, columns predicted), with the
    predictions outside the set counted per expected label and the most frequent stray values.

    The shape of `read_models.ConfusionMatrix`.
    """
    expected = scores["label"].astype(str).tolist()
    predicted = scores["prediction"].astype(str).tolist()
    per_label, strays = out_of_set_counts(expected, predicted, labels)
    frequent = sorted(strays.items(), key=lambda item: (-item[1], item[0]))[:STRAY_VALUES_SHOWN]
    return {
        "labels": list(labels),
        "rows": "expected label",
        "columns": "predicted label",
        "matrix": confusion_matrix(expected, predicted, labels).tolist(),
        "out_of_set": per_label,
        "out_of_set_values": dict(frequent),
    }


def documents(
    task: str,
    options: Mapping[str, Any],
    metrics: Sequence[MetricRow],
    confusion: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """JSON artifacts: the overall intervals with how they were computed, and for
    classification the confusion matrix (`confusion_document`)."""
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
    if confusion is not None:
        found[CONFUSION_MATRIX] = {"task": task, **confusion}
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
