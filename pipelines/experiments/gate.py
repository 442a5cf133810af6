"""The promotion gate: promote, reject or keep waiting, from evidence with intervals.

The rule (after Spotify's risk-aware decision rule, Schultzberg et al. 2024, plus the usual
pre-conditions):

* **promote** only if every check passes: no sample-ratio mismatch, the live sample has
  reached `min_n` and the experiment has run for `min_duration`, the primary metric is better
  with an interval that excludes zero (and p <= alpha when a p-value is given) on **both** the
  live and the golden evidence, and every guardrail is non-inferior within its margin on every
  source that has evidence for it (at least one must);
* **reject** when the primary metric is significantly worse on either source, or a guardrail is
  significantly inferior beyond its margin (its whole interval is past the margin). This needs
  neither the minimum sample nor the minimum duration: live intervals are always-valid and the
  golden ones are fixed-sample, so stopping early for harm is sound;
* otherwise **wait**. A sample-ratio mismatch always means wait: the assignment is broken, so
  no result (good or bad) can be trusted until it is fixed.

Every estimate is challenger minus champion, in the metric's own units; a guardrail's margin is
in the same units (e.g. 0.05 s of p95 latency, 0.01 of error rate). As in Spotify's rule there
is no alpha correction across guardrails: each must pass on its own, which only makes promotion
harder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from pipelines.experiments.quantiles import QuantileDifference
from pipelines.experiments.sequential import McNemarResult, SequentialResult
from pipelines.experiments.srm import SrmResult

Source = Literal["live", "golden"]
Outcome = Literal["promote", "reject", "wait"]


@dataclass(frozen=True)
class Guardrail:
    """A metric that may not get worse by more than `margin` (in the metric's units)."""

    metric: str
    margin: float
    higher_is_better: bool


@dataclass(frozen=True)
class GateConfig:
    primary_metric: str
    higher_is_better: bool
    guardrails: tuple[Guardrail, ...] = ()
    min_n: int = 1_000
    min_duration: timedelta = field(default_factory=lambda: timedelta(days=1))
    alpha: float = 0.05


@dataclass(frozen=True)
class MetricEvidence:
    """Challenger minus champion on one metric from one source, with its interval."""

    metric: str
    source: Source
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float | None
    n: int
    method: str


@dataclass(frozen=True)
class GateEvidence:
    metrics: tuple[MetricEvidence, ...]
    n: int
    duration: timedelta
    srm: SrmResult | None
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Metric → why it has no evidence (e.g. a model version without a price), for the reason."""


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool | None
    reason: str


@dataclass(frozen=True)
class GateDecision:
    outcome: Outcome
    checks: tuple[GateCheck, ...]
    reason: str


def decide(config: GateConfig, evidence: GateEvidence) -> GateDecision:
    """Promote, reject or wait, with one check per condition and a reason in plain words."""
    _validate(config)
    checks: list[GateCheck] = [_srm_check(evidence), *_progress_checks(config, evidence)]
    primary: list[GateCheck] = []
    for source in ("live", "golden"):
        rows = [
            row
            for row in evidence.metrics
            if row.metric == config.primary_metric and row.source == source
        ]
        if not rows:
            primary.append(
                GateCheck(
                    f"primary {config.primary_metric} ({source})",
                    None,
                    f"No {source} evidence for {config.primary_metric} yet.",
                )
            )
        primary += [_primary_check(config, row) for row in rows]
    guardrails: list[GateCheck] = []
    for guardrail in config.guardrails:
        rows = [row for row in evidence.metrics if row.metric == guardrail.metric]
        if not rows:
            guardrails.append(
                GateCheck(
                    f"guardrail {guardrail.metric}",
                    None,
                    evidence.unavailable.get(
                        guardrail.metric, f"No evidence for the guardrail {guardrail.metric} yet."
                    ),
                )
            )
        guardrails += [_guardrail_check(guardrail, row) for row in rows]
    checks += primary + guardrails
    srm = checks[0]
    if srm.passed is False:
        return GateDecision("wait", tuple(checks), srm.reason)
    failed = [check for check in primary + guardrails if check.passed is False]
    if failed:
        return GateDecision(
            "reject",
            tuple(checks),
            "Reject the challenger: " + " ".join(check.reason for check in failed),
        )
    if all(check.passed is True for check in checks):
        return GateDecision(
            "promote",
            tuple(checks),
            f"Promote the challenger: {config.primary_metric} is better on live traffic and on "
            "the golden set, every guardrail holds within its margin, and the sample and "
            "duration are enough.",
        )
    pending = [check for check in checks if check.passed is not True]
    return GateDecision(
        "wait",
        tuple(checks),
        "Keep waiting: " + " ".join(check.reason for check in pending),
    )


def evidence_from_sequential(
    metric: str, source: Source, result: SequentialResult
) -> MetricEvidence:
    """Evidence from a look of `paired_test` / `two_sample_test`."""
    return MetricEvidence(
        metric,
        source,
        result.estimate,
        result.ci_low,
        result.ci_high,
        result.p_value,
        result.n,
        result.method,
    )


def evidence_from_mcnemar(metric: str, source: Source, result: McNemarResult) -> MetricEvidence:
    """Evidence from McNemar's test (accuracy of the challenger minus the champion's)."""
    return MetricEvidence(
        metric,
        source,
        result.difference,
        result.ci_low,
        result.ci_high,
        result.p_value,
        result.n,
        result.method,
    )


def evidence_from_quantile(
    metric: str, source: Source, result: QuantileDifference
) -> MetricEvidence:
    """Evidence from `p95_difference` (an interval without a p-value)."""
    return MetricEvidence(
        metric,
        source,
        result.difference,
        result.ci_low,
        result.ci_high,
        None,
        min(result.n_control, result.n_treatment),
        result.method,
    )


def _validate(config: GateConfig) -> None:
    if not 0.0 < config.alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {config.alpha}")
    if config.min_n < 0:
        raise ValueError(f"min_n must be >= 0, got {config.min_n}")
    if config.min_duration < timedelta(0):
        raise ValueError("min_duration must not be negative")
    for guardrail in config.guardrails:
        if not (math.isfinite(guardrail.margin) and guardrail.margin >= 0.0):
            raise ValueError(
                f"the margin of guardrail {guardrail.metric} must be a number >= 0, "
                f"got {guardrail.margin}"
            )


def _srm_check(evidence: GateEvidence) -> GateCheck:
    name = "sample ratio"
    if evidence.srm is None:
        return GateCheck(
            name, True, "No sample-ratio check applies (both versions see the same requests)."
        )
    if evidence.srm.mismatch:
        return GateCheck(
            name,
            False,
            "The traffic split is not what was configured "
            f"(sample-ratio mismatch, p = {_fmt(evidence.srm.p_value)}), so no result can be "
            "trusted; fix the assignment and restart the experiment.",
        )
    return GateCheck(
        name,
        True,
        f"The traffic split matches the configuration (p = {_fmt(evidence.srm.p_value)}).",
    )


def _progress_checks(config: GateConfig, evidence: GateEvidence) -> list[GateCheck]:
    enough_n = evidence.n >= config.min_n
    enough_time = evidence.duration >= config.min_duration
    return [
        GateCheck(
            "minimum sample",
            enough_n,
            f"{evidence.n} of the {config.min_n} requests needed so far."
            if not enough_n
            else f"{evidence.n} requests, at least the {config.min_n} needed.",
        ),
        GateCheck(
            "minimum duration",
            enough_time,
            f"Running for {_duration(evidence.duration)} of the "
            f"{_duration(config.min_duration)} needed."
            if not enough_time
            else f"Ran for {_duration(evidence.duration)}, at least the "
            f"{_duration(config.min_duration)} needed.",
        ),
    ]


def _primary_check(config: GateConfig, row: MetricEvidence) -> GateCheck:
    name = f"primary {row.metric} ({row.source})"
    described = _describe(row)
    if not _defined(row):
        return GateCheck(name, None, f"{row.metric} on {row.source} evidence has no interval yet.")
    significant = row.p_value is None or row.p_value <= config.alpha
    if config.higher_is_better:
        better, worse = row.ci_low > 0.0, row.ci_high < 0.0
    else:
        better, worse = row.ci_high < 0.0, row.ci_low > 0.0
    if better and significant:
        return GateCheck(
            name, True, f"{row.metric} is better on {row.source} evidence ({described})."
        )
    if worse and significant:
        return GateCheck(
            name, False, f"{row.metric} is worse on {row.source} evidence ({described})."
        )
    return GateCheck(
        name,
        None,
        f"{row.metric} shows no clear difference on {row.source} evidence yet ({described}).",
    )


def _guardrail_check(guardrail: Guardrail, row: MetricEvidence) -> GateCheck:
    name = f"guardrail {row.metric} ({row.source})"
    described = _describe(row)
    margin = _fmt(guardrail.margin)
    if not _defined(row):
        return GateCheck(name, None, f"{row.metric} on {row.source} evidence has no interval yet.")
    if guardrail.higher_is_better:
        holds, breached = row.ci_low > -guardrail.margin, row.ci_high < -guardrail.margin
        direction = "lower"
    else:
        holds, breached = row.ci_high < guardrail.margin, row.ci_low > guardrail.margin
        direction = "higher"
    if holds:
        return GateCheck(
            name,
            True,
            f"{row.metric} is at most {margin} {direction} on {row.source} evidence ({described}).",
        )
    if breached:
        return GateCheck(
            name,
            False,
            f"{row.metric} is more than the allowed {margin} {direction} on {row.source} "
            f"evidence ({described}).",
        )
    return GateCheck(
        name,
        None,
        f"{row.metric} may still be more than {margin} {direction} on {row.source} evidence "
        f"({described}).",
    )


def _defined(row: MetricEvidence) -> bool:
    return not (math.isnan(row.ci_low) or math.isnan(row.ci_high) or math.isnan(row.estimate))


def _describe(row: MetricEvidence) -> str:
    text = (
        f"challenger minus champion {_fmt(row.estimate)}, interval "
        f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}], n = {row.n}"
    )
    return text if row.p_value is None else f"{text}, p = {_fmt(row.p_value)}"


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _duration(value: timedelta) -> str:
    hours = value.total_seconds() / 3600.0
    return f"{hours / 24.0:.3g} days" if hours >= 48 else f"{hours:.3g} hours"


__all__ = [
    "GateCheck",
    "GateConfig",
    "GateDecision",
    "GateEvidence",
    "Guardrail",
    "MetricEvidence",
    "Outcome",
    "Source",
    "decide",
    "evidence_from_mcnemar",
    "evidence_from_quantile",
    "evidence_from_sequential",
]
