"""Simulation checks: interval coverage, false-positive rate under the null, and power.

Each check simulates thousands of datasets of 200 examples. To keep that fast, a block of
datasets is stacked column-wise into one statistics matrix and a `Stacked` suite finalizes each
dataset's columns separately, so one engine call bootstraps the whole block. Datasets in a block
share resample indices, which correlates only the Monte Carlo noise of their interval endpoints;
blocks use distinct seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from pipelines.evaluation.statistics import (
    bootstrap,
    compare,
    confidence_intervals,
    mcnemar,
    paired_replicates,
)
from pipelines.evaluation.suite import FloatArray

pytestmark = pytest.mark.slow

N_EXAMPLES = 200
BLOCK = 250
Generator = np.random.Generator
BoolMatrix = np.ndarray


@dataclass(frozen=True)
class Stacked:
    """`datasets` independent copies of one metric over `width` statistics each."""

    datasets: int
    width: int
    metric: Callable[[FloatArray], FloatArray]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"dataset_{i}" for i in range(self.datasets))

    def statistics(self, scores: object) -> FloatArray:
        raise NotImplementedError

    def finalize(self, sums: FloatArray) -> FloatArray:
        return self.metric(sums.reshape(sums.shape[0], self.datasets, self.width))


def ratio_of_sums(sums: FloatArray) -> FloatArray:
    """sum(numerator) / sum(denominator); a mean when the denominator is 1 per example."""
    return sums[..., 0] / sums[..., 1]


def macro_f1(sums: FloatArray) -> FloatArray:
    """Macro-F1 over 3 classes from summed one-hot (label, prediction) cells."""
    confusion = sums.reshape(*sums.shape[:-1], 3, 3)
    true_positive = np.diagonal(confusion, axis1=-2, axis2=-1)
    f1 = 2 * true_positive / (confusion.sum(axis=-1) + confusion.sum(axis=-2))
    return f1.mean(axis=-1)


def interleave(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """(n, k) numerators and denominators -> (n, 2k) statistics, dataset by dataset."""
    return np.stack([numerator, denominator], axis=-1).reshape(numerator.shape[0], -1)


def one_hot_cells(labels: np.ndarray, predictions: np.ndarray) -> FloatArray:
    """(n, k) labels and predictions -> (n, 9k) confusion cells, dataset by dataset."""
    return np.eye(9)[labels * 3 + predictions].reshape(labels.shape[0], -1)


def predict(rng: Generator, labels: np.ndarray, skill: FloatArray | float) -> np.ndarray:
    """The label with probability `skill`, otherwise one of the two other classes at random."""
    other = (labels + rng.integers(1, 3, labels.shape)) % 3
    return np.where(rng.random(labels.shape) < skill, labels, other)


def bernoulli_scores(rng: Generator, k: int) -> FloatArray:
    """Per-example correctness with accuracy 0.7."""
    correct = (rng.random((N_EXAMPLES, k)) < 0.7).astype(float)
    return interleave(correct, np.ones_like(correct))


def skewed_scores(rng: Generator, k: int) -> FloatArray:
    """A right-skewed score in [0, 1], Beta(0.5, 3), with mean 1/7."""
    scores = rng.beta(0.5, 3.0, (N_EXAMPLES, k))
    return interleave(scores, np.ones_like(scores))


def token_ratio(rng: Generator, k: int) -> FloatArray:
    """Matched tokens over tokens, lengths 1 + Geometric(0.05), per-example rate Beta(1, 4)."""
    lengths = 1 + rng.geometric(0.05, (N_EXAMPLES, k))
    matched = rng.binomial(lengths, rng.beta(1.0, 4.0, (N_EXAMPLES, k)))
    return interleave(matched.astype(float), lengths.astype(float))


def classifier_cells(rng: Generator, k: int) -> FloatArray:
    """Uniform labels over 3 classes, each predicted right with probability 0.8."""
    labels = rng.integers(0, 3, (N_EXAMPLES, k))
    return one_hot_cells(labels, predict(rng, labels, 0.8))


@dataclass(frozen=True)
class CoverageScenario:
    """Datasets from `simulate`, whose metric's population value is `truth`."""

    name: str
    simulate: Callable[[Generator, int], FloatArray]
    width: int
    metric: Callable[[FloatArray], FloatArray]
    truth: float


COVERAGE_SCENARIOS = [
    CoverageScenario("accuracy", bernoulli_scores, 2, ratio_of_sums, 0.7),
    CoverageScenario("skewed_mean", skewed_scores, 2, ratio_of_sums, 1 / 7),
    CoverageScenario("ratio_of_sums", token_ratio, 2, ratio_of_sums, 0.2),
    # Expected confusion: 0.8/3 on the diagonal, 0.1/3 off it; every class's F1 is 0.8.
    CoverageScenario("macro_f1", classifier_cells, 9, macro_f1, 0.8),
]


def coverage(scenario: CoverageScenario, datasets: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    covered = 0
    for block in range(datasets // BLOCK):
        suite = Stacked(BLOCK, scenario.width, scenario.metric)
        replicates = bootstrap(scenario.simulate(rng, BLOCK), suite, seed=block)
        covered += sum(
            estimate.ci_low <= scenario.truth <= estimate.ci_high
            for estimate in confidence_intervals(replicates).values()
        )
    return covered / datasets


class TestCoverage:
    @pytest.mark.parametrize("scenario", COVERAGE_SCENARIOS, ids=lambda s: s.name)
    def test_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time(
        self, scenario: CoverageScenario
    ) -> None:
        """Over 4,000 datasets of 200 examples the 95% interval covers the truth 93-97% of the time.

        Percentile intervals at n = 200 cover about 94-95.5% in these scenarios; with 4,000
        datasets the Monte Carlo standard error is 0.35 points, so the bounds are ~3 SE away.
        """
        rate = coverage(scenario, datasets=4000, seed=20_240)
        assert 0.93 <= rate <= 0.97, f"{scenario.name}: coverage {rate:.4f}"


@dataclass(frozen=True)
class PairedDatasets:
    """Two systems' statistics on the same examples, and their correctness where defined."""

    a: FloatArray
    b: FloatArray
    correct_a: BoolMatrix | None = None
    correct_b: BoolMatrix | None = None


def paired_accuracy(effect: float) -> Callable[[Generator, int], PairedDatasets]:
    """Per-example difficulty shared by both systems; b's success chance is raised by `effect`."""

    def simulate(rng: Generator, k: int) -> PairedDatasets:
        skill = rng.beta(4.0, 2.0, (N_EXAMPLES, k))
        correct_a = rng.random((N_EXAMPLES, k)) < skill
        correct_b = rng.random((N_EXAMPLES, k)) < np.minimum(1.0, skill + effect)
        ones = np.ones((N_EXAMPLES, k))
        return PairedDatasets(
            interleave(correct_a.astype(float), ones),
            interleave(correct_b.astype(float), ones),
            correct_a,
            correct_b,
        )

    return simulate


def paired_macro_f1(effect: float) -> Callable[[Generator, int], PairedDatasets]:
    """A 3-class task with per-example skill shared by both systems, b's raised by `effect`."""

    def simulate(rng: Generator, k: int) -> PairedDatasets:
        labels = rng.integers(0, 3, (N_EXAMPLES, k))
        skill = rng.beta(4.0, 1.5, (N_EXAMPLES, k))
        return PairedDatasets(
            one_hot_cells(labels, predict(rng, labels, skill)),
            one_hot_cells(labels, predict(rng, labels, np.minimum(1.0, skill + effect))),
        )

    return simulate


def paired_ratio(effect: float) -> Callable[[Generator, int], PairedDatasets]:
    """Matched-token ratios on shared lengths and rates, b's rate raised by `effect`."""

    def simulate(rng: Generator, k: int) -> PairedDatasets:
        lengths = 1 + rng.geometric(0.05, (N_EXAMPLES, k))
        rate = rng.beta(1.0, 4.0, (N_EXAMPLES, k))
        matched_a = rng.binomial(lengths, rate)
        matched_b = rng.binomial(lengths, np.minimum(1.0, rate + effect))
        return PairedDatasets(
            interleave(matched_a.astype(float), lengths.astype(float)),
            interleave(matched_b.astype(float), lengths.astype(float)),
        )

    return simulate


def skewed_against_uniform(rng: Generator, k: int) -> PairedDatasets:
    """Equal means (1/4) but different distributions: Beta(1, 3) against Uniform(0, 1/2)."""
    ones = np.ones((N_EXAMPLES, k))
    return PairedDatasets(
        interleave(rng.beta(1.0, 3.0, (N_EXAMPLES, k)), ones),
        interleave(rng.uniform(0.0, 0.5, (N_EXAMPLES, k)), ones),
    )


@dataclass(frozen=True)
class PairedRates:
    """Shares of datasets where each test rejected at 5%, and where the CI covered 0."""

    swap_rejects: float
    mcnemar_rejects: float
    ci_covers_zero: float


def paired_rates(
    simulate: Callable[[Generator, int], PairedDatasets],
    width: int,
    metric: Callable[[FloatArray], FloatArray],
    datasets: int,
    seed: int,
) -> PairedRates:
    rng = np.random.default_rng(seed)
    swap_rejects = mcnemar_rejects = covers = 0
    for block in range(datasets // BLOCK):
        data = simulate(rng, BLOCK)
        paired = paired_replicates(
            data.a, data.b, Stacked(BLOCK, width, metric), seed=block, n_permutations=999
        )
        differences = compare(paired).values()
        swap_rejects += sum(d.p_value < 0.05 for d in differences)
        covers += sum(d.ci_low <= 0.0 <= d.ci_high for d in differences)
        if data.correct_a is not None and data.correct_b is not None:
            mcnemar_rejects += sum(
                mcnemar(data.correct_a[:, j], data.correct_b[:, j]).p_value < 0.05
                for j in range(BLOCK)
            )
    return PairedRates(swap_rejects / datasets, mcnemar_rejects / datasets, covers / datasets)


class TestFalsePositiveRate:
    def test_accuracy_under_the_null(self) -> None:
        """Same-skill systems: swap test and McNemar reject at most ~5% (<= 6.5%) of 2,000 runs."""
        rates = paired_rates(paired_accuracy(0.0), 2, ratio_of_sums, datasets=2000, seed=1)
        assert rates.swap_rejects <= 0.065
        assert rates.mcnemar_rejects <= 0.065
        assert rates.ci_covers_zero >= 0.93

    def test_macro_f1_under_the_null(self) -> None:
        """The swap test stays calibrated for macro-F1, a non-linear function of the sums."""
        rates = paired_rates(paired_macro_f1(0.0), 9, macro_f1, datasets=2000, seed=2)
        assert rates.swap_rejects <= 0.065
        assert rates.ci_covers_zero >= 0.93

    def test_ratio_of_sums_under_the_null(self) -> None:
        """The swap test stays calibrated for a ratio of sums with heavy-tailed denominators."""
        rates = paired_rates(paired_ratio(0.0), 2, ratio_of_sums, datasets=2000, seed=3)
        assert rates.swap_rejects <= 0.065
        assert rates.ci_covers_zero >= 0.93

    def test_equal_means_from_different_distributions(self) -> None:
        """Systems that are not exchangeable but have equal means are rejected at most ~5%."""
        rates = paired_rates(skewed_against_uniform, 2, ratio_of_sums, datasets=2000, seed=4)
        assert rates.swap_rejects <= 0.065
        assert rates.ci_covers_zero >= 0.93


class TestPower:
    def test_accuracy_gain_is_detected(self) -> None:
        """A clear accuracy gain (skill + 0.15) is detected by both tests in > 80% of runs."""
        rates = paired_rates(paired_accuracy(0.15), 2, ratio_of_sums, datasets=500, seed=5)
        assert rates.swap_rejects > 0.8
        assert rates.mcnemar_rejects > 0.8
        assert rates.ci_covers_zero < 0.2

    def test_macro_f1_gain_is_detected(self) -> None:
        """A clear macro-F1 gain (skill + 0.15) is detected in > 80% of runs."""
        rates = paired_rates(paired_macro_f1(0.15), 9, macro_f1, datasets=500, seed=6)
        assert rates.swap_rejects > 0.8
        assert rates.ci_covers_zero < 0.2

    def test_ratio_gain_is_detected(self) -> None:
        """A clear gain in a token ratio (rate + 0.03) is detected in > 80% of runs."""
        rates = paired_rates(paired_ratio(0.03), 2, ratio_of_sums, datasets=500, seed=7)
        assert rates.swap_rejects > 0.8
        assert rates.ci_covers_zero < 0.2
