"""Sample-ratio mismatch: is the observed split of units what the assignment promised?

A chi-square goodness-of-fit test of the per-variant counts against the configured shares,
run before any look at outcomes: a mismatch means assignment or logging is broken and the
comparison cannot be trusted, whatever it says. The default alpha is 0.001, as is usual for
this check (it runs at every look, and a false alarm stops an experiment).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

# Shares must add up to 1 within this much.
_SHARE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class SrmResult:
    """Chi-square statistic, its p-value, and whether p < alpha (a mismatch)."""

    chi2: float
    p_value: float
    mismatch: bool


def sample_ratio_mismatch(
    counts: Mapping[str, int], expected_shares: Mapping[str, float], *, alpha: float = 0.001
) -> SrmResult:
    """Test the observed `counts` per variant against `expected_shares` (which sum to 1).

    Every variant with a positive share must appear in `counts` (a missing one counts 0);
    a count for a variant without a share is an error. No units yet: no mismatch (p = 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if len(expected_shares) < 2:
        raise ValueError("expected_shares must name at least two variants")
    unknown = sorted(set(counts) - set(expected_shares))
    if unknown:
        raise ValueError(f"counts name variants without an expected share: {unknown}")
    names = sorted(expected_shares)
    shares = np.array([float(expected_shares[name]) for name in names])
    if np.any(~np.isfinite(shares)) or np.any(shares <= 0.0):
        raise ValueError("every expected share must be a positive number")
    if abs(float(shares.sum()) - 1.0) > _SHARE_TOLERANCE:
        raise ValueError(f"expected shares must add up to 1, got {float(shares.sum())}")
    observed = np.array([counts.get(name, 0) for name in names], dtype=np.float64)
    if np.any(observed < 0) or np.any(observed != np.round(observed)):
        raise ValueError("counts must be non-negative integers")
    total = float(observed.sum())
    if total == 0.0:
        return SrmResult(0.0, 1.0, False)
    result = scipy_stats.chisquare(observed, f_exp=shares / shares.sum() * total)
    chi2, p_value = float(result.statistic), float(result.pvalue)
    if math.isnan(p_value):
        p_value = 1.0
    return SrmResult(chi2, p_value, p_value < alpha)
