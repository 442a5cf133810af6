"""Chart specs carry each estimate with its interval, on the scale the axis states."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pipelines.evaluation.charts import difference_intervals, metric_intervals, quality_trend
from pipelines.evaluation.read_models import (
    AliasMove,
    Metric,
    MetricDifference,
    QualityScorePoint,
)


def test_metric_intervals_put_bleu_on_the_unit_scale() -> None:
    spec = metric_intervals(
        [
            Metric(name="rougeL", value=0.5, ci_low=0.4, ci_high=0.6, n=30),
            Metric(name="bleu", value=40.0, ci_low=30.0, ci_high=50.0, n=30),
            Metric(name="f1", value=None, ci_low=None, ci_high=None, n=0),
        ],
        title="t",
    )
    rows = spec["data"]["values"]
    assert [(r["metric"], r["value"], r["low"], r["high"]) for r in rows] == [
        ("rougeL", 0.5, 0.4, 0.6),
        ("bleu", 0.4, 0.3, 0.5),
    ]
    assert rows[1]["shown"] == "40.00 [30.00, 50.00]"


def test_differences_are_coloured_by_significance() -> None:
    row = {"slice": "", "label": None, "a": 0.5, "b": 0.6, "n": 30, "p_value_holm": None}
    spec = difference_intervals(
        [
            MetricDifference(
                name="accuracy", difference=0.1, ci_low=0.02, ci_high=0.18, p_value=0.01, **row
            ),
            MetricDifference(
                name="f1_macro", difference=0.05, ci_low=-0.01, ci_high=0.11, p_value=0.2, **row
            ),
        ],
        title="t",
    )
    rows = (
        spec["layer"][1]["data"]["values"] if "data" in spec["layer"][1] else spec["data"]["values"]
    )
    assert [(r["metric"], r["significance"]) for r in rows] == [
        ("accuracy", "significant (p < 0.05)"),
        ("f1_macro", "not significant"),
    ]


def test_the_trend_marks_alias_moves() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    point = QualityScorePoint(
        run_id=uuid.uuid4(),
        finished_at=at,
        agent_type="summarizer",
        task="text_generation",
        subject="s",
        model=None,
        value=0.7,
        ci_low=0.6,
        ci_high=0.8,
        n=100,
    )
    move = AliasMove(at=at, model="summarizer", alias="champion", version="2")
    spec = quality_trend([point], [move], title="t")
    assert spec["data"]["values"][0]["low"] == 0.6
    assert spec["layer"][-1]["data"]["values"] == [
        {"at": at.isoformat(), "what": "champion → summarizer v2"}
    ]
