"""Usage ingestion and the profitability rollup on PostgreSQL and SQLite: idempotency, a bad
row, late events, a mid-month price change, tier boundaries, idle and zero-revenue tenants,
and reconciliation of the rollup with the raw events."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.db.tables import AuditLogEntry, TenantProfitability, UsageEvent
from pipelines.profitability import service
from pipelines.profitability.pricing import Tier
from pipelines.usage.events import UsageRowInvalid
from pipelines.usage.service import ingest_usage
from tests.factories import create_organization

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
MARCH = date(2026, 3, 1)


def _event(tenant: str, n: int, day: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{tenant}-{n}",
        "tenant": tenant,
        "occurred_at": f"2026-03-{day:02d}T10:00:00Z",
        "agent_type": "summarizer",
        "model_version": "summ@1",
        "tokens_in": "600",
        "tokens_out": "400",
        "requests": "1",
        "end_user_key": f"user-{n % 3}",
        "job_id": f"job-{n}",
        **extra,
    }


def _ingest(session: Session, rows: list[dict[str, Any]]) -> Any:
    table = pa.Table.from_pylist(rows, schema=pa.schema([(k, pa.string()) for k in rows[0]]))
    return ingest_usage(session, [table], actor="test", now=NOW, source="test")


def _rollup(session: Session, **kwargs: Any) -> service.RollupResult:
    plan = service.plan_rollup(session, now=NOW, **kwargs)
    return service.rollup_chunk(session, plan.targets, through=plan.through, now=NOW)


def _row(session: Session, org: uuid.UUID, kind: str, start: date) -> TenantProfitability:
    row = session.get(TenantProfitability, (org, kind, start))
    assert row is not None
    return row


@pytest.fixture
def tenants(session: Session) -> dict[str, uuid.UUID]:
    found = {}
    for name in ("acme", "globex", "idle", "free"):
        slug = f"{name}-{uuid.uuid4().hex[:6]}"
        found[name] = create_organization(session, slug=slug).id
        found[f"{name}_slug"] = slug  # type: ignore[assignment]
    service.set_ai_cost_rate(
        session,
        model_version="summ@1",
        effective_from=date(2026, 1, 1),
        currency="USD",
        micros_per_1k_tokens_in=300,
        micros_per_1k_tokens_out=900,
        micros_per_request=50,
        actor="test",
        now=NOW,
    )
    service.set_infrastructure_rule(
        session,
        effective_from=date(2026, 1, 1),
        currency="USD",
        micros_per_request=7,
        micros_per_1k_tokens=11,
        micros_per_tenant_month=3_100_000,
        actor="test",
        now=NOW,
    )
    service.set_adoption_tiers(
        session,
        effective_from=date(2026, 1, 1),
        basis="jobs",
        tiers=[Tier("starter", 0, 0), Tier("silver", 5000, 1000), Tier("gold", 8000, 2500)],
        actor="test",
        now=NOW,
    )
    for name in ("acme", "globex", "idle"):
        service.set_tenant_plan(
            session,
            tenant=found[f"{name}_slug"],
            effective_from=date(2026, 1, 1),  # type: ignore[arg-type]
            currency="USD",
            monthly_fee_micros=31_000_000,
            included_tokens=3_000,
            overage_micros_per_1k_tokens=2_000_000,
            actor="test",
            now=NOW,
        )
    return found


class TestIngestion:
    def test_resending_a_batch_adds_nothing(
        self, session: Session, tenants: dict[str, Any]
    ) -> None:
        rows = [_event(tenants["acme_slug"], n, 2) for n in range(5)]
        first = _ingest(session, rows)
        again = _ingest(session, rows + rows[:2])
        assert (first.inserted, first.duplicates) == (5, 0)
        assert (again.received, again.inserted, again.duplicates) == (7, 0, 7)
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 5
        audits = session.scalars(
            select(AuditLogEntry.details)
            .where(AuditLogEntry.action == "usage_events.ingested")
            .order_by(AuditLogEntry.id)
        ).all()
        assert [a["inserted"] for a in audits] == [5, 0]

    def test_one_bad_row_rejects_the_batch_with_its_row_and_field(
        self, session: Session, tenants: dict[str, Any]
    ) -> None:
        rows = [_event(tenants["acme_slug"], n, 2) for n in range(4)]
        rows[2]["tokens_out"] = "-5"
        with pytest.raises(UsageRowInvalid) as raised:
            _ingest(session, rows)
        assert (raised.value.row, raised.value.column) == (3, "tokens_out")
        assert "nothing was written" in str(raised.value)
        session.rollback()
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 0

    @pytest.mark.parametrize(
        ("column", "value", "reason"),
        [
            ("tenant", "nobody", "not a tenant"),
            ("occurred_at", "2026-03-02T10:00:00", "with a zone"),
            ("model_version", "", "names its model version"),
            ("event_id", " ", "missing"),
        ],
    )
    def test_each_kind_of_bad_row_is_named(
        self, session: Session, tenants: dict[str, Any], column: str, value: str, reason: str
    ) -> None:
        rows = [_event(tenants["acme_slug"], n, 2) for n in range(2)]
        rows[1][column] = value
        with pytest.raises(UsageRowInvalid) as raised:
            _ingest(session, rows)
        assert (raised.value.row, raised.value.column) == (2, column)
        assert reason in str(raised.value)


class TestRollup:
    def test_figures_tiers_idle_and_zero_revenue_tenants(
        self, session: Session, tenants: dict[str, Any]
    ) -> None:
        acme, free = tenants["acme_slug"], tenants["free_slug"]
        # acme: 4 jobs, 4 AI → 100 % adoption (gold); 4,000 tokens against 3,000 included.
        rows = [_event(acme, n, 1 + n) for n in range(4)]
        # globex: 5 jobs, 4 with AI → exactly 80 %: the gold boundary is reached.
        globex = tenants["globex_slug"]
        rows += [_event(globex, n, 3) for n in range(4)]
        rows += [
            _event(
                globex,
                9,
                3,
                agent_type="",
                model_version="",
                tokens_in="0",
                tokens_out="0",
                requests="0",
            )
        ]
        rows += [_event(free, n, 5) for n in range(2)]  # no plan: revenue 0
        _ingest(session, rows)
        result = _rollup(session)
        assert result.tenant_months == 3 * 3 + 1  # plans from January mark Jan–Mar; free: March
        month = _row(session, tenants["acme"], "month", MARCH)
        # Fee: 31.00 over 31 days, 20 days so far; overage 1,000 tokens at 2.00 per 1,000.
        assert month.subscription_micros == 20_000_000
        assert month.overage_micros == 2_000_000
        assert (month.tier, month.discount_bps, month.adoption_ppm) == ("gold", 2500, 1_000_000)
        assert month.discount_micros == 5_500_000
        assert month.revenue_micros == 16_500_000
        assert month.ai_cost_micros == 4 * (180 + 360 + 50)
        assert (
            month.margin_micros
            == month.revenue_micros - month.ai_cost_micros - month.infra_cost_micros
        )
        assert month.margin_bps is not None
        boundary = _row(session, tenants["globex"], "month", MARCH)
        assert (boundary.adoption_numerator, boundary.adoption_denominator) == (4, 5)
        assert boundary.tier == "gold"
        idle = _row(session, tenants["idle"], "month", MARCH)
        assert (idle.events, idle.revenue_micros, idle.tier) == (0, 20_000_000, None)
        zero = _row(session, tenants["free"], "month", MARCH)
        assert zero.revenue_micros == 0
        assert zero.margin_bps is None
        assert zero.margin_micros == -(zero.ai_cost_micros + zero.infra_cost_micros)

    def test_a_rerun_changes_nothing_and_late_events_are_picked_up(
        self, session: Session, tenants: dict[str, Any]
    ) -> None:
        acme = tenants["acme_slug"]
        _ingest(session, [_event(acme, n, 2) for n in range(3)])
        _rollup(session)
        before = _row(session, tenants["acme"], "day", date(2026, 3, 2)).computed_at
        rerun = _rollup(session, since=MARCH, until=date(2026, 4, 1))
        assert (rerun.inserted, rerun.updated, rerun.deleted) == (0, 0, 0)
        assert _row(session, tenants["acme"], "day", date(2026, 3, 2)).computed_at == before
        # A late event for the 2nd (and a duplicate) arrives: only acme's month is dirty.
        _ingest(session, [_event(acme, 1, 2), _event(acme, 77, 2)])
        plan = service.plan_rollup(session, now=NOW)
        assert (tenants["acme"], MARCH) in plan.targets
        late = _rollup(session)
        assert late.updated >= 2
        assert _row(session, tenants["acme"], "day", date(2026, 3, 2)).events == 4

    def test_a_price_change_mid_month_applies_from_its_day(
        self, session: Session, tenants: dict[str, Any]
    ) -> None:
        acme = tenants["acme_slug"]
        _ingest(session, [_event(acme, 1, 10), _event(acme, 2, 18)])
        _rollup(session)
        service.set_ai_cost_rate(
            session,
            model_version="summ@1",
            effective_from=date(2026, 3, 15),
            currency="USD",
            micros_per_1k_tokens_in=3000,
            micros_per_1k_tokens_out=9000,
            micros_per_request=500,
            actor="test",
            now=NOW,
        )
        assert (tenants["acme"], MARCH) in service.plan_rollup(session, now=NOW).targets
        _rollup(session)
        before = _row(session, tenants["acme"], "day", date(2026, 3, 10)).ai_cost_micros
        after = _row(session, tenants["acme"], "day", date(2026, 3, 18)).ai_cost_micros
        assert (before, after) == (590, 5900)
        assert _row(session, tenants["acme"], "month", MARCH).ai_cost_micros == 6490

    def test_the_rollup_reconciles_exactly_with_the_raw_events(
        self, session: Session, tenants: dict[str, Any]
    ) -> None:
        acme = tenants["acme_slug"]
        rows = [
            _event(
                acme,
                n,
                1 + n % 19,
                tokens_in=str(37 * n + 1),
                tokens_out=str(13 * n),
                requests=str(n % 4),
            )
            for n in range(60)
        ]
        _ingest(session, rows)
        _rollup(session)
        month = _row(session, tenants["acme"], "month", MARCH)
        days = session.scalars(
            select(TenantProfitability).where(
                TenantProfitability.organization_id == tenants["acme"],
                TenantProfitability.period_kind == "day",
            )
        ).all()
        raw = session.scalars(
            select(UsageEvent).where(UsageEvent.organization_id == tenants["acme"])
        ).all()
        assert month.events == len(raw) == sum(d.events for d in days)
        assert month.tokens_in == sum(e.tokens_in for e in raw) == sum(d.tokens_in for d in days)
        assert month.requests == sum(e.requests for e in raw)
        exact = sum(
            Fraction(e.tokens_in * 300 + e.tokens_out * 900, 1000) + e.requests * 50 for e in raw
        )
        assert month.ai_cost_micros == round(exact)  # Fraction rounds half to even
        assert sum(entry["cost_micros"] for entry in month.ai_cost_breakdown) == round(exact)
