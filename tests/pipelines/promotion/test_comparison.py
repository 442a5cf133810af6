"""Pairing traffic rows, measuring both versions and turning it into gate evidence."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from pipelines.promotion.comparison import (
    Reference,
    TrafficRow,
    compare_ab,
    compare_shadow,
    quality_differences,
)
from pipelines.promotion.evidence import jsonable, live_evidence, previous_result

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _row(
    rid: str,
    role: str,
    output: str | None,
    latency: float,
    *,
    variant: str | None = None,
    error: bool = False,
    minute: int = 0,
) -> TrafficRow:
    return TrafficRow(rid, role, variant, output, latency, error, T0 + timedelta(minutes=minute))


def test_shadow_rows_pair_by_request_and_measure_both_sides() -> None:
    rows = [
        _row("r1", "served", "refund", 10.0, minute=1),
        _row("r1", "shadow", "refund", 12.0),
        _row("r2", "served", "refund", 10.0, minute=2),
        _row("r2", "shadow", "cancel", 30.0),
        _row("r3", "served", "cancel", 10.0, minute=3),
        _row("r3", "shadow", None, 5.0, error=True),
        _row("r4", "served", "cancel", 10.0, minute=4),  # sampled out: no shadow row
    ]
    references = {"r2": Reference("label", "cancel"), "r3": Reference("label", "cancel")}
    result = compare_shadow(rows, references)
    assert result.request_ids == ("r1", "r2", "r3")
    assert (result.n, result.unpaired, result.with_reference) == (3, 1, 2)
    assert result.agreement_rate == 1 / 3
    assert result.challenger.errors.tolist() == [0.0, 0.0, 1.0]
    assert quality_differences(result).tolist() == [1.0, -1.0]
    assert result.first_at == T0 + timedelta(minutes=1)


def test_corrections_score_by_rouge_and_ab_rows_split_by_variant() -> None:
    rows = [
        _row("a", "served", "the parcel is late", 10.0, variant="champion"),
        _row("b", "served", "late parcel", 11.0, variant="challenger"),
        _row("c", "served", "x", 12.0, variant="challenger"),
    ]
    references = {"a": Reference("correction", "the parcel is late")}
    result = compare_ab(rows, references)
    assert (result.n_champion, result.n_challenger, result.paired) == (1, 2, False)
    assert result.champion.quality.tolist() == [1.0]
    assert np.isnan(result.challenger.quality).all()


def test_live_evidence_is_always_valid_and_carries_over() -> None:
    rng = np.random.default_rng(0)
    rows = []
    references = {}
    for i in range(400):
        rid = f"r{i}"
        label = "a" if i % 2 else "b"
        references[rid] = Reference("label", label)
        champion = label if rng.random() < 0.6 else "z"
        challenger = label if rng.random() < 0.9 else "z"
        rows += [
            _row(rid, "served", champion, 10 + rng.random(), minute=i),
            _row(rid, "shadow", challenger, 10 + rng.random()),
        ]
    comparison = compare_shadow(rows, references)
    evidence = live_evidence(comparison, alpha=0.05, seed=1, resamples=200)
    by_name = {m.metric: m for m in evidence.metrics}
    assert by_name["quality"].ci_low > 0
    assert set(by_name) == {"quality", "error_rate", "latency_p95_ms"}
    assert "mcnemar_quality" in evidence.tests
    assert evidence.srm is None
    stored = jsonable(evidence.sequential)
    carried = previous_result(stored["quality"])
    assert carried is not None
    assert carried.n == by_name["quality"].n
    assert jsonable({"x": math.inf, "y": [np.float64(1.5)]}) == {"x": None, "y": [1.5]}
