"""The always-valid tests, McNemar and Holm on literal inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from pipelines.evaluation.statistics import mcnemar
from pipelines.experiments.sequential import (
    TUNE_N,
    SampleStats,
    holm_across_slices,
    mcnemar_test,
    mixture_rho,
    paired_test,
    two_sample_test,
)


class TestSampleStats:
    def test_from_values(self) -> None:
        stats = SampleStats.from_values([1.0, 2.0, 3.0, 4.0])
        assert stats.n == 4
        assert stats.mean == pytest.approx(2.5)
        assert stats.variance == pytest.approx(5.0 / 3.0)

    def test_empty_and_single(self) -> None:
        assert SampleStats.from_values([]) == SampleStats(0, 0.0, 0.0)
        assert SampleStats.from_values([7.0]) == SampleStats(1, 7.0, 0.0)

    def test_merge_equals_the_stats_of_both_samples(self) -> None:
        a, b = [0.5, 1.5, -2.0], [3.0, 4.0, 10.0, -1.0, 0.0]
        merged = SampleStats.from_values(a).merge(SampleStats.from_values(b))
        whole = SampleStats.from_values(a + b)
        assert merged.n == whole.n
        assert merged.mean == pytest.approx(whole.mean)
        assert merged.variance == pytest.approx(whole.variance)
        assert SampleStats(0, 0.0, 0.0).merge(whole) == whole

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            SampleStats.from_values([1.0, math.nan])
        with pytest.raises(ValueError, match="one-dimensional"):
            SampleStats.from_values([[1.0, 2.0]])


class TestPairedTest:
    def test_interval_is_the_normal_mixture_boundary_in_eppos_form(self) -> None:
        """x̂ ± σ/√t · (1/√t)·√((t+ρ)·log((t+ρ)/(ρα²))), ρ from N_tune = 10,000."""
        stats = SampleStats(n=2_500, mean=0.05, variance=1.0)
        result = paired_test(stats)
        alpha, t = 0.05, 2_500.0
        rho = TUNE_N / (math.log(math.log(math.e / alpha**2)) - 2.0 * math.log(alpha))
        assert mixture_rho(alpha) == pytest.approx(rho)
        width = (1.0 / math.sqrt(t)) * math.sqrt((t + rho) * math.log((t + rho) / (rho * alpha**2)))
        width /= math.sqrt(t)
        assert result.ci_low == pytest.approx(0.05 - width)
        assert result.ci_high == pytest.approx(0.05 + width)
        assert result.n == 2_500
        assert result.estimate == 0.05

    def test_p_value_is_one_over_the_mixture_likelihood_ratio(self) -> None:
        """Johari et al.'s Λ with σ² = 1, τ² = 0.01, n = 400, x̄ = 0.2."""
        result = paired_test(SampleStats(400, 0.2, 1.0), tau=0.1)
        n, s2, t2, x = 400.0, 1.0, 0.01, 0.2
        lam = math.sqrt(s2 / (s2 + n * t2)) * math.exp(
            n * n * t2 * x * x / (2 * s2 * (s2 + n * t2))
        )
        assert result.e_value == pytest.approx(lam)
        assert result.p_value == pytest.approx(1.0 / lam)
        assert result.decision == "better"
        assert result.ci_low > 0.0

    def test_interval_and_p_value_agree(self) -> None:
        rng = np.random.default_rng(3)
        for effect in np.linspace(-0.2, 0.2, 21):
            result = paired_test(rng.normal(effect, 1.0, 300))
            excludes_zero = result.ci_low > 0.0 or result.ci_high < 0.0
            assert excludes_zero == (result.p_value <= 0.05)

    def test_values_and_stats_give_the_same_result(self) -> None:
        values = np.random.default_rng(5).normal(0.1, 1.0, 500)
        assert paired_test(values) == paired_test(SampleStats.from_values(values))

    def test_worse(self) -> None:
        result = paired_test(SampleStats(1_000, -0.3, 1.0))
        assert result.decision == "worse"
        assert result.ci_high < 0.0

    def test_below_min_n_shows_the_estimate_without_an_interval(self) -> None:
        result = paired_test(SampleStats(29, 5.0, 1.0))
        assert result.decision == "inconclusive"
        assert (result.ci_low, result.ci_high, result.p_value) == (-math.inf, math.inf, 1.0)
        assert result.estimate == 5.0
        assert "below the minimum n" in result.method

    def test_no_spread_gives_no_interval(self) -> None:
        result = paired_test(np.zeros(100))
        assert (result.ci_low, result.ci_high, result.p_value) == (-math.inf, math.inf, 1.0)
        assert result.decision == "inconclusive"

    def test_binary_differences_get_a_variance_floor(self) -> None:
        result = paired_test(np.zeros(100), binary=True)
        assert math.isfinite(result.ci_low)
        assert math.isfinite(result.ci_high)
        assert result.ci_low < 0.0 < result.ci_high
        all_better = paired_test(np.ones(100), binary=True)
        assert all_better.decision == "better"

    def test_previous_look_intersects_and_keeps_the_smallest_p(self) -> None:
        first = paired_test(SampleStats(1_000, 0.2, 1.0))
        assert first.decision == "better"
        second = paired_test(SampleStats(2_000, 0.05, 1.0), previous=first)
        alone = paired_test(SampleStats(2_000, 0.05, 1.0))
        assert second.ci_low == max(first.ci_low, alone.ci_low)
        assert second.ci_high == min(first.ci_high, alone.ci_high)
        assert second.p_value == min(first.p_value, alone.p_value)
        assert second.decision == "better"  # once called, the call stays

    def test_a_look_below_min_n_does_not_narrow_later_ones(self) -> None:
        early = paired_test(SampleStats(10, 3.0, 0.01))
        later = paired_test(SampleStats(100, 0.0, 1.0), previous=early)
        assert later == paired_test(SampleStats(100, 0.0, 1.0))

    def test_rejects_bad_parameters(self) -> None:
        with pytest.raises(ValueError, match="alpha"):
            paired_test([1.0, 2.0], alpha=1.5)
        with pytest.raises(ValueError, match="tau"):
            paired_test([1.0, 2.0], tau=0.0)


class TestTwoSampleTest:
    def test_difference_of_means_with_welch_variance(self) -> None:
        control = SampleStats(5_000, 0.30, 0.21)
        treatment = SampleStats(5_000, 0.34, 0.2244)
        result = two_sample_test(control, treatment, tau=0.05)
        v = 0.21 / 5_000 + 0.2244 / 5_000
        t2, x = 0.0025, 0.04
        log_lam = 0.5 * math.log(v / (v + t2)) + t2 * x * x / (2 * v * (v + t2))
        assert result.estimate == pytest.approx(0.04)
        assert result.n == 10_000
        assert result.e_value == pytest.approx(math.exp(log_lam))
        assert result.decision == "better"

    def test_binary_floor_when_an_arm_has_no_errors(self) -> None:
        result = two_sample_test(np.ones(200), np.ones(200), binary=True)
        assert math.isfinite(result.ci_low)
        assert result.ci_low < 0.0 < result.ci_high
        assert result.decision == "inconclusive"

    def test_binary_rejects_non_binary_values(self) -> None:
        with pytest.raises(ValueError, match="0/1"):
            two_sample_test([2.0, 3.0], [0.0, 1.0], binary=True)

    def test_min_n_is_per_arm(self) -> None:
        result = two_sample_test(SampleStats(10_000, 0.0, 1.0), SampleStats(20, 5.0, 1.0))
        assert result.decision == "inconclusive"
        assert result.ci_low == -math.inf


class TestMcNemar:
    def test_matches_the_exact_binomial_test_and_the_evaluation_slice(self) -> None:
        result = mcnemar_test(100, 5, 20, 10)
        assert result.n == 135
        assert result.difference == pytest.approx(15 / 135)
        assert result.p_value == pytest.approx(scipy_stats.binomtest(20, 25).pvalue)
        a = np.array([True] * 100 + [True] * 5 + [False] * 20 + [False] * 10)
        b = np.array([True] * 100 + [False] * 5 + [True] * 20 + [False] * 10)
        assert result.p_value == pytest.approx(mcnemar(a, b).p_value)
        assert result.ci_low > 0.0

    def test_interval_excludes_zero_exactly_when_p_is_below_alpha(self) -> None:
        for only_a in range(0, 15, 2):
            for only_b in range(1, 15, 2):
                result = mcnemar_test(50, only_a, only_b, 5)
                excludes = result.ci_low > 0.0 or result.ci_high < 0.0
                assert excludes == (result.p_value <= 0.05), (only_a, only_b)
                assert result.ci_low <= result.difference <= result.ci_high

    def test_no_discordant_pairs(self) -> None:
        result = mcnemar_test(10, 0, 0, 3)
        assert (result.p_value, result.ci_low, result.ci_high) == (1.0, -1.0, 1.0)

    def test_rejects_negative_cells(self) -> None:
        with pytest.raises(ValueError, match="only_a"):
            mcnemar_test(1, -1, 0, 0)


def test_holm_across_slices() -> None:
    adjusted = holm_across_slices({"en": 0.01, "de": 0.04, "fr": 0.03, "empty": math.nan})
    assert adjusted["en"] == pytest.approx(0.03)
    assert adjusted["fr"] == pytest.approx(0.06)
    assert adjusted["de"] == pytest.approx(0.06)
    assert math.isnan(adjusted["empty"])
