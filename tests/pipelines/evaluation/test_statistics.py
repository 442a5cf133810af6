"""Unit tests for the bootstrap engine, paired comparisons, McNemar and Holm."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.evaluation.quality import QualityWeights
from pipelines.evaluation.statistics import (
    Replicates,
    bootstrap,
    bootstrap_by_slice,
    compare,
    confidence_intervals,
    holm,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_by_slice,
    paired_replicates,
    paired_replicates_by_slice,
)
from pipelines.evaluation.suite import FloatArray


class MeanSuite:
    """The mean of column "value": statistics (value, 1)."""

    names = ("mean",)

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        values = scores["value"].to_numpy(dtype=np.float64)
        return np.column_stack([values, np.ones_like(values)])

    def finalize(self, sums: FloatArray) -> FloatArray:
        return sums[:, :1] / sums[:, 1:]


class RatioSuite:
    """A ratio of sums, sum(num) / sum(den), and the mean numerator per example."""

    names = ("ratio", "num_per_example")

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        return np.column_stack([scores["num"], scores["den"], np.ones(len(scores))]).astype(
            np.float64
        )

    def finalize(self, sums: FloatArray) -> FloatArray:
        return np.column_stack([sums[:, 0] / sums[:, 1], sums[:, 0] / sums[:, 2]])


@dataclass(frozen=True)
class ClassificationSuite:
    """Accuracy and macro-F1 from one-hot (label, prediction) confusion cells."""

    n_classes: int
    names: tuple[str, ...] = ("accuracy", "f1_macro")

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        cells = scores["label"].to_numpy() * self.n_classes + scores["prediction"].to_numpy()
        return np.eye(self.n_classes * self.n_classes)[cells]

    def finalize(self, sums: FloatArray) -> FloatArray:
        confusion = sums.reshape(-1, self.n_classes, self.n_classes)
        true_positive = np.diagonal(confusion, axis1=1, axis2=2)
        support = confusion.sum(axis=2)
        predicted = confusion.sum(axis=1)
        f1 = 2 * true_positive / (support + predicted)
        accuracy = true_positive.sum(axis=1) / confusion.sum(axis=(1, 2))
        return np.column_stack([accuracy, f1.mean(axis=1)])


class CountsSuite:
    """Exposes the resampled per-example counts: statistics are the identity matrix."""

    def __init__(self, n: int) -> None:
        self.names = tuple(f"count_{i}" for i in range(n))

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        return np.eye(len(scores))

    def finalize(self, sums: FloatArray) -> FloatArray:
        return sums


def mean_statistics(values: list[float] | FloatArray) -> FloatArray:
    return MeanSuite().statistics(pd.DataFrame({"value": values}))


def classification_statistics(labels: list[int], predictions: list[int]) -> FloatArray:
    frame = pd.DataFrame({"label": labels, "prediction": predictions})
    return ClassificationSuite(3).statistics(frame)


class TestBootstrap:
    def test_point_is_the_metric_on_the_summed_statistics(self) -> None:
        """The point value is finalize() of the column sums: the plain mean here."""
        result = bootstrap(mean_statistics([1.0, 2.0, 3.0, 4.0]), MeanSuite(), n_resamples=10)
        assert result.names == ("mean",)
        assert result.point.tolist() == [2.5]
        assert result.n == 4

    def test_ratio_point_is_a_ratio_of_sums_not_a_mean_of_ratios(self) -> None:
        """sum(num) / sum(den) = 4 / 10, whereas the mean of per-example ratios would be 0.5."""
        frame = pd.DataFrame({"num": [1, 3], "den": [2, 8]})
        result = bootstrap(RatioSuite().statistics(frame), RatioSuite(), n_resamples=10)
        assert result.point == pytest.approx([0.4, 2.0])

    def test_each_replicate_resamples_exactly_n_examples(self) -> None:
        """Replicate counts are non-negative integers summing to n, one count per example."""
        suite = CountsSuite(7)
        result = bootstrap(np.eye(7), suite, n_resamples=300, seed=4)
        counts = result.replicates
        assert counts.shape == (300, 7)
        assert np.array_equal(counts, np.round(counts))
        assert (counts >= 0).all()
        assert (counts.sum(axis=1) == 7).all()

    def test_counts_follow_the_multinomial_distribution(self) -> None:
        """Each example's count has mean 1 and variance (n - 1) / n, as Multinomial(n, 1/n)."""
        result = bootstrap(np.eye(5), CountsSuite(5), n_resamples=20_000, seed=1)
        assert result.replicates.mean(axis=0) == pytest.approx(np.ones(5), abs=0.03)
        assert result.replicates.var(axis=0) == pytest.approx(np.full(5, 0.8), abs=0.03)

    def test_two_example_replicates_take_only_the_possible_values(self) -> None:
        """With values 0 and 1 every resample's mean is 0, 0.5 or 1, about 1/4, 1/2, 1/4."""
        result = bootstrap(mean_statistics([0.0, 1.0]), MeanSuite(), n_resamples=4000, seed=2)
        values, frequencies = np.unique(result.replicates, return_counts=True)
        assert values.tolist() == [0.0, 0.5, 1.0]
        assert frequencies / 4000 == pytest.approx([0.25, 0.5, 0.25], abs=0.03)

    def test_constant_values_give_constant_replicates(self) -> None:
        """Every resample of identical examples has the same metric value."""
        result = bootstrap(mean_statistics([0.25] * 50), MeanSuite(), n_resamples=100)
        assert np.all(result.replicates == 0.25)

    def test_same_seed_gives_identical_replicates(self) -> None:
        """Bootstrapping twice with the same inputs and seed is bit-for-bit reproducible."""
        stats = mean_statistics(np.random.default_rng(0).random(500))
        first = bootstrap(stats, MeanSuite(), n_resamples=200, seed=11)
        second = bootstrap(stats, MeanSuite(), n_resamples=200, seed=11)
        assert np.array_equal(first.replicates, second.replicates)

    def test_different_seeds_give_different_replicates(self) -> None:
        """Another seed draws other resamples."""
        stats = mean_statistics(np.random.default_rng(0).random(500))
        first = bootstrap(stats, MeanSuite(), n_resamples=200, seed=11)
        second = bootstrap(stats, MeanSuite(), n_resamples=200, seed=12)
        assert not np.array_equal(first.replicates, second.replicates)

    @pytest.mark.parametrize("chunk_size", [1, 3, 64, 199, 200, 10_000])
    def test_chunking_does_not_change_integer_statistics(self, chunk_size: int) -> None:
        """With integer-valued statistics (counts), any block size gives bit-identical sums."""
        rng = np.random.default_rng(3)
        labels, predictions = rng.integers(0, 3, 400).tolist(), rng.integers(0, 3, 400).tolist()
        stats = classification_statistics(labels, predictions)
        suite = ClassificationSuite(3)
        reference = bootstrap(stats, suite, n_resamples=200, seed=5)
        blocked = bootstrap(stats, suite, n_resamples=200, seed=5, chunk_size=chunk_size)
        assert np.array_equal(reference.replicates, blocked.replicates)

    @pytest.mark.parametrize("chunk_size", [1, 7, 1000])
    def test_chunking_does_not_change_which_examples_are_drawn(self, chunk_size: int) -> None:
        """The per-example counts of every replicate are the same for any block size."""
        reference = bootstrap(np.eye(30), CountsSuite(30), n_resamples=50, seed=8)
        blocked = bootstrap(
            np.eye(30), CountsSuite(30), n_resamples=50, seed=8, chunk_size=chunk_size
        )
        assert np.array_equal(reference.replicates, blocked.replicates)

    def test_chunking_changes_float_sums_by_rounding_at_most(self) -> None:
        """With real-valued statistics, block size only moves the last bits of the values."""
        stats = mean_statistics(np.random.default_rng(9).random(1000))
        reference = bootstrap(stats, MeanSuite(), n_resamples=100, seed=1)
        blocked = bootstrap(stats, MeanSuite(), n_resamples=100, seed=1, chunk_size=3)
        np.testing.assert_allclose(blocked.replicates, reference.replicates, rtol=1e-12)

    def test_more_resamples_extend_the_same_stream(self) -> None:
        """The first R replicates of a longer run are the replicates of a run of R."""
        short = bootstrap(np.eye(20), CountsSuite(20), n_resamples=30, seed=6)
        long = bootstrap(np.eye(20), CountsSuite(20), n_resamples=90, seed=6)
        assert np.array_equal(long.replicates[:30], short.replicates)

    def test_statistics_must_be_a_matrix(self) -> None:
        """A one-dimensional array is rejected with its shape in the message."""
        with pytest.raises(ValueError, match=r"\(n_examples, n_statistics\)"):
            bootstrap(np.ones(4), MeanSuite())

    def test_no_examples_is_an_error(self) -> None:
        """An empty set of examples cannot be resampled."""
        with pytest.raises(ValueError, match="no examples"):
            bootstrap(np.empty((0, 2)), MeanSuite())

    def test_non_finite_statistics_are_an_error(self) -> None:
        """NaN sufficient statistics would poison every sum, so they are rejected up front."""
        with pytest.raises(ValueError, match="NaN or infinite"):
            bootstrap(mean_statistics([1.0, math.nan]), MeanSuite())

    @pytest.mark.parametrize("n_resamples", [0, -1])
    def test_resample_count_must_be_positive(self, n_resamples: int) -> None:
        """Zero or negative resample counts are rejected."""
        with pytest.raises(ValueError, match="n_resamples"):
            bootstrap(mean_statistics([1.0]), MeanSuite(), n_resamples=n_resamples)

    def test_seed_must_be_non_negative(self) -> None:
        """A negative seed is rejected rather than silently mapped to another stream."""
        with pytest.raises(ValueError, match="seed"):
            bootstrap(mean_statistics([1.0]), MeanSuite(), seed=-1)

    def test_finalize_of_the_wrong_shape_is_reported(self) -> None:
        """A suite whose finalize disagrees with its names is named in the error."""

        class Broken(MeanSuite):
            names = ("mean", "extra")

        with pytest.raises(ValueError, match=r"Broken\.finalize returned shape"):
            bootstrap(mean_statistics([1.0, 2.0]), Broken())


class TestConfidenceIntervals:
    def test_percentile_interval_of_known_replicates(self) -> None:
        """Replicates 0..100 give the 2.5th and 97.5th percentiles 2.5 and 97.5."""
        replicates = Replicates(("m",), np.array([50.0]), np.arange(101.0)[:, np.newaxis], 7)
        estimate = confidence_intervals(replicates)["m"]
        assert (estimate.value, estimate.ci_low, estimate.ci_high, estimate.n) == (
            50.0,
            pytest.approx(2.5),
            pytest.approx(97.5),
            7,
        )

    def test_confidence_level_sets_the_percentiles(self) -> None:
        """An 80% interval over 0..100 runs from the 10th to the 90th percentile."""
        replicates = Replicates(("m",), np.array([50.0]), np.arange(101.0)[:, np.newaxis], 7)
        estimate = confidence_intervals(replicates, confidence=0.8)["m"]
        assert (estimate.ci_low, estimate.ci_high) == (pytest.approx(10.0), pytest.approx(90.0))

    def test_interval_contains_the_point_for_a_real_bootstrap(self) -> None:
        """The interval of a mean brackets the sample mean and stays within the data's range."""
        values = np.random.default_rng(1).random(300)
        estimate = confidence_intervals(bootstrap(mean_statistics(values), MeanSuite()))["mean"]
        assert 0.0 <= estimate.ci_low < values.mean() < estimate.ci_high <= 1.0

    def test_interval_narrows_with_more_examples(self) -> None:
        """Four times the examples roughly halves the interval's width."""
        values = np.random.default_rng(2).random(4000)
        small = confidence_intervals(bootstrap(mean_statistics(values[:1000]), MeanSuite()))
        large = confidence_intervals(bootstrap(mean_statistics(values), MeanSuite()))
        ratio = (small["mean"].ci_high - small["mean"].ci_low) / (
            large["mean"].ci_high - large["mean"].ci_low
        )
        assert 1.6 < ratio < 2.4

    def test_a_few_undefined_replicates_are_left_out(self) -> None:
        """One NaN among 101 replicates is within max_undefined and is ignored."""
        values = np.append(np.arange(100.0), math.nan)[:, np.newaxis]
        estimate = confidence_intervals(Replicates(("m",), np.array([50.0]), values, 3))["m"]
        expected = np.quantile(np.arange(100.0), [0.025, 0.975])
        assert (estimate.ci_low, estimate.ci_high) == pytest.approx(expected.tolist())

    def test_many_undefined_replicates_give_no_interval(self) -> None:
        """With 5% undefined replicates the default gives NaN bounds but keeps the point."""
        values = np.append(np.arange(95.0), [math.nan] * 5)[:, np.newaxis]
        estimate = confidence_intervals(Replicates(("m",), np.array([50.0]), values, 3))["m"]
        assert estimate.value == 50.0
        assert math.isnan(estimate.ci_low)
        assert math.isnan(estimate.ci_high)

    def test_max_undefined_can_be_relaxed(self) -> None:
        """Allowing 10% undefined replicates yields an interval over the defined ones."""
        values = np.append(np.arange(95.0), [math.nan] * 5)[:, np.newaxis]
        replicates = Replicates(("m",), np.array([50.0]), values, 3)
        estimate = confidence_intervals(replicates, max_undefined=0.1)["m"]
        assert estimate.ci_low == pytest.approx(np.quantile(np.arange(95.0), 0.025))

    def test_undefined_point_gives_an_undefined_estimate(self) -> None:
        """A metric undefined on the sample has NaN value and bounds."""
        replicates = Replicates(("m",), np.array([math.nan]), np.ones((10, 1)), 3)
        estimate = confidence_intervals(replicates)["m"]
        assert all(math.isnan(x) for x in (estimate.value, estimate.ci_low, estimate.ci_high))

    def test_metric_undefined_in_many_resamples_reports_nan_bounds(self) -> None:
        """A ratio whose only non-zero denominator is often resampled away has no interval."""
        frame = pd.DataFrame({"num": [1] + [0] * 9, "den": [2] + [0] * 9})
        result = bootstrap(RatioSuite().statistics(frame), RatioSuite(), n_resamples=500)
        assert np.isnan(result.replicates[:, 0]).mean() > 0.2
        estimate = confidence_intervals(result)["ratio"]
        assert estimate.value == 0.5
        assert math.isnan(estimate.ci_low)

    @pytest.mark.parametrize("confidence", [0.0, 1.0, 1.5])
    def test_confidence_must_be_a_proper_fraction(self, confidence: float) -> None:
        """Levels outside (0, 1) are rejected."""
        replicates = Replicates(("m",), np.array([0.0]), np.zeros((5, 1)), 1)
        with pytest.raises(ValueError, match="confidence"):
            confidence_intervals(replicates, confidence=confidence)

    def test_replicates_shapes_are_checked(self) -> None:
        """Replicates whose arrays disagree with the names are rejected."""
        with pytest.raises(ValueError, match="Replicates for 2 metrics"):
            Replicates(("a", "b"), np.zeros(2), np.zeros((5, 3)), 1)


class TestPairedBootstrap:
    @pytest.mark.parametrize(
        ("stats", "suite"),
        [
            (mean_statistics(np.linspace(0, 1, 40)), MeanSuite()),
            (
                classification_statistics(
                    [0, 1, 2, 0, 1, 2, 0, 1] * 5, [0, 1, 1, 0, 2, 2, 1, 1] * 5
                ),
                ClassificationSuite(3),
            ),
        ],
    )
    def test_identical_systems_differ_by_zero_with_p_one(
        self, stats: FloatArray, suite: MeanSuite | ClassificationSuite
    ) -> None:
        """Comparing a system with itself gives difference 0, an interval around 0 and p = 1."""
        differences = paired_bootstrap(stats, stats.copy(), suite, n_resamples=300)
        assert set(differences) == set(suite.names)
        for difference in differences.values():
            assert difference.a == difference.b
            assert difference.difference == 0
            # Every swap differs by 0: the critical value is 0 plus the test's tie tolerance.
            assert -1e-8 < difference.ci_low < 0 < difference.ci_high < 1e-8
            assert difference.p_value == 1.0

    def test_constant_shift_is_recovered_in_every_resample(self) -> None:
        """b = a + 0.1 on every example: the same resample for both gives exactly +0.1 each time."""
        values = np.random.default_rng(0).random(50)
        paired = paired_replicates(
            mean_statistics(values), mean_statistics(values + 0.1), MeanSuite(), n_resamples=200
        )
        shifts = paired.replicates_b - paired.replicates_a
        np.testing.assert_allclose(shifts, 0.1, atol=1e-12)
        difference = compare(paired)["mean"]
        assert difference.difference == pytest.approx(0.1)
        # The interval inverts the swap test: 0.1 +/- its critical value, which excludes 0.
        assert 0 < difference.ci_low < 0.1 < difference.ci_high
        assert difference.ci_high - 0.1 == pytest.approx(0.1 - difference.ci_low)

    def test_consistent_shift_has_the_smallest_possible_p_value(self) -> None:
        """b beats a by the same margin everywhere: no random swap is as extreme, p = 1/(P + 1)."""
        values = np.random.default_rng(0).random(50)
        difference = paired_bootstrap(
            mean_statistics(values), mean_statistics(values + 0.1), MeanSuite(), n_resamples=999
        )["mean"]
        assert difference.p_value == pytest.approx(1 / 1000)

    def test_p_value_matches_the_exact_randomisation_distribution(self) -> None:
        """Differences 1, 2, 3, 4: only 2 of the 16 swaps reach |mean| 2.5, so p is about 1/8."""
        a = mean_statistics([0.0, 0.0, 0.0, 0.0])
        b = mean_statistics([1.0, 2.0, 3.0, 4.0])
        difference = paired_bootstrap(a, b, MeanSuite(), n_resamples=100, n_permutations=40_000)
        assert difference["mean"].difference == 2.5
        assert difference["mean"].p_value == pytest.approx(0.125, abs=0.006)

    def test_swapping_the_systems_negates_the_difference(self) -> None:
        """compare(b, a) mirrors compare(a, b): negated difference and interval, same p-value."""
        rng = np.random.default_rng(4)
        a, b = mean_statistics(rng.random(80)), mean_statistics(rng.random(80) + 0.05)
        forward = paired_bootstrap(a, b, MeanSuite(), seed=3)["mean"]
        backward = paired_bootstrap(b, a, MeanSuite(), seed=3)["mean"]
        assert backward.difference == -forward.difference
        assert backward.ci_low == pytest.approx(-forward.ci_high)
        assert backward.ci_high == pytest.approx(-forward.ci_low)
        assert backward.p_value == forward.p_value

    def test_difference_of_a_non_linear_metric_is_the_difference_of_its_values(self) -> None:
        """For macro-F1 the difference is f1(b) - f1(a) on the full sample, not a mean of rows."""
        labels = [0, 1, 2, 0, 1, 2]
        a = classification_statistics(labels, [0, 1, 2, 0, 0, 0])
        b = classification_statistics(labels, [0, 1, 2, 0, 1, 2])
        difference = paired_bootstrap(a, b, ClassificationSuite(3), n_resamples=50)["f1_macro"]
        # a: F1 per class = 2*2/(2+4), 2*1/(2+1), 2*1/(2+1) -> mean 2/3; b is perfect.
        assert difference.a == pytest.approx(2 / 3)
        assert difference.b == 1.0
        assert difference.difference == pytest.approx(1 / 3)

    def test_same_seed_reproduces_the_comparison(self) -> None:
        """Paired comparisons are reproducible by seed."""
        rng = np.random.default_rng(5)
        a, b = mean_statistics(rng.random(60)), mean_statistics(rng.random(60))
        assert paired_bootstrap(a, b, MeanSuite(), seed=2) == paired_bootstrap(
            a, b, MeanSuite(), seed=2
        )

    def test_system_views_carry_each_sides_replicates(self) -> None:
        """system_a() and system_b() are ordinary Replicates usable for per-system intervals."""
        rng = np.random.default_rng(6)
        a, b = mean_statistics(rng.random(60)), mean_statistics(rng.random(60))
        paired = paired_replicates(a, b, MeanSuite(), n_resamples=100, n_permutations=30)
        assert paired.system_a().point == pytest.approx([a[:, 0].mean()])
        assert paired.system_b().replicates.shape == (100, 1)
        assert paired.swapped_a.shape == (30, 1)

    def test_quality_score_difference_is_included_on_request(self) -> None:
        """With quality weights the result also holds the quality score's difference."""
        labels = [0, 1, 2] * 10
        a = classification_statistics(labels, [0, 1, 1] * 10)
        b = classification_statistics(labels, [0, 1, 2] * 10)
        weights = QualityWeights("classifier", {"accuracy": 0.5, "f1_macro": 0.5})
        differences = paired_bootstrap(a, b, ClassificationSuite(3), quality=weights)
        quality = differences["quality_score"]
        expected = (
            0.5 * differences["accuracy"].difference + 0.5 * differences["f1_macro"].difference
        )
        assert quality.difference == pytest.approx(expected)

    def test_misaligned_systems_are_rejected(self) -> None:
        """Paired statistics must have the same examples and columns."""
        with pytest.raises(ValueError, match="aligned by example"):
            paired_bootstrap(mean_statistics([1.0, 2.0]), mean_statistics([1.0]), MeanSuite())

    def test_undefined_difference_has_nan_interval_and_p_value(self) -> None:
        """If the metric is undefined for one system the comparison is undefined too."""
        frame_a = pd.DataFrame({"num": [0, 0], "den": [0, 0]})
        frame_b = pd.DataFrame({"num": [1, 1], "den": [2, 2]})
        suite = RatioSuite()
        difference = paired_bootstrap(
            suite.statistics(frame_a), suite.statistics(frame_b), suite, n_resamples=20
        )["ratio"]
        assert math.isnan(difference.difference)
        assert math.isnan(difference.ci_low)
        assert math.isnan(difference.p_value)


class TestBySlice:
    def test_slices_are_keyed_by_sorted_name_with_their_own_points(self) -> None:
        """Each slice's point is the metric over that slice's rows only."""
        stats = mean_statistics([1.0, 2.0, 3.0, 10.0])
        result = bootstrap_by_slice(stats, ["b", "a", "b", "a"], MeanSuite(), n_resamples=20)
        assert list(result) == ["a", "b"]
        assert result["a"].point.tolist() == [6.0]
        assert result["b"].point.tolist() == [2.0]
        assert (result["a"].n, result["b"].n) == (2, 2)

    def test_a_slice_does_not_depend_on_the_other_slices(self) -> None:
        """Dropping one slice leaves another slice's replicates bit-identical."""
        values = np.random.default_rng(7).random(90)
        slices = ["x", "y", "z"] * 30
        everything = bootstrap_by_slice(mean_statistics(values), slices, MeanSuite(), seed=4)
        keep = [i for i, name in enumerate(slices) if name != "y"]
        fewer = bootstrap_by_slice(
            mean_statistics(values[keep]), [slices[i] for i in keep], MeanSuite(), seed=4
        )
        assert np.array_equal(everything["z"].replicates, fewer["z"].replicates)

    def test_slices_get_independent_streams(self) -> None:
        """Two slices with identical data are resampled differently."""
        stats = mean_statistics(list(np.random.default_rng(8).random(20)) * 2)
        result = bootstrap_by_slice(stats, ["p"] * 20 + ["q"] * 20, MeanSuite())
        assert result["p"].point == result["q"].point
        assert not np.array_equal(result["p"].replicates, result["q"].replicates)

    def test_seed_changes_every_slice(self) -> None:
        """The base seed feeds each slice's stream."""
        stats = mean_statistics(np.random.default_rng(9).random(20))
        slices = ["p", "q"] * 10
        first = bootstrap_by_slice(stats, slices, MeanSuite(), seed=1)
        second = bootstrap_by_slice(stats, slices, MeanSuite(), seed=2)
        assert not np.array_equal(first["p"].replicates, second["p"].replicates)

    def test_slice_labels_must_match_the_examples(self) -> None:
        """A label list of the wrong length is rejected."""
        with pytest.raises(ValueError, match="3 slice labels for 2 examples"):
            bootstrap_by_slice(mean_statistics([1.0, 2.0]), ["a", "b", "c"], MeanSuite())

    def test_paired_by_slice_compares_within_each_slice(self) -> None:
        """Per-slice differences use only that slice's rows; identical slices give p = 1."""
        a = mean_statistics([0.0, 0.5, 0.0, 0.5])
        b = mean_statistics([0.0, 0.5, 1.0, 1.0])
        result = paired_bootstrap_by_slice(a, b, ["same", "same", "up", "up"], MeanSuite())
        assert result["same"]["mean"].difference == 0.0
        assert result["same"]["mean"].p_value == 1.0
        assert result["up"]["mean"].difference == pytest.approx(0.75)

    def test_paired_replicates_by_slice_keep_row_alignment(self) -> None:
        """Each slice's PairedReplicates has that slice's example count and both systems' points."""
        a = mean_statistics([0.0, 1.0, 0.0])
        b = mean_statistics([1.0, 1.0, 0.0])
        result = paired_replicates_by_slice(a, b, ["s", "t", "s"], MeanSuite(), n_resamples=10)
        assert result["s"].n == 2
        assert (result["s"].point_a.tolist(), result["s"].point_b.tolist()) == ([0.0], [0.5])


class TestMcNemar:
    def test_exact_binomial_p_value_by_hand(self) -> None:
        """b = 1, c = 9: p = 2 * P(X <= 1 | Bin(10, 1/2)) = 2 * 11/1024."""
        correct_a = np.array([True] * 5 + [True] + [False] * 9 + [False] * 3)
        correct_b = np.array([True] * 5 + [False] + [True] * 9 + [False] * 3)
        result = mcnemar(correct_a, correct_b)
        assert (result.b, result.c, result.statistic, result.n) == (1, 9, 1.0, 18)
        assert result.p_value == pytest.approx(22 / 1024)

    def test_no_discordant_pairs_give_p_one(self) -> None:
        """Systems that agree on every example show no evidence of a difference."""
        correct = np.array([True, False, True])
        result = mcnemar(correct, correct.copy())
        assert (result.b, result.c, result.p_value) == (0, 0, 1.0)

    def test_swapping_the_systems_swaps_the_counts(self) -> None:
        """The test is symmetric: b and c trade places and the p-value is unchanged."""
        rng = np.random.default_rng(1)
        a, b = rng.random(100) < 0.6, rng.random(100) < 0.7
        forward, backward = mcnemar(a, b), mcnemar(b, a)
        assert (forward.b, forward.c) == (backward.c, backward.b)
        assert forward.p_value == backward.p_value

    def test_agrees_with_statsmodels_exact_test(self) -> None:
        """The p-value and statistic equal statsmodels' exact McNemar on the same table."""
        contingency = pytest.importorskip("statsmodels.stats.contingency_tables")
        rng = np.random.default_rng(2)
        a, b = rng.random(300) < 0.55, rng.random(300) < 0.65
        table = [
            [np.sum(a & b), np.sum(a & ~b)],
            [np.sum(~a & b), np.sum(~a & ~b)],
        ]
        reference = contingency.mcnemar(table, exact=True)
        result = mcnemar(a, b)
        assert result.statistic == reference.statistic
        assert result.p_value == pytest.approx(reference.pvalue)

    def test_zero_one_integers_are_accepted(self) -> None:
        """0/1 integer arrays are read as booleans."""
        result = mcnemar(np.array([1, 0, 1, 1]), np.array([0, 0, 1, 0]))
        assert (result.b, result.c) == (2, 0)

    def test_lengths_must_match(self) -> None:
        """Correctness arrays of different lengths cannot be paired."""
        with pytest.raises(ValueError, match="3 examples but correct_b has 2"):
            mcnemar(np.array([True, False, True]), np.array([True, False]))

    def test_non_boolean_values_are_rejected(self) -> None:
        """Scores other than 0/1 are not correctness indicators."""
        with pytest.raises(ValueError, match="booleans"):
            mcnemar(np.array([0.5, 1.0]), np.array([1.0, 0.0]))


class TestHolm:
    def test_hand_computed_example(self) -> None:
        """p = (.01, .04, .03, .005) adjusts to (.03, .06, .06, .02) in input order."""
        assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])

    def test_adjusted_values_are_capped_at_one(self) -> None:
        """4 * 0.3 would exceed 1; the adjusted values stop at 1."""
        assert holm([0.3, 0.5, 0.9, 0.4]) == [1.0, 1.0, 1.0, 1.0]

    def test_undefined_p_values_stay_undefined_and_are_not_counted(self) -> None:
        """A NaN is not a hypothesis: the other two are adjusted as a family of two."""
        adjusted = holm([0.01, math.nan, 0.02])
        assert adjusted[0] == pytest.approx(0.02)
        assert math.isnan(adjusted[1])
        assert adjusted[2] == pytest.approx(0.02)

    def test_empty_family(self) -> None:
        """No p-values, nothing to adjust."""
        assert holm([]) == []

    def test_p_values_outside_the_unit_interval_are_rejected(self) -> None:
        """A p-value of 1.2 is a caller's bug."""
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            holm([0.1, 1.2])

    def test_agrees_with_statsmodels(self) -> None:
        """Adjusted values equal statsmodels' multipletests(method="holm")."""
        multitest = pytest.importorskip("statsmodels.stats.multitest")
        p_values = np.random.default_rng(3).random(25) ** 3
        _, reference, _, _ = multitest.multipletests(p_values, method="holm")
        assert holm(p_values.tolist()) == pytest.approx(reference.tolist())

    @given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30))
    def test_adjustment_is_bounded_and_monotone(self, p_values: list[float]) -> None:
        """p <= holm(p) <= min(1, m * p), and the adjustment preserves the order of p-values."""
        adjusted = holm(p_values)
        m = len(p_values)
        for p, q in zip(p_values, adjusted, strict=True):
            assert p <= q <= min(1.0, m * p) + 1e-12
        order = np.argsort(p_values, kind="stable")
        assert np.all(np.diff(np.asarray(adjusted)[order]) >= 0)
