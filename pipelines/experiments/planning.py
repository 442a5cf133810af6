"""Sample sizes for a stated minimum detectable effect, fixed-horizon and sequential.

`fixed_n` is the classic two-sided z-test size: n = ((z₁₋α/₂ + z_power) · sd / mde)² pairs
for a paired comparison, and 2·((z₁₋α/₂ + z_power) · sd / mde)² units per arm for an A/B
split (sd then is each unit's outcome sd, the same in both arms).

`sequential_n` is for the always-valid test of `sequential` with its default tuning, and is a
**closed-form approximation**, not a simulation: the smallest n at which the estimate, normal
with mean `mde` and standard error se(n), lies beyond the confidence sequence's half-width
w(n) with probability `power`, i.e. Φ((mde − w(n)) / se(n)) >= power, solved for n by
bisection. It ignores crossings at earlier looks, which only add power (the running
intersection keeps a decision once made), so it is conservative; the simulation tests check
that the power at `sequential_n` reaches `power`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats as scipy_stats

from pipelines.experiments.sequential import sequence_bounds

# Beyond this the search stops: the effect is too small for any realistic experiment.
_MAX_N = 10**12


@dataclass(frozen=True)
class SamplePlan:
    """Pairs (paired) or units per arm (A/B) needed to detect `mde` with `power`."""

    fixed_n: int
    sequential_n: int
    mde: float
    sd: float
    alpha: float
    power: float


def plan_sample_size(
    *, mde: float, sd: float, alpha: float = 0.05, power: float = 0.8, paired: bool = True
) -> SamplePlan:
    """Fixed-horizon and sequential sample sizes for a true effect of `mde` (see module)."""
    if not (math.isfinite(mde) and mde != 0.0):
        raise ValueError(f"mde must be a non-zero number, got {mde}")
    if not (math.isfinite(sd) and sd > 0.0):
        raise ValueError(f"sd must be a positive number, got {sd}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power}")
    effect = abs(mde)
    arms = 1 if paired else 2
    z = float(scipy_stats.norm.ppf(1.0 - alpha / 2.0) + scipy_stats.norm.ppf(power))
    fixed_n = max(1, math.ceil(arms * (z * sd / effect) ** 2))
    z_power = float(scipy_stats.norm.ppf(power))

    def enough(n: int) -> bool:
        v = arms * sd * sd / n
        width, _ = sequence_bounds(0.0, v, arms * n, alpha=alpha)
        return effect - float(width) >= z_power * math.sqrt(v)

    high = fixed_n
    while not enough(high):
        high *= 2
        if high > _MAX_N:
            raise ValueError(f"mde {mde} is too small to detect with sd {sd}")
    low = max(1, high // 2)
    while low < high:
        middle = (low + high) // 2
        if enough(middle):
            high = middle
        else:
            low = middle + 1
    return SamplePlan(fixed_n, max(fixed_n, high), mde, sd, alpha, power)
