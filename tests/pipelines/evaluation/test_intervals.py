"""Interval methods by metric family, the flags readers see, and the aggregates built on them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from pipelines.evaluation import intervals
from pipelines.evaluation.metrics import ClassificationSuite, MeanSuite
from pipelines.evaluation.quality import parse_quality_weights
from pipelines.evaluation.read_models import Metric
from pipelines.evaluation.scoring import (
    CLASSIFICATION,
    ScoringOptions,
    score_examples,
    summarize,
)
from pipelines.evaluation.statistics import (
    bootstrap,
    bootstrap_studentized,
    bootstrap_studentized_by_slice,
    influence,
    studentized_intervals,
    wilson_interval,
)


class TestFamilies:
    @pytest.mark.parametrize(
        ("name", "family", "method"),
        [
            ("accuracy", "proportion", "wilson"),
            ("exact_match", "proportion", "wilson"),
            ("precision_micro", "proportion", "wilson"),
            ("recall[billing]", "proportion", "wilson"),
            ("precision[a[b]]", "proportion", "wilson"),
            ("f1[billing]", "average", "bootstrap_t"),
            ("f1_macro", "average", "bootstrap_t"),
            ("f1_micro", "average", "bootstrap_t"),
            ("bleu", "corpus", "bootstrap_t"),
            ("chrf", "corpus", "bootstrap_t"),
            ("rougeL_f", "mean", "bootstrap_t"),
            ("quality_score", "composite", "bootstrap_t"),
        ],
    )
    def test_each_metric_has_one_family_and_method(
        self, name: str, family: str, method: str
    ) -> None:
        assert (intervals.family(name), intervals.method(name)) == (family, method)

    def test_bounds_follow_the_metric_scale(self) -> None:
        assert intervals.bounds("bleu") == (0.0, 100.0)
        assert intervals.bounds("f1[x]") == (0.0, 1.0)


class TestFlags:
    def test_an_n_of_one_slice_is_small_and_unreliable(self) -> None:
        """The audit's n = 1 slice: flagged small_n whatever the family; means and averages
        also interval_unreliable."""
        assert intervals.flags("accuracy", n=1, value=1.0, ci_low=0.2, ci_high=1.0) == ["small_n"]
        assert intervals.flags("f1_macro", n=1, value=1.0, ci_low=None, ci_high=None) == [
            "small_n",
            "interval_unreliable",
            "no_interval",
        ]

    def test_min_n_is_configurable(self) -> None:
        assert intervals.flags("accuracy", n=40, value=0.5, ci_low=0.3, ci_high=0.7) == []
        assert intervals.flags("accuracy", n=40, value=0.5, ci_low=0.3, ci_high=0.7, min_n=50) == [
            "small_n"
        ]

    def test_the_family_threshold_comes_from_the_coverage_table(self) -> None:
        """An average is unreliable below 500 even above min n; a composite needs its parts."""
        assert intervals.flags("f1_macro", n=400, value=0.5, ci_low=0.4, ci_high=0.6) == [
            "interval_unreliable"
        ]
        assert intervals.reliable_n("quality_score", ["rougeL_f", "chrf"]) == 100
        assert intervals.reliable_n("quality_score", ["f1_macro", "accuracy"]) == 500

    def test_read_model_carries_method_and_flags(self) -> None:
        class Stored:
            name = "recall[billing]"
            value = 1.0
            ci_low = 0.2
            ci_high = 1.0
            n = 3

        metric = Metric.of(Stored(), min_n=30)
        assert (metric.name, metric.label, metric.method) == ("recall", "billing", "wilson")
        assert metric.flags == ["small_n"]


class TestWilson:
    @pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 1), (0, 30), (30, 30), (7, 12)])
    def test_never_zero_width_and_always_inside_the_unit_interval(self, k: int, n: int) -> None:
        estimate = wilson_interval(k, n)
        assert 0.0 <= estimate.ci_low < estimate.ci_high <= 1.0
        assert estimate.ci_low <= k / n <= estimate.ci_high

    def test_matches_statsmodels(self) -> None:
        from statsmodels.stats.proportion import proportion_confint

        for k, n in [(3, 10), (47, 50), (0, 30), (512, 1000)]:
            low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
            estimate = wilson_interval(k, n)
            assert (estimate.ci_low, estimate.ci_high) == (
                pytest.approx(low, abs=1e-12),
                pytest.approx(high, abs=1e-12),
            )

    def test_no_trials_no_interval(self) -> None:
        assert math.isnan(wilson_interval(0, 0).ci_low)


def means(values: np.ndarray) -> np.ndarray:
    return np.column_stack([values, np.ones(len(values))])


class TestStudentized:
    def test_replicates_are_those_of_the_percentile_bootstrap(self) -> None:
        """Same seed, same resamples: the point and replicates equal `bootstrap`'s bit for bit."""
        stats = means(np.random.default_rng(0).random(80))
        plain = bootstrap(stats, MeanSuite(["x"]), n_resamples=200, seed=4)
        studentized = bootstrap_studentized(stats, MeanSuite(["x"]), n_resamples=200, seed=4)
        np.testing.assert_array_equal(plain.replicates, studentized.replicates)
        np.testing.assert_array_equal(plain.point, studentized.point)

    def test_standard_error_of_a_mean_is_the_plug_in_one(self) -> None:
        values = np.random.default_rng(1).random(50)
        result = bootstrap_studentized(means(values), MeanSuite(["x"]), n_resamples=10)
        assert result.se[0] == pytest.approx(np.std(values) / math.sqrt(50), rel=1e-5)

    def test_delta_method_gradient_of_a_ratio(self) -> None:
        """For sum(x) / sum(y) the influence of example i is (x_i - r y_i) / sum(y)."""
        rng = np.random.default_rng(2)
        x, y = rng.random(30), 1 + rng.random(30)
        stats = np.column_stack([x, y])
        r = x.sum() / y.sum()
        u = influence(stats, MeanSuite(["x"]), stats.sum(axis=0))
        np.testing.assert_allclose(u[:, 0], (x - r * y) / y.sum(), rtol=1e-4, atol=1e-9)

    def test_constant_scores_get_no_interval_rather_than_zero_width(self) -> None:
        result = bootstrap_studentized(means(np.ones(40)), MeanSuite(["x"]), n_resamples=50)
        estimate = studentized_intervals(result)["x"]
        assert estimate.value == 1.0
        assert math.isnan(estimate.ci_low)

    def test_interval_is_clipped_to_the_bounds(self) -> None:
        values = np.r_[np.zeros(28), [1.0, 1.0]]
        result = bootstrap_studentized(means(values), MeanSuite(["x"]), n_resamples=300)
        estimate = studentized_intervals(result, bounds={"x": (0.0, 1.0)})["x"]
        assert 0.0 <= estimate.ci_low < estimate.value < estimate.ci_high <= 1.0

    def test_interval_close_to_t_for_a_symmetric_mean_at_large_n(self) -> None:
        values = np.random.default_rng(5).normal(0.5, 0.1, 2000)
        result = bootstrap_studentized(means(values), MeanSuite(["x"]), n_resamples=2000)
        estimate = studentized_intervals(result)["x"]
        half = scipy_stats.t.ppf(0.975, 1999) * values.std(ddof=1) / math.sqrt(2000)
        assert estimate.ci_high - estimate.ci_low == pytest.approx(2 * half, rel=0.08)

    def test_slices_are_seeded_by_name(self) -> None:
        stats = means(np.random.default_rng(6).random(60))
        labels = ["a" if i % 3 else "b" for i in range(60)]
        both = bootstrap_studentized_by_slice(stats, labels, MeanSuite(["x"]), n_resamples=30)
        rows = np.asarray([label == "a" for label in labels])
        alone = bootstrap_studentized_by_slice(
            stats[rows], ["a"] * int(rows.sum()), MeanSuite(["x"]), n_resamples=30
        )
        np.testing.assert_array_equal(both["a"].replicates, alone["a"].replicates)
        np.testing.assert_array_equal(both["a"].replicate_se, alone["a"].replicate_se)


class TestSummarize:
    def test_values_are_unchanged_and_intervals_follow_the_family(self) -> None:
        """Values equal the suite's metrics on the whole data (the references); proportions get
        Wilson with the right trials, the rest bootstrap-t; reruns are bit-identical."""
        labels = ["a", "b", "c", "a", "b", "a"] * 10
        predictions = ["a", "b", "a", "a", "c", "b"] * 10
        scores = score_examples(CLASSIFICATION, predictions=predictions, expected=labels)
        slices = ["x" if i % 4 else "y" for i in range(60)]
        options = ScoringOptions(n_resamples=200)
        quality = parse_quality_weights(
            "intent_classifier", "f1_macro=0.5,accuracy=0.3,f1_weighted=0.2"
        )
        rows = summarize(CLASSIFICATION, scores, slices=slices, options=options, quality=quality)
        again = summarize(CLASSIFICATION, scores, slices=slices, options=options, quality=quality)
        assert rows == again
        overall = {row.name: row for row in rows if row.slice == ""}
        suite = ClassificationSuite(("a", "b", "c"))
        reference = suite.finalize(suite.statistics(scores).sum(axis=0))[0]
        for name, value in zip(suite.names, reference, strict=True):
            assert overall[name].value == value
        accuracy = wilson_interval(30, 60)
        assert (overall["accuracy"].ci_low, overall["accuracy"].ci_high) == (
            accuracy.ci_low,
            accuracy.ci_high,
        )
        recall_b = wilson_interval(10, 20)  # b: 20 examples, 10 predicted right
        assert overall["recall[b]"].ci_low == recall_b.ci_low
        assert overall["quality_score"].value == pytest.approx(
            0.5 * overall["f1_macro"].value
            + 0.3 * overall["accuracy"].value
            + 0.2 * overall["f1_weighted"].value
        )
        for row in rows:
            if row.value is not None and row.ci_low is not None:
                assert row.ci_low < row.ci_high, row
                assert row.ci_low <= row.value <= row.ci_high, row
        assert {row.n for row in rows if row.slice == "y"} == {15}

    def test_a_slice_of_one_example_has_no_zero_width_interval(self) -> None:
        """The audit's n = 1 slice reported accuracy 1.0 with CI [1.0, 1.0]."""
        scores = score_examples(CLASSIFICATION, predictions=["a", "b"], expected=["a", "b"])
        rows = summarize(
            CLASSIFICATION,
            scores,
            slices=["one", "two"],
            options=ScoringOptions(n_resamples=50),
            quality=None,
        )
        accuracy = next(r for r in rows if (r.slice, r.name) == ("one", "accuracy"))
        assert accuracy.value == 1.0
        assert accuracy.ci_low is not None
        assert accuracy.ci_high == 1.0
        assert accuracy.ci_low < 0.5
        for row in rows:
            assert row.ci_low is None or row.ci_low < row.ci_high


def test_frame_only_needs_the_suite_columns() -> None:
    """summarize on a text-free frame works (no hidden columns are required)."""
    frame = pd.DataFrame({"label": ["a"] * 3, "prediction": ["a"] * 3, "correct": [1.0] * 3})
    rows = summarize(
        CLASSIFICATION, frame, slices=[""] * 3, options=ScoringOptions(n_resamples=20), quality=None
    )
    assert {row.name for row in rows} >= {"accuracy", "f1_macro"}
