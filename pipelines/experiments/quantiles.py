"""Bootstrap interval of the difference in p95 latency between two versions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy.typing as npt


@dataclass(frozen=True)
class QuantileDifference:
    quantile: float
    control: float
    treatment: float
    difference: float
    ci_low: float
    ci_high: float
    n_control: int
    n_treatment: int
    resamples: int
    seed: int
    method: str


def p95_difference(
    control: npt.ArrayLike,
    treatment: npt.ArrayLike,
    *,
    seed: int,
    resamples: int = 2000,
    paired: bool = False,
    confidence: float = 0.95,
) -> QuantileDifference:
    raise NotImplementedError
