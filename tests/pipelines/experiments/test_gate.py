"""The promotion gate on literal evidence."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

import pytest

from pipelines.experiments.gate import (
    GateCheck,
    GateConfig,
    GateEvidence,
    Guardrail,
    MetricEvidence,
    Source,
    decide,
    evidence_from_mcnemar,
    evidence_from_quantile,
    evidence_from_sequential,
)
from pipelines.experiments.quantiles import p95_difference
from pipelines.experiments.sequential import SampleStats, mcnemar_test, paired_test
from pipelines.experiments.srm import SrmResult

CONFIG = GateConfig(
    primary_metric="quality",
    higher_is_better=True,
    guardrails=(
        Guardrail("latency_p95", margin=0.05, higher_is_better=False),
        Guardrail("error_rate", margin=0.01, higher_is_better=False),
    ),
    min_n=1_000,
    min_duration=timedelta(days=7),
    alpha=0.05,
)


def row(
    metric: str,
    source: Source,
    low: float,
    high: float,
    *,
    p: float | None = None,
    n: int = 5_000,
) -> MetricEvidence:
    return MetricEvidence(metric, source, (low + high) / 2.0, low, high, p, n, "test")


def good_rows() -> list[MetricEvidence]:
    return [
        row("quality", "live", 0.01, 0.05, p=0.001),
        row("quality", "golden", 0.02, 0.08, p=0.01),
        row("latency_p95", "live", -0.02, 0.03),
        row("error_rate", "live", -0.004, 0.002),
    ]


def evidence(
    rows: list[MetricEvidence],
    *,
    n: int = 5_000,
    days: float = 8.0,
    srm: SrmResult | None = None,
) -> GateEvidence:
    return GateEvidence(tuple(rows), n, timedelta(days=days), srm)


def check(decision_checks: Sequence[GateCheck], name: str) -> bool | None:
    for item in decision_checks:
        if item.name == name:
            return item.passed
    raise AssertionError(f"no check {name}")


def test_promotes_when_everything_holds() -> None:
    decision = decide(CONFIG, evidence(good_rows(), srm=SrmResult(0.4, 0.52, False)))
    assert decision.outcome == "promote"
    assert all(item.passed is True for item in decision.checks)
    assert decision.reason.startswith("Promote the challenger")
    assert [item.name for item in decision.checks] == [
        "sample ratio",
        "minimum sample",
        "minimum duration",
        "primary quality (live)",
        "primary quality (golden)",
        "guardrail latency_p95 (live)",
        "guardrail error_rate (live)",
    ]


@pytest.mark.parametrize(
    ("n", "days", "failing"),
    [(999, 8.0, "minimum sample"), (5_000, 6.9, "minimum duration")],
)
def test_waits_for_the_minimum_sample_and_duration(n: int, days: float, failing: str) -> None:
    decision = decide(CONFIG, evidence(good_rows(), n=n, days=days))
    assert decision.outcome == "wait"
    assert check(decision.checks, failing) is False
    assert decision.reason.startswith("Keep waiting")


def test_needs_the_primary_on_both_live_and_golden() -> None:
    rows = [r for r in good_rows() if r.source != "golden"]
    decision = decide(CONFIG, evidence(rows))
    assert decision.outcome == "wait"
    assert check(decision.checks, "primary quality (golden)") is None
    assert "No golden evidence for quality yet." in decision.reason


def test_waits_while_the_primary_interval_contains_zero() -> None:
    rows = good_rows()
    rows[0] = row("quality", "live", -0.01, 0.05, p=0.4)
    decision = decide(CONFIG, evidence(rows))
    assert decision.outcome == "wait"
    assert "no clear difference on live evidence" in decision.reason


def test_a_p_value_above_alpha_is_not_better_even_if_the_interval_excludes_zero() -> None:
    rows = good_rows()
    rows[1] = row("quality", "golden", 0.001, 0.08, p=0.13)
    assert decide(CONFIG, evidence(rows)).outcome == "wait"


def test_rejects_a_worse_primary_even_before_the_minimum_sample() -> None:
    rows = good_rows()
    rows[0] = row("quality", "live", -0.06, -0.01, p=0.002)
    decision = decide(CONFIG, evidence(rows, n=200, days=1.0))
    assert decision.outcome == "reject"
    assert check(decision.checks, "primary quality (live)") is False
    assert "quality is worse on live evidence" in decision.reason


def test_rejects_a_guardrail_beyond_its_margin() -> None:
    rows = good_rows()
    rows[2] = row("latency_p95", "live", 0.06, 0.12)
    decision = decide(CONFIG, evidence(rows))
    assert decision.outcome == "reject"
    assert "latency_p95 is more than the allowed 0.05 higher" in decision.reason


def test_waits_while_a_guardrail_may_still_exceed_its_margin() -> None:
    rows = good_rows()
    rows[3] = row("error_rate", "live", -0.002, 0.02)
    decision = decide(CONFIG, evidence(rows))
    assert decision.outcome == "wait"
    assert check(decision.checks, "guardrail error_rate (live)") is None


def test_a_guardrail_must_hold_on_every_source_with_evidence() -> None:
    rows = [*good_rows(), row("latency_p95", "golden", -0.01, 0.07)]
    assert decide(CONFIG, evidence(rows)).outcome == "wait"


def test_a_guardrail_without_evidence_keeps_the_gate_waiting() -> None:
    rows = [r for r in good_rows() if r.metric != "error_rate"]
    decision = decide(CONFIG, evidence(rows))
    assert decision.outcome == "wait"
    assert "No evidence for the guardrail error_rate yet." in decision.reason


def test_sample_ratio_mismatch_means_wait_whatever_the_metrics_say() -> None:
    srm = SrmResult(chi2=32.0, p_value=1.5e-8, mismatch=True)
    for rows in (good_rows(), [row("quality", "live", -0.06, -0.01, p=0.002)]):
        decision = decide(CONFIG, evidence(rows, srm=srm))
        assert decision.outcome == "wait"
        assert check(decision.checks, "sample ratio") is False
        assert "traffic split is not what was configured" in decision.reason


def test_lower_is_better_primary() -> None:
    config = GateConfig("cost", higher_is_better=False, min_n=10, min_duration=timedelta(hours=1))
    better = [row("cost", "live", -0.3, -0.1), row("cost", "golden", -0.2, -0.05)]
    assert decide(config, evidence(better)).outcome == "promote"
    worse = [row("cost", "live", 0.1, 0.3), row("cost", "golden", -0.2, -0.05)]
    assert decide(config, evidence(worse)).outcome == "reject"


def test_higher_is_better_guardrail() -> None:
    config = GateConfig(
        "quality",
        higher_is_better=True,
        guardrails=(Guardrail("slice_fr", margin=0.02, higher_is_better=True),),
        min_n=10,
        min_duration=timedelta(0),
    )
    base = [row("quality", "live", 0.01, 0.05), row("quality", "golden", 0.01, 0.05)]
    assert decide(config, evidence([*base, row("slice_fr", "golden", -0.015, 0.03)])).outcome == (
        "promote"
    )
    assert decide(config, evidence([*base, row("slice_fr", "golden", -0.05, -0.03)])).outcome == (
        "reject"
    )


def test_an_undefined_interval_is_not_evidence() -> None:
    rows = good_rows()
    rows[0] = row("quality", "live", math.nan, math.nan)
    assert decide(CONFIG, evidence(rows)).outcome == "wait"


def test_rejects_a_negative_margin() -> None:
    config = GateConfig("q", True, guardrails=(Guardrail("x", -1.0, True),))
    with pytest.raises(ValueError, match="margin"):
        decide(config, evidence(good_rows()))


def test_evidence_from_the_tests_feeds_the_gate() -> None:
    live = evidence_from_sequential("quality", "live", paired_test(SampleStats(5_000, 0.1, 1.0)))
    golden = evidence_from_mcnemar("quality", "golden", mcnemar_test(400, 10, 40, 50))
    latency = evidence_from_quantile(
        "latency_p95",
        "live",
        p95_difference(
            [1.0, 2.0, 3.0, 4.0] * 50, [1.0, 2.0, 3.0, 4.01] * 50, seed=3, resamples=200
        ),
    )
    errors = row("error_rate", "live", -0.004, 0.002)
    assert (live.estimate, live.n, golden.n, latency.p_value) == (0.1, 5_000, 500, None)
    assert latency.n == 200
    decision = decide(CONFIG, evidence([live, golden, latency, errors]))
    assert decision.outcome == "promote", decision.reason
