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

Two stages, so a new or late event costs its day, not its month: `aggregate_days` (stage 1)
turns the events of some tenant-days into each day's exact usage (totals, AI cost in
thousandths of a micro-unit at that day's rates, the breakdown, the day's distinct jobs and
users) and each tenant-month's keys; `merge_months` keeps a month's usage as the sum of its days
(stored month − old days + new days), `combo_changes` its usage by agent type and model version
the same way; `figures_table` (stage 2) computes the figures of a
tenant-month from its day and month usage and the price book alone. `rollup_table` runs both
over a set of events, storing nothing.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
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

_DAYS = """
CREATE OR REPLACE TEMP TABLE evt AS
SELECT organization_id AS org, CAST(occurred_at AS DATE) AS day, agent_type, model_version,
       tokens_in, tokens_out, requests, job_id, end_user_key
FROM ev;

CREATE OR REPLACE TEMP TABLE priced AS
SELECT p.*, r.model_version IS NOT NULL AS priced,
       coalesce(p.tokens_in * r.per_1k_in + p.tokens_out * r.per_1k_out
                + p.requests * r.per_request * 1000, 0)::HUGEINT AS cost_num
FROM (
    SELECT org, day, agent_type, model_version, count(*) AS events,
           sum(tokens_in)::HUGEINT AS tokens_in, sum(tokens_out)::HUGEINT AS tokens_out,
           sum(requests)::HUGEINT AS requests
    FROM evt WHERE agent_type IS NOT NULL GROUP BY org, day, agent_type, model_version
) p LEFT JOIN rates r
  ON r.model_version = p.model_version AND p.day >= r.valid_from AND p.day < r.valid_to;

CREATE OR REPLACE TEMP TABLE keys AS
SELECT org, date_trunc('month', day)::DATE AS month, day, 'j' AS kind, job_id AS key,
       bool_or(agent_type IS NOT NULL) AS ai
FROM evt WHERE job_id IS NOT NULL GROUP BY org, day, job_id
UNION ALL
SELECT org, date_trunc('month', day)::DATE, day, 'u', end_user_key,
       bool_or(agent_type IS NOT NULL)
FROM evt WHERE end_user_key IS NOT NULL GROUP BY org, day, end_user_key;

CREATE OR REPLACE TEMP TABLE day_usage AS
SELECT c.org AS organization_id, c.day, c.events::BIGINT AS events,
       coalesce(u.tokens_in, 0)::BIGINT AS tokens_in,
       coalesce(u.tokens_out, 0)::BIGINT AS tokens_out,
       coalesce(u.requests, 0)::BIGINT AS requests,
       coalesce(u.cost_num, 0)::BIGINT AS cost_thousandths,
       coalesce(u.unpriced_events, 0)::BIGINT AS unpriced_events,
       coalesce(k.jobs, 0)::BIGINT AS jobs, coalesce(k.ai_jobs, 0)::BIGINT AS ai_jobs,
       coalesce(k.users, 0)::BIGINT AS users, coalesce(k.ai_users, 0)::BIGINT AS ai_users,
       coalesce(u.breakdown, '[]') AS breakdown
FROM (SELECT org, day, count(*) AS events FROM evt GROUP BY org, day) c
LEFT JOIN (
    SELECT org, day, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
           sum(requests) AS requests, sum(cost_num) AS cost_num,
           sum(CASE WHEN priced THEN 0 ELSE events END) AS unpriced_events,
           to_json(list_sort(list({'agent_type': agent_type, 'model_version': model_version,
                     'events': events, 'tokens_in': tokens_in::BIGINT,
                     'tokens_out': tokens_out::BIGINT, 'requests': requests::BIGINT,
                     'cost': cost_num::BIGINT,
                     'unpriced_events': CASE WHEN priced THEN 0 ELSE events END})))::VARCHAR
               AS breakdown
    FROM priced GROUP BY org, day
) u USING (org, day)
LEFT JOIN (
    SELECT org, day, count(*) FILTER (WHERE kind = 'j') AS jobs,
           count(*) FILTER (WHERE kind = 'j' AND ai) AS ai_jobs,
           count(*) FILTER (WHERE kind = 'u') AS users,
           count(*) FILTER (WHERE kind = 'u' AND ai) AS ai_users
    FROM keys GROUP BY org, day
) k USING (org, day)
ORDER BY organization_id, day;
"""
"""Stage 1: the usage of each (tenant, day) of the events: totals, the exact AI cost (in
thousandths of a micro-unit, at the rates in force that day), the breakdown by agent type and
model version, and the day's distinct jobs and users (all and with an AI event)."""

_BREAKDOWN = (
    '[{"agent_type": "VARCHAR", "model_version": "VARCHAR", "events": "BIGINT", '
    '"tokens_in": "BIGINT", "tokens_out": "BIGINT", "requests": "BIGINT", "cost": "BIGINT", '
    '"unpriced_events": "BIGINT"}]'
)

_COMBO_CHANGES = """
SELECT organization_id, date_trunc('month', day)::DATE AS month, c.agent_type,
       c.model_version, sum(sign * c.events)::BIGINT AS events,
       sum(sign * c.tokens_in)::BIGINT AS tokens_in,
       sum(sign * c.tokens_out)::BIGINT AS tokens_out,
       sum(sign * c.requests)::BIGINT AS requests, sum(sign * c.cost::HUGEINT)::BIGINT AS cost,
       sum(sign * c.unpriced_events)::BIGINT AS unpriced_events
FROM (
    SELECT organization_id, day, -1 AS sign, unnest(from_json(breakdown, '$BREAKDOWN$')) AS c
    FROM old_days
    UNION ALL
    SELECT organization_id, day, 1, unnest(from_json(breakdown, '$BREAKDOWN$')) FROM new_days
)
GROUP BY ALL
HAVING sum(sign * c.events) <> 0 OR sum(sign * c.tokens_in) <> 0
    OR sum(sign * c.tokens_out) <> 0 OR sum(sign * c.requests) <> 0
    OR sum(sign * c.cost::HUGEINT) <> 0 OR sum(sign * c.unpriced_events) <> 0
ORDER BY ALL
"""
"""How each tenant-month's usage by (agent type, model version) changes when days are
aggregated again: the new days' breakdowns minus the old days' (unchanged combinations
left out)."""

_MERGE_MONTHS = """
CREATE OR REPLACE TEMP TABLE signed AS
SELECT organization_id, month, 1 AS sign, events, tokens_in, tokens_out, requests,
       cost_thousandths FROM old_months
UNION ALL
SELECT organization_id, date_trunc('month', day)::DATE, -1, events, tokens_in, tokens_out,
       requests, cost_thousandths FROM old_days
UNION ALL
SELECT organization_id, date_trunc('month', day)::DATE, 1, events, tokens_in, tokens_out,
       requests, cost_thousandths FROM new_days;

SELECT t.organization_id, t.month, coalesce(s.events, 0)::BIGINT AS events,
       coalesce(s.tokens_in, 0)::BIGINT AS tokens_in,
       coalesce(s.tokens_out, 0)::BIGINT AS tokens_out,
       coalesce(s.requests, 0)::BIGINT AS requests,
       coalesce(s.cost_thousandths, 0)::BIGINT AS cost_thousandths,
       coalesce(b.unpriced_events, 0)::BIGINT AS unpriced_events,
       coalesce(k.jobs, 0)::BIGINT AS jobs, coalesce(k.ai_jobs, 0)::BIGINT AS ai_jobs,
       coalesce(k.users, 0)::BIGINT AS users, coalesce(k.ai_users, 0)::BIGINT AS ai_users
FROM (SELECT DISTINCT organization_id, month FROM signed) t
LEFT JOIN (
    SELECT organization_id, month, sum(sign * events) AS events,
           sum(sign * tokens_in) AS tokens_in, sum(sign * tokens_out) AS tokens_out,
           sum(sign * requests) AS requests, sum(sign * cost_thousandths::HUGEINT)
               AS cost_thousandths
    FROM signed GROUP BY ALL
) s USING (organization_id, month)
LEFT JOIN (
    SELECT organization_id, month,
           sum(CASE WHEN unpriced_events > 0 THEN events ELSE 0 END) AS unpriced_events
    FROM month_combos GROUP BY ALL
) b USING (organization_id, month)
LEFT JOIN counts k USING (organization_id, month)
WHERE coalesce(s.events, 0) <> 0
ORDER BY organization_id, month
"""
"""Month usage from what was stored and the days aggregated again: the stored month, minus the
days' old usage, plus their new usage (exact integers, so the difference is exact); the
distinct counts come from `counts`. A combination (agent type, model version) unpriced on
any day of the month counts all its events of the month as unpriced (from the month's
combinations, `month_combos`). A month left without events has no row."""

_STEPS = """
CREATE OR REPLACE TEMP TABLE usage AS
SELECT organization_id AS org, 'day' AS period_kind, day AS period_start,
       tokens_in::HUGEINT AS tokens_in, tokens_out::HUGEINT AS tokens_out,
       requests::HUGEINT AS requests, cost_thousandths::HUGEINT AS cost_num, unpriced_events
FROM day_in
UNION ALL
SELECT organization_id, 'month', month, tokens_in, tokens_out, requests, cost_thousandths,
       unpriced_events
FROM month_in;

CREATE OR REPLACE TEMP TABLE breakdowns AS
SELECT d.organization_id AS org, 'day' AS period_kind, d.day AS period_start,
       to_json(list_transform(from_json(d.breakdown, '$BREAKDOWN$'), lambda c: {
           'agent_type': c.agent_type, 'model_version': c.model_version, 'events': c.events,
           'tokens_in': c.tokens_in, 'tokens_out': c.tokens_out, 'requests': c.requests,
           'cost_micros': rhe(c.cost::HUGEINT, 1000)::BIGINT,
           'priced': c.unpriced_events = 0})) AS breakdown
FROM day_in d JOIN targets t ON t.org = d.organization_id AND t.month = d.month
WHERE d.day >= t.from_day AND d.breakdown <> '[]'
UNION ALL
SELECT organization_id, 'month', month,
       to_json(list({'agent_type': agent_type, 'model_version': model_version,
                     'events': events, 'tokens_in': tokens_in, 'tokens_out': tokens_out,
                     'requests': requests, 'cost_micros': rhe(cost::HUGEINT, 1000)::BIGINT,
                     'priced': unpriced_events = 0}
                    ORDER BY agent_type, model_version))
FROM combos_in
GROUP BY organization_id, month;

CREATE OR REPLACE TEMP TABLE adoption AS
SELECT organization_id AS org, 'day' AS period_kind, day AS period_start, events, jobs,
       ai_jobs, users, ai_users
FROM day_in
UNION ALL
SELECT organization_id, 'month', month, events, jobs, ai_jobs, users, ai_users FROM month_in;
"""
"""Stage 2's inputs: each (tenant, day) and (tenant, month) usage as the money step reads it
(breakdowns only of the days written; a month's from its combinations). A day's stored
breakdown is already in (agent type, model version) order (`list_sort` of unique pairs), so
each entry is converted in place."""

_MONEY = """
CREATE OR REPLACE TEMP TABLE grid AS
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

CREATE OR REPLACE TEMP TABLE allowance AS
SELECT org, month, sum(coalesce(included, 0))::HUGEINT AS tokens FROM grid GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE days AS
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

CREATE OR REPLACE TEMP TABLE day_money AS
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

CREATE OR REPLACE TEMP TABLE periods AS
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

CREATE OR REPLACE TEMP TABLE measured AS
SELECT *,
       CASE WHEN basis IS NULL THEN 0 WHEN basis = 'users' THEN coalesce(ai_users, 0)
            ELSE coalesce(ai_jobs, 0) END::BIGINT AS numerator,
       CASE WHEN basis IS NULL THEN 0 WHEN basis = 'users' THEN coalesce(users, 0)
            ELSE coalesce(jobs, 0) END::BIGINT AS denominator,
       ndays * 1000 AS den
FROM periods;

CREATE OR REPLACE TEMP TABLE reached AS
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
JOIN (SELECT org AS w_org, month AS w_month, from_day FROM targets) w
  ON w.w_org = f.org AND w.w_month = date_trunc('month', f.period_start)
WHERE f.period_kind = 'month' OR f.period_start >= w.from_day
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


USAGE_SUMS = (
    "events",
    "tokens_in",
    "tokens_out",
    "requests",
    "cost_thousandths",
    "unpriced_events",
    "jobs",
    "ai_jobs",
    "users",
    "ai_users",
)
"""The sums of a day's or a month's usage (`DAY_USAGE`, then `breakdown`; `MONTH_USAGE`)."""
DAY_USAGE = pa.schema(
    [
        ("organization_id", pa.string()),
        ("day", pa.date32()),
        *((name, pa.int64()) for name in USAGE_SUMS),
        ("breakdown", pa.string()),
    ]
)
MONTH_USAGE = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        *((name, pa.int64()) for name in USAGE_SUMS),
    ]
)
COMBO_SUMS = ("events", "tokens_in", "tokens_out", "requests", "cost", "unpriced_events")
MONTH_COMBOS = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        ("agent_type", pa.string()),
        ("model_version", pa.string()),
        *((name, pa.int64()) for name in COMBO_SUMS),
    ]
)
"""A tenant-month's usage by (agent type, model version): its days' breakdown entries summed
(`cost` in thousandths of a micro-unit; `unpriced_events` the events without a rate)."""
MONTH_KEYS = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        ("kind", pa.string()),
        ("key", pa.string()),
        ("ai", pa.bool_()),
    ]
)
"""A tenant-month's job ids (`kind` 'j') and end-user keys ('u'), AI when any of its events
used an agent."""
KEY_COUNTS = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        ("jobs", pa.int64()),
        ("ai_jobs", pa.int64()),
        ("users", pa.int64()),
        ("ai_users", pa.int64()),
    ]
)


def _connect(threads: int | None) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    if threads is not None:
        connection.execute(f"SET threads = {int(threads)}")
    connection.execute(_MACROS)
    return connection


class Workspace:
    """One DuckDB connection for the stages of one rollup (opened once: a chunk's stages
    share it). Close it, or use it as a context manager."""

    def __init__(self, threads: int | None = None) -> None:
        self.connection = _connect(threads)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@contextmanager
def _using(workspace: Workspace | None, threads: int | None) -> Iterator[duckdb.DuckDBPyConnection]:
    if workspace is not None:
        yield workspace.connection
        return
    with Workspace(threads) as own:
        yield own.connection


def aggregate_days(
    events: pa.Table,
    book: PriceBook,
    *,
    threads: int | None = None,
    workspace: Workspace | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Stage 1: the usage of each (tenant, day) with events (`DAY_USAGE`) and each tenant-month's
    distinct keys (`MONTH_KEYS`), from all the events of those days (the extract schema of
    `models.db.repositories.usage`: naive UTC times)."""
    with _using(workspace, threads) as connection:
        connection.register("ev", events)
        connection.register("rates", _rates_table(book))
        connection.execute(_DAYS)
        days = connection.sql("SELECT * FROM day_usage").to_arrow_table().cast(DAY_USAGE)
        keys = connection.sql(
            "SELECT org AS organization_id, month, kind, key, bool_or(ai) AS ai FROM keys "
            "GROUP BY ALL ORDER BY ALL"
        ).to_arrow_table()
        return days, keys.cast(MONTH_KEYS)


def count_keys(keys: pa.Table, *, workspace: Workspace | None = None) -> pa.Table:
    """Each tenant-month's distinct jobs and users (`KEY_COUNTS`) of its keys (`MONTH_KEYS`,
    one row per key)."""
    with _using(workspace, None) as connection:
        connection.register("counted_keys", keys)
        return (
            connection.sql(
                "SELECT organization_id, month, count(*) FILTER (WHERE kind = 'j') AS jobs, "
                "count(*) FILTER (WHERE kind = 'j' AND ai) AS ai_jobs, "
                "count(*) FILTER (WHERE kind = 'u') AS users, "
                "count(*) FILTER (WHERE kind = 'u' AND ai) AS ai_users "
                "FROM counted_keys GROUP BY ALL ORDER BY ALL"
            )
            .to_arrow_table()
            .cast(KEY_COUNTS)
        )


def add_counts(
    months: pa.Table, gained: pa.Table, *, workspace: Workspace | None = None
) -> pa.Table:
    """Distinct counts (`KEY_COUNTS`) of tenant-months: their stored month usage's counts
    (`MONTH_USAGE`; none for a month rebuilt) plus the keys gained (`KEY_COUNTS`)."""
    with _using(workspace, None) as connection:
        connection.register("counted_months", months.cast(MONTH_USAGE))
        connection.register("gained", gained.cast(KEY_COUNTS))
        return (
            connection.sql(
                "SELECT organization_id, month, "
                + ", ".join(
                    f"coalesce(m.{n}, 0) + coalesce(g.{n}, 0) AS {n}"
                    for n in ("jobs", "ai_jobs", "users", "ai_users")
                )
                + " FROM counted_months m FULL JOIN gained g USING (organization_id, month)"
            )
            .to_arrow_table()
            .cast(KEY_COUNTS)
        )


def combine_days(
    stored: pa.Table,
    new: pa.Table,
    spans: Iterable[tuple[str, date, date]],
    *,
    workspace: Workspace | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(the days' usage now, the stored usage replaced): stored day usage (`DAY_USAGE`) outside
    the spans aggregated again (organisation id, first day, day after the last) with the new
    usage of the spans, and the stored usage inside them."""
    span_table = _table(
        sorted(set(spans)),
        [("org", pa.string()), ("first_day", pa.date32()), ("stop", pa.date32())],
    )
    with _using(workspace, None) as connection:
        connection.register("stored", stored.cast(DAY_USAGE))
        connection.register("new_days", new.cast(DAY_USAGE))
        connection.register("spans", span_table)
        connection.execute(
            "CREATE OR REPLACE TEMP TABLE redone AS SELECT s.*, EXISTS (SELECT 1 FROM spans p "
            "WHERE p.org = s.organization_id AND s.day >= p.first_day AND s.day < p.stop) "
            "AS redone FROM stored s"
        )
        names = ", ".join(DAY_USAGE.names)
        days = connection.sql(
            f"SELECT {names} FROM redone WHERE NOT redone UNION ALL "
            f"SELECT {names} FROM new_days ORDER BY organization_id, day"
        ).to_arrow_table()
        old = connection.sql(f"SELECT {names} FROM redone WHERE redone").to_arrow_table()
        return days.cast(DAY_USAGE), old.cast(DAY_USAGE)


def combo_changes(
    old_days: pa.Table, new_days: pa.Table, *, workspace: Workspace | None = None
) -> pa.Table:
    """How the days aggregated again change their months' usage by (agent type, model
    version) (`MONTH_COMBOS`, signed): the new days' usage (`DAY_USAGE`) minus the old days'.
    With no old days, the new days' combinations of a month rebuilt."""
    with _using(workspace, None) as connection:
        connection.register("old_days", old_days.cast(DAY_USAGE))
        connection.register("new_days", new_days.cast(DAY_USAGE))
        query = _COMBO_CHANGES.replace("$BREAKDOWN$", _BREAKDOWN)
        return connection.sql(query).to_arrow_table().cast(MONTH_COMBOS)


def merge_months(
    old_months: pa.Table,
    old_days: pa.Table,
    new_days: pa.Table,
    counts: pa.Table,
    combos: pa.Table,
    *,
    threads: int | None = None,
    workspace: Workspace | None = None,
) -> pa.Table:
    """Month usage (`MONTH_USAGE`) of every month of the inputs: the stored month usage, minus
    the stored usage of the days aggregated again, plus their new usage; distinct jobs and
    users from `counts` (`KEY_COUNTS`), unpriced events from the months' combinations
    (`MONTH_COMBOS`, as they are now). A month left without events has no row."""
    with _using(workspace, threads) as connection:
        connection.register("old_months", old_months.cast(MONTH_USAGE))
        connection.register("old_days", old_days.cast(DAY_USAGE))
        connection.register("new_days", new_days.cast(DAY_USAGE))
        connection.register("counts", counts.cast(KEY_COUNTS))
        connection.register("month_combos", combos.cast(MONTH_COMBOS))
        steps, final = _MERGE_MONTHS.split(";\n\nSELECT ")
        connection.execute(steps)
        return connection.sql("SELECT " + final).to_arrow_table().cast(MONTH_USAGE)


def figures_table(
    days: pa.Table,
    months: pa.Table,
    combos: pa.Table,
    targets: Iterable[tuple[str, date, date]],
    book: PriceBook,
    *,
    through: date,
    threads: int | None = None,
    workspace: Workspace | None = None,
) -> pa.Table:
    """Stage 2: figures of each target tenant-month (organisation id, first day, first day to
    write) from its usage alone, no events: the month row and the day rows from the first day
    to write on (`FIGURE_COLUMNS`), ordered by tenant, month, days then the month.

    `days` holds the usage (`DAY_USAGE`) of every day of the targets up to `through` (the days
    before the first to write count the tokens used so far), `months` their month usage and
    `combos` the months' usage by agent type and model version (`MONTH_COMBOS`). A day
    gets figures when the tenant has a plan in force or events that day; a month when any of
    its days does.
    """
    wanted = sorted(set(targets))
    target_table = _table(
        wanted, [("org", pa.string()), ("month", pa.date32()), ("from_day", pa.date32())]
    )
    with _using(workspace, threads) as connection:
        connection.register("day_rows", days.cast(DAY_USAGE))
        connection.register("month_in", months.cast(MONTH_USAGE))
        connection.register("combos_in", combos.cast(MONTH_COMBOS))
        connection.execute(
            "CREATE OR REPLACE TEMP VIEW day_in AS "
            "SELECT *, date_trunc('month', day)::DATE AS month FROM day_rows"
        )
        connection.register("targets", target_table)
        connection.register("plans", _plans_table(book, {org for org, _, _ in wanted}))
        connection.register("infra", _infrastructure_table(book))
        connection.register("schedules", _schedules_table(book))
        connection.execute(_STEPS.replace("$BREAKDOWN$", _BREAKDOWN))
        money = _MONEY.replace("$THROUGH$", f"DATE '{through.isoformat()}'")
        steps, final = money.replace("$ROUNDING$", ROUNDING).split(";\n\nSELECT ")
        connection.execute(steps)
        return connection.sql(
            "SELECT " + final, params={"currency": book.currency}
        ).to_arrow_table()


def rollup_table(
    events: pa.Table,
    targets: Iterable[tuple[str, date]],
    book: PriceBook,
    *,
    through: date,
    threads: int | None = None,
) -> pa.Table:
    """Figures of each target tenant-month (organisation id, first day) and of its days, one
    row per period (`FIGURE_COLUMNS`), ordered by tenant, month, days then the month: both
    stages over these events, nothing stored.

    `events` holds (at least) every event of the targets (`models.db.repositories.usage`'s
    extract schema: naive UTC times).
    """
    wanted = sorted(set(targets))
    with Workspace(threads) as workspace:
        days, keys = aggregate_days(events, book, workspace=workspace)
        empty = MONTH_USAGE.empty_table(), DAY_USAGE.empty_table()
        counts = count_keys(keys, workspace=workspace)
        combos = combo_changes(DAY_USAGE.empty_table(), days, workspace=workspace)
        months = merge_months(*empty, days, counts, combos, workspace=workspace)
        return figures_table(
            days,
            months,
            combos,
            [(org, month, month) for org, month in wanted],
            book,
            through=through,
            workspace=workspace,
        )


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
