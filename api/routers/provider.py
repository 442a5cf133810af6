"""The provider API: tenants, their API keys, evaluations, system notices and the audit log.

Every request is HMAC-signed (docs/provider-signing.md) and acts platform-wide; every
mutation is audited by the service it calls, in the request's transaction.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Response

from api.deps import Cursor, Limit, Provider, ProviderContext, StateDep, page_size
from api.edge import SignedRoute
from api.errors import problem_responses
from api.idempotency import Idempotent, respond
from api.launching import launch_or_fail
from api.schemas.common import Instant, Page, RunId
from api.schemas.provider import (
    ApiKeyCreate,
    AuditEntry,
    EvaluationStart,
    EvaluationStarted,
    EvaluationStatus,
    IssuedApiKey,
    NoticeCreate,
    NoticeUpdate,
    ProviderNotice,
    Tenant,
    TenantCreate,
)
from pipelines.access.service import issue_tenant_api_key, set_tenant_suspended
from pipelines.audit.service import audit_log_page
from pipelines.evaluation.service import run_progress, start_evaluation
from pipelines.notices.service import (
    create_notice_view,
    notice_views_page,
    retire_notice_view,
    update_notice_view,
)
from pipelines.organizations import create_tenant, tenants_page

router = APIRouter(prefix="/provider/v1", tags=["provider"], route_class=SignedRoute)

Slug = Annotated[str, Query(max_length=63, description="Organisation slug, e.g. `acme`.")]

READ_ERRORS = problem_responses(401, 422, 429, 503)
ONE_ERRORS = problem_responses(401, 404, 422, 429, 503)
CREATE_ERRORS = problem_responses(401, 404, 409, 422, 429, 503)


def _scope(ctx: ProviderContext) -> str:
    return f"provider:{ctx.key_id}"


# --- tenants ------------------------------------------------------------------------------


@router.post(
    "/tenants",
    status_code=201,
    response_model=Tenant,
    responses=CREATE_ERRORS,
)
def add_tenant(body: TenantCreate, ctx: Provider, idempotency: Idempotent) -> Response:
    """Create a tenant. Send `Idempotency-Key` to retry safely."""
    return respond(
        ctx.session,
        idempotency,
        scope=_scope(ctx),
        now=ctx.now,
        status_code=201,
        produce=lambda: Tenant.model_validate(
            create_tenant(ctx.session, slug=body.slug, name=body.name, actor=ctx.actor)
        ),
    )


@router.get("/tenants", response_model=Page[Tenant], responses=READ_ERRORS)
def list_tenants(
    ctx: Provider, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[Tenant]:
    """List tenants by slug."""
    found = tenants_page(ctx.session, cursor=cursor, limit=page_size(state, limit))
    return Page[Tenant](
        items=[Tenant.model_validate(tenant) for tenant in found.items],
        next_cursor=found.next_cursor,
    )


@router.post("/tenants/{slug}/suspend", response_model=Tenant, responses=ONE_ERRORS)
def suspend_tenant(
    slug: str, ctx: Provider, state: StateDep, background: BackgroundTasks
) -> Tenant:
    """Suspend a tenant: its API keys stop authenticating at once (idempotent)."""
    tenant = set_tenant_suspended(ctx.session, slug=slug, actor=ctx.actor, suspended=True)
    # Now and again after the commit: a key authenticated in between saw the tenant active.
    state.principals.forget_all()
    background.add_task(state.principals.forget_all)
    return Tenant.model_validate(tenant)


@router.post("/tenants/{slug}/reactivate", response_model=Tenant, responses=ONE_ERRORS)
def reactivate_tenant(slug: str, ctx: Provider) -> Tenant:
    """Reactivate a suspended tenant: its unexpired, unrevoked keys work again (idempotent)."""
    tenant = set_tenant_suspended(ctx.session, slug=slug, actor=ctx.actor, suspended=False)
    return Tenant.model_validate(tenant)


@router.post(
    "/tenants/{slug}/api-keys",
    status_code=201,
    response_model=IssuedApiKey,
    responses=CREATE_ERRORS,
)
def issue_api_key(
    slug: str, body: ApiKeyCreate, ctx: Provider, idempotency: Idempotent
) -> Response:
    """Issue an API key to a tenant; the key itself is in this response only."""

    def issue() -> IssuedApiKey:
        issued = issue_tenant_api_key(
            ctx.session,
            slug=slug,
            name=body.name,
            scopes=body.scopes,
            actor=ctx.actor,
            now=ctx.now,
            expires_at=body.expires_at,
        )
        return IssuedApiKey.of(issued, slug)

    return respond(
        ctx.session,
        idempotency,
        scope=_scope(ctx),
        now=ctx.now,
        status_code=201,
        produce=issue,
        # Only the key's hash may be stored; a replay says so with a null `api_key`.
        stored_as=lambda issued: issued.model_copy(update={"api_key": None}),
    )


# --- evaluations --------------------------------------------------------------------------


@router.post(
    "/evaluations",
    status_code=202,
    response_model=EvaluationStarted,
    responses=CREATE_ERRORS,
)
def launch_evaluation(
    body: EvaluationStart,
    ctx: Provider,
    state: StateDep,
    idempotency: Idempotent,
    background: BackgroundTasks,
) -> Response:
    """Start evaluating a model version on a golden dataset; poll the returned status URL."""

    def start() -> EvaluationStarted:
        started = start_evaluation(
            ctx.session,
            organization=body.organization,
            model=body.model,
            dataset=body.dataset,
            actor=ctx.actor,
            storage_dir=state.storage.golden_dataset_dir,
            force=body.force,
        )
        if not started.reused:
            # Launched after the response, so after the commit: the flow must find the run.
            parameters: dict[str, Any] = {
                "organization": started.organization_slug,
                "actor": ctx.actor,
                "run_id": str(started.run.id),
            }
            background.add_task(
                launch_or_fail, state, parameters, started.run.organization_id, ctx.actor
            )
        return EvaluationStarted.of(started)

    return respond(
        ctx.session,
        idempotency,
        scope=_scope(ctx),
        now=ctx.now,
        status_code=202,
        produce=start,
    )


@router.get("/evaluations/{run_id}", response_model=EvaluationStatus, responses=ONE_ERRORS)
def get_evaluation_status(run_id: RunId, organization: Slug, ctx: Provider) -> EvaluationStatus:
    """Get the status and progress of an evaluation run."""
    return EvaluationStatus.of(run_progress(ctx.session, organization=organization, run_id=run_id))


# --- audit log ----------------------------------------------------------------------------


@router.get("/audit-log", response_model=Page[AuditEntry], responses=ONE_ERRORS)
def list_audit_log(
    ctx: Provider,
    state: StateDep,
    organization: Annotated[
        str | None, Query(max_length=63, description="Only rows of this organisation (slug).")
    ] = None,
    actor: Annotated[
        str | None,
        Query(max_length=200, description="Only rows by this actor, e.g. `provider:key-2026a`."),
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=100, description="Only this action, e.g. `api_key.issued`."),
    ] = None,
    since: Annotated[Instant | None, Query(description="Only rows at or after this time.")] = None,
    until: Annotated[Instant | None, Query(description="Only rows before this time.")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[AuditEntry]:
    """List audit rows, newest first, optionally filtered."""
    found = audit_log_page(
        ctx.session,
        organization=organization,
        actor=actor,
        action=action,
        since=since,
        until=until,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return Page[AuditEntry](
        items=[AuditEntry.of(view) for view in found.items], next_cursor=found.next_cursor
    )


# --- notices ------------------------------------------------------------------------------


@router.post(
    "/notices",
    status_code=201,
    response_model=ProviderNotice,
    responses=CREATE_ERRORS,
)
def create_notice(
    body: NoticeCreate,
    ctx: Provider,
    idempotency: Idempotent,
) -> Response:
    """Create a system notice, shown from `starts_at` (default now) until `ends_at`."""
    return respond(
        ctx.session,
        idempotency,
        scope=_scope(ctx),
        now=ctx.now,
        status_code=201,
        produce=lambda: ProviderNotice.of(
            create_notice_view(ctx.session, draft=body.draft(), actor=ctx.actor, now=ctx.now)
        ),
    )


@router.get("/notices", response_model=Page[ProviderNotice], responses=READ_ERRORS)
def list_notices(
    ctx: Provider, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[ProviderNotice]:
    """List every system notice, newest first, with its status now."""
    found = notice_views_page(
        ctx.session, now=ctx.now, cursor=cursor, limit=page_size(state, limit)
    )
    return Page[ProviderNotice](
        items=[ProviderNotice.of(view) for view in found.items], next_cursor=found.next_cursor
    )


@router.patch(
    "/notices/{notice_id}",
    response_model=ProviderNotice,
    responses=problem_responses(401, 404, 409, 422, 429, 503),
)
def update_notice(
    notice_id: uuid.UUID,
    body: NoticeUpdate,
    ctx: Provider,
) -> ProviderNotice:
    """Change a notice's text, severity, audience or schedule (not once retired)."""
    view = update_notice_view(
        ctx.session, notice_id=notice_id, draft=body.draft(), actor=ctx.actor, now=ctx.now
    )
    return ProviderNotice.of(view)


@router.post("/notices/{notice_id}/retire", response_model=ProviderNotice, responses=ONE_ERRORS)
def retire_notice(notice_id: uuid.UUID, ctx: Provider) -> ProviderNotice:
    """Retire a notice: tenants stop seeing it (idempotent)."""
    view = retire_notice_view(ctx.session, notice_id=notice_id, actor=ctx.actor, now=ctx.now)
    return ProviderNotice.of(view)
