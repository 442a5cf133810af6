"""Usage metering and profitability: the provider's routes (`/provider/v1`, signed) and what a
tenant sees of its own (`/v1`: usage and discount explanation, never costs or margins)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import Cursor, Limit, Provider, StateDep, TenantRead, page_size
from api.edge import SignedRoute
from api.errors import problem_responses
from api.routers.tenant import DocstringSummaryRoute
from api.schemas.common import Page
from api.schemas.profitability import (
    AiCostCreate,
    Discount,
    InfrastructureCreate,
    PlanCreate,
    PriceVersion,
    Profitability,
    TiersCreate,
    Usage,
    UsageBatch,
    UsageIngested,
)
from pipelines.pagination import Paged
from pipelines.profitability import service, views
from pipelines.profitability.pricing import Tier
from pipelines.usage.service import ingest_events

provider_router = APIRouter(prefix="/provider/v1", tags=["profitability"], route_class=SignedRoute)
tenant_router = APIRouter(prefix="/v1", tags=["tenant"], route_class=DocstringSummaryRoute)

READ_ERRORS = problem_responses(401, 404, 422, 429, 503)
WRITE_ERRORS = problem_responses(401, 404, 409, 413, 422, 429, 503)
TENANT_ERRORS = problem_responses(401, 403, 422, 429)

PeriodKindQuery = Annotated[Literal["day", "month"], Query(description="day or month.")]
Since = Annotated[date | None, Query(description="Periods starting on or after this day.")]
Until = Annotated[date | None, Query(description="Periods starting before this day.")]
TenantQuery = Annotated[str | None, Query(max_length=63, description="Only this tenant (slug).")]


def _page(found: Paged[Any], model: Any) -> Any:
    return Page[model](
        items=[model.model_validate(asdict(item)) for item in found.items],
        next_cursor=found.next_cursor,
    )


# --- provider: usage events and prices ------------------------------------------------------


@provider_router.post("/usage-events", response_model=UsageIngested, responses=WRITE_ERRORS)
def post_usage_events(body: UsageBatch, ctx: Provider) -> UsageIngested:
    """Ingest up to 10,000 usage events, idempotent by `event_id`; one bad event refuses the
    batch (named as `events/<index>/<field>`) and nothing is written."""
    result = ingest_events(
        ctx.session,
        [event.model_dump() for event in body.events],
        actor=ctx.actor,
        now=ctx.now,
    )
    return UsageIngested(
        received=result.received, inserted=result.inserted, duplicates=result.duplicates
    )


def _version(change: service.PriceChange) -> PriceVersion:
    return PriceVersion.model_validate(asdict(change))


@provider_router.post(
    "/pricing/plans", status_code=201, response_model=PriceVersion, responses=WRITE_ERRORS
)
def post_plan(body: PlanCreate, ctx: Provider) -> PriceVersion:
    """Set a tenant's plan from a day: monthly fee, included tokens, overage per 1,000 tokens."""
    return _version(
        service.set_tenant_plan(ctx.session, **body.model_dump(), actor=ctx.actor, now=ctx.now)
    )


@provider_router.post(
    "/pricing/ai-costs", status_code=201, response_model=PriceVersion, responses=WRITE_ERRORS
)
def post_ai_cost(body: AiCostCreate, ctx: Provider) -> PriceVersion:
    """Set what a model version costs from a day: per 1,000 tokens in and out, per request."""
    return _version(
        service.set_ai_cost_rate(ctx.session, **body.model_dump(), actor=ctx.actor, now=ctx.now)
    )


@provider_router.post(
    "/pricing/infrastructure", status_code=201, response_model=PriceVersion, responses=WRITE_ERRORS
)
def post_infrastructure(body: InfrastructureCreate, ctx: Provider) -> PriceVersion:
    """Set the infrastructure cost allocation rule from a day."""
    return _version(
        service.set_infrastructure_rule(
            ctx.session, **body.model_dump(), actor=ctx.actor, now=ctx.now
        )
    )


@provider_router.post(
    "/pricing/adoption-tiers", status_code=201, response_model=PriceVersion, responses=WRITE_ERRORS
)
def post_adoption_tiers(body: TiersCreate, ctx: Provider) -> PriceVersion:
    """Set the adoption discount tiers from a day."""
    return _version(
        service.set_adoption_tiers(
            ctx.session,
            effective_from=body.effective_from,
            basis=body.basis,
            tiers=[Tier(t.name, t.min_rate_bps, t.discount_bps) for t in body.tiers],
            actor=ctx.actor,
            now=ctx.now,
        )
    )


# --- provider: profitability ----------------------------------------------------------------


@provider_router.get("/profitability", response_model=Page[Profitability], responses=READ_ERRORS)
def list_profitability(
    ctx: Provider,
    state: StateDep,
    period: PeriodKindQuery = "month",
    since: Since = None,
    until: Until = None,
    tenant: TenantQuery = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    """Profitability by tenant and period, latest period first."""
    found = views.periods_page(
        ctx.session,
        period_kind=period,
        since=since,
        until=until,
        tenant=tenant,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(found, Profitability)


@provider_router.get(
    "/profitability/ranking", response_model=Page[Profitability], responses=READ_ERRORS
)
def rank_tenants(
    ctx: Provider,
    state: StateDep,
    month: Annotated[date, Query(description="Any day of the month to rank.")],
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    """Tenants ranked by margin in a month, highest first."""
    found = views.ranking_page(
        ctx.session, month=month, cursor=cursor, limit=page_size(state, limit)
    )
    return _page(found, Profitability)


@provider_router.get(
    "/tenants/{slug}/profitability", response_model=Page[Profitability], responses=READ_ERRORS
)
def tenant_trend(
    slug: str,
    ctx: Provider,
    state: StateDep,
    period: PeriodKindQuery = "month",
    since: Since = None,
    until: Until = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    """A tenant's figures over time, oldest period first."""
    found = views.trend_page(
        ctx.session,
        tenant=slug,
        period_kind=period,
        since=since,
        until=until,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(found, Profitability)


EXPORT_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


@provider_router.get(
    "/profitability/export",
    response_class=Response,
    responses={
        200: {
            "description": "The periods as a file.",
            "content": {media: {"schema": {"type": "string"}} for media in EXPORT_TYPES.values()},
        },
        **READ_ERRORS,
    },
)
def export_profitability(
    ctx: Provider,
    format: Annotated[Literal["csv", "parquet"], Query(description="csv or parquet.")] = "csv",
    period: PeriodKindQuery = "month",
    since: Since = None,
    until: Until = None,
    tenant: TenantQuery = None,
) -> Response:
    """Export profitability by tenant and period as CSV or Parquet."""
    data = views.export_periods(
        ctx.session, file_format=format, period_kind=period, since=since, until=until, tenant=tenant
    )
    return Response(
        content=data,
        media_type=EXPORT_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="profitability.{format}"'},
    )


# --- tenants: their own usage and discounts -------------------------------------------------


@tenant_router.get("/usage", response_model=Page[Usage], responses=TENANT_ERRORS)
def own_usage(
    context: TenantRead,
    state: StateDep,
    period: PeriodKindQuery = "month",
    since: Since = None,
    until: Until = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Any:
    """Your usage by day or month (as of the last rollup), latest first."""
    found = views.tenant_usage_page(
        context.session,
        organization_id=context.principal.organization_id,
        period_kind=period,
        since=since,
        until=until,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(found, Usage)


@tenant_router.get("/discounts", response_model=Page[Discount], responses=TENANT_ERRORS)
def own_discounts(
    context: TenantRead, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Any:
    """Your adoption discount month by month: measured rate, tier reached, discount, next tier."""
    found = views.tenant_discounts_page(
        context.session,
        organization_id=context.principal.organization_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(found, Discount)
