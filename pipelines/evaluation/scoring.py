"""Per-example scores and the aggregates, CIs and comparisons built on them.

Pure core: frames and arrays in, frozen dataclasses and read models out; `service.py` stores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.evaluation.metrics import (
    ClassificationSuite,
    TextGenerationSuite,
    score_classification,
    score_text_generation,
)
from pipelines.evaluation.quality import QualityWeights, quality_score
from pipelines.evaluation.read_models import McNemarTest, MetricDifference, split_metric_name
from pipelines.evaluation.rouge import ROUGE_COLUMNS, score_rouge
from pipelines.evaluation.statistics import (
    PairedDifference,
    bootstrap,
    bootstrap_by_slice,
    confidence_intervals,
    holm,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_by_slice,
)
from pipelines.evaluation.suite import MetricSuite
from pipelines.evaluation.text_metrics import TextMetricOptions
from pipelines.golden_datasets.canonical import normalise_value

CLASSIFICATION = "classification"
TEXT_GENERATION = "text_generation"
ALL_EXAMPLES = ""
"""The slice name of the overall aggregate."""


TEXT_NORMALIZATION = "nfc-newlines-strip"
"""How predictions and references are normalised before scoring (as import does `expected`)."""
LEGACY_NORMALIZATION = "none"
"""Runs stored before predictions were normalised."""


@dataclass(frozen=True)
class ScoringOptions:
    """How examples are scored and aggregated; part of an evaluation's identity.

    `SCORING_FIELDS` change per-example scores: runs compare only when they agree on them.
    The others (resamples, confidence, seed) shape the intervals only.
    """

    use_stemmer: bool = True
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    bleu_tokenize: str = "13a"
    bleu_lowercase: bool = False
    chrf_char_order: int = 6
    chrf_word_order: int = 0
    text_normalization: str = TEXT_NORMALIZATION

    def __post_init__(self) -> None:
        self.text_metrics()  # refuses unknown tokenizers and orders out of range

    def text_metrics(self) -> TextMetricOptions:
        """The BLEU and chrF options."""
        return TextMetricOptions(
            bleu_tokenize=self.bleu_tokenize,
            bleu_lowercase=self.bleu_lowercase,
            chrf_char_order=self.chrf_char_order,
            chrf_word_order=self.chrf_word_order,
        )

    @classmethod
    def from_config(cls, stored: Mapping[str, Any]) -> ScoringOptions:
        """The options a run stored; a run stored before predictions were normalised (and
        before BLEU / chrF options existed, at their defaults) says so."""
        values = dict(stored)
        values.setdefault("text_normalization", LEGACY_NORMALIZATION)
        return cls(**values)

    def scoring(self) -> dict[str, object]:
        """The options that change per-example scores."""
        return {name: getattr(self, name) for name in SCORING_FIELDS}


SCORING_FIELDS: tuple[str, ...] = (
    "text_normalization",
    "use_stemmer",
    "bleu_tokenize",
    "bleu_lowercase",
    "chrf_char_order",
    "chrf_word_order",
)
"""Options that change per-example scores (the others shape intervals only)."""


@dataclass(frozen=True)
class MetricRow:
    """One aggregate metric, overall (slice "") or for one slice, with its bootstrap CI."""

    slice: str
    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class Comparison:
    """Run b against run a on the same examples: overall, per slice, and McNemar."""

    n: int
    overall: tuple[MetricDifference, ...]
    slices: tuple[MetricDifference, ...]
    mcnemar: tuple[McNemarTest, ...] = field(default_factory=tuple)


def normalise_texts(values: Sequence[str]) -> list[str]:
    """Texts normalised as import normalises `expected` (see `normalise_value`)."""
    return [normalise_value(str(value)) for value in values]


def score_examples(
    task: str,
    *,
    predictions: Sequence[str],
    expected: Sequence[str],
    use_stemmer: bool = True,
    processes: int = 1,
    text_options: TextMetricOptions | None = None,
    normalise: bool = True,
) -> pd.DataFrame:
    """Per-example scores, one row per example in input order.

    Predictions and references are first normalised alike (`normalise_value`: NFC, "\\n" line
    endings, surrounding whitespace stripped), unless `normalise` is False.
    Text generation: ROUGE (P/R/F), exact match, sentence BLEU and chrF, and the sufficient
    statistics of corpus BLEU and chrF. Classification: label, prediction, correct.
    """
    if normalise:
        predictions, expected = normalise_texts(predictions), normalise_texts(expected)
    if task == CLASSIFICATION:
        return score_classification(predictions, expected)
    rouge = score_rouge(predictions, expected, use_stemmer=use_stemmer, processes=processes)
    other = score_text_generation(
        predictions, expected, processes=1, options=text_options or TextMetricOptions()
    )
    return pd.concat([rouge.reset_index(drop=True), other.reset_index(drop=True)], axis=1)


def suite_for(
    task: str,
    scores: pd.DataFrame | None = None,
    *,
    labels: Sequence[str] | None = None,
    options: ScoringOptions | None = None,
) -> MetricSuite:
    """The metric suite of a task: classification over the dataset version's label set
    (`labels`; without it, the expected labels of `scores`), never over what was predicted."""
    if task == CLASSIFICATION:
        if not labels:
            if scores is None or not len(scores):
                raise ValueError("a classification suite needs the dataset version's label set")
            labels = sorted(set(scores["label"].astype(str)))
        return ClassificationSuite(labels)
    chrf = (options or ScoringOptions()).text_metrics().chrf_columns
    return TextGenerationSuite([*ROUGE_COLUMNS, "exact_match"], chrf)


def summarize(
    task: str,
    scores: pd.DataFrame,
    *,
    slices: Sequence[str],
    options: ScoringOptions,
    quality: QualityWeights | None,
    labels: Sequence[str] | None = None,
) -> list[MetricRow]:
    """Every metric with its CI, overall and per non-empty slice; plus the quality score.

    Classification metrics are over `labels`, the dataset version's label set.
    """
    suite = suite_for(task, scores, labels=labels, options=options)
    statistics = suite.statistics(scores)
    parts = {
        ALL_EXAMPLES: bootstrap(
            statistics, suite, n_resamples=options.n_resamples, seed=options.seed
        )
    }
    named = [s for s in slices if s]
    if named:
        mask = np.asarray([bool(s) for s in slices])
        parts.update(
            bootstrap_by_slice(
                statistics[mask], named, suite, n_resamples=options.n_resamples, seed=options.seed
            )
        )
    rows: list[MetricRow] = []
    for slice_name, replicates in parts.items():
        groups = [replicates] + ([quality_score(replicates, quality)] if quality else [])
        for group in groups:
            for name, estimate in confidence_intervals(
                group, confidence=options.confidence
            ).items():
                rows.append(
                    MetricRow(
                        slice=slice_name,
                        name=name,
                        value=_finite(estimate.value),
                        ci_low=_finite(estimate.ci_low),
                        ci_high=_finite(estimate.ci_high),
                        n=estimate.n,
                    )
                )
    return rows


def compare(
    task: str,
    scores_a: pd.DataFrame,
    scores_b: pd.DataFrame,
    *,
    slices: Sequence[str],
    options: ScoringOptions,
    quality: QualityWeights | None,
    labels: Sequence[str] | None = None,
) -> Comparison:
    """Paired comparison of two runs whose rows are the same examples in the same order.

    Classification metrics of both runs are over `labels`, the dataset version's label set, so
    what one run happened to predict never changes the other's values.
    """
    if len(scores_a) != len(scores_b):
        raise ValueError("paired comparison needs the same examples in both runs")
    suite = suite_for(task, scores_b, labels=labels, options=options)
    stats_a, stats_b = suite.statistics(scores_a), suite.statistics(scores_b)
    overall = _differences(
        ALL_EXAMPLES,
        paired_bootstrap(
            stats_a,
            stats_b,
            suite,
            n_resamples=options.n_resamples,
            seed=options.seed,
            confidence=options.confidence,
            quality=quality,
        ),
    )
    named = [s for s in slices if s]
    per_slice: list[MetricDifference] = []
    if named:
        mask = np.asarray([bool(s) for s in slices])
        # Holm multiplies the smallest p by the family size; enough swaps keep it resolvable.
        swaps = max(options.n_resamples, 20 * len(set(named)))
        by_slice = paired_bootstrap_by_slice(
            stats_a[mask],
            stats_b[mask],
            named,
            suite,
            n_resamples=options.n_resamples,
            n_permutations=swaps,
            seed=options.seed,
            confidence=options.confidence,
            quality=quality,
        )
        for slice_name, differences in by_slice.items():
            per_slice += _differences(slice_name, differences)
    return Comparison(
        n=len(scores_a),
        overall=tuple(overall),
        slices=tuple(_holm_per_metric(per_slice)),
        mcnemar=tuple(mcnemar_tests(task, scores_a, scores_b, slices)),
    )


def mcnemar_tests(
    task: str, scores_a: pd.DataFrame, scores_b: pd.DataFrame, slices: Sequence[str]
) -> list[McNemarTest]:
    """McNemar's exact test on accuracy / exact match: overall, then per slice (Holm-adjusted
    across the slices)."""
    column = "correct" if task == CLASSIFICATION else "exact_match"
    metric = "accuracy" if task == CLASSIFICATION else "exact_match"
    correct_a = scores_a[column].to_numpy(dtype=float) > 0.5
    correct_b = scores_b[column].to_numpy(dtype=float) > 0.5
    groups: dict[str, list[int]] = {ALL_EXAMPLES: list(range(len(correct_a)))}
    per_slice: dict[str, list[int]] = {}
    for index, name in enumerate(slices):
        if name:
            per_slice.setdefault(name, []).append(index)
    groups.update(sorted(per_slice.items()))
    tests: list[McNemarTest] = []
    for name, rows in groups.items():
        result = mcnemar(correct_a[rows], correct_b[rows])
        tests.append(
            McNemarTest(
                slice=name,
                metric=metric,
                only_a_correct=int(result.b),
                only_b_correct=int(result.c),
                p_value=float(result.p_value),
                n=len(rows),
            )
        )
    adjusted = holm([test.p_value for test in tests[1:]]) if len(tests) > 1 else []
    return [tests[0]] + [
        test.model_copy(update={"p_value_holm": value})
        for test, value in zip(tests[1:], adjusted, strict=True)
    ]


def _differences(
    slice_name: str, differences: Mapping[str, PairedDifference]
) -> list[MetricDifference]:
    return [
        MetricDifference(
            slice=slice_name,
            name=split_metric_name(name)[0],
            label=split_metric_name(name)[1],
            a=_finite(d.a),
            b=_finite(d.b),
            difference=_finite(d.difference),
            ci_low=_finite(d.ci_low),
            ci_high=_finite(d.ci_high),
            p_value=_finite(d.p_value),
            p_value_holm=None,
            n=d.n,
        )
        for name, d in differences.items()
    ]


def _holm_per_metric(rows: list[MetricDifference]) -> list[MetricDifference]:
    """Holm-adjust each metric's p-values across slices (one family per metric)."""
    by_metric: dict[tuple[str, str | None], list[int]] = {}
    for index, row in enumerate(rows):
        if row.p_value is not None:
            by_metric.setdefault((row.name, row.label), []).append(index)
    adjusted: dict[int, float] = {}
    for indexes in by_metric.values():
        values = holm([rows[i].p_value or 0.0 for i in indexes])
        adjusted.update(zip(indexes, values, strict=True))
    return [
        row.model_copy(update={"p_value_holm": adjusted.get(index)})
        for index, row in enumerate(rows)
    ]


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def metric_lookup(rows: Sequence[MetricRow]) -> Mapping[tuple[str, str], MetricRow]:
    """Rows keyed by (slice, name)."""
    return {(row.slice, row.name): row for row in rows}
