"""The decision rule of a comparison: one primary test, a Holm family, effect sizes and power.

Pure core. See `docs/statistics.md` for the rule and the simulations behind it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as scipy_stats

from pipelines.evaluation.statistics import holm

DEFAULT_POWER = 0.8


def significant_after_holm(p_values: Sequence[float | None], alpha: float) -> list[bool]:
    """Which hypotheses of one family Holm rejects at `alpha` (undefined p: not rejected)."""
    values = [math.nan if p is None else float(p) for p in p_values]
    adjusted = holm(values)
    return [not math.isnan(p) and p <= alpha for p in adjusted]


def _z(alpha: float, power: float) -> float:
    return float(scipy_stats.norm.ppf(1.0 - alpha / 2.0) + scipy_stats.norm.ppf(power))


def minimum_detectable_effect(
    paired_sd: float, n: int, *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> float:
    """Smallest |mean paired difference| a two-sided test at `alpha` detects with `power`.

    Normal approximation: (z_(1-alpha/2) + z_power) * sd / sqrt(n).
    """
    _check(alpha, power)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not math.isfinite(paired_sd) or paired_sd < 0:
        raise ValueError(f"the paired standard deviation must be >= 0, got {paired_sd}")
    return _z(alpha, power) * paired_sd / math.sqrt(n)


def required_n(
    paired_sd: float, effect: float, *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> int:
    """Paired examples needed to detect a mean difference `effect` with `power` at `alpha`."""
    _check(alpha, power)
    if not math.isfinite(effect) or effect == 0:
        raise ValueError(f"the target effect must be a non-zero number, got {effect}")
    if not math.isfinite(paired_sd) or paired_sd < 0:
        raise ValueError(f"the paired standard deviation must be >= 0, got {paired_sd}")
    return max(2, math.ceil((_z(alpha, power) * paired_sd / abs(effect)) ** 2))


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power}")
