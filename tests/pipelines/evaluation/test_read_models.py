"""Read models: per-class metrics carry their class as a field, not inside the name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np

from pipelines.evaluation.classification import score_classification
from pipelines.evaluation.read_models import Metric, QualityScorePoint, split_metric_name
from pipelines.evaluation.scoring import ScoringOptions, compare


class TestMetricNames:
    def test_per_class_names_split_into_metric_and_label(self) -> None:
        """`f1[billing]` is metric f1 about class billing; plain names have no label."""
        assert split_metric_name("f1[billing]") == ("f1", "billing")
        assert split_metric_name("precision[needs [review]]") == ("precision", "needs [review]")
        assert split_metric_name("f1_macro") == ("f1_macro", None)

    def test_a_stored_metric_reads_with_its_label(self) -> None:
        """A stored row becomes a Metric whose label readers filter on."""
        stored = SimpleNamespace(name="recall[pos]", value=0.5, ci_low=0.25, ci_high=0.75, n=8)
        metric = Metric.of(stored)
        assert (metric.name, metric.label, metric.value, metric.n) == ("recall", "pos", 0.5, 8)

    def test_times_serialise_as_utc_with_z(self) -> None:
        """The JSON of a read model writes aware UTC times with `Z`, as the API always has."""
        point = QualityScorePoint(
            run_id="00000000-0000-0000-0000-000000000001",
            finished_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            agent_type="summarizer",
            task="text_generation",
            subject="s@1",
            model=None,
            value=0.5,
            ci_low=None,
            ci_high=None,
            n=3,
        )
        assert json.loads(point.model_dump_json())["finished_at"] == "2026-01-02T03:04:05Z"


class TestComparisonRows:
    def test_per_class_differences_carry_the_label(self) -> None:
        """A classification comparison names per-class rows by metric and label."""
        labels = ["pos", "neg"] * 20
        flipped = ["neg" if i % 4 == 0 else p for i, p in enumerate(labels)]
        truth = score_classification(labels, labels)
        worse = score_classification(flipped, labels)
        result = compare(
            "classification",
            truth,
            worse,
            slices=[""] * 40,
            options=ScoringOptions(n_resamples=200),
            quality=None,
        )
        per_class = {(r.name, r.label) for r in result.overall if r.label is not None}
        assert ("f1", "pos") in per_class
        assert ("recall", "neg") in per_class
        assert all("[" not in r.name for r in result.overall)
        accuracy = next(r for r in result.overall if r.name == "accuracy")
        assert accuracy.label is None
        assert np.isclose(accuracy.difference or 0.0, -0.25)
