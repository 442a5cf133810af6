"""Confidence intervals and significance tests for corpus-level metrics.

Every metric is a function of column sums of per-example sufficient statistics (see `suite`), so
one engine serves them all: a bootstrap resample is a vector of per-example counts, its sums are
`counts @ statistics`, and `MetricSuite.finalize` turns sums into metric values. Resamples are
drawn in blocks (per-example counts from `np.bincount`, then one BLAS product per block), so
memory stays bounded whatever the number of examples.

Choices, and why:

* Resampling draws every index from one seeded PCG64 stream, in replicate order: the same
  inputs and seed give identical output, and replicate r holds the same examples whatever the
  block size. Block size changes memory use and, for non-integer statistics, the last bits of
  the sums (BLAS rounding depends on the block's shape); sums of integer-valued statistics,
  such as n-gram counts or confusion cells, are bit-identical.
* Single-run intervals are chosen per metric family (`intervals`, `docs/statistics.md`):
  `wilson_interval` for proportions, and for everything else the studentized bootstrap
  (`bootstrap_studentized` + `studentized_intervals`): t* = (f* - f) / se* on each resample,
  with se the delta-method standard error from each example's influence grad f(S) . s_i. The
  simulations of `bench/statistics_coverage.py` show the percentile interval (still available
  as `confidence_intervals`) under-covering skewed means, corpus BLEU / chrF and macro averages
  at small n (an external audit found BCa no better); bootstrap-t reaches 93-97% where the
  product shows it unflagged.
* Paired p-values come from the paired approximate-randomisation test (Noreen 1989; Riezler
  and Maxwell 2005): under the null that the two systems are exchangeable on each example,
  swapping their sufficient statistics on a random subset of examples leaves the distribution
  of `metric(b) - metric(a)` unchanged. It needs no linearisation, so it is as valid for corpus
  BLEU or macro-F1 as for a mean, and with p = (1 + #{|swapped| >= |observed|}) / (1 + P) its
  false-positive rate under that null is at most the nominal level for any number of examples
  (for systems that differ in distribution but not in metric value it is approximate). The
  smallest possible p is 1 / (1 + P), which matters under Holm correction. The interval of the
  difference inverts the same test (observed difference +/- its critical value), so it
  excludes 0 exactly when p <= 1 - confidence: a percentile interval from a different
  procedure disagreed with the test on 1-4% of datasets and gave 7-8% false positives.
* McNemar's test is always the exact conditional binomial test: it is valid at any number of
  discordant pairs, where the chi-square approximation is not, and costs nothing.
* A metric undefined on a resample (NaN, e.g. a ratio whose denominator resampled to zero) is
  left out of the percentiles; if more than `max_undefined` of the resamples are undefined the
  interval (or p-value) is NaN, since the remaining resamples no longer describe the sampling
  distribution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from pipelines.evaluation.suite import FloatArray, MetricSuite

BoolArray = npt.NDArray[np.bool_]

# Cells of the per-block counts (or swaps) matrix, 8 bytes each: 32 MiB unless one row is more.
_BLOCK_CELLS = 1 << 22
# Observed and swapped differences closer than this (relative to the metric's magnitude) tie.
_TIE_TOLERANCE = 1e-9
# Bootstrap-t statistics beyond this are a resample with no spread; capped, not infinite.
_T_CAP = 1e6
# A standard error or replicate spread below this share of the metric's magnitude is no spread.
_FLAT = 1e-9


@dataclass(frozen=True)
class Estimate:
    """A metric value with its confidence interval, over `n` examples."""

    value: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class Replicates:
    """Metric values on the sample (`point`, shape (m,)) and on each resample (shape (R, m))."""

    names: tuple[str, ...]
    point: FloatArray
    replicates: FloatArray
    n: int

    def __post_init__(self) -> None:
        m = len(self.names)
        if self.point.shape != (m,) or self.replicates.ndim != 2 or self.replicates.shape[1] != m:
            raise ValueError(
                f"Replicates for {m} metrics need point of shape ({m},) and replicates of shape"
                f" (R, {m}); got {self.point.shape} and {self.replicates.shape}"
            )


@dataclass(frozen=True)
class PairedReplicates:
    """Two systems' metric values on the same examples.

    `point_*` are the values on the sample (m,); `replicates_*` on shared bootstrap resamples
    (R, m), for the interval of the difference; `swapped_*` on random per-example swaps of the
    two systems (P, m), the null distribution for the p-value.
    """

    names: tuple[str, ...]
    point_a: FloatArray
    point_b: FloatArray
    replicates_a: FloatArray
    replicates_b: FloatArray
    swapped_a: FloatArray
    swapped_b: FloatArray
    n: int

    def system_a(self) -> Replicates:
        """System a's values and bootstrap replicates."""
        return Replicates(self.names, self.point_a, self.replicates_a, self.n)

    def system_b(self) -> Replicates:
        """System b's values and bootstrap replicates."""
        return Replicates(self.names, self.point_b, self.replicates_b, self.n)


class DerivedMetric(Protocol):
    """A metric computed from other metrics' values, such as the quality score.

    Given both systems' replicates, it returns its own, so its difference gets an interval and
    p-value from the same resamples and swaps.
    """

    def paired(self, paired: PairedReplicates) -> PairedReplicates:
        """The derived metric on the sample, each shared resample and each swap."""
        ...


@dataclass(frozen=True)
class PairedDifference:
    """`b - a` for one metric on the same examples, with its interval and two-sided p-value."""

    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test: `b` examples only system a got right, `c` only system b got right."""

    b: int
    c: int
    statistic: float
    p_value: float
    n: int


@dataclass(frozen=True)
class Studentized:
    """Bootstrap replicates with the linearised standard error on the sample and on each resample.

    `point` (m,) and `replicates` (R, m) are exactly those of `bootstrap` with the same seed;
    `se` (m,) is the delta-method (infinitesimal-jackknife) standard error on the sample and
    `replicate_se` (R, m) the same on each resample, for studentized (bootstrap-t) intervals.
    Columns listed in `derived` are linear combinations of metrics (the quality score).
    """

    names: tuple[str, ...]
    point: FloatArray
    replicates: FloatArray
    se: FloatArray
    replicate_se: FloatArray
    n: int
    totals: FloatArray
    """The summed statistics of the sample (for counts such as a proportion's trials)."""

    def plain(self) -> Replicates:
        """The percentile bootstrap's view of the same replicates."""
        return Replicates(self.names, self.point, self.replicates, self.n)


def bootstrap(
    statistics: FloatArray,
    suite: MetricSuite,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Replicates:
    """Bootstrap replicates of every metric in `suite`.

    `statistics` is `suite.statistics(scores)`, one row per example. `chunk_size` is the number
    of replicates per block (default: as many as fit in 32 MiB of counts); it bounds memory and
    never changes which examples a replicate holds.
    """
    return _bootstrap(statistics, suite, n_resamples, _seed_sequence(seed), chunk_size)


def bootstrap_by_slice(
    statistics: FloatArray,
    slices: Sequence[str],
    suite: MetricSuite,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, Replicates]:
    """Bootstrap replicates per slice (`slices[i]` is row i's slice), keyed by sorted slice name.

    Each slice's stream is derived from `seed` and the slice name alone, so a slice's result
    does not depend on which other slices exist.
    """
    stats = _as_statistics(statistics, "statistics")
    return {
        name: _bootstrap(stats[rows], suite, n_resamples, _slice_seed(seed, name), chunk_size)
        for name, rows in _slice_rows(slices, stats.shape[0]).items()
    }


def confidence_intervals(
    replicates: Replicates, *, confidence: float = 0.95, max_undefined: float = 0.01
) -> dict[str, Estimate]:
    """Percentile intervals for each metric, keyed by metric name."""
    low, high = _percentile_interval(
        replicates.replicates, replicates.point, confidence, max_undefined
    )
    return {
        name: Estimate(float(replicates.point[j]), float(low[j]), float(high[j]), replicates.n)
        for j, name in enumerate(replicates.names)
    }


def paired_replicates(
    statistics_a: FloatArray,
    statistics_b: FloatArray,
    suite: MetricSuite,
    *,
    n_resamples: int = 1000,
    n_permutations: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> PairedReplicates:
    """Shared bootstrap resamples and random swaps of two systems scored on the same examples.

    Row i of both arrays must be the same example. `n_permutations` (default `n_resamples`)
    bounds the smallest p-value at 1 / (n_permutations + 1); raise it when many comparisons
    are Holm-corrected together.
    """
    return _paired(
        statistics_a,
        statistics_b,
        suite,
        n_resamples,
        n_resamples if n_permutations is None else n_permutations,
        _seed_sequence(seed),
        chunk_size,
    )


def paired_replicates_by_slice(
    statistics_a: FloatArray,
    statistics_b: FloatArray,
    slices: Sequence[str],
    suite: MetricSuite,
    *,
    n_resamples: int = 1000,
    n_permutations: int | None = None,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, PairedReplicates]:
    """`paired_replicates` per slice, keyed by sorted slice name, seeded per slice name."""
    stats_a = _as_statistics(statistics_a, "statistics_a")
    stats_b = _as_statistics(statistics_b, "statistics_b")
    _check_aligned(stats_a, stats_b)
    permutations = n_resamples if n_permutations is None else n_permutations
    return {
        name: _paired(
            stats_a[rows],
            stats_b[rows],
            suite,
            n_resamples,
            permutations,
            _slice_seed(seed, name),
            chunk_size,
        )
        for name, rows in _slice_rows(slices, stats_a.shape[0]).items()
    }


def compare(
    paired: PairedReplicates, *, confidence: float = 0.95, max_undefined: float = 0.01
) -> dict[str, PairedDifference]:
    """Difference `b - a` per metric: swap-test p-value and the interval that inverts it.

    The interval is the observed difference plus or minus the swap test's critical value at
    1 - `confidence` (the smallest |difference| the test would call significant), so it
    excludes 0 exactly when p <= 1 - `confidence`: the interval and the test cannot disagree.
    """
    observed = paired.point_b - paired.point_a
    magnitude = np.fmax(np.abs(paired.point_a), np.abs(paired.point_b))
    swapped = paired.swapped_b - paired.swapped_a
    p_values = _swap_p_values(observed, swapped, magnitude, max_undefined)
    low, high = _swap_interval(observed, swapped, magnitude, p_values, confidence)
    return {
        name: PairedDifference(
            a=float(paired.point_a[j]),
            b=float(paired.point_b[j]),
            difference=float(observed[j]),
            ci_low=float(low[j]),
            ci_high=float(high[j]),
            p_value=float(p_values[j]),
            n=paired.n,
        )
        for j, name in enumerate(paired.names)
    }


def _swap_interval(
    observed: FloatArray,
    swapped: FloatArray,
    magnitude: FloatArray,
    p_values: FloatArray,
    confidence: float,
) -> tuple[FloatArray, FloatArray]:
    """observed -/+ h, h the swap test's critical |difference|, so 0 is outside iff p <= alpha.

    With D defined swaps, p = (1 + E) / (1 + D) where E counts |swapped| >= |observed| - tol.
    p <= alpha iff E <= K = floor(alpha (1 + D)) - 1 iff |observed| > a_(K+1) + tol, a_(j) the
    j-th largest |swapped|. The bound is then nudged so that float rounding cannot break the
    equivalence. With too few swaps to ever reach alpha the interval is unbounded.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    alpha = 1.0 - confidence
    low = np.full(observed.shape, np.nan)
    high = np.full(observed.shape, np.nan)
    for j in range(observed.shape[0]):
        if np.isnan(p_values[j]) or np.isnan(observed[j]):
            continue
        column = np.abs(swapped[:, j][~np.isnan(swapped[:, j])])
        draws = column.size
        k = int(np.floor(alpha * (1 + draws) + 1e-9)) - 1
        if k < 0:
            half = np.inf
        else:
            ordered = np.sort(column)[::-1]
            critical = float(ordered[k]) if k < draws else 0.0
            tol = _TIE_TOLERANCE * max(float(magnitude[j]), abs(float(observed[j])))
            half = critical + tol
        gap = abs(float(observed[j]))
        half = min(half, np.nextafter(gap, 0.0)) if p_values[j] <= alpha else max(half, gap)
        low[j], high[j] = observed[j] - half, observed[j] + half
    return low, high


def paired_bootstrap(
    statistics_a: FloatArray,
    statistics_b: FloatArray,
    suite: MetricSuite,
    *,
    n_resamples: int = 1000,
    n_permutations: int | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    max_undefined: float = 0.01,
    chunk_size: int | None = None,
    quality: DerivedMetric | None = None,
) -> dict[str, PairedDifference]:
    """Difference `metric(b) - metric(a)` per metric for two systems on the same examples.

    With `quality`, the quality score's difference is included too, under "quality_score".
    """
    paired = paired_replicates(
        statistics_a,
        statistics_b,
        suite,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
        chunk_size=chunk_size,
    )
    return _compare_with_quality(paired, confidence, max_undefined, quality)


def paired_bootstrap_by_slice(
    statistics_a: FloatArray,
    statistics_b: FloatArray,
    slices: Sequence[str],
    suite: MetricSuite,
    *,
    n_resamples: int = 1000,
    n_permutations: int | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    max_undefined: float = 0.01,
    chunk_size: int | None = None,
    quality: DerivedMetric | None = None,
) -> dict[str, dict[str, PairedDifference]]:
    """`paired_bootstrap` per slice: slice name -> metric name -> difference (p not adjusted)."""
    by_slice = paired_replicates_by_slice(
        statistics_a,
        statistics_b,
        slices,
        suite,
        n_resamples=n_resamples,
        n_permutations=n_permutations,
        seed=seed,
        chunk_size=chunk_size,
    )
    return {
        name: _compare_with_quality(paired, confidence, max_undefined, quality)
        for name, paired in by_slice.items()
    }


def bootstrap_studentized(
    statistics: FloatArray,
    suite: MetricSuite,
    *,
    derived: Mapping[str, Mapping[str, float]] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    chunk_size: int | None = None,
) -> Studentized:
    """`bootstrap` plus linearised standard errors, for studentized (bootstrap-t) intervals.

    Every metric here is a smooth function f of the summed statistics S, so example i's
    influence is u_i = grad f(S) . s_i, and the delta-method variance is sum_i (u_i - mean u)^2
    (exactly the plug-in variance of a mean for a mean). Resampling u and u^2 with the same
    counts as the statistics gives the same standard error on every resample. `derived` maps a
    new column name to coefficients over metric names (a linear combination, such as the
    quality score's weights over scales); its point and replicates are the combination.
    """
    return _studentized(
        _as_statistics(statistics, "statistics"),
        suite,
        derived or {},
        n_resamples,
        _seed_sequence(seed),
        chunk_size,
    )


def bootstrap_studentized_by_slice(
    statistics: FloatArray,
    slices: Sequence[str],
    suite: MetricSuite,
    *,
    derived: Mapping[str, Mapping[str, float]] | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    chunk_size: int | None = None,
) -> dict[str, Studentized]:
    """`bootstrap_studentized` per slice, keyed by sorted slice name, seeded per slice name."""
    stats = _as_statistics(statistics, "statistics")
    return {
        name: _studentized(
            stats[rows], suite, derived or {}, n_resamples, _slice_seed(seed, name), chunk_size
        )
        for name, rows in _slice_rows(slices, stats.shape[0]).items()
    }


def influence(statistics: FloatArray, suite: MetricSuite, at: FloatArray) -> FloatArray:
    """Per-example influence u_i = grad f(at) . s_i of every metric, shape (n, m).

    The gradient is taken by central differences (relative step 1e-5; forward differences for
    a sum too close to 0 to step below it, as counts cannot be negative) of `suite.finalize`,
    so it needs nothing from the suite but its values; a metric undefined at `at` gets NaN.
    """
    stats = _as_statistics(statistics, "statistics")
    base = np.asarray(at, dtype=np.float64)
    steps = 1e-5 * np.fmax(np.abs(base), 1.0)
    central = base - steps >= 0.0
    below = np.where(central, base - steps, base)
    values = _finalize(suite, np.vstack([base, base + np.diag(steps)]))
    lowered = np.tile(base, (base.size, 1))
    lowered[np.arange(base.size), np.arange(base.size)] = below
    values_below = _finalize(suite, lowered)
    span = np.where(central, 2.0 * steps, steps)[:, np.newaxis]
    gradient = (values[1 : 1 + base.size] - values_below) / span  # (d, m)
    gradient[:, np.isnan(values[0])] = np.nan
    # A perturbed value may be undefined where the metric is defined (a 0/0 branch): no slope.
    gradient = np.where(np.isnan(gradient) & ~np.isnan(values[0]), 0.0, gradient)
    return np.asarray(stats @ gradient, dtype=np.float64)


def _studentized(
    stats: FloatArray,
    suite: MetricSuite,
    derived: Mapping[str, Mapping[str, float]],
    n_resamples: int,
    seed: np.random.SeedSequence,
    chunk_size: int | None,
) -> Studentized:
    _check_count(n_resamples, "n_resamples")
    names = tuple(suite.names)
    total = stats.sum(axis=0)
    u = influence(stats, suite, total)
    combos = _combinations(names, derived)
    if combos.shape[1]:
        u = np.column_stack([u, np.nan_to_num(u) @ combos])
    # Centre (the sum of influences is 0 for the scale-free metrics here, up to rounding); a
    # metric undefined at the sample keeps its NaN column.
    undefined = np.isnan(u).any(axis=0)
    u = np.where(undefined, np.nan, u - np.nan_to_num(u).mean(axis=0))
    squared = u * u
    finite_u = np.nan_to_num(u)
    sums, u_sums, u2_sums = _resampled_sums(
        [stats, finite_u, np.nan_to_num(squared)],
        n_resamples,
        np.random.default_rng(seed),
        chunk_size,
    )
    values = _finalize(suite, np.vstack([total, sums]))
    if combos.shape[1]:
        values = np.column_stack([values, values @ combos])
    n = stats.shape[0]
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.nansum(squared, axis=0))
        replicate_var = np.fmax(u2_sums - u_sums * u_sums / n, 0.0)
    se = np.where(np.isnan(u).any(axis=0), np.nan, se)
    return Studentized(
        names=(*names, *derived),
        point=values[0],
        replicates=values[1:],
        se=se,
        replicate_se=np.sqrt(replicate_var),
        n=n,
        totals=total,
    )


def _combinations(names: tuple[str, ...], derived: Mapping[str, Mapping[str, float]]) -> FloatArray:
    combos = np.zeros((len(names), len(derived)))
    for j, (label, coefficients) in enumerate(derived.items()):
        if label in names:
            raise ValueError(f"derived metric {label!r} clashes with a metric of the suite")
        for metric, coefficient in coefficients.items():
            if metric not in names:
                raise ValueError(f"derived metric {label!r} needs metric {metric!r}")
            combos[names.index(metric), j] = coefficient
    return combos


def studentized_intervals(
    studentized: Studentized,
    *,
    confidence: float = 0.95,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    max_undefined: float = 0.01,
) -> dict[str, Estimate]:
    """Bootstrap-t intervals [f - t*_(1-a/2) se, f - t*_(a/2) se], clipped to `bounds`.

    t* = (f* - f) / se* on each resample. A metric without spread (every resample gives the
    same value, or the standard error is zero: e.g. all examples scored 1) or undefined gets a
    NaN interval: a zero-width interval would claim certainty the data cannot give.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    _check_share(max_undefined)
    tail = (1.0 - confidence) / 2.0
    out: dict[str, Estimate] = {}
    limits = bounds or {}
    for j, name in enumerate(studentized.names):
        point = float(studentized.point[j])
        se = float(studentized.se[j])
        low = high = float("nan")
        column = studentized.replicates[:, j]
        defined = ~np.isnan(column)
        enough = 1.0 - defined.mean() <= max_undefined
        scale = max(1.0, abs(point)) if np.isfinite(point) else 1.0
        # No variation: every resample gives the point (up to rounding), or the standard error
        # is finite-difference noise. No interval then, rather than a zero-width one.
        varies = defined.any() and float(np.ptp(column[defined])) > _FLAT * scale
        if np.isfinite(point) and np.isfinite(se) and se > _FLAT * scale and varies and enough:
            shift = column[defined] - point
            spread = studentized.replicate_se[defined, j]
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(spread > 0.0, shift / spread, np.sign(shift) * _T_CAP)
            t = np.clip(t, -_T_CAP, _T_CAP)
            t_low, t_high = np.quantile(t, [tail, 1.0 - tail])
            low, high = point - float(t_high) * se, point - float(t_low) * se
            floor, ceiling = limits.get(name, (-np.inf, np.inf))
            low, high = max(low, floor), min(high, ceiling)
        out[name] = Estimate(point, low, high, studentized.n)
    return out


def wilson_interval(successes: float, trials: float, *, confidence: float = 0.95) -> Estimate:
    """Wilson score interval of a proportion; NaN bounds without trials.

    Never zero-width for trials > 0: at 0 or n successes it still spans the plausible values.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if trials <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must lie in [0, trials], got {successes} of {trials}")
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    denominator = 1.0 + z * z / trials
    center = (p + z * z / (2.0 * trials)) / denominator
    half = z * np.sqrt(p * (1.0 - p) / trials + z * z / (4.0 * trials * trials)) / denominator
    # At 0 (or all) successes the bound is exactly 0 (or 1); rounding would leave 1e-17.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return Estimate(p, low, high, round(trials))


def mcnemar(correct_a: BoolArray, correct_b: BoolArray) -> McNemarResult:
    """Exact two-sided McNemar test on per-example correctness of two systems.

    The statistic is min(b, c), as in the exact test's usual presentation.
    """
    a = _as_correctness(correct_a, "correct_a")
    b = _as_correctness(correct_b, "correct_b")
    if a.shape != b.shape:
        raise ValueError(f"correct_a has {a.shape[0]} examples but correct_b has {b.shape[0]}")
    only_a = int(np.count_nonzero(a & ~b))
    only_b = int(np.count_nonzero(~a & b))
    discordant = only_a + only_b
    p_value = 1.0 if discordant == 0 else float(scipy_stats.binomtest(only_a, discordant).pvalue)
    return McNemarResult(
        b=only_a, c=only_b, statistic=float(min(only_a, only_b)), p_value=p_value, n=a.shape[0]
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in input order.

    NaN p-values (untestable comparisons) stay NaN and do not count towards the number of
    hypotheses.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    defined = np.flatnonzero(~np.isnan(p))
    if np.any((p[defined] < 0) | (p[defined] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[defined].tolist()}")
    order = defined[np.argsort(p[defined], kind="stable")]
    m = order.size
    stepped = (m - np.arange(m)) * p[order]
    adjusted = np.full(p.shape, np.nan)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(stepped))
    return [float(value) for value in adjusted]


def _compare_with_quality(
    paired: PairedReplicates,
    confidence: float,
    max_undefined: float,
    quality: DerivedMetric | None,
) -> dict[str, PairedDifference]:
    differences = compare(paired, confidence=confidence, max_undefined=max_undefined)
    if quality is None:
        return differences
    scored = quality.paired(paired)
    return differences | compare(scored, confidence=confidence, max_undefined=max_undefined)


def _bootstrap(
    statistics: FloatArray,
    suite: MetricSuite,
    n_resamples: int,
    seed: np.random.SeedSequence,
    chunk_size: int | None,
) -> Replicates:
    stats = _as_statistics(statistics, "statistics")
    _check_count(n_resamples, "n_resamples")
    total = stats.sum(axis=0)
    [sums] = _resampled_sums([stats], n_resamples, np.random.default_rng(seed), chunk_size)
    values = _finalize(suite, np.vstack([total, sums]))
    return Replicates(tuple(suite.names), values[0], values[1:], stats.shape[0])


def _paired(
    statistics_a: FloatArray,
    statistics_b: FloatArray,
    suite: MetricSuite,
    n_resamples: int,
    n_permutations: int,
    seed: np.random.SeedSequence,
    chunk_size: int | None,
) -> PairedReplicates:
    stats_a = _as_statistics(statistics_a, "statistics_a")
    stats_b = _as_statistics(statistics_b, "statistics_b")
    _check_aligned(stats_a, stats_b)
    _check_count(n_resamples, "n_resamples")
    _check_count(n_permutations, "n_permutations")
    total_a, total_b = stats_a.sum(axis=0), stats_b.sum(axis=0)
    # Separate products, not one over hstack([a, b]): identical inputs then give bit-identical
    # replicates (BLAS rounding can depend on a column's position).
    resampled_a, resampled_b = _resampled_sums(
        [stats_a, stats_b], n_resamples, np.random.default_rng(seed), chunk_size
    )
    # Swapping example i moves (b_i - a_i) from b's sums to a's.
    moved = _swapped_sums(
        stats_b - stats_a, n_permutations, np.random.default_rng(_child(seed)), chunk_size
    )
    values = _finalize(
        suite,
        np.vstack(
            [
                total_a,
                total_b,
                resampled_a,
                resampled_b,
                total_a + moved,
                total_b - moved,
            ]
        ),
    )
    r, p = n_resamples, n_permutations
    return PairedReplicates(
        names=tuple(suite.names),
        point_a=values[0],
        point_b=values[1],
        replicates_a=values[2 : 2 + r],
        replicates_b=values[2 + r : 2 + 2 * r],
        swapped_a=values[2 + 2 * r : 2 + 2 * r + p],
        swapped_b=values[2 + 2 * r + p :],
        n=stats_a.shape[0],
    )


def _resampled_sums(
    matrices: Sequence[FloatArray],
    n_resamples: int,
    rng: np.random.Generator,
    chunk_size: int | None,
) -> list[FloatArray]:
    """Column sums of each matrix (rows = the same examples) under shared bootstrap resamples."""
    n = matrices[0].shape[0]
    transposed = [np.ascontiguousarray(matrix.T) for matrix in matrices]
    sums = [np.empty((n_resamples, matrix.shape[1])) for matrix in matrices]
    block = _block_rows(n, n_resamples, chunk_size)
    counts = np.empty((block, n))
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        for row in range(rows):
            # Row by row, the stream is consumed in replicate order whatever the block size, and
            # a per-row bincount stays in cache (faster than one bincount over offset indices).
            counts[row] = np.bincount(rng.integers(0, n, size=n, dtype=np.int32), minlength=n)
        for matrix, total in zip(transposed, sums, strict=True):
            # (s, n) @ (n, rows) is markedly faster in OpenBLAS than (rows, n) @ (n, s).
            total[start : start + rows] = (matrix @ counts[:rows].T).T
    return sums


def _swapped_sums(
    differences: FloatArray, n_permutations: int, rng: np.random.Generator, chunk_size: int | None
) -> FloatArray:
    """Column sums of `differences` over random halves of the examples, one row per draw."""
    n = differences.shape[0]
    transposed = np.ascontiguousarray(differences.T)
    sums = np.empty((n_permutations, differences.shape[1]))
    block = _block_rows(n, n_permutations, chunk_size)
    swaps = np.empty((block, n))
    for start in range(0, n_permutations, block):
        rows = min(block, n_permutations - start)
        for row in range(rows):
            swaps[row] = rng.random(n) < 0.5
        sums[start : start + rows] = (transposed @ swaps[:rows].T).T
    return sums


def _finalize(suite: MetricSuite, sums: FloatArray) -> FloatArray:
    # Resampling can make a metric undefined (0 / 0); NaN is the expected signal, not a fault.
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.asarray(suite.finalize(sums), dtype=np.float64)
    expected = (sums.shape[0], len(suite.names))
    if values.shape != expected:
        raise ValueError(
            f"{type(suite).__name__}.finalize returned shape {values.shape}, expected {expected}"
        )
    return values


def _percentile_interval(
    values: FloatArray, point: FloatArray, confidence: float, max_undefined: float
) -> tuple[FloatArray, FloatArray]:
    """Lower and upper percentile bounds per column; NaN where the column is too undefined."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    _check_share(max_undefined)
    tail = (1.0 - confidence) / 2.0
    low = np.full(values.shape[1], np.nan)
    high = np.full(values.shape[1], np.nan)
    undefined = np.isnan(values)
    if not undefined.any():
        low[:], high[:] = np.quantile(values, [tail, 1.0 - tail], axis=0)
    else:
        for j in range(values.shape[1]):
            column = values[~undefined[:, j], j]
            if column.size and 1.0 - column.size / values.shape[0] <= max_undefined:
                low[j], high[j] = np.quantile(column, [tail, 1.0 - tail])
    unknown = np.isnan(point)
    low[unknown] = np.nan
    high[unknown] = np.nan
    return low, high


def _swap_p_values(
    observed: FloatArray, swapped: FloatArray, magnitude: FloatArray, max_undefined: float
) -> FloatArray:
    """Two-sided randomisation p-values (1 + #{|swapped| >= |observed|}) / (1 + P) per column."""
    _check_share(max_undefined)
    defined = ~np.isnan(swapped)
    draws = defined.sum(axis=0)
    threshold = np.abs(observed) - _TIE_TOLERANCE * np.fmax(magnitude, np.abs(observed))
    extreme = (np.abs(np.where(defined, swapped, 0.0)) >= threshold) & defined
    p_values = (1.0 + extreme.sum(axis=0)) / (1.0 + draws)
    too_undefined = 1.0 - draws / swapped.shape[0] > max_undefined
    return np.where(np.isnan(observed) | too_undefined, np.nan, p_values)


def _block_rows(n: int, total: int, chunk_size: int | None) -> int:
    if chunk_size is None:
        return max(1, min(total, _BLOCK_CELLS // n))
    _check_count(chunk_size, "chunk_size")
    return min(total, chunk_size)


def _seed_sequence(seed: int) -> np.random.SeedSequence:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def _slice_seed(seed: int, name: str) -> np.random.SeedSequence:
    # A stable digest, not hash(): Python salts string hashes per process.
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:16], "little")
    base = _seed_sequence(seed)
    return np.random.SeedSequence(entropy=[int(seed), digest], spawn_key=base.spawn_key)


def _child(seed: np.random.SeedSequence) -> np.random.SeedSequence:
    """An independent stream derived from `seed` without mutating it (unlike `spawn`)."""
    return np.random.SeedSequence(seed.entropy, spawn_key=(*seed.spawn_key, 1))


def _slice_rows(slices: Sequence[str], n: int) -> dict[str, npt.NDArray[np.intp]]:
    if len(slices) != n:
        raise ValueError(f"got {len(slices)} slice labels for {n} examples")
    rows: dict[str, list[int]] = {}
    for i, name in enumerate(slices):
        if not isinstance(name, str):
            raise ValueError(f"slice labels must be strings, got {name!r} at row {i}")
        rows.setdefault(name, []).append(i)
    return {name: np.asarray(rows[name], dtype=np.intp) for name in sorted(rows)}


def _as_statistics(statistics: FloatArray, label: str) -> FloatArray:
    stats = np.asarray(statistics, dtype=np.float64)
    if stats.ndim != 2:
        raise ValueError(f"{label} must be (n_examples, n_statistics), got shape {stats.shape}")
    if stats.shape[0] == 0:
        raise ValueError(f"{label} has no examples; there is nothing to resample")
    if not np.isfinite(stats).all():
        raise ValueError(f"{label} contains NaN or infinite sufficient statistics")
    return stats


def _as_correctness(correct: BoolArray, label: str) -> BoolArray:
    values = np.asarray(correct)
    if values.ndim != 1:
        raise ValueError(f"{label} must be one-dimensional, got shape {values.shape}")
    if values.dtype != np.bool_ and not np.isin(values, (0, 1)).all():
        raise ValueError(f"{label} must hold booleans (or 0/1)")
    return values.astype(np.bool_)


def _check_aligned(stats_a: FloatArray, stats_b: FloatArray) -> None:
    if stats_a.shape != stats_b.shape:
        raise ValueError(
            "paired statistics must be aligned by example with the same columns;"
            f" got {stats_a.shape} and {stats_b.shape}"
        )


def _check_count(value: int, label: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{label} must be a positive integer, got {value!r}")


def _check_share(value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"max_undefined must lie in [0, 1], got {value}")


__all__ = [
    "BoolArray",
    "Estimate",
    "McNemarResult",
    "PairedDifference",
    "PairedReplicates",
    "Replicates",
    "Studentized",
    "bootstrap",
    "bootstrap_by_slice",
    "bootstrap_studentized",
    "bootstrap_studentized_by_slice",
    "compare",
    "confidence_intervals",
    "holm",
    "influence",
    "mcnemar",
    "paired_bootstrap",
    "paired_bootstrap_by_slice",
    "paired_replicates",
    "paired_replicates_by_slice",
    "studentized_intervals",
    "wilson_interval",
]
