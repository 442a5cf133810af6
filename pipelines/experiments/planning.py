"""Sample sizes for a stated minimum detectable effect, fixed-horizon and sequential."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplePlan:
    fixed_n: int
    sequential_n: int
    mde: float
    sd: float
    alpha: float
    power: float


def plan_sample_size(
    *, mde: float, sd: float, alpha: float = 0.05, power: float = 0.8, paired: bool = True
) -> SamplePlan:
    raise NotImplementedError
