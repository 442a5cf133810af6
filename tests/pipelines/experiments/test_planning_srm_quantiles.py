"""Sample-size planning, the sample-ratio check and the p95 difference on literal inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.experiments.planning import plan_sample_size
from pipelines.experiments.quantiles import p95_difference
from pipelines.experiments.srm import sample_ratio_mismatch


class TestPlanning:
    def test_fixed_horizon_n_is_the_z_test_size(self) -> None:
        """((1.96 + 0.8416) · 1 / 0.1)² = 784.9 pairs; twice that per arm for an A/B split."""
        paired = plan_sample_size(mde=0.1, sd=1.0)
        assert paired.fixed_n == 785
        assert plan_sample_size(mde=0.1, sd=1.0, paired=False).fixed_n == 1_570
        assert (paired.mde, paired.sd, paired.alpha, paired.power) == (0.1, 1.0, 0.05, 0.8)

    def test_sequential_n_costs_more_than_fixed_and_scales_with_the_effect(self) -> None:
        small = plan_sample_size(mde=0.05, sd=1.0)
        large = plan_sample_size(mde=0.2, sd=1.0)
        assert small.sequential_n > small.fixed_n
        assert large.sequential_n > large.fixed_n
        assert small.sequential_n > large.sequential_n
        assert plan_sample_size(mde=-0.05, sd=1.0).sequential_n == small.sequential_n

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"mde": 0.0, "sd": 1.0}, "mde"),
            ({"mde": 0.1, "sd": 0.0}, "sd"),
            ({"mde": 0.1, "sd": 1.0, "power": 1.0}, "power"),
        ],
    )
    def test_rejects_bad_input(self, kwargs: dict[str, Any], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            plan_sample_size(**kwargs)


class TestSampleRatioMismatch:
    def test_a_52_48_split_of_20000_is_a_mismatch(self) -> None:
        result = sample_ratio_mismatch(
            {"control": 10_400, "treatment": 9_600}, {"control": 0.5, "treatment": 0.5}
        )
        assert result.chi2 == pytest.approx(32.0)
        assert result.p_value < 1e-6
        assert result.mismatch

    def test_a_fair_split_is_not(self) -> None:
        result = sample_ratio_mismatch(
            {"control": 10_050, "treatment": 9_950}, {"control": 0.5, "treatment": 0.5}
        )
        assert result.chi2 == pytest.approx(0.5)
        assert not result.mismatch

    def test_uneven_configured_shares_and_missing_variants(self) -> None:
        shares = {"champion": 0.9, "challenger": 0.1}
        assert not sample_ratio_mismatch({"champion": 9_000, "challenger": 1_000}, shares).mismatch
        assert sample_ratio_mismatch({"champion": 9_000}, shares).mismatch
        empty = sample_ratio_mismatch({}, shares)
        assert (empty.chi2, empty.p_value, empty.mismatch) == (0.0, 1.0, False)

    @pytest.mark.parametrize(
        ("counts", "shares", "match"),
        [
            ({"a": 1, "c": 2}, {"a": 0.5, "b": 0.5}, "without an expected share"),
            ({"a": 1}, {"a": 0.6, "b": 0.6}, "add up to 1"),
            ({"a": 1}, {"a": 1.0}, "at least two"),
            ({"a": -1}, {"a": 0.5, "b": 0.5}, "non-negative"),
        ],
    )
    def test_rejects_bad_input(
        self, counts: dict[str, int], shares: dict[str, float], match: str
    ) -> None:
        with pytest.raises(ValueError, match=match):
            sample_ratio_mismatch(counts, shares)


class TestP95Difference:
    def test_point_values_and_reproducibility(self) -> None:
        control = np.arange(1.0, 101.0)
        treatment = control + 10.0
        result = p95_difference(control, treatment, seed=1, resamples=500)
        assert result.control == pytest.approx(np.quantile(control, 0.95))
        assert result.difference == pytest.approx(10.0)
        assert result.ci_low <= 10.0 <= result.ci_high
        assert result == p95_difference(control, treatment, seed=1, resamples=500)
        assert (result.n_control, result.n_treatment, result.resamples) == (100, 100, 500)

    def test_pairing_by_request_narrows_the_interval(self) -> None:
        rng = np.random.default_rng(9)
        control = rng.lognormal(0.0, 0.5, 2_000)
        treatment = control * 1.1
        unpaired = p95_difference(control, treatment, seed=2, resamples=300)
        paired = p95_difference(control, treatment, seed=2, resamples=300, paired=True)
        assert paired.ci_high - paired.ci_low < (unpaired.ci_high - unpaired.ci_low) / 5
        assert paired.ci_low > 0.0
        assert paired.method == "percentile bootstrap, paired by request"

    def test_covers_the_true_difference_most_of_the_time(self) -> None:
        """Exponential latencies, p95 = -ln(0.05) · scale; 60 datasets of 400 per side."""
        rng = np.random.default_rng(10)
        truth = -np.log(0.05) * (1.2 - 1.0)
        covered = 0
        for seed in range(60):
            control = rng.exponential(1.0, 400)
            treatment = rng.exponential(1.2, 400)
            result = p95_difference(control, treatment, seed=seed, resamples=300)
            covered += result.ci_low <= truth <= result.ci_high
        assert covered >= 52  # 95% nominal, 60 datasets: within a few misses

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError, match="same length"):
            p95_difference([1.0, 2.0, 3.0], [1.0, 2.0], seed=0, paired=True)
        with pytest.raises(ValueError, match="at least 2"):
            p95_difference([1.0], [1.0, 2.0], seed=0)
