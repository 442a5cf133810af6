"""Usage metering and profitability through the API: the provider ingests events and sets
prices (audited), reads figures, rankings, trends and exports; a tenant sees only its own usage
and discount explanation."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select

from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.tables import AuditLogEntry
from pipelines.profitability import service
from tests.api.conftest import World
from tests.api.test_route_coverage import covers

P = "/provider/v1"
NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


def _event(tenant: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"{tenant}-{n}",
        "tenant": tenant,
        "occurred_at": f"2026-03-{1 + n % 9:02d}T08:00:00Z",
        "agent_type": "summarizer",
        "model_version": "summ@1",
        "tokens_in": 700 + n,
        "tokens_out": 300,
        "requests": 1,
        "job_id": f"job-{n}",
        **extra,
    }


def _audits(world: World, action: str) -> list[dict[str, Any]]:
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        with transaction(make_sessionmaker(engine)) as session:
            return list(
                session.scalars(select(AuditLogEntry.details).where(AuditLogEntry.action == action))
            )
    finally:
        engine.dispose()


def _rollup(world: World) -> None:
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            plan = service.plan_rollup(session, now=NOW)
            service.rollup_chunk(session, plan.targets, through=plan.through, now=NOW)
    finally:
        engine.dispose()


def _prices(world: World) -> None:
    auth = world.provider_auth()
    for path, body in (
        (
            "pricing/plans",
            {
                "tenant": "tenant-a",
                "effective_from": "2026-01-01",
                "monthly_fee_micros": 31_000_000,
                "included_tokens": 2_000,
                "overage_micros_per_1k_tokens": 1_500_000,
            },
        ),
        (
            "pricing/ai-costs",
            {
                "model_version": "summ@1",
                "effective_from": "2026-01-01",
                "micros_per_1k_tokens_in": 400,
                "micros_per_1k_tokens_out": 800,
                "micros_per_request": 10,
            },
        ),
        ("pricing/infrastructure", {"effective_from": "2026-01-01", "micros_per_request": 5}),
        (
            "pricing/adoption-tiers",
            {
                "effective_from": "2026-01-01",
                "basis": "jobs",
                "tiers": [
                    {"name": "base", "min_rate_bps": 0, "discount_bps": 0},
                    {"name": "gold", "min_rate_bps": 9000, "discount_bps": 2000},
                ],
            },
        ),
    ):
        response = world.client.post(f"{P}/{path}", json=body, auth=auth)
        assert response.status_code == 201, (path, response.text)
        assert response.json()["created"] is True
        again = world.client.post(f"{P}/{path}", json=body, auth=auth)
        assert again.status_code == 201
        assert again.json()["created"] is False


class TestUsageAndPrices:
    @covers(f"POST {P}/usage-events", audit=True)
    def test_a_batch_is_idempotent_and_audited(self, world: World) -> None:
        events = [_event("tenant-a", n) for n in range(5)]
        first = world.client.post(
            f"{P}/usage-events", json={"events": events}, auth=world.provider_auth()
        )
        assert first.status_code == 200, first.text
        assert first.json() == {"received": 5, "inserted": 5, "duplicates": 0}
        again = world.client.post(
            f"{P}/usage-events", json={"events": events}, auth=world.provider_auth()
        )
        assert again.json() == {"received": 5, "inserted": 0, "duplicates": 5}
        assert [a["inserted"] for a in _audits(world, "usage_events.ingested")] == [5, 0]

    def test_one_bad_event_refuses_the_batch(self, world: World) -> None:
        events = [_event("tenant-a", n) for n in range(3)]
        events[1]["tenant"] = "no-such-tenant"
        refused = world.client.post(
            f"{P}/usage-events", json={"events": events}, auth=world.provider_auth()
        )
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["events/1/tenant"]
        assert "row 2, tenant" in refused.json()["detail"]
        assert _audits(world, "usage_events.ingested") == []

    @covers(
        f"POST {P}/pricing/plans",
        f"POST {P}/pricing/ai-costs",
        f"POST {P}/pricing/infrastructure",
        f"POST {P}/pricing/adoption-tiers",
        audit=True,
    )
    def test_price_versions_are_audited_once(self, world: World) -> None:
        _prices(world)
        for action in (
            "tenant_plan.created",
            "ai_cost_rate.created",
            "infrastructure_rule.created",
            "adoption_tiers.created",
        ):
            assert len(_audits(world, action)) == 1, action
        changed = world.client.post(
            f"{P}/pricing/infrastructure",
            json={"effective_from": "2026-01-01", "micros_per_request": 6},
            auth=world.provider_auth(),
        )
        assert changed.status_code == 409, changed.text
        other = world.client.post(
            f"{P}/pricing/infrastructure",
            json={"effective_from": "2026-02-01", "currency": "EUR"},
            auth=world.provider_auth(),
        )
        assert other.status_code == 422
        assert "currency" in other.text
        ancient = world.client.post(
            f"{P}/pricing/adoption-tiers",
            json={
                "effective_from": "0001-01-01",
                "basis": "jobs",
                "tiers": [{"name": "all", "min_rate_bps": 0, "discount_bps": 100}],
            },
            auth=world.provider_auth(),
        )
        assert ancient.status_code == 422, ancient.text
        assert "effective_from" in ancient.text
        assert "2000-01-01" in ancient.text
        assert len(_audits(world, "adoption_tiers.created")) == 1


class TestProfitabilityReads:
    @covers(
        f"GET {P}/profitability",
        f"GET {P}/profitability/ranking",
        f"GET {P}/tenants/{{slug}}/profitability",
        f"GET {P}/profitability/export",
    )
    @covers("GET /v1/usage", "GET /v1/discounts", cross_tenant=True)
    def test_provider_reads_and_tenants_see_only_their_own(self, world: World) -> None:
        _prices(world)
        events = [_event("tenant-a", n) for n in range(10)]
        events += [_event("tenant-b", n) for n in range(3)]
        world.client.post(f"{P}/usage-events", json={"events": events}, auth=world.provider_auth())
        _rollup(world)
        auth = world.provider_auth()
        months = world.client.get(f"{P}/profitability?period=month", auth=auth).json()["items"]
        by_tenant = {m["tenant"]: m for m in months if m["period_start"] == "2026-03-01"}
        assert set(by_tenant) == {"tenant-a", "tenant-b"}
        assert by_tenant["tenant-b"]["revenue_micros"] == 0
        assert by_tenant["tenant-b"]["margin_bps"] is None
        assert by_tenant["tenant-a"]["tier"] == "gold"
        page = world.client.get(f"{P}/profitability?period=day&limit=2", auth=auth).json()
        assert len(page["items"]) == 2
        assert page["next_cursor"]
        following = world.client.get(
            f"{P}/profitability?period=day&limit=2&cursor={page['next_cursor']}", auth=auth
        ).json()
        assert following["items"][0] != page["items"][0]
        ranking = world.client.get(f"{P}/profitability/ranking?month=2026-03-15", auth=auth)
        assert [r["tenant"] for r in ranking.json()["items"]] == ["tenant-a", "tenant-b"]
        trend = world.client.get(f"{P}/tenants/tenant-a/profitability", auth=auth).json()
        assert [t["period_start"] for t in trend["items"]] == [
            "2026-01-01",
            "2026-02-01",
            "2026-03-01",
        ]
        assert world.client.get(f"{P}/tenants/nobody/profitability", auth=auth).status_code == 404
        csv = world.client.get(f"{P}/profitability/export?format=csv", auth=auth)
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0].startswith('"tenant","period_kind"')
        parquet = world.client.get(f"{P}/profitability/export?format=parquet", auth=auth)
        table = pq.read_table(io.BytesIO(parquet.content))
        assert table.num_rows == len(months)
        # Tenants: their own usage and discount only; no costs, margins or other tenants.
        a, b = world.tenant_a, world.tenant_b
        usage_a = world.client.get("/v1/usage", headers=a.headers).json()["items"]
        march = next(u for u in usage_a if u["period_start"] == "2026-03-01")
        assert march["events"] == 10
        assert "margin_micros" not in march
        discounts_b = world.client.get("/v1/discounts", headers=b.headers)
        assert discounts_b.status_code == 200
        for response in (discounts_b, world.client.get("/v1/usage", headers=b.headers)):
            text = response.text
            assert "tenant-a" not in text
            assert str(a.organization_id) not in text
        march_b = [d for d in discounts_b.json()["items"] if d["period_start"] == "2026-03-01"]
        assert march_b[0]["ai_addon_revenue_micros"] == 0
        gold = world.client.get("/v1/discounts", headers=a.headers).json()["items"]
        assert [d["tier"] for d in gold if d["period_start"] == "2026-03-01"] == ["gold"]
