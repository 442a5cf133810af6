"""Drift descriptors and the drift summary on literal inputs (no Evidently)."""

from __future__ import annotations

from pipelines.promotion.drift import (
    comparable_columns,
    descriptors,
    guess_language,
    summarize_drift,
    vocabulary,
)


def test_descriptors_measure_length_unknown_words_and_language() -> None:
    known = vocabulary(["Where is my order", "cancel the order"])
    frame = descriptors(["where is my parcel", "", "Wo ist mein Paket"], known, ["a", "b", "a"])
    assert frame["length_words"].tolist() == [4.0, 0.0, 4.0]
    assert frame["oov_rate"].tolist() == [0.25, 0.0, 1.0]
    assert frame["language"].tolist() == ["en", "other", "de"]
    assert frame["output_label"].tolist() == ["a", "b", "a"]
    assert guess_language("12345") == "other"


def test_output_labels_are_compared_only_for_classifiers() -> None:
    known = vocabulary(["a"])
    labels = descriptors(["a"], known, ["x"])
    texts = descriptors(["a"], known)
    assert "output_label" in comparable_columns(labels, labels)
    assert "output_label" not in comparable_columns(texts, texts)


def test_summary_counts_p_values_below_and_distances_above_their_thresholds() -> None:
    metrics = [
        {"config": {"type": "evidently:metric_v2:DriftedColumnsCount"}, "value": {"count": 1}},
        {
            "config": {"type": "x:ValueDrift", "column": "length", "method": "K-S p_value"},
            "value": 0.001,
        },
        {
            "config": {"type": "x:ValueDrift", "column": "oov", "method": "K-S p_value"},
            "value": 0.4,
        },
        {
            "config": {
                "type": "x:ValueDrift",
                "column": "language",
                "method": "Jensen-Shannon distance",
                "threshold": 0.1,
            },
            "value": 0.2,
        },
    ]
    summary = summarize_drift(metrics, threshold=0.5)
    assert summary.drifted_columns == ["language", "length"]
    assert round(summary.drift_share, 3) == 0.667
    assert summary.drifted
    assert not summarize_drift(metrics[:3], threshold=0.6).drifted
