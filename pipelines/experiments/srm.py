"""Sample-ratio mismatch: is the observed split of units what the assignment promised?"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class SrmResult:
    chi2: float
    p_value: float
    mismatch: bool


def sample_ratio_mismatch(
    counts: Mapping[str, int], expected_shares: Mapping[str, float], *, alpha: float = 0.001
) -> SrmResult:
    raise NotImplementedError
