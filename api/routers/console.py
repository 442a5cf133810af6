"""The provider console: tenants and their keys, system notices, starting evaluations.

The same use cases as the signed provider API, for people in a browser: admins change things
(forms carry the session's CSRF token), analysts read. Every change is audited by its service
with the signed-in user as the actor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.dashboards.auth import AdminChange, Analyst
from api.dashboards.pages import PageRoute, render
from api.deps import StateDep
from api.launching import launch_or_fail
from models.db.enums import ApiKeyScope, NoticeSeverity
from pipelines.access.service import (
    api_keys_page,
    issue_tenant_api_key,
    revoke_api_key,
    set_tenant_suspended,
)
from pipelines.domains.views import domain_overviews_page
from pipelines.errors import InvalidInput
from pipelines.evaluation.service import run_progress, start_evaluation
from pipelines.evaluation.views import run_owner
from pipelines.notices.service import (
    NoticeDraft,
    create_notice_view,
    notice_views_page,
    retire_notice_view,
)
from pipelines.organizations import (
    all_organizations,
    create_tenant,
    get_tenant,
    organization_slug,
    tenants_page,
)
from pipelines.profitability.charts import margin_ranking, tenant_trend
from pipelines.profitability.views import ranking_page, trend_page

router = APIRouter(prefix="/dashboards", include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
Cursor = Annotated[str | None, Query(max_length=1000)]


def _back(path: str) -> Response:
    return RedirectResponse(path, status_code=303)


# --- tenants ------------------------------------------------------------------------------


@router.get("/tenants")
def tenants(request: Request, context: Analyst, cursor: Cursor = None) -> Response:
    """Tenants by slug, with their status; admins create, suspend and reactivate them."""
    found = tenants_page(context.session, cursor=cursor, limit=PAGE_SIZE)
    return render(
        request,
        "tenants.html",
        context,
        section="tenants",
        tenants=found.items,
        next_cursor=found.next_cursor,
    )


@router.post("/tenants")
def add_tenant(
    context: AdminChange,
    slug: Annotated[str, Form(max_length=63)],
    name: Annotated[str, Form(max_length=200)],
) -> Response:
    """Create a tenant, then show it."""
    created = create_tenant(
        context.session, slug=slug.strip(), name=name.strip(), actor=context.actor
    )
    return _back(f"/dashboards/tenants/{created.slug}")


def _tenant_page(
    request: Request, context: Any, slug: str, issued: dict[str, str] | None = None
) -> Response:
    tenant = get_tenant(context.session, slug)
    keys = api_keys_page(context.session, organization_id=tenant.id, cursor=None, limit=200)
    return render(
        request,
        "tenant.html",
        context,
        section="tenants",
        tenant=tenant,
        keys=keys.items,
        more_keys=keys.next_cursor is not None,
        scopes=list(ApiKeyScope),
        issued=issued,
        now=context.now,
    )


@router.get("/tenants/{slug}")
def tenant(request: Request, context: Analyst, slug: str) -> Response:
    """A tenant: its status and API keys (never their secrets)."""
    return _tenant_page(request, context, slug)


@router.post("/tenants/{slug}/suspend")
def suspend(state: StateDep, context: AdminChange, slug: str) -> Response:
    """Suspend a tenant: its keys stop authenticating at once."""
    set_tenant_suspended(context.session, slug=slug, actor=context.actor, suspended=True)
    state.principals.forget_all()
    return _back(f"/dashboards/tenants/{slug}")


@router.post("/tenants/{slug}/reactivate")
def reactivate(context: AdminChange, slug: str) -> Response:
    """Reactivate a suspended tenant."""
    set_tenant_suspended(context.session, slug=slug, actor=context.actor, suspended=False)
    return _back(f"/dashboards/tenants/{slug}")


@router.post("/tenants/{slug}/api-keys")
def issue_key(
    request: Request,
    context: AdminChange,
    slug: str,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    scopes: Annotated[list[ApiKeyScope], Form()],
) -> Response:
    """Issue an API key to a tenant; the page shows it this once."""
    issued = issue_tenant_api_key(
        context.session,
        slug=slug,
        name=name,
        scopes=[str(scope) for scope in scopes],
        actor=context.actor,
        now=context.now,
    )
    shown = {"name": issued.key.name, "plaintext": issued.plaintext}
    return _tenant_page(request, context, slug, issued=shown)


@router.post("/tenants/{slug}/api-keys/{key_id}/revoke")
def revoke_key(state: StateDep, context: AdminChange, slug: str, key_id: uuid.UUID) -> Response:
    """Revoke one of a tenant's keys."""
    found = get_tenant(context.session, slug)
    revoke_api_key(
        context.session,
        organization_id=found.id,
        key_id=key_id,
        actor=context.actor,
        now=context.now,
    )
    state.principals.forget_all()
    return _back(f"/dashboards/tenants/{slug}")


# --- notices ------------------------------------------------------------------------------


@router.get("/notices")
def notices(request: Request, context: Analyst, cursor: Cursor = None) -> Response:
    """Every system notice with its status now; admins create and retire them."""
    found = notice_views_page(context.session, now=context.now, cursor=cursor, limit=PAGE_SIZE)
    return render(
        request,
        "notices.html",
        context,
        section="notices",
        notices=found.items,
        next_cursor=found.next_cursor,
        severities=list(NoticeSeverity),
    )


def _moment(value: str, field: str) -> datetime | None:
    """A `datetime-local` form value, read as UTC (the form says so)."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date and time", field=field) from None


@router.post("/notices")
def add_notice(
    context: AdminChange,
    title: Annotated[str, Form(min_length=1, max_length=200)],
    body: Annotated[str, Form(min_length=1, max_length=20_000)],
    severity: Annotated[NoticeSeverity, Form()] = NoticeSeverity.INFO,
    audience: Annotated[str, Form(max_length=2000)] = "",
    starts_at: Annotated[str, Form(max_length=40)] = "",
    ends_at: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Create (or schedule) a notice for every tenant or the listed ones."""
    listed = [slug.strip() for slug in audience.split(",") if slug.strip()]
    create_notice_view(
        context.session,
        draft=NoticeDraft(
            title=title,
            body=body,
            severity=severity,
            audience=listed or None,
            starts_at=_moment(starts_at, "starts_at"),
            ends_at=_moment(ends_at, "ends_at"),
        ),
        actor=context.actor,
        now=context.now,
    )
    return _back("/dashboards/notices")


@router.post("/notices/{notice_id}/retire")
def retire(context: AdminChange, notice_id: uuid.UUID) -> Response:
    """Retire a notice: tenants stop seeing it."""
    retire_notice_view(context.session, notice_id=notice_id, actor=context.actor, now=context.now)
    return _back("/dashboards/notices")


# --- domains --------------------------------------------------------------------------------


@router.get("/domains")
def domains(request: Request, context: Analyst, cursor: Cursor = None) -> Response:
    """Every tenant's domains and certificates: status, expiry, the last failure."""
    found = domain_overviews_page(
        context.session, organization_id=None, cursor=cursor, limit=PAGE_SIZE
    )
    return render(
        request,
        "domains.html",
        context,
        section="domains",
        domains=found.items,
        next_cursor=found.next_cursor,
    )


# --- evaluations --------------------------------------------------------------------------


@router.get("/evaluations/new")
def new_evaluation(request: Request, context: Analyst) -> Response:
    """The form that starts an evaluation."""
    return render(
        request,
        "evaluation_new.html",
        context,
        section="evaluations",
        organizations=all_organizations(context.session),
    )


@router.post("/evaluations")
def start(
    state: StateDep,
    context: AdminChange,
    background: BackgroundTasks,
    organization: Annotated[str, Form(max_length=63)],
    model: Annotated[str, Form(max_length=300)],
    dataset: Annotated[str, Form(max_length=200)],
    force: Annotated[bool, Form()] = False,
) -> Response:
    """Start evaluating a model version on a golden dataset, then watch it on its page."""
    started = start_evaluation(
        context.session,
        organization=organization,
        model=model.strip(),
        dataset=dataset.strip(),
        actor=context.actor,
        storage_dir=state.storage.golden_dataset_dir,
        force=force,
    )
    if started.needs_flow:
        parameters = {
            "organization": started.organization_slug,
            "actor": context.actor,
            "run_id": str(started.run.id),
        }
        # After the response, so after the commit: the flow must find the run.
        # An identical run pending or running has its flow already: none is added.
        background.add_task(
            launch_or_fail, state, parameters, started.run.organization_id, context.actor
        )
    return _back(f"/dashboards/evaluations/{started.run.id}")


@router.get("/evaluations/{run_id}/progress")
def progress(request: Request, context: Analyst, run_id: uuid.UUID) -> Response:
    """A run's status and stored batches: an HTMX fragment the run page polls until it ends."""
    slug = organization_slug(context.session, run_owner(context.session, str(run_id)))
    found = run_progress(context.session, organization=slug, run_id=run_id)
    response = render(request, "evaluation_progress.html", context, progress=found)
    if found.run.status in {"completed", "failed"}:
        response.headers["HX-Refresh"] = "true"
    return response


# --- profitability ------------------------------------------------------------------------


def _month(value: str | None, now: datetime) -> date:
    if not value:
        return now.date().replace(day=1)
    try:
        return date.fromisoformat(f"{value}-01") if len(value) == 7 else date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a month (YYYY-MM)", field="month") from None


@router.get("/profitability")
def profitability(
    request: Request,
    context: Analyst,
    month: Annotated[str | None, Query(max_length=10)] = None,
    cursor: Cursor = None,
) -> Response:
    """Tenants ranked by margin in a month, with revenue, discounts, costs and adoption tier."""
    chosen = _month(month, context.now)
    found = ranking_page(context.session, month=chosen, cursor=cursor, limit=PAGE_SIZE)
    return render(
        request,
        "profitability.html",
        context,
        section="profitability",
        month=chosen,
        periods=found.items,
        next_cursor=found.next_cursor,
        chart=margin_ranking(found.items, title=f"Margin by tenant, {chosen:%B %Y}"),
    )


@router.get("/profitability/{slug}")
def tenant_profitability(request: Request, context: Analyst, slug: str) -> Response:
    """One tenant's months: revenue, cost and margin over time, and how its discount came about."""
    found = trend_page(context.session, tenant=slug, cursor=None, limit=36)
    return render(
        request,
        "tenant_profitability.html",
        context,
        section="profitability",
        tenant=slug,
        periods=found.items,
        chart=tenant_trend(found.items, title=f"{slug}: revenue, cost and margin per month"),
    )
