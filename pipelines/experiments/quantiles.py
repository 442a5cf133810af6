"""Bootstrap interval of the difference in p95 latency between two versions.

The guardrail "latency p95 no worse than +margin" needs an interval for a difference of
quantiles, which has no simple standard error. The percentile bootstrap does it: resample each
side (or, for shadow traffic where both versions answered the same requests, resample the
requests, `paired=True`, which keeps their correlation and narrows the interval), take the
95th percentile of each resample, and read the interval off the resampled differences.
Resampling uses one seeded PCG64 stream, in blocks of resamples so memory stays bounded; the
same inputs and seed give the same interval. This is a fixed-sample interval: for a look at a
growing window it is not always-valid, so the gate should read it at the end of the minimum
duration, not hour by hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Cells (resamples x values) per block of resamples.
_BLOCK_CELLS = 1 << 22
QUANTILE = 0.95


@dataclass(frozen=True)
class QuantileDifference:
    """p95 of each side, treatment minus control, and its bootstrap interval."""

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
    """p95(treatment) − p95(control) with a percentile-bootstrap interval at `confidence`."""
    c = _values(control, "control")
    t = _values(treatment, "treatment")
    if resamples < 100:
        raise ValueError(f"resamples must be >= 100, got {resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if paired and c.size != t.size:
        raise ValueError(f"paired samples must have the same length, got {c.size} and {t.size}")
    control_q = float(np.quantile(c, QUANTILE))
    treatment_q = float(np.quantile(t, QUANTILE))
    rng = np.random.Generator(np.random.PCG64(seed))
    differences = np.empty(resamples)
    block = max(1, _BLOCK_CELLS // max(c.size, t.size))
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        if paired:
            index = rng.integers(0, c.size, size=(size, c.size))
            rc, rt = c[index], t[index]
        else:
            rc = c[rng.integers(0, c.size, size=(size, c.size))]
            rt = t[rng.integers(0, t.size, size=(size, t.size))]
        differences[start : start + size] = np.quantile(rt, QUANTILE, axis=1) - np.quantile(
            rc, QUANTILE, axis=1
        )
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return QuantileDifference(
        quantile=QUANTILE,
        control=control_q,
        treatment=treatment_q,
        difference=treatment_q - control_q,
        ci_low=float(low),
        ci_high=float(high),
        n_control=int(c.size),
        n_treatment=int(t.size),
        resamples=resamples,
        seed=seed,
        method="percentile bootstrap, paired by request" if paired else "percentile bootstrap",
    )


def _values(values: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise ValueError(f"{name} must be a one-dimensional sample of at least 2 values")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must hold finite numbers only")
    return array
