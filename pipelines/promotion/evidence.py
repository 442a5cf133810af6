"""From a traffic comparison and a golden-set comparison to the gate's evidence (pure).

Live traffic is looked at every hour, so its tests are always valid (mSPRT confidence
sequences, carried over from the previous look); the golden set is a fixed sample, so it gets
the spine's paired bootstrap. Latency is compared on the p95 with a seeded bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipelines.experiments.gate import (
    GateDecision,
    MetricEvidence,
    evidence_from_quantile,
    evidence_from_sequential,
)
from pipelines.experiments.quantiles import p95_difference
from pipelines.experiments.sequential import (
    SequentialResult,
    holm_across_slices,
    mcnemar_test,
    paired_test,
    two_sample_test,
)
from pipelines.experiments.srm import SrmResult, sample_ratio_mismatch
from pipelines.promotion.comparison import FloatArray, TrafficComparison, quality_differences
from pipelines.promotion.gates import slice_metric

LATENCY = "latency_p95_ms"
COST = "cost_per_request"
"""AI cost per request in micro-units of the price's currency (see `comparison`)."""
ERRORS = "error_rate"
QUALITY = "quality"


def jsonable(value: Any) -> Any:
    """A JSON document of `value`: non-finite floats become null (JSONB refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.floating | np.integer):
        return jsonable(value.item())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def previous_result(stored: Mapping[str, Any] | None) -> SequentialResult | None:
    """The sequential result of the previous look, from a stored decision's evidence."""
    if not stored:
        return None

    def bound(name: str, default: float) -> float:
        value = stored.get(name)
        return default if value is None else float(value)

    try:
        return SequentialResult(
            n=int(stored["n"]),
            estimate=bound("estimate", math.nan),
            ci_low=bound("ci_low", -math.inf),
            ci_high=bound("ci_high", math.inf),
            p_value=bound("p_value", 1.0),
            e_value=bound("e_value", 1.0),
            decision=stored["decision"],
            method=str(stored["method"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


@dataclass(frozen=True)
class LiveEvidence:
    metrics: tuple[MetricEvidence, ...]
    sequential: dict[str, dict[str, Any]]
    """The always-valid results per metric (carried into the next look)."""
    tests: dict[str, Any]
    """Further tests reported with the decision (McNemar, the p95 bootstrap)."""
    srm: SrmResult | None
    unavailable: dict[str, str] = field(default_factory=dict)
    """Metric → why it has no evidence this look."""


def _missing_prices(comparison: TrafficComparison) -> str | None:
    if not comparison.unpriced:
        return None
    return (
        f"No evidence for the guardrail {COST} yet: no AI cost rate is in force for "
        f"{', '.join(comparison.unpriced)} on the days of its answers; add one "
        "(streamflow profitability price ai-cost, or POST /provider/v1/pricing/ai-costs)."
    )


def live_evidence(
    comparison: TrafficComparison,
    *,
    alpha: float,
    seed: int,
    resamples: int,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    challenger_share: float | None = None,
    min_n: int = 30,
    tau: float | None = None,
) -> LiveEvidence:
    """The live metrics (challenger minus champion) with intervals, and the SRM check of an
    A/B split (`challenger_share` of the keys promised to the challenger).

    `tau` is the mixture's scale (the effect the experiment was planned to detect): the
    confidence sequences are narrowest where that effect becomes detectable; None tunes them
    for 10,000 observations."""
    previous = previous or {}
    champion, challenger = comparison.champion, comparison.challenger
    sequential: dict[str, SequentialResult] = {}
    tests: dict[str, Any] = {}
    srm = None
    if comparison.paired:
        quality = quality_differences(comparison)
        if len(quality):
            sequential[QUALITY] = paired_test(
                quality,
                alpha=alpha,
                tau=tau,
                min_n=min_n,
                previous=previous_result(previous.get(QUALITY)),
            )
            a, b = champion.quality, challenger.quality
            keep = ~np.isnan(a) & ~np.isnan(b)
            if keep.any() and set(np.unique(np.concatenate([a[keep], b[keep]]))) <= {0.0, 1.0}:
                right_a, right_b = a[keep] == 1.0, b[keep] == 1.0
                tests["mcnemar_quality"] = asdict(
                    mcnemar_test(
                        int(np.sum(right_a & right_b)),
                        int(np.sum(right_a & ~right_b)),
                        int(np.sum(~right_a & right_b)),
                        int(np.sum(~right_a & ~right_b)),
                        alpha=alpha,
                    )
                )
        if comparison.n:
            sequential[ERRORS] = paired_test(
                challenger.errors - champion.errors,
                alpha=alpha,
                tau=tau,
                min_n=min_n,
                binary=True,
                previous=previous_result(previous.get(ERRORS)),
            )
        if comparison.n and not comparison.unpriced:
            # Costs are in micro-units, not the planned effect's units: tune without tau.
            sequential[COST] = paired_test(
                challenger.cost_micros - champion.cost_micros,
                alpha=alpha,
                min_n=min_n,
                previous=previous_result(previous.get(COST)),
            )
    else:
        a = champion.quality[~np.isnan(champion.quality)]
        b = challenger.quality[~np.isnan(challenger.quality)]
        if len(a) and len(b):
            sequential[QUALITY] = two_sample_test(
                a,
                b,
                alpha=alpha,
                tau=tau,
                min_n=min_n,
                previous=previous_result(previous.get(QUALITY)),
            )
        if comparison.n:
            sequential[ERRORS] = two_sample_test(
                champion.errors,
                challenger.errors,
                binary=True,
                alpha=alpha,
                tau=tau,
                min_n=min_n,
                previous=previous_result(previous.get(ERRORS)),
            )
        if len(champion.cost_micros) and len(challenger.cost_micros) and not comparison.unpriced:
            sequential[COST] = two_sample_test(
                champion.cost_micros,
                challenger.cost_micros,
                alpha=alpha,
                min_n=min_n,
                previous=previous_result(previous.get(COST)),
            )
        if challenger_share is not None:
            srm = sample_ratio_mismatch(
                {"champion": comparison.n_champion, "challenger": comparison.n_challenger},
                {"champion": 1.0 - challenger_share, "challenger": challenger_share},
            )
    metrics = [
        evidence_from_sequential(name, "live", result) for name, result in sequential.items()
    ]
    if min(len(champion.latency_ms), len(challenger.latency_ms)) >= 2:
        latency = p95_difference(
            champion.latency_ms,
            challenger.latency_ms,
            seed=seed,
            resamples=resamples,
            paired=comparison.paired,
            confidence=1.0 - alpha,
        )
        tests["p95_latency"] = asdict(latency)
        metrics.append(evidence_from_quantile(LATENCY, "live", latency))
    return LiveEvidence(
        metrics=tuple(metrics),
        sequential={name: asdict(result) for name, result in sequential.items()},
        tests=tests,
        srm=srm,
        unavailable={COST: missing} if (missing := _missing_prices(comparison)) else {},
    )


def decision_document(decision: GateDecision) -> dict[str, Any]:
    """The gate's decision as stored: outcome, reason, one row per check."""
    return {
        "outcome": decision.outcome,
        "reason": decision.reason,
        "checks": [asdict(check) for check in decision.checks],
    }


def _holm_levels(counts: Mapping[str, int], resamples: int, alpha: float) -> dict[str, int]:
    """Each slice's order statistic in Holm's step-down over bootstrap p-values count/resamples:
    the step's level alpha / (slices not yet passed) times resamples, rounded down, frozen at the
    first step that fails (so no later slice passes either)."""
    order = sorted(counts, key=lambda name: (counts[name], name))
    ranks: dict[str, int] = {}
    rank = 0
    failed = False
    for step, name in enumerate(order):
        if not failed:
            rank = math.floor(alpha / (len(order) - step) * resamples)
            failed = counts[name] > rank
        ranks[name] = rank
    return ranks


def critical_slice_evidence(
    differences: FloatArray,
    slices: Sequence[str],
    critical: Sequence[str],
    *,
    metric: str,
    margin: float,
    higher_is_better: bool,
    alpha: float,
    seed: int,
    resamples: int,
) -> tuple[list[MetricEvidence], dict[str, Any]]:
    """Golden-set evidence of the primary metric on each critical slice (challenger minus
    champion, per-example `differences` with their `slices`), Holm-adjusted across the slices.

    Per slice, a seeded bootstrap of the mean difference gives two one-sided p-values against
    the margin: "holds" (the share of bootstrap means worse than or at the margin) and
    "breached" (the share at or better than it), each in a Holm family across the critical
    slices at alpha/2. Each bound of the reported interval is the bootstrap order statistic at
    its Holm step's level, so it clears the margin exactly when Holm's step-down rejects: the
    gate's interval rule is Holm's rule. Each row's p-value is the Holm-adjusted "holds" one."""
    names = list(dict.fromkeys(critical))
    labels = np.asarray(slices, dtype=object)
    rng = np.random.default_rng(seed)
    sign = 1.0 if higher_is_better else -1.0
    means: dict[str, FloatArray] = {}
    holds: dict[str, int] = {}
    harms: dict[str, int] = {}
    for name in names:
        values = sign * np.asarray(differences, dtype=float)[labels == name]
        if len(values) < 2:
            means[name] = np.full(resamples, math.nan)
            holds[name] = harms[name] = resamples
            continue
        draws = rng.integers(0, len(values), size=(resamples, len(values)))
        means[name] = np.sort(values[draws].mean(axis=1))
        holds[name] = int(np.sum(means[name] <= -margin))
        harms[name] = int(np.sum(means[name] >= -margin))
    low_ranks = _holm_levels(holds, resamples, alpha / 2.0)
    high_ranks = _holm_levels(harms, resamples, alpha / 2.0)
    adjusted = holm_across_slices({name: holds[name] / resamples for name in names})
    adjusted_harm = holm_across_slices({name: harms[name] / resamples for name in names})
    rows: list[MetricEvidence] = []
    document: dict[str, Any] = {}
    for name in names:
        ordered = means[name]
        n = int(np.sum(labels == name))
        low, high = float(ordered[low_ranks[name]]), float(ordered[-1 - high_ranks[name]])
        estimate = float(np.mean(np.asarray(differences, dtype=float)[labels == name]))
        ci = (low, high) if higher_is_better else (-high, -low)
        if n < 2:
            ci = (-math.inf, math.inf)
        row = MetricEvidence(
            metric=slice_metric(metric, name),
            source="golden",
            estimate=estimate if n else math.nan,
            ci_low=ci[0],
            ci_high=ci[1],
            p_value=adjusted[name],
            n=n,
            method=(
                f"paired bootstrap on slice {name} ({resamples} resamples, seed {seed}), "
                f"bounds at Holm levels across {len(names)} critical slices"
            ),
        )
        rows.append(row)
        document[name] = {
            **asdict(row),
            "p_holds": holds[name] / resamples,
            "p_breached": harms[name] / resamples,
            "p_holds_holm": adjusted[name],
            "p_breached_holm": adjusted_harm[name],
            "bound_ranks": [low_ranks[name], resamples - 1 - high_ranks[name]],
        }
    return rows, document
