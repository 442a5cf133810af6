"""The pure money rules on literal inputs: rounding, versions in force, tier boundaries, and
a month's revenue with a mid-month plan change."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from models.db.enums import AdoptionBasis
from pipelines.profitability.pricing import (
    PlanVersion,
    PriceBook,
    Tier,
    TierSchedule,
    check_tiers,
    day_by_day,
    in_effect,
    micros,
    round_half_even,
)
from pipelines.profitability.rollup import rollup
from pipelines.usage.events import NORMALISED


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (1, 3, 0), (2, 3, 1), (1500, 1000, 2)],
)
def test_rounding_is_half_to_even(numerator: int, denominator: int, expected: int) -> None:
    assert round_half_even(numerator, denominator) == expected


def test_amounts_become_micro_units_exactly() -> None:
    assert micros("49.99") == 49_990_000
    assert micros("0.000001") == 1
    with pytest.raises(ValueError, match="6 decimal places"):
        micros("0.0000001")


def test_versions_in_force_by_day() -> None:
    plans = (
        PlanVersion(date(2026, 3, 1), "USD", 1, 0, 0),
        PlanVersion(date(2026, 3, 16), "USD", 2, 0, 0),
    )
    days = [date(2026, 2, 28), date(2026, 3, 15), date(2026, 3, 16), date(2026, 4, 1)]
    assert [p.monthly_fee_micros if p else None for p in day_by_day(plans, days)] == [
        None,
        1,
        2,
        2,
    ]
    assert [in_effect(plans, day) for day in days] == day_by_day(plans, days)


def test_a_tier_is_reached_exactly_at_its_threshold() -> None:
    schedule = TierSchedule(
        date(2026, 1, 1),
        AdoptionBasis.JOBS,
        check_tiers([Tier("gold", 8000, 2500), Tier("base", 0, 0), Tier("silver", 5000, 1000)]),
    )
    assert [t.name for t in schedule.tiers] == ["base", "silver", "gold"]
    assert schedule.reached(4, 5).name == "gold"  # type: ignore[union-attr]
    assert schedule.reached(79_999, 100_000).name == "silver"  # type: ignore[union-attr]
    assert schedule.reached(0, 0) is None
    with pytest.raises(ValueError, match="same minimum"):
        check_tiers([Tier("a", 10, 0), Tier("b", 10, 5)])


def test_a_plan_change_mid_month_prorates_the_fee_and_the_allowance() -> None:
    """March (31 days): 31.00 a month until the 16th, 62.00 from it; no usage."""
    org = "00000000-0000-0000-0000-000000000001"
    book = PriceBook(
        plans={
            org: (
                PlanVersion(date(2026, 3, 1), "USD", 31_000_000, 3_100, 1_000_000),
                PlanVersion(date(2026, 3, 16), "USD", 62_000_000, 6_200, 1_000_000),
            )
        }
    )
    events = pa.table(
        {name: pa.array([], NORMALISED.field(name).type) for name in NORMALISED.names}
    ).drop(["event_id", "month"])
    events = events.set_column(
        1, "occurred_at", events.column("occurred_at").cast(pa.timestamp("us"))
    )
    figures = rollup(events, [(org, date(2026, 3, 1))], book, through=date(2026, 3, 31))
    month = figures[-1]
    assert month.period_kind == "month"
    assert month.subscription_micros == 15 * 1_000_000 + 16 * 2_000_000
    assert month.explanation["included_tokens"] == f"{15 * 100 + 16 * 200}.000"
    assert month.margin_bps == 10_000
    assert len(figures) == 32
