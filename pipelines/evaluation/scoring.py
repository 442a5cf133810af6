"""Per-example scores and the aggregates, CIs and comparisons built on them.

Pure core: frames and arrays in, frozen dataclasses and read models out; `service.py` stores.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.evaluation import intervals
from pipelines.evaluation.decision import decide
from pipelines.evaluation.metrics import (
    ClassificationSuite,
    TextGenerationSuite,
    classes_of,
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
    influence,
    mcnemar,
    paired_bootstrap,
    paired_bootstrap_by_slice,
    studentized_intervals,
    wilson_interval,
)
from pipelines.evaluation.suite import FloatArray, MetricSuite

CLASSIFICATION = "classification"
TEXT_GENERATION = "text_generation"
ALL_EXAMPLES = ""
"""The slice name of the overall aggregate."""


@dataclass(frozen=True)
class ScoringOptions:
    """How examples are scored and aggregated; part of an evaluation's identity."""

    use_stemmer: bool = True
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    min_n: int = intervals.DEFAULT_MIN_N
    """Slices with fewer examples are flagged `small_n` in every output."""


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


def score_examples(
    task: str,
    *,
    predictions: Sequence[str],
    expected: Sequence[str],
    use_stemmer: bool = True,
    processes: int = 1,
) -> pd.DataFrame:
    """Per-example scores, one row per example in input order.

    Text generation: ROUGE (P/R/F), exact match, sentence BLEU and chrF, and the sufficient
    statistics of corpus BLEU and chrF. Classification: label, prediction, correct.
    """
    if task == CLASSIFICATION:
        return score_classification(predictions, expected)
    rouge = score_rouge(predictions, expected, use_stemmer=use_stemmer, processes=processes)
    other = score_text_generation(predictions, expected)
    return pd.concat([rouge.reset_index(drop=True), other.reset_index(drop=True)], axis=1)


def suite_for(task: str, scores: Sequence[pd.DataFrame]) -> MetricSuite:
    """The metric suite of a task; classification classes span every frame given."""
    if task == CLASSIFICATION:
        labels = [label for frame in scores for label in frame["label"].astype(str)]
        predictions = [p for frame in scores for p in frame["prediction"].astype(str)]
        return ClassificationSuite(classes_of(labels, predictions))
    return TextGenerationSuite([*ROUGE_COLUMNS, "exact_match"])


def summarize(
    task: str,
    scores: pd.DataFrame,
    *,
    slices: Sequence[str],
    options: ScoringOptions,
    quality: QualityWeights | None,
) -> list[MetricRow]:
    """Every metric with its CI, overall and per non-empty slice; plus the quality score.

    Intervals follow `intervals`: Wilson for proportions, bootstrap-t for everything else
    (see `docs/statistics.md`). Values are the metrics on the whole slice, as before.
    """
    suite = suite_for(task, [scores])
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
) -> Comparison:
    """Paired comparison of two runs whose rows are the same examples in the same order.

    One decision rule (see `decision`): the primary metric (the quality score unless another
    is declared) tested alone at alpha = 1 - confidence; every other metric, overall and per
    slice, in one Holm family.
    """
    if len(scores_a) != len(scores_b):
        raise ValueError("paired comparison needs the same examples in both runs")
    suite = suite_for(task, [scores_a, scores_b])
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
    column = "correct" if task == CLASSIFICATION else "exact_match"
    result = mcnemar(
        scores_a[column].to_numpy(dtype=float) > 0.5, scores_b[column].to_numpy(dtype=float) > 0.5
    )
    test = McNemarTest(
        metric="accuracy" if task == CLASSIFICATION else "exact_match",
        only_a_correct=int(result.b),
        only_b_correct=int(result.c),
        p_value=float(result.p_value),
    )
    return Comparison(
        n=len(scores_a),
        overall=tuple(overall),
        slices=tuple(per_slice),
        verdict=verdict,
        mcnemar=(test,),
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
