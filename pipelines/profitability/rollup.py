"""The profitability rollup: usage events (Arrow) and a price book in, per tenant figures for
each day and month out. DuckDB aggregates the events; the money arithmetic is exact integers.

The rules, stated once:

- **Revenue** is what the AI features earn: the plan's monthly fee, spread evenly over the
  month's days (each day at the plan in force that day), plus overage. The month's included
  tokens are the days' shares of each plan's allowance (`included_tokens / days in month` per
  day); tokens (in + out) are counted against it day by day in order, and tokens past it are
  overage, priced at the plan of the day they were used, per 1,000 tokens.
- **Adoption discount**: each period measures its adoption rate (`jobs`: distinct job ids with
  an AI event / distinct job ids; `users`: the same for end-user keys) under the tier schedule
  in force on the period's first day; the highest tier reached discounts the period's AI
  add-on revenue (all of the above) by its basis points. `revenue` is after the discount.
- **AI cost** of each event: its model version's rate in force that day, per 1,000 tokens in
  and out and per request; events of a model version without a rate are counted as unpriced
  and cost nothing. **Infrastructure cost**: the rule in force that day, per request and per
  1,000 tokens, plus its tenant-month amount spread over the days the tenant is active (has a
  plan or events).
- **Rounding**: every figure is exact until the end of its period, then rounded once, half to
  even, to a micro-unit (breakdown entries are each rounded the same way, so they may differ
  from the rounded total by a few micro-units). Gross revenue = subscription + overage;
  revenue = gross − discount; margin = revenue − AI cost − infrastructure cost; margin in
  basis points of revenue, undefined (None) when revenue is 0.
- A month in progress is computed up to and including `through` (month to date).
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from models.db.enums import PeriodKind
from pipelines.profitability.pricing import PriceBook

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


# --- inputs as Arrow tables -------------------------------------------------------------------


def _ranges(versions: Sequence[Any]) -> list[tuple[Any, date, date]]:
    """Each version with the day it takes effect and the day the next one does."""
    found = []
    for position, version in enumerate(versions):
        following = (
            versions[position + 1].effective_from if position + 1 < len(versions) else FAR_FUTURE
        )
        found.append((version, version.effective_from, following))
    return found


def _rates_table(book: PriceBook) -> pa.Table:
    rows = [
        (
            model_version,
            start,
            end,
            r.micros_per_1k_tokens_in,
            r.micros_per_1k_tokens_out,
            r.micros_per_request,
        )
        for model_version, versions in book.cost_rates.items()
        for r, start, end in _ranges(versions)
    ]
    return _table(
        rows,
        [
            ("model_version", pa.string()),
            ("valid_from", pa.date32()),
            ("valid_to", pa.date32()),
            ("per_1k_in", pa.int64()),
            ("per_1k_out", pa.int64()),
            ("per_request", pa.int64()),
        ],
    )


def _plans_table(book: PriceBook, organizations: set[str]) -> pa.Table:
    rows = [
        (org, start, end, p.monthly_fee_micros, p.included_tokens, p.overage_micros_per_1k_tokens)
        for org, versions in book.plans.items()
        if org in organizations
        for p, start, end in _ranges(versions)
    ]
    return _table(
        rows,
        [
            ("org", pa.string()),
            ("valid_from", pa.date32()),
            ("valid_to", pa.date32()),
            ("fee", pa.int64()),
            ("included", pa.int64()),
            ("price", pa.int64()),
        ],
    )


def _infrastructure_table(book: PriceBook) -> pa.Table:
    rows = [
        (start, end, r.micros_per_request, r.micros_per_1k_tokens, r.micros_per_tenant_month)
        for r, start, end in _ranges(book.infrastructure)
    ]
    return _table(
        rows,
        [
            ("valid_from", pa.date32()),
            ("valid_to", pa.date32()),
            ("per_request", pa.int64()),
            ("per_1k_tokens", pa.int64()),
            ("per_tenant_month", pa.int64()),
        ],
    )


_TIER = pa.struct(
    [("name", pa.string()), ("min_rate_bps", pa.int64()), ("discount_bps", pa.int64())]
)


def _schedules_table(book: PriceBook) -> pa.Table:
    rows = [
        (
            start,
            end,
            str(s.basis),
            [
                {"name": t.name, "min_rate_bps": t.min_rate_bps, "discount_bps": t.discount_bps}
                for t in s.tiers
            ],
        )
        for s, start, end in _ranges(book.tiers)
    ]
    return _table(
        rows,
        [
            ("valid_from", pa.date32()),
            ("valid_to", pa.date32()),
            ("basis", pa.string()),
            ("tiers", pa.list_(_TIER)),
        ],
    )


def _table(rows: list[tuple[Any, ...]], fields: list[tuple[str, pa.DataType]]) -> pa.Table:
    schema = pa.schema(fields)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    return pa.table(
        [pa.array(list(values), type_) for values, (_, type_) in zip(columns, fields, strict=True)],
        schema=schema,
    )


# --- the computation (DuckDB, exact integers) -------------------------------------------------

_MACROS = """
CREATE OR REPLACE TEMP MACRO fmod(n, d) AS (((n) % (d)) + (d)) % (d);
CREATE OR REPLACE TEMP MACRO rhe(n, d) AS (
    ((n) - fmod(n, d)) // (d)
    + CASE WHEN 2 * fmod(n, d) > (d)
             OR (2 * fmod(n, d) = (d) AND (((n) - fmod(n, d)) // (d)) % 2 <> 0)
           THEN 1 ELSE 0 END);
CREATE OR REPLACE TEMP MACRO dec3(n, d) AS (
    CASE WHEN rhe((n) * 1000, d) < 0 THEN '-' ELSE '' END
    || (abs(rhe((n) * 1000, d)) // 1000)::VARCHAR || '.'
    || lpad((abs(rhe((n) * 1000, d)) % 1000)::VARCHAR, 3, '0'));
"""
"""`rhe(n, d)`: n / d rounded half to even (d > 0, n of any sign); `dec3`: n / d as text with
three decimals (for explanations)."""

_STEPS = """
CREATE TEMP TABLE evt AS
SELECT e.* FROM (
    SELECT organization_id AS org, day, date_trunc('month', day)::DATE AS month, agent_type,
           model_version, tokens_in, tokens_out, requests, job_id, end_user_key
    FROM (SELECT *, CAST(occurred_at AS DATE) AS day FROM ev)
) e SEMI JOIN targets t ON t.org = e.org AND t.month = e.month;

CREATE TEMP TABLE priced AS
SELECT p.*, r.model_version IS NOT NULL AS priced,
       coalesce(p.tokens_in * r.per_1k_in + p.tokens_out * r.per_1k_out
                + p.requests * r.per_request * 1000, 0)::HUGEINT AS cost_num
FROM (
    SELECT org, day, any_value(month) AS month, agent_type, model_version, count(*) AS events,
           sum(tokens_in)::HUGEINT AS tokens_in, sum(tokens_out)::HUGEINT AS tokens_out,
           sum(requests)::HUGEINT AS requests
    FROM evt WHERE agent_type IS NOT NULL GROUP BY org, day, agent_type, model_version
) p LEFT JOIN rates r
  ON r.model_version = p.model_version AND p.day >= r.valid_from AND p.day < r.valid_to;

CREATE TEMP TABLE month_priced AS
SELECT org, month, agent_type, model_version, sum(events)::BIGINT AS events,
       sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
       sum(requests) AS requests, sum(cost_num) AS cost_num, bool_and(priced) AS priced
FROM priced GROUP BY ALL;

CREATE TEMP TABLE usage AS
SELECT org, 'day' AS period_kind, day AS period_start, sum(tokens_in) AS tokens_in,
       sum(tokens_out) AS tokens_out, sum(requests) AS requests, sum(cost_num) AS cost_num,
       sum(CASE WHEN priced THEN 0 ELSE events END) AS unpriced_events
FROM priced GROUP BY org, day
UNION ALL
SELECT org, 'month', month, sum(tokens_in), sum(tokens_out), sum(requests), sum(cost_num),
       sum(CASE WHEN priced THEN 0 ELSE events END)
FROM month_priced GROUP BY org, month;

CREATE TEMP TABLE breakdowns AS
SELECT org, 'day' AS period_kind, day AS period_start,
       to_json(list_sort(list({'agent_type': agent_type, 'model_version': model_version,
                     'events': events, 'tokens_in': tokens_in::BIGINT,
                     'tokens_out': tokens_out::BIGINT, 'requests': requests::BIGINT,
                     'cost_micros': rhe(cost_num, 1000)::BIGINT, 'priced': priced})))
           AS breakdown
FROM priced GROUP BY org, day
UNION ALL
SELECT org, 'month', month,
       to_json(list_sort(list({'agent_type': agent_type, 'model_version': model_version,
                     'events': events, 'tokens_in': tokens_in::BIGINT,
                     'tokens_out': tokens_out::BIGINT, 'requests': requests::BIGINT,
                     'cost_micros': rhe(cost_num, 1000)::BIGINT, 'priced': priced})))
FROM month_priced GROUP BY org, month;

CREATE TEMP TABLE job_keys AS
SELECT org, day, month, job_id, bool_or(agent_type IS NOT NULL) AS ai
FROM evt WHERE job_id IS NOT NULL GROUP BY org, day, month, job_id;

CREATE TEMP TABLE user_keys AS
SELECT org, day, month, end_user_key, bool_or(agent_type IS NOT NULL) AS ai
FROM evt WHERE end_user_key IS NOT NULL GROUP BY org, day, month, end_user_key;

CREATE TEMP TABLE adoption AS
SELECT c.org, c.period_kind, c.period_start, c.events,
       coalesce(j.jobs, 0) AS jobs, coalesce(j.ai_jobs, 0) AS ai_jobs,
       coalesce(u.users, 0) AS users, coalesce(u.ai_users, 0) AS ai_users
FROM (
    SELECT org, 'day' AS period_kind, day AS period_start, count(*) AS events
    FROM evt GROUP BY org, day
    UNION ALL
    SELECT org, 'month', month, count(*) FROM evt GROUP BY org, month
) c
LEFT JOIN (
    SELECT org, 'day' AS period_kind, day AS period_start, count(*) AS jobs,
           count(*) FILTER (WHERE ai) AS ai_jobs
    FROM job_keys GROUP BY org, day
    UNION ALL
    SELECT org, 'month', month, count(*), count(*) FILTER (WHERE ai)
    FROM (SELECT org, month, job_id, bool_or(ai) AS ai FROM job_keys GROUP BY ALL)
    GROUP BY org, month
) j USING (org, period_kind, period_start)
LEFT JOIN (
    SELECT org, 'day' AS period_kind, day AS period_start, count(*) AS users,
           count(*) FILTER (WHERE ai) AS ai_users
    FROM user_keys GROUP BY org, day
    UNION ALL
    SELECT org, 'month', month, count(*), count(*) FILTER (WHERE ai)
    FROM (SELECT org, month, end_user_key, bool_or(ai) AS ai FROM user_keys GROUP BY ALL)
    GROUP BY org, month
) u USING (org, period_kind, period_start);
"""
"""The usage of each (tenant, day) and (tenant, month): totals, exact AI cost numerators (in
thousandths of a micro-unit), breakdowns by agent type and model version, adoption counts."""

_MONEY = """
CREATE TEMP TABLE grid AS
SELECT t.org, t.month, g.day, day(last_day(t.month))::BIGINT AS ndays,
       p.valid_from AS plan_from, p.fee, p.included, p.price,
       i.valid_from AS rule_from, i.per_request AS infra_per_request,
       i.per_1k_tokens AS infra_per_1k, i.per_tenant_month AS infra_per_month,
       s.valid_from AS tiers_from, s.basis, s.tiers
FROM targets t
CROSS JOIN LATERAL (
    SELECT CAST(d AS DATE) AS day
    FROM generate_series(t.month::TIMESTAMP, last_day(t.month)::TIMESTAMP, INTERVAL 1 DAY) g(d)
) g
LEFT JOIN plans p ON p.org = t.org AND g.day >= p.valid_from AND g.day < p.valid_to
LEFT JOIN infra i ON g.day >= i.valid_from AND g.day < i.valid_to
LEFT JOIN schedules s ON g.day >= s.valid_from AND g.day < s.valid_to;

CREATE TEMP TABLE allowance AS
SELECT org, month, sum(coalesce(included, 0))::HUGEINT AS tokens FROM grid GROUP BY ALL;

CREATE TEMP TABLE days AS
SELECT g.*, a.tokens AS allowance, u.tokens_in, u.tokens_out, u.requests, u.cost_num,
       u.unpriced_events, d.events, d.jobs, d.ai_jobs, d.users, d.ai_users,
       coalesce(u.tokens_in, 0) + coalesce(u.tokens_out, 0) AS tokens,
       sum((coalesce(u.tokens_in, 0) + coalesce(u.tokens_out, 0)) * g.ndays)
           OVER (PARTITION BY g.org, g.month ORDER BY g.day) AS used_after
FROM grid g
JOIN allowance a ON a.org = g.org AND a.month = g.month
LEFT JOIN usage u ON u.org = g.org AND u.period_kind = 'day' AND u.period_start = g.day
LEFT JOIN adoption d ON d.org = g.org AND d.period_kind = 'day' AND d.period_start = g.day
WHERE g.day <= $THROUGH$
  AND (g.plan_from IS NOT NULL OR u.org IS NOT NULL OR d.org IS NOT NULL);

CREATE TEMP TABLE day_money AS
SELECT *,
       CASE WHEN plan_from IS NULL THEN 0::HUGEINT
            ELSE greatest(0, used_after - allowance)
                 - greatest(0, used_after - tokens * ndays - allowance) END AS over_tokens,
       CASE WHEN plan_from IS NULL THEN 0::HUGEINT ELSE fee::HUGEINT * 1000 END AS fee_num,
       CASE WHEN rule_from IS NULL THEN 0::HUGEINT
            ELSE (tokens * infra_per_1k + coalesce(requests, 0) * infra_per_request * 1000)
                 * ndays + infra_per_month::HUGEINT * 1000 END AS infra_num,
       coalesce(cost_num, 0) * ndays AS ai_num
FROM days;

CREATE TEMP TABLE periods AS
SELECT org, 'day' AS period_kind, day AS period_start, ndays,
       fee_num, over_tokens * coalesce(price, 0) AS overage_num, over_tokens, infra_num, ai_num,
       CASE WHEN plan_from IS NULL THEN []::DATE[] ELSE [plan_from] END AS plans,
       coalesce(included, 0)::HUGEINT AS allowance_tokens,
       tiers_from, basis, tiers,
       coalesce(events, 0) AS events, jobs, ai_jobs, users, ai_users,
       coalesce(tokens_in, 0) AS tokens_in, coalesce(tokens_out, 0) AS tokens_out,
       coalesce(requests, 0) AS requests, coalesce(unpriced_events, 0) AS unpriced_events
FROM day_money
UNION ALL
SELECT m.org, 'month', m.month, m.ndays, m.fee_num, m.overage_num, m.over_tokens, m.infra_num,
       m.ai_num, m.plans, m.allowance, f.tiers_from, f.basis, f.tiers,
       coalesce(a.events, 0), a.jobs, a.ai_jobs, a.users, a.ai_users,
       coalesce(u.tokens_in, 0), coalesce(u.tokens_out, 0), coalesce(u.requests, 0),
       coalesce(u.unpriced_events, 0)
FROM (
    SELECT org, month, any_value(ndays) AS ndays, any_value(allowance) AS allowance,
           sum(fee_num) AS fee_num, sum(over_tokens * coalesce(price, 0)) AS overage_num,
           sum(over_tokens) AS over_tokens, sum(infra_num) AS infra_num, sum(ai_num) AS ai_num,
           coalesce(list(DISTINCT plan_from ORDER BY plan_from)
                        FILTER (WHERE plan_from IS NOT NULL), []::DATE[]) AS plans
    FROM day_money GROUP BY org, month
) m
JOIN grid f ON f.org = m.org AND f.day = m.month
LEFT JOIN usage u ON u.org = m.org AND u.period_kind = 'month' AND u.period_start = m.month
LEFT JOIN adoption a ON a.org = m.org AND a.period_kind = 'month' AND a.period_start = m.month;

CREATE TEMP TABLE measured AS
SELECT *,
       CASE WHEN basis IS NULL THEN 0 WHEN basis = 'users' THEN coalesce(ai_users, 0)
            ELSE coalesce(ai_jobs, 0) END::BIGINT AS numerator,
       CASE WHEN basis IS NULL THEN 0 WHEN basis = 'users' THEN coalesce(users, 0)
            ELSE coalesce(jobs, 0) END::BIGINT AS denominator,
       ndays * 1000 AS den
FROM periods;

CREATE TEMP TABLE reached AS
SELECT *,
       CASE WHEN denominator > 0 THEN list_filter(
           tiers, lambda t: numerator::HUGEINT * 10000 >= t.min_rate_bps::HUGEINT * denominator
       )[-1] END AS tier_reached
FROM measured;

SELECT org AS organization_id, period_kind, period_start, $currency::VARCHAR AS currency,
       events::BIGINT AS events, tokens_in::BIGINT AS tokens_in,
       tokens_out::BIGINT AS tokens_out, requests::BIGINT AS requests,
       subscription::BIGINT AS subscription_micros, overage::BIGINT AS overage_micros,
       (subscription + overage)::BIGINT AS gross_revenue_micros,
       discount::BIGINT AS discount_micros,
       (subscription + overage - discount)::BIGINT AS revenue_micros,
       ai_cost::BIGINT AS ai_cost_micros, infra::BIGINT AS infra_cost_micros,
       (subscription + overage - discount - ai_cost - infra)::BIGINT AS margin_micros,
       CASE WHEN subscription + overage - discount > 0
            THEN rhe((subscription + overage - discount - ai_cost - infra) * 10000,
                     subscription + overage - discount) END::BIGINT AS margin_bps,
       basis AS adoption_basis, numerator AS adoption_numerator,
       denominator AS adoption_denominator,
       CASE WHEN denominator > 0 THEN rhe(numerator::HUGEINT * 1000000, denominator)
            END::INTEGER AS adoption_ppm,
       tier_reached.name AS tier, discount_bps::INTEGER AS discount_bps,
       unpriced_events::BIGINT AS unpriced_events,
       coalesce(b.breakdown::VARCHAR, '[]') AS ai_cost_breakdown,
       to_json({
           'plans_effective_from': list_transform(plans, lambda d: strftime(d, '%Y-%m-%d')),
           'included_tokens': dec3(allowance_tokens, ndays),
           'overage_tokens': dec3(over_tokens, ndays),
           'adoption': {
               'basis': basis, 'numerator': numerator, 'denominator': denominator,
               'tiers_effective_from': strftime(tiers_from, '%Y-%m-%d'),
               'tiers': coalesce(to_json(tiers), '[]'::JSON),
               'next_tier': next_tier.name,
               'next_tier_min_rate_bps': next_tier.min_rate_bps
           },
           'rounding': '$ROUNDING$'
       })::VARCHAR AS explanation
FROM (
    SELECT *,
           rhe(fee_num, den) AS subscription, rhe(overage_num, den) AS overage,
           rhe((fee_num + overage_num) * discount_bps, den * 10000) AS discount,
           rhe(ai_num, den) AS ai_cost, rhe(infra_num, den) AS infra
    FROM (
        SELECT *, coalesce(tier_reached.discount_bps, 0) AS discount_bps,
               list_filter(tiers, lambda t: t.min_rate_bps
                   > coalesce(tier_reached.min_rate_bps, -1))[1] AS next_tier
        FROM reached
    )
) f
LEFT JOIN breakdowns b USING (org, period_kind, period_start)
ORDER BY organization_id, date_trunc('month', period_start), period_kind = 'month', period_start
"""

ROUNDING = "exact until the end of the period, then half to even to 1 micro-unit"
FIGURE_COLUMNS = (
    "organization_id",
    "period_kind",
    "period_start",
    "currency",
    "events",
    "tokens_in",
    "tokens_out",
    "requests",
    "subscription_micros",
    "overage_micros",
    "gross_revenue_micros",
    "discount_micros",
    "revenue_micros",
    "ai_cost_micros",
    "infra_cost_micros",
    "margin_micros",
    "margin_bps",
    "adoption_basis",
    "adoption_numerator",
    "adoption_denominator",
    "adoption_ppm",
    "tier",
    "discount_bps",
    "unpriced_events",
    "ai_cost_breakdown",
    "explanation",
)
"""The columns of `rollup_table`'s result: a `tenant_profitability` row without `computed_at`
(the JSON columns as JSON text)."""


def rollup_table(
    events: pa.Table,
    targets: Iterable[tuple[str, date]],
    book: PriceBook,
    *,
    through: date,
    threads: int | None = None,
) -> pa.Table:
    """Figures of each target tenant-month (organisation id, first day) and of its days, one
    row per period (`FIGURE_COLUMNS`), ordered by tenant, month, days then the month.

    `events` holds (at least) every event of the targets (`models.db.repositories.usage`'s
    extract schema: naive UTC times). A day gets figures when the tenant has a plan in force
    or events that day; a month when any of its days does.
    """
    wanted = sorted(set(targets))
    target_table = _table(wanted, [("org", pa.string()), ("month", pa.date32())])
    connection = duckdb.connect()
    try:
        if threads is not None:
            connection.execute(f"SET threads = {int(threads)}")
        connection.register("ev", events)
        connection.register("targets", target_table)
        connection.register("rates", _rates_table(book))
        connection.register("plans", _plans_table(book, {org for org, _ in wanted}))
        connection.register("infra", _infrastructure_table(book))
        connection.register("schedules", _schedules_table(book))
        connection.execute(_MACROS)
        connection.execute(_STEPS)
        money = _MONEY.replace("$THROUGH$", f"DATE '{through.isoformat()}'")
        steps, final = money.replace("$ROUNDING$", ROUNDING).split(";\n\nSELECT ")
        connection.execute(steps)
        return connection.sql(
            "SELECT " + final, params={"currency": book.currency}
        ).to_arrow_table()
    finally:
        connection.close()


def figures_of(table: pa.Table) -> list[PeriodFigures]:
    """`rollup_table`'s rows as `PeriodFigures` (for readers that want Python objects)."""
    found = []
    for row in table.to_pylist():
        row["ai_cost_breakdown"] = json.loads(row["ai_cost_breakdown"])
        row["explanation"] = json.loads(row["explanation"])
        row["period_kind"] = PeriodKind(row["period_kind"])
        found.append(PeriodFigures(**row))
    return found


def rollup(
    events: pa.Table,
    targets: Iterable[tuple[str, date]],
    book: PriceBook,
    *,
    through: date,
    threads: int | None = None,
) -> list[PeriodFigures]:
    """`rollup_table` as `PeriodFigures`."""
    return figures_of(rollup_table(events, targets, book, through=through, threads=threads))
