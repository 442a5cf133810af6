"""Metric suites over per-example scores, and the scorers that produce those scores.

`MeanSuite` and `TextGenerationSuite` live here; text scoring is in `text_metrics` and
classification in `classification`, both re-exported so callers import from one place.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipelines.evaluation.classification import (
    SUMMARY_METRICS,
    ClassificationSuite,
    classes_of,
    confusion_matrix,
    score_classification,
)
from pipelines.evaluation.suite import FloatArray
from pipelines.evaluation.text_metrics import (
    BLEU_STAT_COLUMNS,
    CHRF_STAT_COLUMNS,
    TEXT_SCORE_COLUMNS,
    bleu_from_statistics,
    bleu_statistics,
    chrf_from_statistics,
    chrf_statistics,
    score_text_generation,
    tokenize_13a,
)

__all__ = [
    "BLEU_STAT_COLUMNS",
    "CHRF_STAT_COLUMNS",
    "SUMMARY_METRICS",
    "TEXT_SCORE_COLUMNS",
    "ClassificationSuite",
    "MeanSuite",
    "TextGenerationSuite",
    "bleu_from_statistics",
    "bleu_statistics",
    "chrf_from_statistics",
    "chrf_statistics",
    "classes_of",
    "confusion_matrix",
    "score_classification",
    "score_text_generation",
    "tokenize_13a",
]


class MeanSuite:
    """The mean over examples of each of some per-example score columns."""

    def __init__(self, columns: Sequence[str]) -> None:
        columns = tuple(columns)
        if len(set(columns)) != len(columns):
            raise ValueError(f"columns must be distinct, got {columns!r}")
        self._columns = columns

    @property
    def names(self) -> tuple[str, ...]:
        """The score columns, in order."""
        return self._columns

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        """The columns followed by a constant 1 that counts examples."""
        values = scores.loc[:, list(self._columns)].to_numpy(dtype=np.float64)
        return np.column_stack([values, np.ones(len(scores))])

    def finalize(self, sums: FloatArray) -> FloatArray:
        """Column sums over the example count; NaN for a replicate with no examples."""
        sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
        k = len(self._columns)
        with np.errstate(divide="ignore", invalid="ignore"):
            return sums[:, :k] / sums[:, k : k + 1]


class TextGenerationSuite:
    """Means of some score columns, plus corpus BLEU and corpus chrF.

    Corpus BLEU and chrF equal `sacrebleu.corpus_bleu(predictions, [references]).score` and
    `sacrebleu.corpus_chrf(...)` on the examples, computed from the statistic columns of
    `score_text_generation`.
    """

    def __init__(
        self, mean_columns: Sequence[str], chrf_columns: Sequence[str] = CHRF_STAT_COLUMNS
    ) -> None:
        self._means = MeanSuite(mean_columns)
        self._chrf_columns = tuple(chrf_columns)
        if not self._chrf_columns or len(self._chrf_columns) % 3:
            raise ValueError("chrF statistics come in (hyp, ref, match) triples per order")
        clash = {"bleu", "chrf"} & set(self._means.names)
        if clash:
            raise ValueError(f"{sorted(clash)} are corpus metrics here, not mean columns")
        self._names = (*self._means.names, "bleu", "chrf")

    @property
    def names(self) -> tuple[str, ...]:
        """The mean columns, then `bleu` and `chrf`."""
        return self._names

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        """The mean statistics, then the BLEU and chrF sufficient statistics."""
        corpus = scores.loc[:, [*BLEU_STAT_COLUMNS, *self._chrf_columns]].to_numpy(np.float64)
        return np.column_stack([self._means.statistics(scores), corpus])

    def finalize(self, sums: FloatArray) -> FloatArray:
        """Metric values of each row of summed statistics."""
        sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
        k = len(self._means.names) + 1
        b = k + len(BLEU_STAT_COLUMNS)
        return np.column_stack(
            [
                self._means.finalize(sums[:, :k]),
                bleu_from_statistics(sums[:, k:b]),
                chrf_from_statistics(sums[:, b:]),
            ]
        )
