"""Read models of profitability: paged listings, a ranking, a trend, exports, and what a
tenant may see of its own figures (usage and discount explanation, never costs or margins)."""

from __future__ import annotations

import io
import uuid
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from models.db.enums import PeriodKind
from models.db.repositories.profitability import ProfitabilityRepository
from models.db.tables import TenantProfitability
from pipelines.errors import InvalidInput
from pipelines.organizations import get_tenant
from pipelines.pagination import Paged, after_key, as_paged
from pipelines.profitability.read_models import (
    DiscountExplanation,
    PeriodProfitability,
    TenantUsage,
)

EXPORT_FORMATS = ("csv", "parquet")


def _kind(period_kind: str) -> str:
    if period_kind not in tuple(PeriodKind):
        raise InvalidInput(f"period {period_kind!r} must be 'day' or 'month'", field="period")
    return period_kind


def _range(since: date | None, until: date | None) -> None:
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the range is empty: until must come after since", field="until")


def period_view(item: tuple[TenantProfitability, str]) -> PeriodProfitability:
    row, slug = item
    return PeriodProfitability(
        tenant=slug,
        period_kind=row.period_kind,
        period_start=row.period_start,
        currency=row.currency,
        events=row.events,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        requests=row.requests,
        subscription_micros=row.subscription_micros,
        overage_micros=row.overage_micros,
        gross_revenue_micros=row.gross_revenue_micros,
        discount_micros=row.discount_micros,
        revenue_micros=row.revenue_micros,
        ai_cost_micros=row.ai_cost_micros,
        infra_cost_micros=row.infra_cost_micros,
        margin_micros=row.margin_micros,
        margin_bps=row.margin_bps,
        adoption_basis=row.adoption_basis,
        adoption_ppm=row.adoption_ppm,
        tier=row.tier,
        discount_bps=row.discount_bps,
        unpriced_events=row.unpriced_events,
        ai_cost_breakdown=list(row.ai_cost_breakdown),
    )


def periods_page(
    session: Session,
    *,
    period_kind: str = "month",
    since: date | None = None,
    until: date | None = None,
    tenant: str | None = None,
    cursor: str | None,
    limit: int,
) -> Paged[PeriodProfitability]:
    """Profitability by tenant and period, latest period first (provider analysts)."""
    _range(since, until)
    organization_id = get_tenant(session, tenant).id if tenant else None
    repository = ProfitabilityRepository(session)
    page = repository.page_periods(
        period_kind=_kind(period_kind),
        since=since,
        until=until,
        organization_id=organization_id,
        after=after_key(cursor, repository.PERIOD_ORDER),
        limit=limit,
    )
    return as_paged(page, period_view)


def trend_page(
    session: Session,
    *,
    tenant: str,
    period_kind: str = "month",
    since: date | None = None,
    until: date | None = None,
    cursor: str | None,
    limit: int,
) -> Paged[PeriodProfitability]:
    """One tenant's figures over time, oldest period first."""
    _range(since, until)
    organization_id = get_tenant(session, tenant).id
    repository = ProfitabilityRepository(session)
    page = repository.page_periods(
        period_kind=_kind(period_kind),
        since=since,
        until=until,
        organization_id=organization_id,
        after=after_key(cursor, repository.TREND_ORDER),
        limit=limit,
        keyset=repository.TREND_ORDER,
    )
    return as_paged(page, period_view)


def ranking_page(
    session: Session, *, month: date, cursor: str | None, limit: int
) -> Paged[PeriodProfitability]:
    """Tenants ranked by margin in a month, highest first."""
    repository = ProfitabilityRepository(session)
    start = month.replace(day=1)
    following = date(start.year + start.month // 12, start.month % 12 + 1, 1)
    page = repository.page_periods(
        period_kind=PeriodKind.MONTH,
        since=start,
        until=following,
        organization_id=None,
        after=after_key(cursor, repository.RANKING_ORDER),
        limit=limit,
        keyset=repository.RANKING_ORDER,
    )
    return as_paged(page, period_view)


EXPORT_COLUMNS = [
    "tenant",
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
    "adoption_ppm",
    "tier",
    "discount_bps",
    "unpriced_events",
]


def export_periods(
    session: Session,
    *,
    file_format: str,
    period_kind: str = "month",
    since: date | None = None,
    until: date | None = None,
    tenant: str | None = None,
) -> bytes:
    """Every matching period as CSV or Parquet (one row per tenant and period)."""
    if file_format not in EXPORT_FORMATS:
        raise InvalidInput(f"format {file_format!r} must be csv or parquet", field="format")
    _range(since, until)
    organization_id = get_tenant(session, tenant).id if tenant else None
    rows = ProfitabilityRepository(session).all_periods(
        period_kind=_kind(period_kind), since=since, until=until, organization_id=organization_id
    )
    views = [period_view(item) for item in rows]
    columns: dict[str, list[Any]] = {
        name: [getattr(view, name) for view in views] for name in EXPORT_COLUMNS
    }
    schema = pa.schema(
        [
            (name, pa.date32() if name == "period_start" else _arrow_type(name))
            for name in EXPORT_COLUMNS
        ]
    )
    table = pa.table(columns, schema=schema)
    buffer = io.BytesIO()
    if file_format == "csv":
        pa_csv.write_csv(table, buffer)
    else:
        pq.write_table(table, buffer)
    return buffer.getvalue()


def _arrow_type(name: str) -> pa.DataType:
    if name in ("tenant", "period_kind", "currency", "adoption_basis", "tier"):
        return pa.string()
    return pa.int64()


def tenant_usage_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    period_kind: str = "month",
    since: date | None = None,
    until: date | None = None,
    cursor: str | None,
    limit: int,
) -> Paged[TenantUsage]:
    """A tenant's own usage by period, latest first."""
    _range(since, until)
    repository = ProfitabilityRepository(session)
    page = repository.page_own_periods(
        period_kind=_kind(period_kind),
        since=since,
        until=until,
        organization_id=organization_id,
        after=after_key(cursor, repository.PERIOD_ORDER),
        limit=limit,
    )

    def show(item: tuple[TenantProfitability, str]) -> TenantUsage:
        row = item[0]
        return TenantUsage(
            row.period_kind,
            row.period_start,
            row.events,
            row.tokens_in,
            row.tokens_out,
            row.requests,
        )

    return as_paged(page, show)


def tenant_discounts_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[DiscountExplanation]:
    """A tenant's adoption discount explained, month by month, latest first."""
    repository = ProfitabilityRepository(session)
    page = repository.page_own_periods(
        period_kind=PeriodKind.MONTH,
        since=None,
        until=None,
        organization_id=organization_id,
        after=after_key(cursor, repository.PERIOD_ORDER),
        limit=limit,
    )

    def show(item: tuple[TenantProfitability, str]) -> DiscountExplanation:
        row = item[0]
        adoption = dict(row.explanation.get("adoption", {}))
        return DiscountExplanation(
            period_start=row.period_start,
            currency=row.currency,
            adoption_basis=row.adoption_basis,
            adoption_numerator=row.adoption_numerator,
            adoption_denominator=row.adoption_denominator,
            adoption_ppm=row.adoption_ppm,
            tier=row.tier,
            discount_bps=row.discount_bps,
            ai_addon_revenue_micros=row.gross_revenue_micros,
            discount_micros=row.discount_micros,
            next_tier=adoption.get("next_tier"),
            next_tier_min_rate_bps=adoption.get("next_tier_min_rate_bps"),
            tiers=list(adoption.get("tiers", [])),
        )

    return as_paged(page, show)
