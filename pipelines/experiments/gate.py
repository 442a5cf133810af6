"""The promotion gate: promote, reject or keep waiting, from evidence with intervals."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

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
    raise NotImplementedError


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
]
