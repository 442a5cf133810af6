"""Coverage of StreamFlow's confidence intervals, and the error rates of its comparison verdict.

    uv run python -m bench.statistics_coverage            # writes docs/statistics.md
    uv run python -m bench.statistics_coverage --quick    # fewer datasets, prints only

Seeded simulations, n from 30 to 1,000, for every metric family: proportions (Wilson, exact
binomial coverage), means of per-example scores, corpus BLEU and chrF (resampled from real
scored text pairs), macro / weighted averages over classes (with a 2%-prevalence class), and
the quality score. Each scenario simulates many datasets of n examples whose population value
is known, computes the product's 95% interval on each, and counts how often it covers the
truth; the percentile bootstrap is shown beside it for reference. The paired part simulates two
exchangeable systems and counts how often the verdict calls a difference (primary metric) and
how often any secondary metric is called different after Holm (family-wise rate).

The same scenarios back `tests/pipelines/evaluation/test_interval_coverage.py` with fewer
datasets. Datasets are stacked column-wise into one statistics matrix (a `Stacked` suite
finalizes each dataset separately), so one engine call bootstraps a whole block of datasets.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats

from pipelines.evaluation import intervals
from pipelines.evaluation.statistics import (
    bootstrap_studentized,
    compare,
    confidence_intervals,
    paired_replicates,
    studentized_intervals,
    wilson_interval,
)
from pipelines.evaluation.suite import FloatArray

Generator = np.random.Generator
Metric = Callable[[FloatArray], FloatArray]
"""Summed statistics of shape (..., width) to metric values of shape (...)."""

SIZES: tuple[int, ...] = (30, 50, 100, 300, 500, 1000)
CONFIDENCE = 0.95
ALPHA = 1.0 - CONFIDENCE


@dataclass(frozen=True)
class Stacked:
    """`datasets` independent copies of one metric over `width` statistics each."""

    datasets: int
    width: int
    metric: Metric

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"dataset_{i}" for i in range(self.datasets))

    def statistics(self, scores: object) -> FloatArray:
        raise NotImplementedError("simulated statistics are given directly")

    def finalize(self, sums: FloatArray) -> FloatArray:
        rows = np.atleast_2d(sums)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.metric(rows.reshape(rows.shape[0], self.datasets, self.width))


# -- metrics of summed statistics ------------------------------------------------------------


def ratio_of_sums(sums: FloatArray) -> FloatArray:
    """sum(value) / sum(1): a mean of per-example scores."""
    return sums[..., 0] / sums[..., 1]


def _divide(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, numerator / safe)


def _per_class(sums: FloatArray, k: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(precision, recall, f1, support) per class from summed one-hot confusion cells."""
    confusion = sums.reshape(*sums.shape[:-1], k, k)
    hit = np.diagonal(confusion, axis1=-2, axis2=-1)
    true, pred = confusion.sum(axis=-1), confusion.sum(axis=-2)
    return _divide(hit, pred), _divide(hit, true), _divide(2 * hit, true + pred), true


def _macro(f1: FloatArray, support: FloatArray) -> FloatArray:
    """The mean F1 over the classes with support, as the product's macro averages are."""
    present = support > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray((f1 * present).sum(axis=-1) / present.sum(axis=-1), dtype=np.float64)


def macro_f1(k: int) -> Metric:
    def metric(sums: FloatArray) -> FloatArray:
        _, _, f1, support = _per_class(sums, k)
        return _macro(f1, support)

    return metric


def weighted_f1(k: int) -> Metric:
    def metric(sums: FloatArray) -> FloatArray:
        _, _, f1, support = _per_class(sums, k)
        return np.asarray((f1 * support).sum(axis=-1) / support.sum(axis=-1), dtype=np.float64)

    return metric


def classification_quality(k: int) -> Metric:
    """The intent classifier's default quality score: 0.5 macro-F1 + 0.3 accuracy + 0.2 weighted."""

    def metric(sums: FloatArray) -> FloatArray:
        _, _, f1, support = _per_class(sums, k)
        confusion = sums.reshape(*sums.shape[:-1], k, k)
        accuracy = np.diagonal(confusion, axis1=-2, axis2=-1).sum(axis=-1) / confusion.sum(
            axis=(-2, -1)
        )
        weighted = (f1 * support).sum(axis=-1) / support.sum(axis=-1)
        return np.asarray(
            0.5 * _macro(f1, support) + 0.3 * accuracy + 0.2 * weighted, dtype=np.float64
        )

    return metric


def corpus_bleu(sums: FloatArray) -> FloatArray:
    from pipelines.evaluation.text_metrics import bleu_from_statistics

    flat = sums.reshape(-1, sums.shape[-1])
    return np.asarray(bleu_from_statistics(flat)).reshape(sums.shape[:-1])


def corpus_chrf(sums: FloatArray) -> FloatArray:
    from pipelines.evaluation.text_metrics import chrf_from_statistics

    flat = sums.reshape(-1, sums.shape[-1])
    return np.asarray(chrf_from_statistics(flat)).reshape(sums.shape[:-1])


def text_quality(sums: FloatArray) -> FloatArray:
    """0.5 chrF / 100 + 0.5 mean sentence score (the pool's 'rouge-like' column)."""
    return 0.5 * corpus_chrf(sums[..., 2:]) / 100.0 + 0.5 * ratio_of_sums(sums[..., :2])


# -- data ---------------------------------------------------------------------------------


@cache
def text_pool(size: int = 3000, seed: int = 11) -> FloatArray:
    """Per-pair statistics of real scored text: [rouge-like score, 1, BLEU (10), chrF (18)].

    Synthetic model outputs and references (bench.metrics_bench.generate_pairs), scored by the
    product's BLEU and chrF. The sentence chrF / 100 stands in for a per-example ROUGE score.
    """
    from bench.metrics_bench import generate_pairs
    from pipelines.evaluation.text_metrics import (
        BLEU_STAT_COLUMNS,
        CHRF_STAT_COLUMNS,
        score_text_generation,
    )

    predictions, references = generate_pairs(size, seed=seed)
    scores = score_text_generation(predictions, references)
    return np.column_stack(
        [
            scores["chrf"].to_numpy(np.float64) / 100.0,
            np.ones(size),
            scores.loc[:, list(BLEU_STAT_COLUMNS)].to_numpy(np.float64),
            scores.loc[:, list(CHRF_STAT_COLUMNS)].to_numpy(np.float64),
        ]
    )


def _stack(per_dataset: FloatArray) -> FloatArray:
    """(n, datasets, width) -> (n, datasets * width)."""
    return per_dataset.reshape(per_dataset.shape[0], -1)


def _pool_sampler(columns: slice) -> Callable[[Generator, int, int], FloatArray]:
    def simulate(rng: Generator, n: int, datasets: int) -> FloatArray:
        pool = text_pool()[:, columns]
        return _stack(pool[rng.integers(0, pool.shape[0], (n, datasets))])

    return simulate


def _pool_truth(columns: slice, metric: Metric) -> Callable[[], float]:
    def truth() -> float:
        return float(metric(text_pool()[:, columns].sum(axis=0)))

    return truth


def _beta_sampler(a: float, b: float, zero_share: float = 0.0) -> Callable[..., FloatArray]:
    def simulate(rng: Generator, n: int, datasets: int) -> FloatArray:
        scores = rng.beta(a, b, (n, datasets))
        if zero_share:
            scores = np.where(rng.random((n, datasets)) < zero_share, 0.0, scores)
        return _stack(np.stack([scores, np.ones_like(scores)], axis=-1))

    return simulate


def _classes(prevalence: Sequence[float], skill: float) -> Callable[..., FloatArray]:
    """One-hot confusion cells: labels by `prevalence`, right with probability `skill`, else a
    uniformly chosen other class."""
    k = len(prevalence)

    def simulate(rng: Generator, n: int, datasets: int) -> FloatArray:
        labels = rng.choice(k, size=(n, datasets), p=np.asarray(prevalence))
        other = (labels + rng.integers(1, k, labels.shape)) % k
        predictions = np.where(rng.random(labels.shape) < skill, labels, other)
        return _stack(np.eye(k * k)[labels * k + predictions])

    return simulate


def _expected_cells(prevalence: Sequence[float], skill: float) -> FloatArray:
    k = len(prevalence)
    cells = np.zeros((k, k))
    for c, share in enumerate(prevalence):
        cells[c] = share * (1.0 - skill) / (k - 1)
        cells[c, c] = share * skill
    return cells.reshape(-1)


def _text_quality_columns() -> FloatArray:
    pool = text_pool()
    return np.column_stack([pool[:, 0:2], pool[:, 12:30]])


def _text_quality_sample(rng: Generator, n: int, datasets: int) -> FloatArray:
    pool = _text_quality_columns()
    return _stack(pool[rng.integers(0, pool.shape[0], (n, datasets))])


@dataclass(frozen=True)
class Scenario:
    """Datasets from `simulate(rng, n, datasets)` whose metric's population value is `truth()`."""

    family: intervals.Family
    name: str
    description: str
    width: int
    metric: Metric
    simulate: Callable[[Generator, int, int], FloatArray]
    truth: Callable[[], float]
    upper: float = 1.0
    metric_name: str = ""
    """The product metric the scenario stands for (its flags); the family's if empty."""
    parts: tuple[str, ...] = ()
    """For a composite: the metrics it weighs (its flags need theirs)."""

    def unflagged_n(self, min_n: int = intervals.DEFAULT_MIN_N) -> int:
        """The smallest n at which the product shows this interval without any flag."""
        return max(min_n, intervals.reliable_n(self.product_metric, self.parts))

    @property
    def product_metric(self) -> str:
        return self.metric_name or _family_metric(self.family)

    def flags(self, n: int) -> list[str]:
        return intervals.flags(
            self.product_metric, n=n, value=0.0, ci_low=0.0, ci_high=0.0, parts=self.parts
        )


_RARE = (0.5, 0.3, 0.18, 0.02)
_BALANCED = (1 / 3, 1 / 3, 1 / 3)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "mean",
        "skewed mean",
        "Beta(0.5, 3) scores, mean 1/7 (a low ROUGE-2-like score)",
        2,
        ratio_of_sums,
        _beta_sampler(0.5, 3.0),
        lambda: 1 / 7,
    ),
    Scenario(
        "mean",
        "zero-inflated mean",
        "30% zeros, otherwise Beta(2, 2): mean 0.35",
        2,
        ratio_of_sums,
        _beta_sampler(2.0, 2.0, zero_share=0.3),
        lambda: 0.35,
    ),
    Scenario(
        "mean",
        "sentence chrF mean",
        "mean of sentence chrF / 100 over real scored text pairs",
        2,
        ratio_of_sums,
        _pool_sampler(slice(0, 2)),
        _pool_truth(slice(0, 2), ratio_of_sums),
    ),
    Scenario(
        "corpus",
        "corpus BLEU",
        "corpus BLEU of real scored text pairs (edited, exact, unrelated outputs)",
        10,
        corpus_bleu,
        _pool_sampler(slice(2, 12)),
        _pool_truth(slice(2, 12), corpus_bleu),
        upper=100.0,
    ),
    Scenario(
        "corpus",
        "corpus chrF",
        "corpus chrF of the same pairs",
        18,
        corpus_chrf,
        _pool_sampler(slice(12, 30)),
        _pool_truth(slice(12, 30), corpus_chrf),
        upper=100.0,
    ),
    Scenario(
        "average",
        "macro-F1, balanced",
        "3 balanced classes, each predicted right with probability 0.8",
        9,
        macro_f1(3),
        _classes(_BALANCED, 0.8),
        lambda: float(macro_f1(3)(_expected_cells(_BALANCED, 0.8))),
    ),
    Scenario(
        "average",
        "macro-F1, rare class",
        "4 classes with prevalence 50/30/18/2%, skill 0.8 (the mean over the classes present)",
        16,
        macro_f1(4),
        _classes(_RARE, 0.8),
        lambda: float(macro_f1(4)(_expected_cells(_RARE, 0.8))),
    ),
    Scenario(
        "average",
        "weighted F1, rare class",
        "the same 4 classes, support-weighted F1",
        16,
        weighted_f1(4),
        _classes(_RARE, 0.8),
        lambda: float(weighted_f1(4)(_expected_cells(_RARE, 0.8))),
    ),
    Scenario(
        "composite",
        "quality score, classifier",
        "0.5 macro-F1 + 0.3 accuracy + 0.2 weighted F1, rare-class data",
        16,
        classification_quality(4),
        _classes(_RARE, 0.8),
        lambda: float(classification_quality(4)(_expected_cells(_RARE, 0.8))),
        parts=("f1_macro", "accuracy", "f1_weighted"),
    ),
    Scenario(
        "composite",
        "quality score, text",
        "0.5 corpus chrF / 100 + 0.5 mean sentence score, real text pairs",
        20,
        text_quality,
        _text_quality_sample,
        lambda: float(text_quality(_text_quality_columns().sum(axis=0))),
        parts=("chrf", "rougeL_f"),
    ),
)


# -- coverage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    """Shares of `datasets` intervals that covered the truth, and how many had none."""

    n: int
    datasets: int
    product: float
    percentile: float
    no_interval: float

    @property
    def standard_error(self) -> float:
        return math.sqrt(max(self.product * (1 - self.product), 0.05 * 0.95) / self.datasets)


def coverage(
    scenario: Scenario,
    n: int,
    *,
    datasets: int,
    n_resamples: int,
    seed: int,
    block: int = 100,
) -> Coverage:
    """Simulated coverage of the product's interval (and the percentile one) at n examples.

    A dataset without an interval counts as not covering: the product shows a flag there, not
    an interval, and the table says how often.
    """
    rng = np.random.default_rng([seed, n])
    truth = scenario.truth()
    bounds = (0.0, scenario.upper)
    covered = percentile = missing = 0
    done = 0
    while done < datasets:
        size = min(block, datasets - done)
        suite = Stacked(size, scenario.width, scenario.metric)
        statistics = scenario.simulate(rng, n, size)
        result = bootstrap_studentized(
            statistics, suite, n_resamples=n_resamples, seed=seed * 1_000_003 + done
        )
        product = studentized_intervals(
            result, confidence=CONFIDENCE, bounds=dict.fromkeys(suite.names, bounds)
        )
        plain = confidence_intervals(result.plain(), confidence=CONFIDENCE)
        for name in suite.names:
            estimate = product[name]
            if math.isnan(estimate.ci_low):
                missing += 1
            elif estimate.ci_low <= truth <= estimate.ci_high:
                covered += 1
            reference = plain[name]
            percentile += int(reference.ci_low <= truth <= reference.ci_high)
        done += size
    return Coverage(n, datasets, covered / datasets, percentile / datasets, missing / datasets)


def wilson_coverage(p: float, n: int) -> float:
    """Exact coverage of the 95% Wilson interval for a proportion p at n trials."""
    total = 0.0
    pmf = scipy_stats.binom.pmf(np.arange(n + 1), n, p)
    for k in range(n + 1):
        estimate = wilson_interval(k, n, confidence=CONFIDENCE)
        if estimate.ci_low <= p <= estimate.ci_high:
            total += float(pmf[k])
    return total


# -- the verdict under the null ------------------------------------------------------------


def _exchangeable_scores(
    rng: Generator, n: int, datasets: int, metrics: int
) -> tuple[FloatArray, FloatArray]:
    """Two systems with the same score distribution given a shared per-example difficulty."""
    difficulty = rng.beta(2.0, 2.0, (n, datasets, 1))
    a = rng.beta(1.0 + 4.0 * difficulty, 2.0, (n, datasets, metrics))
    b = rng.beta(1.0 + 4.0 * difficulty, 2.0, (n, datasets, metrics))
    ones = np.ones((n, datasets, 1))
    return (
        np.concatenate([a, ones], axis=-1).reshape(n, -1),
        np.concatenate([b, ones], axis=-1).reshape(n, -1),
    )


def multi_mean(metrics: int) -> Metric:
    def metric(sums: FloatArray) -> FloatArray:
        return sums[..., :metrics] / sums[..., metrics : metrics + 1]

    return metric


@dataclass(frozen=True)
class StackedMulti:
    """`datasets` copies of `metrics` means each: names dataset_i/metric_j."""

    datasets: int
    metrics: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f"{i}/{j}" for i in range(self.datasets) for j in range(self.metrics))

    def statistics(self, scores: object) -> FloatArray:
        raise NotImplementedError("simulated statistics are given directly")

    def finalize(self, sums: FloatArray) -> FloatArray:
        rows = np.atleast_2d(sums).reshape(-1, self.datasets, self.metrics + 1)
        return (rows[..., : self.metrics] / rows[..., self.metrics :]).reshape(rows.shape[0], -1)


@dataclass(frozen=True)
class NullRates:
    """Under two exchangeable systems: share of datasets where the primary verdict called a
    difference, and where any secondary metric (Holm across metrics x slices) did."""

    n: int
    datasets: int
    family_size: int
    primary: float
    family_wise: float
    interval_disagreements: int


def null_rates(
    n: int, *, datasets: int, metrics: int = 5, slices: int = 4, seed: int = 0, block: int = 100
) -> NullRates:
    """False-positive rates of the verdict under a global null.

    Each dataset has `metrics` mean scores (metric 0 is the primary) and `slices` equal slices;
    the secondary family is the other overall metrics plus every metric in every slice, Holm-
    adjusted together, as `decision.secondary_family` does in the product.
    """
    from pipelines.evaluation.decision import significant_after_holm

    rng = np.random.default_rng([seed, n, 7])
    family = (metrics - 1) + metrics * slices
    swaps = max(999, math.ceil(2 * family / ALPHA))
    primary_hits = family_hits = disagreements = 0
    done = 0
    labels = np.arange(n) % slices
    while done < datasets:
        size = min(block, datasets - done)
        suite = StackedMulti(size, metrics)
        a, b = _exchangeable_scores(rng, n, size, metrics)
        parts = [
            compare(
                paired_replicates(
                    a, b, suite, n_resamples=1, n_permutations=swaps, seed=seed + done
                ),
                confidence=CONFIDENCE,
            )
        ]
        for s in range(slices):
            rows = labels == s
            parts.append(
                compare(
                    paired_replicates(
                        a[rows],
                        b[rows],
                        suite,
                        n_resamples=1,
                        n_permutations=swaps,
                        seed=seed + done + 1000 * (s + 1),
                    ),
                    confidence=CONFIDENCE,
                )
            )
        for i in range(size):
            primary = parts[0][f"{i}/0"]
            called = primary.p_value <= ALPHA
            excludes = not (primary.ci_low <= 0.0 <= primary.ci_high)
            disagreements += int(called != excludes)
            primary_hits += int(called)
            secondary = [parts[0][f"{i}/{j}"].p_value for j in range(1, metrics)] + [
                part[f"{i}/{j}"].p_value for part in parts[1:] for j in range(metrics)
            ]
            family_hits += int(any(significant_after_holm(secondary, ALPHA)))
        done += size
    return NullRates(
        n, datasets, family, primary_hits / datasets, family_hits / datasets, disagreements
    )


# -- the document --------------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def build_document(*, datasets: int, n_resamples: int, null_datasets: int) -> str:
    started = time.perf_counter()
    lines: list[str] = []
    add = lines.append
    add("# Statistics: intervals, flags and the comparison verdict")
    add("")
    add("Generated by `uv run python -m bench.statistics_coverage`; do not edit by hand.")
    add(f"Simulation: {datasets} datasets per cell, {n_resamples} bootstrap resamples, seeded.")
    add("")
    add("## Interval method per metric family")
    add("")
    add("| family | metrics | method | shown without `interval_unreliable` from n = |")
    add("|---|---|---|---|")
    members = {
        "proportion": (
            "accuracy, exact_match, precision_micro, recall_micro, precision[c], recall[c]"
        ),
        "mean": "ROUGE-1/2/L/Lsum precision, recall and F (means of per-example scores)",
        "corpus": "corpus BLEU, corpus chrF",
        "average": "macro and weighted precision / recall / F1, f1_micro, f1[c]",
        "composite": "quality_score",
    }
    names = {
        "wilson": "Wilson score interval",
        "bootstrap_t": "studentized bootstrap (bootstrap-t)",
    }
    for fam, text in members.items():
        shown = str(intervals.RELIABLE_N[fam])  # type: ignore[index]
        if fam == "composite":
            classifier = intervals.reliable_n("quality_score", ["f1_macro"])
            summariser = intervals.reliable_n("quality_score", ["chrf"])
            shown += (
                ", and at least what each weighted metric needs (the default classifier score,"
                f" with macro-F1: {classifier}; the default summariser score, with chrF:"
                f" {summariser})"
            )
        add(f"| {fam} | {text} | {names[intervals.METHODS[fam]]} | {shown} |")  # type: ignore[index]
    add("")
    add(
        "Bootstrap-t: t* = (f* − f) / se* on each resample, interval [f − t*₀.₉₇₅·se,"
        " f − t*₀.₀₂₅·se], clipped to the metric's range. se is the delta-method standard error:"
        " every metric is a smooth function f of summed per-example statistics S, example i's"
        " influence is ∇f(S)·sᵢ (the gradient by central differences), se² the sum of squared"
        " centred influences; for a mean this is the plug-in standard error. se* uses the same"
        " influences on the resample. A metric with se = 0 (every example moves it alike, e.g."
        " all ROUGE scores 1) gets no interval and the flag `no_interval`, never a zero-width"
        " interval; proportions get Wilson, which is never zero-width."
    )
    add("")
    add("## Flags")
    add("")
    add(
        f"* `small_n`: the slice (or run) has fewer examples than the run's minimum n"
        f" (`STREAMFLOW_EVAL_MIN_N`, default {intervals.DEFAULT_MIN_N}). The metric, its interval"
        " and the flag are still shown, in the read model (`flags`), the CLI and the API."
    )
    add(
        "* `interval_unreliable`: n is below the family's threshold above; in the table below"
        " the interval covers less than 93% of the time there, or the family needs that n."
    )
    add("* `no_interval`: a value without an interval (see above).")
    add("")
    add("## Coverage of the 95% interval")
    add("")
    add(
        "Proportions: exact binomial coverage of the Wilson interval (no simulation needed)."
        " Other families: share of simulated datasets whose interval contains the population"
        " value; ± is the Monte Carlo standard error; 'percentile' is the percentile bootstrap"
        " on the same resamples (the method before), for reference. A dataset without an"
        " interval counts as a miss."
    )
    add("")
    add("| family | scenario | n | method | coverage | percentile | no interval | flag at this n |")
    add("|---|---|---|---|---|---|---|---|")
    for p in (0.5, 0.8, 0.95):
        for n in SIZES:
            flag = "small_n" if n < intervals.DEFAULT_MIN_N else ""
            add(
                f"| proportion | p = {p} | {n} | Wilson | {_pct(wilson_coverage(p, n))} (exact) |"
                f" – | – | {flag} |"
            )
    for scenario in SCENARIOS:
        for n in SIZES:
            result = coverage(scenario, n, datasets=datasets, n_resamples=n_resamples, seed=2026)
            flag = ", ".join(scenario.flags(n))
            add(
                f"| {scenario.family} | {scenario.name} | {n} | bootstrap-t |"
                f" {_pct(result.product)} ± {_pct(result.standard_error)} |"
                f" {_pct(result.percentile)} | {_pct(result.no_interval)} | {flag} |"
            )
    add("")
    add("Scenarios:")
    add("")
    for scenario in SCENARIOS:
        add(f"* {scenario.name}: {scenario.description}; population value {scenario.truth():.4g}.")
    add("")
    add("## The comparison verdict")
    add("")
    add(
        "One decision per comparison, on a declared primary metric (`quality_score` by default;"
        " `--primary` in the CLI, `primary` in the API). The test is the paired approximate-"
        "randomisation (swap) test: under the null that the two systems are exchangeable on"
        " each example, swapping their outputs on a random subset of examples leaves the"
        " distribution of metric(B) − metric(A) unchanged; p = (1 + #{|swapped| ≥ |observed|})"
        " / (1 + swaps). The interval inverts the same test: observed difference ± the test's"
        " critical value (the smallest |difference| it calls significant), so it excludes 0"
        " exactly when p ≤ α; disagreement is impossible by construction (and tested). Under"
        " alternatives the swap distribution is wider than the sampling distribution (it also"
        " carries the mean difference), so the interval errs on the wide side."
    )
    add("")
    add(
        "Verdict: `challenger better` (B − A > 0, p ≤ α), `challenger worse` (B − A < 0,"
        " p ≤ α), or `no detectable difference at this n` with the minimum detectable effect."
        " α = 1 − confidence (0.05 by default)."
    )
    add("")
    add("## Multiplicity")
    add("")
    add(
        "The primary metric is tested alone at α. Every other p-value (the other overall"
        " metrics, per-class ones included, and every metric in every slice) forms one"
        " secondary family, Holm-adjusted together; the family size is printed with the"
        " comparison. A secondary row is marked different only when its Holm-adjusted p ≤ α;"
        " its interval is the unadjusted one (it agrees with the unadjusted p). Enough swaps"
        " are drawn (at least 2 × family size / α) that Holm can reach α."
    )
    add("")
    add("## Effect size and power")
    add("")
    add(
        "The verdict reports the paired difference, the per-example linearised differences"
        " Dᵢ = n·∇f(S̄)·(s_bᵢ − s_aᵢ) (for a mean, exactly the per-example score difference),"
        " win / tie / loss counts (sign of Dᵢ), d_z = (B − A) / sd(D), Cohen's h for"
        " proportions, and the minimum detectable effect at 80% power,"
        " MDE = (z₁₋α/₂ + z₀.₈)·sd(D)/√n. `streamflow eval plan` inverts it: n ="
        " ⌈((z₁₋α/₂ + z_power)·sd / δ)²⌉ for a target effect δ, with sd from a comparison of"
        " two runs or given."
    )
    add("")
    add("## False positives of the verdict under the null")
    add("")
    add(
        "Two exchangeable systems (scores drawn from the same distribution given a shared"
        " per-example difficulty), 5 mean metrics, 4 slices: the primary family is metric 0"
        " overall, the secondary family the other 4 overall plus 5 × 4 per slice (24)."
    )
    add("")
    add(
        "| n | datasets | primary called different | any secondary called different (Holm) |"
        " interval/test disagreements |"
    )
    add("|---|---|---|---|---|")
    for n in (30, 100, 300):
        rates = null_rates(n, datasets=null_datasets, seed=3)
        add(
            f"| {n} | {rates.datasets} | {_pct(rates.primary)} | {_pct(rates.family_wise)} |"
            f" {rates.interval_disagreements} |"
        )
    add("")
    add(f"Generated in {time.perf_counter() - started:.0f} s.")
    return "\n".join(lines) + "\n"


def _family_metric(family: str) -> str:
    return {
        "proportion": "accuracy",
        "mean": "rougeL_f",
        "corpus": "bleu",
        "average": "f1_macro",
        "composite": "quality_score",
    }[family]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="Fewer datasets; print only.")
    parser.add_argument("--datasets", type=int, default=600)
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--output", type=Path, default=Path("docs/statistics.md"))
    args = parser.parse_args(argv)
    if args.quick:
        document = build_document(datasets=300, n_resamples=400, null_datasets=300)
        print(document)
        return
    document = build_document(
        datasets=args.datasets, n_resamples=args.resamples, null_datasets=args.datasets
    )
    args.output.write_text(document, encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
