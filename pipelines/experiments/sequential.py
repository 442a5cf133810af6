"""Always-valid comparisons of a challenger with its champion, for looks at any time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy.typing as npt

Decision = Literal["better", "worse", "inconclusive"]


@dataclass(frozen=True)
class SampleStats:
    """Count, mean and unbiased variance (ddof = 1; 0 below two values) of a sample."""

    n: int
    mean: float
    variance: float

    @classmethod
    def from_values(cls, values: npt.ArrayLike) -> SampleStats:
        raise NotImplementedError

    def merge(self, other: SampleStats) -> SampleStats:
        raise NotImplementedError


@dataclass(frozen=True)
class SequentialResult:
    """One look of a sequential test: treatment minus control (or the mean paired difference)."""

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
    """Exact McNemar test on paired binary outcomes; `difference` is accuracy B minus A."""

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
    raise NotImplementedError


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
    raise NotImplementedError


def mcnemar_test(
    both_right: int, only_a: int, only_b: int, both_wrong: int, *, alpha: float = 0.05
) -> McNemarResult:
    raise NotImplementedError


def holm_across_slices(p_values: Mapping[str, float]) -> dict[str, float]:
    raise NotImplementedError


__all__ = [
    "Decision",
    "McNemarResult",
    "SampleStats",
    "SequentialResult",
    "holm_across_slices",
    "mcnemar_test",
    "paired_test",
    "two_sample_test",
]
