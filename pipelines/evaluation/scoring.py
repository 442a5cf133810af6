"""Per-example scores and the aggregates, CIs and comparisons built on them.

Pure core: frames and arrays in, frozen dataclasses and read models out; `service.py` stores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.evaluation import intervals
from pipelines.evaluation.decision import decide
from pipelines.evaluation.metrics import (
    ClassificationSuite,
    TextGenerationSuite,
    score_classification,
    score_text_generation,
)
from pipelines.evaluation.quality import QUALITY_SCORE, QualityWeights, quality_score
from pipelines.evaluation.read_models import (
    McNemarTest,
    MetricDifference,
    Verdict,
    split_metric_name,
)
from pipelines.evaluation.rouge import ROUGE_COLUMNS, score_rouge
from pipelines.evaluation.statistics import (
    Estimate,
    PairedDifference,
    Replicates,
    Studentized,
    bootstrap_studentized,
    bootstrap_studentized_by_slice,
    holm,
    influence,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_by_slice,
    studentized_intervals,
    wilson_interval,
)
from pipelines.evaluation.suite import FloatArray, MetricSuite
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
    min_n: int = intervals.DEFAULT_MIN_N
    """Slices with fewer examples are flagged `small_n` in every output."""
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
    verdict: Verdict
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

    Intervals follow `intervals`: Wilson for proportions, bootstrap-t for everything else
    (see `docs/statistics.md`). Classification metrics are over `labels`, the dataset
    version's label set; undefined per-class values (no support) have no interval.
    """
    suite = suite_for(task, scores, labels=labels, options=options)
    statistics = suite.statistics(scores)
    derived = _quality_coefficients(quality)
    parts = {
        ALL_EXAMPLES: bootstrap_studentized(
            statistics, suite, derived=derived, n_resamples=options.n_resamples, seed=options.seed
        )
    }
    named = [s for s in slices if s]
    if named:
        mask = np.asarray([bool(s) for s in slices])
        parts.update(
            bootstrap_studentized_by_slice(
                statistics[mask],
                named,
                suite,
                derived=derived,
                n_resamples=options.n_resamples,
                seed=options.seed,
            )
        )
    rows: list[MetricRow] = []
    for slice_name, studentized in parts.items():
        estimates = interval_estimates(studentized, suite, quality, confidence=options.confidence)
        for name, estimate in estimates.items():
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


def _quality_coefficients(quality: QualityWeights | None) -> dict[str, dict[str, float]]:
    if quality is None:
        return {}
    return {
        QUALITY_SCORE: {
            metric: weight / quality.scale(metric) for metric, weight in quality.weights.items()
        }
    }


def interval_estimates(
    studentized: Studentized,
    suite: MetricSuite,
    quality: QualityWeights | None,
    *,
    confidence: float,
) -> dict[str, Estimate]:
    """Each metric's value and interval by its family: Wilson or bootstrap-t.

    Values are the suite's metrics on the summed statistics and the quality score computed by
    `quality_score` on them, exactly as reported before intervals changed.
    """
    names = tuple(suite.names)
    plain = Replicates(
        names,
        studentized.point[: len(names)],
        studentized.replicates[:, : len(names)],
        studentized.n,
    )
    values = dict(zip(names, (float(v) for v in plain.point), strict=True))
    if quality is not None:
        values[QUALITY_SCORE] = float(quality_score(plain, quality).point[0])
    bounded = {name: intervals.bounds(name) for name in studentized.names}
    if quality is not None:
        bounded[QUALITY_SCORE] = (0.0, 1.0)
    boot = studentized_intervals(studentized, confidence=confidence, bounds=bounded)
    counts = getattr(suite, "proportions", None)
    proportions: dict[str, tuple[float, float]] = (
        counts(studentized.totals) if callable(counts) else {}
    )
    out: dict[str, Estimate] = {}
    for name in studentized.names:
        value = values[name]
        if intervals.family(name) == "proportion" and name in proportions:
            successes, trials = proportions[name]
            wilson = wilson_interval(successes, trials, confidence=confidence)
            low, high = wilson.ci_low, wilson.ci_high
        else:
            low, high = boot[name].ci_low, boot[name].ci_high
        if not np.isfinite(value):
            low = high = float("nan")
        out[name] = Estimate(value, low, high, studentized.n)
    return out


class PrimaryMetricUnknown(ValueError):
    """The declared primary metric is not one the comparison computes."""


def default_primary(task: str, quality: QualityWeights | None) -> str:
    """The primary metric of a comparison when none is declared: the quality score."""
    if quality is not None:
        return QUALITY_SCORE
    return "f1_macro" if task == CLASSIFICATION else "rougeL_f"


def compare(
    task: str,
    scores_a: pd.DataFrame,
    scores_b: pd.DataFrame,
    *,
    slices: Sequence[str],
    options: ScoringOptions,
    quality: QualityWeights | None,
    primary: str | None = None,
    labels: Sequence[str] | None = None,
) -> Comparison:
    """Paired comparison of two runs whose rows are the same examples in the same order.

    One decision rule (see `decision`): the primary metric (the quality score unless another
    is declared) tested alone at alpha = 1 - confidence; every other metric, overall and per
    slice, in one Holm family. Classification metrics of both runs are over `labels`, the
    dataset version's label set, so what one run happened to predict never changes the
    other's values; `quality` is the one weighting both quality scores use.
    """
    if len(scores_a) != len(scores_b):
        raise ValueError("paired comparison needs the same examples in both runs")
    suite = suite_for(task, scores_b, labels=labels, options=options)
    primary = primary or default_primary(task, quality)
    metric_names = (*suite.names, *([QUALITY_SCORE] if quality else []))
    if primary not in metric_names:
        raise PrimaryMetricUnknown(
            f"primary metric {primary!r} is not a metric of this comparison; choose one of "
            + ", ".join(metric_names)
        )
    stats_a, stats_b = suite.statistics(scores_a), suite.statistics(scores_b)
    named = [s for s in slices if s]
    alpha = 1.0 - options.confidence
    # Holm multiplies the smallest p by the family size; enough swaps keep it resolvable.
    family_size = len(metric_names) * (1 + len(set(named))) - 1
    swaps = max(options.n_resamples, math.ceil(2 * family_size / alpha))
    overall = _differences(
        ALL_EXAMPLES,
        paired_bootstrap(
            stats_a,
            stats_b,
            suite,
            n_resamples=options.n_resamples,
            n_permutations=swaps,
            seed=options.seed,
            confidence=options.confidence,
            quality=quality,
        ),
    )
    per_slice: list[MetricDifference] = []
    if named:
        mask = np.asarray([bool(s) for s in slices])
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
    overall, per_slice, verdict = decide(
        overall,
        per_slice,
        primary=primary,
        differences=paired_differences(suite, stats_a, stats_b, primary, quality),
        n=len(scores_a),
        alpha=alpha,
        min_n=options.min_n,
        swaps=swaps,
    )
    return Comparison(
        n=len(scores_a),
        overall=tuple(overall),
        slices=tuple(per_slice),
        verdict=verdict,
        mcnemar=tuple(mcnemar_tests(task, scores_a, scores_b, slices)),
    )


def paired_differences(
    suite: MetricSuite,
    stats_a: FloatArray,
    stats_b: FloatArray,
    metric: str,
    quality: QualityWeights | None,
) -> FloatArray:
    """Per-example differences b − a of one metric: n·∇f(S̄)·(s_b,i − s_a,i).

    S̄ is the mean of both systems' summed statistics. For a mean this is exactly the
    per-example score difference; for other metrics the first-order (linearised) one, whose
    mean approximates the metric's difference. Their spread is the paired variance that power
    and planning use.
    """
    pooled = (stats_a.sum(axis=0) + stats_b.sum(axis=0)) / 2.0
    slopes = influence(stats_b - stats_a, suite, pooled)
    names = tuple(suite.names)
    if metric == QUALITY_SCORE and quality is not None:
        weights = _quality_coefficients(quality)[QUALITY_SCORE]
        column = np.zeros(slopes.shape[0])
        for name, coefficient in weights.items():
            column = column + coefficient * slopes[:, names.index(name)]
    else:
        column = slopes[:, names.index(metric)]
    return np.asarray(column * stats_a.shape[0], dtype=np.float64)


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


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if np.isfinite(number) else None


def metric_lookup(rows: Sequence[MetricRow]) -> Mapping[tuple[str, str], MetricRow]:
    """Rows keyed by (slice, name)."""
    return {(row.slice, row.name): row for row in rows}
