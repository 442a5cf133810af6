"""AI cost per request from the profitability prices, and the gate's cost guardrail."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np

from pipelines.experiments.gate import GateConfig, GateEvidence, Guardrail, decide
from pipelines.profitability.pricing import CostRate
from pipelines.promotion.comparison import (
    TrafficRow,
    compare_ab,
    compare_shadow,
    request_cost_micros,
)
from pipelines.promotion.evidence import COST, live_evidence

T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
CHAMPION, CHALLENGER = "intents@1", "intents@2"


def _rates(challenger_per_request: int) -> dict[str, tuple[CostRate, ...]]:
    return {
        CHAMPION: (CostRate(CHAMPION, date(2026, 1, 1), 300, 600, 100),),
        CHALLENGER: (
            CostRate(CHALLENGER, date(2026, 1, 1), 1_000_000, 1_000_000, 999),
            CostRate(CHALLENGER, date(2026, 12, 1), 300, 600, challenger_per_request),
        ),
    }


def _row(
    rid: str,
    role: str,
    version: str,
    tokens_out: int,
    *,
    variant: str | None = None,
    error: bool = False,
    created_at: datetime = T0,
) -> TrafficRow:
    output = None if error else "answer"
    return TrafficRow(rid, role, variant, output, 10.0, error, created_at, version, 7, tokens_out)


def _shadow(n: int, challenger_per_request: int) -> list[TrafficRow]:
    rows = []
    for i in range(n):
        tokens = 5 + i % 7
        rows += [
            _row(f"r{i}", "served", CHAMPION, tokens, created_at=T0 + timedelta(seconds=i)),
            _row(f"r{i}", "shadow", CHALLENGER, tokens + i % 3),
        ]
    return rows


def test_request_cost_applies_the_rate_in_force_on_the_day_to_the_usage() -> None:
    rates = _rates(250)
    row = _row("r", "served", CHALLENGER, 11)
    # 7 tokens in at 300 and 11 out at 600 per 1,000, plus 250 per request (the December rate).
    assert request_cost_micros(row, rates) == (7 * 300 + 11 * 600) / 1000 + 250
    earlier = _row("r", "served", CHALLENGER, 11, created_at=T0 - timedelta(days=1))
    assert request_cost_micros(earlier, rates) == (7 + 11) * 1000 + 999
    assert request_cost_micros(_row("r", "served", CHALLENGER, 0, error=True), rates) == 0.0
    assert math.isnan(request_cost_micros(_row("r", "served", "intents@9", 3), rates))


def test_shadow_cost_is_a_paired_always_valid_test_carried_across_looks() -> None:
    comparison = compare_shadow(_shadow(200, 130), {}, rates=_rates(130))
    assert comparison.unpriced == ()
    live = live_evidence(comparison, alpha=0.05, seed=1, resamples=100)
    cost = next(m for m in live.metrics if m.metric == COST)
    differences = comparison.challenger.cost_micros - comparison.champion.cost_micros
    assert (cost.source, cost.n) == ("live", 200)
    assert cost.estimate == float(np.mean(differences))
    assert cost.ci_low > 0  # 30 micro-units more per request, plus the extra output tokens
    again = live_evidence(comparison, alpha=0.05, seed=1, resamples=100, previous=live.sequential)
    assert again.sequential[COST]["ci_low"] >= live.sequential[COST]["ci_low"]
    assert again.sequential[COST]["ci_high"] <= live.sequential[COST]["ci_high"]


def _decide(*, margin: float, per_request: int) -> str:
    comparison = compare_shadow(_shadow(400, per_request), {}, rates=_rates(per_request))
    live = live_evidence(comparison, alpha=0.05, seed=1, resamples=100)
    config = GateConfig(
        "quality", True, (Guardrail(COST, margin, False),), min_n=1, min_duration=timedelta(0)
    )
    evidence = GateEvidence(
        live.metrics, comparison.n, timedelta(days=1), live.srm, live.unavailable
    )
    return decide(config, evidence).checks[-1].reason


def test_the_cost_guardrail_holds_breaches_or_waits() -> None:
    holds = _decide(margin=50.0, per_request=100)
    assert holds.startswith(f"{COST} is at most 50")
    breached = _decide(margin=5.0, per_request=200)
    assert breached.startswith(f"{COST} is more than the allowed 5")
    # 100 more per request plus 0.6 of extra output tokens on average: the interval straddles.
    unsure = _decide(margin=100.6, per_request=200)
    assert unsure.startswith(f"{COST} may still be more than 100.6")


def test_a_version_without_a_price_gives_no_evidence_and_says_which() -> None:
    rates = {CHAMPION: _rates(1)[CHAMPION]}
    comparison = compare_shadow(_shadow(50, 1), {}, rates=rates)
    assert comparison.unpriced == (CHALLENGER,)
    assert np.isnan(comparison.challenger.cost_micros).all()
    live = live_evidence(comparison, alpha=0.05, seed=1, resamples=100)
    assert COST not in live.sequential
    config = GateConfig("quality", True, (Guardrail(COST, 10.0, False),), min_n=1)
    decision = decide(
        config, GateEvidence(live.metrics, 50, timedelta(days=2), None, live.unavailable)
    )
    assert decision.outcome == "wait"
    assert f"no AI cost rate is in force for {CHALLENGER}" in decision.reason


def test_ab_cost_is_a_two_sample_test() -> None:
    rows = []
    for i in range(300):
        variant, version = ("challenger", CHALLENGER) if i % 2 else ("champion", CHAMPION)
        rows.append(_row(f"r{i}", "served", version, 5 + i % 5, variant=variant))
    comparison = compare_ab(rows, {}, rates=_rates(100))
    live = live_evidence(comparison, alpha=0.05, seed=1, resamples=100, challenger_share=0.5)
    cost = live.sequential[COST]
    assert cost["n"] == 300
    expected = np.mean(comparison.challenger.cost_micros) - np.mean(comparison.champion.cost_micros)
    assert math.isclose(cost["estimate"], expected)
