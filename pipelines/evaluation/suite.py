"""The contract between metrics and statistics.

Every corpus-level metric StreamFlow reports is a function of the *column sums* of per-example
sufficient statistics: a mean is sum(value) / sum(1), corpus BLEU is a function of summed n-gram
counts, macro-F1 is a function of the summed one-hot confusion cells. Writing metrics this way
lets one bootstrap engine resample examples for every metric at once (counts @ statistics), keeps
the quality score's CI joint with its parts, and gives paired comparisons for free.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]


class MetricSuite(Protocol):
    """A family of corpus-level metrics over a frame of per-example scores."""

    @property
    def names(self) -> tuple[str, ...]:
        """Metric names, in the column order `finalize` returns."""
        ...

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        """Per-example sufficient statistics, shape (n_examples, n_statistics)."""
        ...

    def finalize(self, sums: FloatArray) -> FloatArray:
        """Metric values from summed statistics: (replicates, statistics) -> (replicates, names)."""
        ...
