"""Always-valid comparisons of a challenger with its champion, for looks at any time.

Live traffic is looked at while it arrives (the comparison flow runs every hour), so a
fixed-horizon test would be run again and again and its false-positive rate would grow with
every look. The tests here stay valid however often and whenever one looks:

* **mSPRT with a normal mixture** (Johari, Pekelis, Walsh, "Always Valid Inference", and
  Johari et al., KDD 2017). For an estimate x̂ with variance V (V = σ²/n for a mean of n
  values) and a N(0, τ²) mixture over the effect, the mixture likelihood ratio against "no
  difference" is

      Λ = √(V / (V + τ²)) · exp(τ² x̂² / (2 V (V + τ²)))

  Λ is an e-value at every look (a non-negative martingale under the null), so by Ville's
  inequality P(Λ ever reaches 1/α) <= α: the always-valid p-value is the running minimum of
  min(1, 1/Λ).
* **Confidence sequence by inversion.** The effects θ with Λ(x̂ − θ) < 1/α form the interval

      x̂ ± √(2 V (1 + r) · (log(1/α) + ½ log(1 + 1/r))),   r = V / τ²,

  which is exactly Howard et al.'s normal-mixture boundary (Annals of Statistics 2021) and, with
  σ estimated from the data, the asymptotic confidence sequence of Waudby-Smith et al. that
  Eppo uses by default: with t = n and ρ = r·t their form is σ/√t · (1/√t)·√((t+ρ)·log((t+ρ) /
  (ρ α²))). It covers the effect at every n at once with probability >= 1 − α
  (asymptotically, because σ is estimated). Successive looks keep the running intersection of
  the intervals (`previous`), still valid, never wider; an interval that excludes 0 is the same
  event as p <= α, so the test and the interval never disagree.
* **Tuning.** τ (in the metric's units) sets where the boundary is tightest. Without `tau` the
  mixture is tuned like Eppo's: ρ = N / (log(log(e/α²)) − 2·log α) with N = `TUNE_N` = 10,000
  observations, i.e. τ² = σ̂² / ρ, so the interval is narrowest around 10,000 observations.
* **Small samples.** The plug-in variance is unreliable at a handful of values: below `min_n`
  a look reports the estimate with no interval ((−inf, inf), p = 1, "inconclusive"), so it
  cannot narrow the running intersection or lower the running p of later looks. A sample
  without spread gives no interval ((−inf, inf), p = 1) rather than a zero-width one; binary
  outcomes get a variance floor (`binary=True`) so an all-correct sample still has one.

Also here: McNemar's exact test for paired binary outcomes, with the interval that inverts it,
and Holm's adjustment across slices (the evaluation slice's own `holm`). Holm applies to any
valid p-values, always-valid ones included.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from pipelines.evaluation.statistics import holm

Decision = Literal["better", "worse", "inconclusive"]

# Eppo's default tuning: the confidence sequence is tightest around this many observations.
TUNE_N = 10_000

MSPRT_METHOD = "mSPRT normal mixture (always-valid p, confidence sequence)"


@dataclass(frozen=True)
class SampleStats:
    """Count, mean and unbiased variance (ddof = 1; 0 below two values) of a sample.

    Enough to run every test here, so a flow can keep running sums instead of the values.
    """

    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n}")
        if not self.variance >= 0.0:
            raise ValueError(f"variance must be >= 0, got {self.variance}")

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> SampleStats:
        array = _as_values(values, "values")
        n = int(array.size)
        if n == 0:
            return cls(0, 0.0, 0.0)
        variance = float(np.var(array, ddof=1)) if n > 1 else 0.0
        return cls(n, float(np.mean(array)), variance)

    def merge(self, other: SampleStats) -> SampleStats:
        """The statistics of both samples together (Chan et al.'s pairwise update)."""
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        m2 = (
            self.variance * (self.n - 1)
            + other.variance * (other.n - 1)
            + delta * delta * self.n * other.n / n
        )
        return SampleStats(n, mean, max(0.0, m2 / (n - 1)))


@dataclass(frozen=True)
class SequentialResult:
    """One look of a sequential test: treatment minus control (or the mean paired difference).

    `p_value` is always valid (running minimum), `e_value` the mixture likelihood ratio at this
    look, [`ci_low`, `ci_high`] the running intersection of the confidence sequence.
    """

    n: int
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    e_value: float
    decision: Decision
    method: str


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test on paired binary outcomes; `difference` is accuracy B minus A.

    The interval inverts the same exact conditional test (Clopper-Pearson on the share of
    discordant pairs won by B, scaled by the discordant share), so it excludes 0 exactly when
    p <= alpha.
    """

    n: int
    only_a: int
    only_b: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str


def paired_test(
    differences: npt.ArrayLike | SampleStats,
    *,
    alpha: float = 0.05,
    tau: float | None = None,
    min_n: int = 30,
    previous: SequentialResult | None = None,
    binary: bool = False,
) -> SequentialResult:
    """Always-valid test of the mean per-request difference (challenger minus champion).

    `differences` are all differences so far (or their `SampleStats`), not only the new ones;
    `previous` is the result of the last look, whose interval and p-value carry over.
    `binary=True` is for differences of binary outcomes (values in {-1, 0, 1}): the variance is
    floored as if one more discordant pair had gone each way, so agreement on every request
    still gives an interval.
    """
    _check_common(alpha, tau, min_n)
    stats = _stats(differences, "differences")
    variance = stats.variance
    if binary and abs(stats.mean) > 1.0:
        raise ValueError("differences must lie in [-1, 1] when binary=True")
    if binary and stats.n > 0:
        # The sample plus one pseudo-pair each way (+1 and -1), ddof = 1.
        n = stats.n
        squares = stats.variance * (n - 1) + n * stats.mean**2 + 2.0
        mean = n * stats.mean / (n + 2)
        variance = max(variance, (squares - (n + 2) * mean**2) / (n + 1))
    v = variance / stats.n if stats.n > 0 else math.inf
    return _look(stats.n, stats.mean, v, stats.n, alpha, tau, min_n, previous)


def two_sample_test(
    control: npt.ArrayLike | SampleStats,
    treatment: npt.ArrayLike | SampleStats,
    *,
    binary: bool = False,
    alpha: float = 0.05,
    tau: float | None = None,
    min_n: int = 30,
    previous: SequentialResult | None = None,
) -> SequentialResult:
    """Always-valid test of mean(treatment) − mean(control) for an A/B split.

    V = s_c²/n_c + s_t²/n_t; `n` in the result counts both arms and the default tuning refers
    to that total. `min_n` applies to each arm. For binary outcomes (`binary=True`, values 0/1)
    each arm's variance is p̃(1 − p̃) with p̃ = (successes + 1) / (n + 2), a floor that is never
    zero (p̂(1 − p̂) is 0 when an arm has no errors yet).
    """
    _check_common(alpha, tau, min_n)
    c = _stats(control, "control")
    t = _stats(treatment, "treatment")
    if binary:
        c, t = _binary_floor(c, "control"), _binary_floor(t, "treatment")
    n = c.n + t.n
    v = math.inf if c.n == 0 or t.n == 0 else c.variance / c.n + t.variance / t.n
    if min(c.n, t.n) < min_n:
        return _too_small(_look(n, t.mean - c.mean, v, n, alpha, tau, 0, None))
    return _look(n, t.mean - c.mean, v, n, alpha, tau, 0, previous)


def mcnemar_test(
    both_right: int, only_a: int, only_b: int, both_wrong: int, *, alpha: float = 0.05
) -> McNemarResult:
    """Exact (conditional binomial) McNemar test from the four cells of the paired table.

    A is the champion, B the challenger; `only_b` counts requests only B got right. The
    p-value is two-sided; the interval is for accuracy(B) − accuracy(A) at level 1 − alpha.
    """
    cells = {"both_right": both_right, "only_a": only_a, "only_b": only_b, "both_wrong": both_wrong}
    for name, value in cells.items():
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    n = both_right + only_a + only_b + both_wrong
    discordant = only_a + only_b
    method = "McNemar exact conditional binomial test"
    if n == 0:
        return McNemarResult(0, 0, 0, math.nan, math.nan, math.nan, 1.0, method)
    difference = (only_b - only_a) / n
    if discordant == 0:
        # No discordant pair: nothing tells the systems apart; the interval is the whole range.
        return McNemarResult(n, only_a, only_b, difference, -1.0, 1.0, 1.0, method)
    test = scipy_stats.binomtest(int(only_b), int(discordant))
    interval = test.proportion_ci(confidence_level=1.0 - alpha, method="exact")
    share = discordant / n
    low = (2.0 * float(interval.low) - 1.0) * share
    high = (2.0 * float(interval.high) - 1.0) * share
    return McNemarResult(n, only_a, only_b, difference, low, high, float(test.pvalue), method)


def holm_across_slices(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values per slice name (NaN stays NaN and does not count)."""
    names = list(p_values)
    adjusted = holm([float(p_values[name]) for name in names])
    return dict(zip(names, adjusted, strict=True))


def mixture_rho(alpha: float, tune_n: float = TUNE_N) -> float:
    """Eppo's ρ: the mixture that makes the confidence sequence tightest at `tune_n`."""
    return tune_n / (math.log(math.log(math.e / alpha**2)) - 2.0 * math.log(alpha))


def sequence_bounds(
    estimate: npt.ArrayLike,
    v: npt.ArrayLike,
    units: npt.ArrayLike,
    *,
    alpha: float = 0.05,
    tau: float | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Half-width of the confidence sequence and log Λ at one look, elementwise.

    `estimate` with variance `v` (> 0) after `units` observations (the tuning's t). The
    vectorised core of `paired_test` and `two_sample_test`, also used by the simulations.
    """
    x = np.asarray(estimate, dtype=np.float64)
    var = np.asarray(v, dtype=np.float64)
    t = np.asarray(units, dtype=np.float64)
    tau2 = np.full_like(var, tau * tau) if tau is not None else var * t / mixture_rho(alpha)
    r = var / tau2
    width = np.sqrt(2.0 * var * (1.0 + r) * (math.log(1.0 / alpha) + 0.5 * np.log1p(1.0 / r)))
    log_e = 0.5 * np.log(var / (var + tau2)) + tau2 * x * x / (2.0 * var * (var + tau2))
    return width, log_e


def _look(
    n: int,
    estimate: float,
    v: float,
    tune_units: int,
    alpha: float,
    tau: float | None,
    min_n: int,
    previous: SequentialResult | None,
) -> SequentialResult:
    if n == 0 or not math.isfinite(v) or v <= 0.0:
        # No data, or no spread: the test can say nothing yet (never a zero-width interval).
        estimate = estimate if n > 0 else math.nan
        result = SequentialResult(
            n, estimate, -math.inf, math.inf, 1.0, 1.0, "inconclusive", MSPRT_METHOD
        )
        return _too_small(result) if n < min_n else _carry(result, previous, alpha)
    # τ² in the estimate's units: given, or Eppo's tuning (τ² = σ̂²/ρ with σ̂² = V·n).
    widths, log_es = sequence_bounds(estimate, v, tune_units, alpha=alpha, tau=tau)
    width, log_e = float(widths), float(log_es)
    e_value = math.exp(min(log_e, 700.0))
    p_value = min(1.0, math.exp(-log_e)) if log_e > 0.0 else 1.0
    result = SequentialResult(
        n,
        estimate,
        estimate - width,
        estimate + width,
        p_value,
        e_value,
        "inconclusive",
        MSPRT_METHOD,
    )
    if n < min_n:
        return _too_small(result)
    return _carry(result, previous, alpha)


def _carry(
    result: SequentialResult, previous: SequentialResult | None, alpha: float
) -> SequentialResult:
    """Intersect with the previous look and decide."""
    low, high, p_value = result.ci_low, result.ci_high, result.p_value
    if previous is not None:
        low, high = max(low, previous.ci_low), min(high, previous.ci_high)
        p_value = min(p_value, previous.p_value)
        if low > high:
            # Disjoint intervals (a drifting effect or variance): keep the meeting point.
            low = high = (low + high) / 2.0
    decision: Decision = "inconclusive"
    if p_value <= alpha and low > 0.0:
        decision = "better"
    elif p_value <= alpha and high < 0.0:
        decision = "worse"
    return SequentialResult(
        result.n, result.estimate, low, high, p_value, result.e_value, decision, result.method
    )


def _too_small(result: SequentialResult) -> SequentialResult:
    """A look below the minimum n: the estimate only, no interval, p = 1, no decision.

    So a later look may intersect with it (and take its p-value) without harm.
    """
    return SequentialResult(
        result.n,
        result.estimate,
        -math.inf,
        math.inf,
        1.0,
        1.0,
        "inconclusive",
        f"{MSPRT_METHOD}; below the minimum n, no interval yet",
    )


def _binary_floor(stats: SampleStats, name: str) -> SampleStats:
    if stats.n == 0:
        return stats
    if not 0.0 <= stats.mean <= 1.0:
        raise ValueError(f"{name} must hold 0/1 outcomes when binary=True")
    smoothed = (stats.mean * stats.n + 1.0) / (stats.n + 2.0)
    return SampleStats(stats.n, stats.mean, max(stats.variance, smoothed * (1.0 - smoothed)))


def _stats(values: npt.ArrayLike | SampleStats, name: str) -> SampleStats:
    if isinstance(values, SampleStats):
        return values
    return SampleStats.from_values(_as_values(values, name))


def _as_values(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only")
    return array


def _check_common(alpha: float, tau: float | None, min_n: int) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if tau is not None and not tau > 0.0:
        raise ValueError(f"tau must be > 0, got {tau}")
    if min_n < 0:
        raise ValueError(f"min_n must be >= 0, got {min_n}")


__all__ = [
    "MSPRT_METHOD",
    "TUNE_N",
    "Decision",
    "McNemarResult",
    "SampleStats",
    "SequentialResult",
    "holm_across_slices",
    "mcnemar_test",
    "mixture_rho",
    "paired_test",
    "sequence_bounds",
    "two_sample_test",
]
