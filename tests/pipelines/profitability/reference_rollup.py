"""The per-tenant Python rollup this project shipped first, kept as a reference: the vectorised
rollup (`pipelines.profitability.rollup`) must give exactly the same figures."""

from __future__ import annotations

import calendar
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from models.db.enums import PeriodKind
from pipelines.profitability.pricing import (
    PriceBook,
    Tier,
    TierSchedule,
    day_by_day,
    round_half_even,
)

FAR_FUTURE = date(9999, 12, 31)


@dataclass(frozen=True)
class PeriodFigures:
    """One tenant's figures for one day or month, as stored in `tenant_profitability`."""

    organization_id: str
    period_kind: PeriodKind
    period_start: date
    currency: str
    events: int
    tokens_in: int
    tokens_out: int
    requests: int
    subscription_micros: int
    overage_micros: int
    gross_revenue_micros: int
    discount_micros: int
    revenue_micros: int
    ai_cost_micros: int
    infra_cost_micros: int
    margin_micros: int
    margin_bps: int | None
    adoption_basis: str | None
    adoption_numerator: int
    adoption_denominator: int
    adoption_ppm: int | None
    tier: str | None
    discount_bps: int
    unpriced_events: int
    ai_cost_breakdown: list[dict[str, Any]] = field(default_factory=list)
    explanation: dict[str, Any] = field(default_factory=dict)


def month_of(day: date) -> date:
    return day.replace(day=1)


def days_in(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def month_days(month: date, through: date) -> list[date]:
    """The days of `month` up to and including `through`."""
    last = min(month.replace(day=days_in(month)), through)
    return [month + timedelta(days=offset) for offset in range((last - month).days + 1)]


# --- aggregation (DuckDB) ---------------------------------------------------------------------

_PARTS = """
SELECT e.organization_id AS org, CAST(e.occurred_at AS DATE) AS day, e.agent_type,
       e.model_version, count(*) AS events, sum(e.tokens_in)::BIGINT AS tokens_in,
       sum(e.tokens_out)::BIGINT AS tokens_out, sum(e.requests)::BIGINT AS requests
FROM ev e WHERE e.agent_type IS NOT NULL
GROUP BY ALL
"""
_PRICED = """
SELECT p.*, r.model_version IS NOT NULL AS priced,
       coalesce(p.tokens_in::HUGEINT * r.per_1k_in + p.tokens_out::HUGEINT * r.per_1k_out
                + p.requests::HUGEINT * r.per_request * 1000, 0) AS cost_num
FROM parts p LEFT JOIN rates r
  ON r.model_version = p.model_version AND p.day >= r.valid_from AND p.day < r.valid_to
"""
_ROUNDED = """(cost_num // 1000 + CASE WHEN cost_num % 1000 > 500
    OR (cost_num % 1000 = 500 AND (cost_num // 1000) % 2 = 1) THEN 1 ELSE 0 END)::BIGINT"""
_TOTALS = """
SELECT org, period, sum(tokens_in)::BIGINT AS tokens_in,
       sum(tokens_out)::BIGINT AS tokens_out, sum(requests)::BIGINT AS requests,
       sum(cost_num)::HUGEINT AS cost_num,
       sum(CASE WHEN priced THEN 0 ELSE events END)::BIGINT AS unpriced_events,
       list({{'agent_type': agent_type, 'model_version': model_version, 'events': events,
              'tokens_in': tokens_in, 'tokens_out': tokens_out, 'requests': requests,
              'cost_micros': cost_micros, 'priced': priced}}
            ORDER BY agent_type, model_version) AS breakdown
FROM (
    SELECT org, {period} AS period, agent_type, model_version, sum(events)::BIGINT AS events,
           sum(tokens_in)::BIGINT AS tokens_in, sum(tokens_out)::BIGINT AS tokens_out,
           sum(requests)::BIGINT AS requests, sum(cost_num)::HUGEINT AS cost_num,
           bool_and(priced) AS priced, {rounded} AS cost_micros
    FROM priced GROUP BY ALL
) GROUP BY org, period
"""
_ADOPTION = """
SELECT organization_id AS org, {period} AS period, count(*) AS events,
       count(DISTINCT job_id) AS jobs,
       count(DISTINCT job_id) FILTER (WHERE agent_type IS NOT NULL) AS ai_jobs,
       count(DISTINCT end_user_key) AS users,
       count(DISTINCT end_user_key) FILTER (WHERE agent_type IS NOT NULL) AS ai_users
FROM ev GROUP BY ALL
"""


@dataclass
class _Totals:
    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0
    cost_num: int = 0
    unpriced_events: int = 0
    breakdown: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Adoption:
    events: int = 0
    jobs: int = 0
    ai_jobs: int = 0
    users: int = 0
    ai_users: int = 0


def _rates_table(book: PriceBook) -> pa.Table:
    rows: dict[str, list[Any]] = {
        "model_version": [],
        "valid_from": [],
        "valid_to": [],
        "per_1k_in": [],
        "per_1k_out": [],
        "per_request": [],
    }
    for model_version, versions in book.cost_rates.items():
        for position, rate in enumerate(versions):
            following = (
                versions[position + 1].effective_from
                if position + 1 < len(versions)
                else FAR_FUTURE
            )
            rows["model_version"].append(model_version)
            rows["valid_from"].append(rate.effective_from)
            rows["valid_to"].append(following)
            rows["per_1k_in"].append(rate.micros_per_1k_tokens_in)
            rows["per_1k_out"].append(rate.micros_per_1k_tokens_out)
            rows["per_request"].append(rate.micros_per_request)
    schema = pa.schema(
        [
            ("model_version", pa.string()),
            ("valid_from", pa.date32()),
            ("valid_to", pa.date32()),
            ("per_1k_in", pa.int64()),
            ("per_1k_out", pa.int64()),
            ("per_request", pa.int64()),
        ]
    )
    return pa.table(rows, schema=schema)


def aggregate(
    events: pa.Table, book: PriceBook, *, threads: int | None = None
) -> tuple[
    dict[tuple[str, date], _Totals],
    dict[tuple[str, date], _Totals],
    dict[tuple[str, date], _Adoption],
    dict[tuple[str, date], _Adoption],
]:
    """Per (organisation, day) and (organisation, month): usage totals with exact AI cost
    numerators (in thousandths of a micro-unit) and breakdowns, and adoption counts."""
    connection = duckdb.connect()
    try:
        if threads is not None:
            connection.execute(f"SET threads = {int(threads)}")
        connection.register("ev", events)
        connection.register("rates", _rates_table(book))
        connection.execute(f"CREATE TEMP TABLE parts AS {_PARTS}")
        connection.execute(f"CREATE TEMP TABLE priced AS {_PRICED}")
        day_totals = _totals(connection, "day")
        month_totals = _totals(connection, "date_trunc('month', day)::DATE")
        day_adoption = _adoption(connection, "CAST(occurred_at AS DATE)")
        month_adoption = _adoption(connection, "date_trunc('month', occurred_at)::DATE")
    finally:
        connection.close()
    return day_totals, month_totals, day_adoption, month_adoption


def _totals(connection: duckdb.DuckDBPyConnection, period: str) -> dict[tuple[str, date], _Totals]:
    rounded = _ROUNDED.replace("cost_num", "sum(cost_num)")
    query = _TOTALS.format(period=period, rounded=rounded)
    table = connection.sql(query).to_arrow_table()
    found: dict[tuple[str, date], _Totals] = {}
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    for index, org in enumerate(columns["org"]):
        found[(org, columns["period"][index])] = _Totals(
            tokens_in=columns["tokens_in"][index],
            tokens_out=columns["tokens_out"][index],
            requests=columns["requests"][index],
            cost_num=int(columns["cost_num"][index]),
            unpriced_events=columns["unpriced_events"][index],
            breakdown=columns["breakdown"][index],
        )
    return found


def _adoption(
    connection: duckdb.DuckDBPyConnection, period: str
) -> dict[tuple[str, date], _Adoption]:
    table = connection.sql(_ADOPTION.format(period=period)).to_arrow_table()
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return {
        (org, columns["period"][index]): _Adoption(
            events=columns["events"][index],
            jobs=columns["jobs"][index],
            ai_jobs=columns["ai_jobs"][index],
            users=columns["users"][index],
            ai_users=columns["ai_users"][index],
        )
        for index, org in enumerate(columns["org"])
    }


# --- money ------------------------------------------------------------------------------------


@dataclass
class _Exact:
    """A period's money as numerators over the tenant-month's denominator (days × 1,000)."""

    fee: int = 0
    overage: int = 0
    overage_tokens: int = 0
    """Overage tokens × days in month."""
    ai_cost: int = 0
    infra: int = 0
    plans: set[date] = field(default_factory=set)

    def add(self, other: _Exact) -> None:
        self.fee += other.fee
        self.overage += other.overage
        self.overage_tokens += other.overage_tokens
        self.ai_cost += other.ai_cost
        self.infra += other.infra
        self.plans |= other.plans


def _adoption_terms(
    schedule: TierSchedule | None, adoption: _Adoption | None
) -> tuple[str | None, int, int]:
    if schedule is None:
        return None, 0, 0
    if adoption is None:
        return str(schedule.basis), 0, 0
    if schedule.basis == "users":
        return str(schedule.basis), adoption.ai_users, adoption.users
    return str(schedule.basis), adoption.ai_jobs, adoption.jobs


@functools.lru_cache(maxsize=64)
def _ladder(
    schedule: TierSchedule | None,
) -> tuple[list[dict[str, Any]], dict[str | None, Tier | None]]:
    """A schedule's tiers as explained, and the tier after each (None: after no tier)."""
    if schedule is None:
        return [], {}
    tiers = [
        {"name": t.name, "min_rate_bps": t.min_rate_bps, "discount_bps": t.discount_bps}
        for t in schedule.tiers
    ]
    following: dict[str | None, Tier | None] = {None: schedule.next_after(None)}
    following.update({t.name: schedule.next_after(t) for t in schedule.tiers})
    return tiers, following


def _figures(
    organization_id: str,
    kind: PeriodKind,
    start: date,
    *,
    book: PriceBook,
    schedule: TierSchedule | None,
    exact: _Exact,
    denominator: int,
    totals: _Totals | None,
    adoption: _Adoption | None,
    allowance_tokens: int,
    days: int,
) -> PeriodFigures:
    totals = totals or _Totals()
    basis, numerator, measured = _adoption_terms(schedule, adoption)
    tier = schedule.reached(numerator, measured) if schedule is not None else None
    discount_bps = tier.discount_bps if tier is not None else 0
    subscription = round_half_even(exact.fee, denominator)
    overage = round_half_even(exact.overage, denominator)
    gross = subscription + overage
    discount = round_half_even((exact.fee + exact.overage) * discount_bps, denominator * 10_000)
    revenue = gross - discount
    ai_cost = round_half_even(exact.ai_cost, denominator)
    infra = round_half_even(exact.infra, denominator)
    margin = revenue - ai_cost - infra
    ladder, following = _ladder(schedule)
    next_tier = following.get(tier.name if tier else None)
    breakdown = list(totals.breakdown)
    explanation: dict[str, Any] = {
        "plans_effective_from": sorted(day.isoformat() for day in exact.plans),
        "included_tokens": _decimal(allowance_tokens, days),
        "overage_tokens": _decimal(exact.overage_tokens, days),
        "adoption": {
            "basis": basis,
            "numerator": numerator,
            "denominator": measured,
            "tiers_effective_from": schedule.effective_from.isoformat() if schedule else None,
            "tiers": ladder,
            "next_tier": next_tier.name if next_tier else None,
            "next_tier_min_rate_bps": next_tier.min_rate_bps if next_tier else None,
        },
        "rounding": "exact until the end of the period, then half to even to 1 micro-unit",
    }
    return PeriodFigures(
        organization_id=organization_id,
        period_kind=kind,
        period_start=start,
        currency=book.currency,
        events=adoption.events if adoption else 0,
        tokens_in=totals.tokens_in,
        tokens_out=totals.tokens_out,
        requests=totals.requests,
        subscription_micros=subscription,
        overage_micros=overage,
        gross_revenue_micros=gross,
        discount_micros=discount,
        revenue_micros=revenue,
        ai_cost_micros=ai_cost,
        infra_cost_micros=infra,
        margin_micros=margin,
        margin_bps=round_half_even(margin * 10_000, revenue) if revenue > 0 else None,
        adoption_basis=basis,
        adoption_numerator=numerator,
        adoption_denominator=measured,
        adoption_ppm=round_half_even(numerator * 1_000_000, measured) if measured else None,
        tier=tier.name if tier else None,
        discount_bps=discount_bps,
        unpriced_events=totals.unpriced_events,
        ai_cost_breakdown=breakdown,
        explanation=explanation,
    )


def _decimal(numerator: int, denominator: int) -> str:
    """numerator / denominator to three decimals (half to even), for explanations."""
    thousandths = round_half_even(numerator * 1000, denominator)
    sign = "-" if thousandths < 0 else ""
    whole, fraction = divmod(abs(thousandths), 1000)
    return f"{sign}{whole}.{fraction:03d}"


def rollup(
    events: pa.Table,
    targets: Iterable[tuple[str, date]],
    book: PriceBook,
    *,
    through: date,
    threads: int | None = None,
) -> list[PeriodFigures]:
    """Figures of each target tenant-month (organisation id, first day) and of its days.

    `events` holds (at least) every event of the targets (`models.db.repositories.usage`'s
    extract schema: naive UTC times). A day gets figures when the tenant has a plan in force
    or events that day; a month when any of its days does.
    """
    day_totals, month_totals, day_adoption, month_adoption = aggregate(
        events, book, threads=threads
    )
    figures: list[PeriodFigures] = []
    for organization_id, month in sorted(set(targets)):
        figures.extend(
            _tenant_month(
                organization_id,
                month,
                book=book,
                through=through,
                day_totals=day_totals,
                month_totals=month_totals,
                day_adoption=day_adoption,
                month_adoption=month_adoption,
            )
        )
    return figures


def _tenant_month(
    organization_id: str,
    month: date,
    *,
    book: PriceBook,
    through: date,
    day_totals: dict[tuple[str, date], _Totals],
    month_totals: dict[tuple[str, date], _Totals],
    day_adoption: dict[tuple[str, date], _Adoption],
    month_adoption: dict[tuple[str, date], _Adoption],
) -> Sequence[PeriodFigures]:
    days = days_in(month)
    denominator = days * 1000
    plans = book.plans.get(organization_id, ())
    all_days = month_days(month, month.replace(day=days))
    plan_of_day = day_by_day(plans, all_days)
    rule_of_day = day_by_day(book.infrastructure, all_days)
    tiers_of_day = day_by_day(book.tiers, all_days)
    allowance = sum(plan.included_tokens for plan in plan_of_day if plan is not None)
    used = 0
    month_exact = _Exact()
    found: list[PeriodFigures] = []
    for index, day in enumerate(month_days(month, through)):
        key = (organization_id, day)
        totals = day_totals.get(key)
        plan = plan_of_day[index]
        if totals is None and plan is None and key not in day_adoption:
            continue
        exact = _Exact()
        tokens = (totals.tokens_in + totals.tokens_out) if totals else 0
        before, used = used, used + tokens * days
        over = max(0, used - allowance) - max(0, before - allowance)
        if plan is not None:
            exact.fee = plan.monthly_fee_micros * 1000
            exact.overage = over * plan.overage_micros_per_1k_tokens
            exact.overage_tokens = over
            exact.plans.add(plan.effective_from)
        rule = rule_of_day[index]
        if rule is not None:
            requests = totals.requests if totals else 0
            exact.infra = (
                tokens * rule.micros_per_1k_tokens + requests * rule.micros_per_request * 1000
            ) * days + rule.micros_per_tenant_month * 1000
        exact.ai_cost = (totals.cost_num if totals else 0) * days
        month_exact.add(exact)
        found.append(
            _figures(
                organization_id,
                PeriodKind.DAY,
                day,
                book=book,
                schedule=tiers_of_day[index],
                exact=exact,
                denominator=denominator,
                totals=totals,
                adoption=day_adoption.get(key),
                allowance_tokens=plan.included_tokens if plan else 0,
                days=days,
            )
        )
    if found:
        found.append(
            _figures(
                organization_id,
                PeriodKind.MONTH,
                month,
                book=book,
                schedule=tiers_of_day[0],
                exact=month_exact,
                denominator=denominator,
                totals=month_totals.get((organization_id, month)),
                adoption=month_adoption.get((organization_id, month)),
                allowance_tokens=allowance,
                days=days,
            )
        )
    return found
