"""The vectorised rollup (DuckDB, exact integers) against the per-tenant Python reference, on
seeded random usage with mid-month plan, rate, rule and tier changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from models.db.enums import AdoptionBasis
from pipelines.profitability.pricing import (
    CostRate,
    InfrastructureRule,
    PlanVersion,
    PriceBook,
    Tier,
    TierSchedule,
)
from pipelines.profitability.rollup import rollup
from tests.pipelines.profitability import reference_rollup

ORGS = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(5)]
MODELS = ["m@1", "m@2", "unpriced@1"]


def _events(seed: int, n: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 1, 20, tzinfo=UTC).replace(tzinfo=None)
    ai = rng.random(n) > 0.2
    return pa.table(
        {
            "organization_id": pa.array([ORGS[i] for i in rng.integers(0, 4, n)]),
            "occurred_at": pa.array(
                [start + timedelta(minutes=int(m)) for m in rng.integers(0, 70 * 1440, n)],
                pa.timestamp("us"),
            ),
            "agent_type": pa.array(
                [
                    ("a", "b")[int(k)] if x else None
                    for k, x in zip(rng.integers(0, 2, n), ai, strict=True)
                ]
            ),
            "model_version": pa.array(
                [
                    MODELS[int(k)] if x else None
                    for k, x in zip(rng.integers(0, 3, n), ai, strict=True)
                ]
            ),
            "tokens_in": pa.array(np.where(ai, rng.integers(0, 5000, n), 0)),
            "tokens_out": pa.array(np.where(ai, rng.integers(0, 3001, n), 0)),
            "requests": pa.array(np.where(ai, rng.integers(0, 4, n), 0)),
            "end_user_key": pa.array([f"u{k}" if k else None for k in rng.integers(0, 9, n)]),
            "job_id": pa.array([f"j{k}" if k % 5 else None for k in rng.integers(0, 60, n)]),
        }
    )


def _book(basis: AdoptionBasis) -> PriceBook:
    tiers = (Tier("base", 0, 0), Tier("silver", 5000, 777), Tier("gold", 8000, 2501))
    return PriceBook(
        plans={
            ORGS[0]: (
                PlanVersion(date(2026, 1, 1), "USD", 31_000_001, 250_000, 1_333),
                PlanVersion(date(2026, 2, 11), "USD", 62_000_003, 1_000_003, 2_777),
            ),
            ORGS[1]: (PlanVersion(date(2026, 2, 3), "USD", 7_000_000, 0, 999),),
            ORGS[2]: (PlanVersion(date(2025, 6, 1), "USD", 0, 10**9, 5),),
            ORGS[4]: (PlanVersion(date(2026, 1, 1), "USD", 1_000_000, 5, 7),),
        },
        cost_rates={
            "m@1": (
                CostRate("m@1", date(2026, 1, 1), 301, 903, 57),
                CostRate("m@1", date(2026, 2, 17), 3001, 9007, 501),
            ),
            "m@2": (CostRate("m@2", date(2026, 1, 25), 17, 41, 3),),
        },
        infrastructure=(
            InfrastructureRule(date(2026, 1, 1), 7, 11, 3_100_001),
            InfrastructureRule(date(2026, 3, 9), 9, 13, 2_000_000),
        ),
        tiers=(
            TierSchedule(date(2026, 1, 1), basis, tiers),
            TierSchedule(date(2026, 2, 14), basis, tiers[:2]),
        ),
    )


@pytest.mark.parametrize(("seed", "basis"), [(1, AdoptionBasis.JOBS), (2, AdoptionBasis.USERS)])
def test_the_vectorised_rollup_equals_the_reference(seed: int, basis: AdoptionBasis) -> None:
    events = _events(seed, 3000)
    book = _book(basis)
    targets = [(org, date(2026, m, 1)) for org in ORGS for m in (1, 2, 3)]
    through = date(2026, 3, 20)
    expected = reference_rollup.rollup(events, targets, book, through=through)
    found = rollup(events, targets, book, through=through)
    assert len(found) == len(expected)
    for mine, theirs in zip(found, expected, strict=True):
        differ = {
            name: (value, getattr(theirs, name))
            for name, value in vars(mine).items()
            if value != getattr(theirs, name)
        }
        assert not differ, (mine.organization_id, mine.period_kind, mine.period_start, differ)
