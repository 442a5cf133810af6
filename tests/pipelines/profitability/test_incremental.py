"""The incremental rollup on PostgreSQL and SQLite: a new day aggregates only that day's events,
a late event rewrites its day and the days after it (overage counts tokens in order), and after
any sequence of loads and price changes the stored figures are those a full rebuild computes."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.tables import ProfitabilityDirtyDay, ProfitabilityMonthUsage
from pipelines.profitability import service
from tests.pipelines.profitability.test_rollup import (
    MARCH,
    NOW,
    _event,
    _ingest,
    _rollup,
    _row,
    tenants,
)

__all__ = ["tenants"]


def test_days_roll_up_one_by_one_as_a_full_rebuild_does(
    session: Session, tenants: dict[str, Any]
) -> None:
    acme, globex = tenants["acme_slug"], tenants["globex_slug"]
    org = tenants["acme"]
    # Each event: 1,000 tokens; 3,000 tokens are included in the month.
    manual = {
        "agent_type": "",
        "model_version": "",
        "tokens_in": "0",
        "tokens_out": "0",
        "requests": "0",
    }
    for day in (1, 3):
        _ingest(session, [_event(acme, 10 * day + n, day) for n in range(2)])
        # globex: one job with AI both days, one done by hand on the 1st and with AI on the 3rd.
        _ingest(
            session,
            [
                _event(globex, 10 * day, day, job_id="shared-job"),
                _event(globex, 10 * day + 1, day, job_id="job-2", **(manual if day == 1 else {})),
            ],
        )
        result = _rollup(session)
        assert result.events == 4  # only the new day's events are read
    assert session.scalars(select(ProfitabilityDirtyDay)).all() == []
    # 2,000 + 2,000 tokens: 1,000 over on the 3rd, at 2.00 per 1,000.
    assert _row(session, org, "day", date(2026, 3, 3)).overage_micros == 2_000_000
    # A late event on the 1st: its day and every later one are written again.
    _ingest(session, [_event(acme, 99, 1)])
    late = _rollup(session)
    assert late.events == 3  # the 1st's events, not the month's
    assert _row(session, org, "day", date(2026, 3, 1)).events == 3
    assert _row(session, org, "day", date(2026, 3, 3)).overage_micros == 4_000_000
    month = _row(session, org, "month", MARCH)
    assert (month.events, month.overage_micros) == (5, 4_000_000)
    usage = session.get(ProfitabilityMonthUsage, (tenants["globex"], MARCH))
    assert usage is not None
    assert (usage.events, usage.jobs, usage.ai_jobs) == (4, 2, 2)
    assert _row(session, tenants["globex"], "day", date(2026, 3, 1)).adoption_ppm == 500_000
    # A price change from the 2nd marks the months it changes.
    service.set_ai_cost_rate(
        session,
        model_version="summ@1",
        effective_from=date(2026, 3, 2),
        currency="USD",
        micros_per_1k_tokens_in=3000,
        micros_per_1k_tokens_out=9000,
        micros_per_request=500,
        actor="test",
        now=NOW,
    )
    _rollup(session)
    assert _row(session, org, "day", date(2026, 3, 3)).ai_cost_micros == 2 * 5900
    # A full rebuild of the range finds every stored figure right: nothing to write.
    rebuilt = _rollup(session, since=MARCH, until=date(2026, 4, 1))
    assert (rebuilt.inserted, rebuilt.updated, rebuilt.deleted) == (0, 0, 0)
    assert rebuilt.unchanged > 0


def test_a_month_without_new_events_accrues_its_fee_day_by_day(
    session: Session, tenants: dict[str, Any]
) -> None:
    idle: uuid.UUID = tenants["idle"]
    first = _rollup(session)
    assert first.events == 0
    days = service.plan_rollup(session, now=NOW)
    assert (idle, MARCH) in days.targets
    # Through the 20th: twenty days of fee, one row each, the month's total on the month row.
    assert _row(session, idle, "month", MARCH).subscription_micros == 20_000_000
    assert _row(session, idle, "day", date(2026, 3, 20)).subscription_micros == 1_000_000
    again = _rollup(session)
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)


def test_a_run_with_nothing_new_computes_nothing_and_the_next_day_accrues(
    session: Session, tenants: dict[str, Any]
) -> None:
    idle: uuid.UUID = tenants["idle"]
    _rollup(session)
    written = _row(session, idle, "month", MARCH).computed_at
    # Nothing marked and every day up to today written: no events read, no row rewritten.
    again = _rollup(session)
    assert (again.events, again.inserted, again.updated, again.deleted) == (0, 0, 0, 0)
    assert again.unchanged == again.tenant_months > 0
    assert _row(session, idle, "month", MARCH).computed_at == written
    # The next day is computed: its fee accrues on a new day row and on the month row.
    later = NOW + timedelta(days=1)
    plan = service.plan_rollup(session, now=later)
    next_day = service.rollup_chunk(session, plan.targets, through=plan.through, now=later)
    assert next_day.inserted > 0
    assert _row(session, idle, "day", date(2026, 3, 21)).subscription_micros == 1_000_000
    assert _row(session, idle, "month", MARCH).subscription_micros == 21_000_000
