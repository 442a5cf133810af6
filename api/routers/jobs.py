"""Background jobs over HTTP: tenants' webhook endpoints and deliveries, reports and AI tasks
(`/v1`), and the provider's view of the queue and dead-letter queue (`/provider/v1/jobs`)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from api.deps import (
    Cursor,
    Limit,
    Provider,
    StateDep,
    TenantPredict,
    TenantRead,
    TenantWebhooks,
    page_size,
)
from api.edge import SignedRoute
from api.errors import problem_responses
from api.routers.tenant import DocstringSummaryRoute
from api.schemas.common import Page, RunId
from api.schemas.jobs import (
    AiTask,
    AiTaskCreate,
    AiTaskOutput,
    Job,
    JobAttempt,
    JobDetail,
    JobsRetried,
    JobsRetry,
    Report,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
)
from models.db.enums import JobKind, JobStatus
from pipelines.ai_tasks.service import ai_task_view, outputs_page, submit_ai_task
from pipelines.jobs import service as jobs
from pipelines.jobs.views import describe_job, job_detail, jobs_page
from pipelines.pagination import Paged
from pipelines.reports.service import report_content, report_view, request_report
from pipelines.webhooks.service import (
    deliveries_page,
    delivery_attempts_page,
    disable_endpoint,
    endpoints_page,
    register_endpoint,
    replay_delivery,
    rotate_secret,
)

router = APIRouter(prefix="/v1", tags=["tenant"], route_class=DocstringSummaryRoute)
provider_router = APIRouter(prefix="/provider/v1", tags=["provider"], route_class=SignedRoute)

SECRET_OVERLAP = timedelta(hours=24)
"""How long a rotated-out webhook secret keeps signing beside the new one."""
READ_ERRORS = problem_responses(401, 403, 422, 429)
ONE_ERRORS = problem_responses(401, 403, 404, 422, 429)
CHANGE_ERRORS = problem_responses(401, 403, 404, 409, 422, 429)
PROVIDER_READ = problem_responses(401, 404, 422, 429, 503)
PROVIDER_CHANGE = problem_responses(401, 404, 409, 422, 429, 503)


def _page(model: Any, found: Paged[Any]) -> Any:
    return Page[model](
        items=[model.model_validate(item) for item in found.items], next_cursor=found.next_cursor
    )


# --- webhook endpoints ---------------------------------------------------------------------


@router.post(
    "/webhook-endpoints", status_code=201, response_model=WebhookEndpoint, responses=CHANGE_ERRORS
)
def create_webhook_endpoint(
    body: WebhookEndpointCreate, context: TenantWebhooks
) -> WebhookEndpoint:
    """Register a webhook endpoint; its signing secret is in this response only."""
    view = register_endpoint(
        context.session,
        organization_id=context.principal.organization_id,
        url=body.url,
        event_types=list(body.event_types),
        description=body.description,
        actor=context.principal.actor,
        now=context.now,
    )
    return WebhookEndpoint.model_validate(view)


@router.get("/webhook-endpoints", response_model=Page[WebhookEndpoint], responses=READ_ERRORS)
def list_webhook_endpoints(
    context: TenantWebhooks, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[WebhookEndpoint]:
    """List this tenant's webhook endpoints, oldest first (never their secrets)."""
    found = endpoints_page(
        context.session,
        organization_id=context.principal.organization_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(WebhookEndpoint, found)  # type: ignore[no-any-return]


@router.delete(
    "/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpoint, responses=ONE_ERRORS
)
def delete_webhook_endpoint(endpoint_id: uuid.UUID, context: TenantWebhooks) -> WebhookEndpoint:
    """Disable a webhook endpoint (idempotent): it gets no more deliveries."""
    view = disable_endpoint(
        context.session,
        organization_id=context.principal.organization_id,
        endpoint_id=endpoint_id,
        reason="disabled by the tenant",
        actor=context.principal.actor,
        now=context.now,
    )
    return WebhookEndpoint.model_validate(view)


@router.post(
    "/webhook-endpoints/{endpoint_id}/secret",
    response_model=WebhookEndpoint,
    responses=CHANGE_ERRORS,
)
def rotate_webhook_secret(endpoint_id: uuid.UUID, context: TenantWebhooks) -> WebhookEndpoint:
    """Rotate an endpoint's secret: the new one is in this response; the old one keeps
    signing (a second `v1,` signature) for 24 hours."""
    view = rotate_secret(
        context.session,
        organization_id=context.principal.organization_id,
        endpoint_id=endpoint_id,
        overlap=SECRET_OVERLAP,
        actor=context.principal.actor,
        now=context.now,
    )
    return WebhookEndpoint.model_validate(view)


# --- deliveries ----------------------------------------------------------------------------


@router.get("/webhook-deliveries", response_model=Page[WebhookDelivery], responses=ONE_ERRORS)
def list_webhook_deliveries(
    context: TenantWebhooks,
    state: StateDep,
    endpoint_id: Annotated[
        uuid.UUID | None, Query(description="Only deliveries to this endpoint.")
    ] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[WebhookDelivery]:
    """List webhook deliveries, newest first."""
    found = deliveries_page(
        context.session,
        organization_id=context.principal.organization_id,
        endpoint_id=endpoint_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(WebhookDelivery, found)  # type: ignore[no-any-return]


@router.get(
    "/webhook-deliveries/{delivery_id}/attempts",
    response_model=Page[JobAttempt],
    responses=ONE_ERRORS,
)
def list_webhook_delivery_attempts(
    delivery_id: uuid.UUID,
    context: TenantWebhooks,
    state: StateDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[JobAttempt]:
    """List the attempts of a delivery, first first, with the receiver's status codes."""
    found = delivery_attempts_page(
        context.session,
        organization_id=context.principal.organization_id,
        delivery_id=delivery_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(JobAttempt, found)  # type: ignore[no-any-return]


@router.post(
    "/webhook-deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=WebhookDelivery,
    responses=CHANGE_ERRORS,
)
def replay_webhook_delivery(delivery_id: uuid.UUID, context: TenantWebhooks) -> WebhookDelivery:
    """Send a finished delivery's message again (same `webhook-id`) as a new delivery."""
    view = replay_delivery(
        context.session,
        organization_id=context.principal.organization_id,
        delivery_id=delivery_id,
        actor=context.principal.actor,
        now=context.now,
    )
    return WebhookDelivery.model_validate(view)


# --- reports -------------------------------------------------------------------------------


@router.post(
    "/evaluations/{run_id}/reports",
    status_code=202,
    response_model=Report,
    responses=CHANGE_ERRORS,
)
def create_report(run_id: RunId, context: TenantRead) -> Report:
    """Ask for a completed run's report (HTML and CSV), made in the background; once per run."""
    view = request_report(
        context.session,
        organization_id=context.principal.organization_id,
        run_id=run_id,
        actor=context.principal.actor,
        now=context.now,
    )
    return Report.model_validate(view)


@router.get("/reports/{report_id}", response_model=Report, responses=ONE_ERRORS)
def get_report(report_id: uuid.UUID, context: TenantRead) -> Report:
    """Get a report's status and, once it succeeded, the links to its HTML and CSV."""
    view = report_view(
        context.session, organization_id=context.principal.organization_id, report_id=report_id
    )
    return Report.model_validate(view)


@router.get(
    "/reports/{report_id}/content",
    response_class=Response,
    responses={
        200: {"content": {"text/html": {}, "text/csv": {}}, "description": "The report."},
        **problem_responses(401, 403, 404, 409, 422, 429),
    },
)
def get_report_content(
    report_id: uuid.UUID,
    context: TenantRead,
    format: Annotated[Literal["html", "csv"], Query(description="`html` or `csv`.")] = "html",
) -> Response:
    """Get a finished report as HTML or CSV."""
    media_type, content = report_content(
        context.session,
        organization_id=context.principal.organization_id,
        report_id=report_id,
        format=format,
    )
    return Response(content=content, media_type=media_type)


# --- AI tasks ------------------------------------------------------------------------------


@router.post("/ai-tasks", status_code=202, response_model=AiTask, responses=CHANGE_ERRORS)
def create_ai_task(body: AiTaskCreate, context: TenantPredict) -> AiTask:
    """Submit inputs for an agent type's champion; a webhook tells when the outputs are ready."""
    view = submit_ai_task(
        context.session,
        organization_id=context.principal.organization_id,
        agent_type=body.agent_type,
        inputs=body.inputs,
        idempotency_key=None,
        actor=context.principal.actor,
        now=context.now,
    )
    return AiTask.model_validate(view)


@router.get("/ai-tasks/{task_id}", response_model=AiTask, responses=ONE_ERRORS)
def get_ai_task(task_id: uuid.UUID, context: TenantPredict) -> AiTask:
    """Get an AI task's status."""
    view = ai_task_view(
        context.session, organization_id=context.principal.organization_id, task_id=task_id
    )
    return AiTask.model_validate(view)


@router.get("/ai-tasks/{task_id}/outputs", response_model=Page[AiTaskOutput], responses=ONE_ERRORS)
def list_ai_task_outputs(
    task_id: uuid.UUID,
    context: TenantPredict,
    state: StateDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[AiTaskOutput]:
    """List an AI task's outputs in input order (empty until it succeeded)."""
    found = outputs_page(
        context.session,
        organization_id=context.principal.organization_id,
        task_id=task_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(AiTaskOutput, found)  # type: ignore[no-any-return]


# --- the provider's queue ------------------------------------------------------------------


@provider_router.get("/jobs", response_model=Page[Job], responses=PROVIDER_READ)
def list_jobs(
    ctx: Provider,
    state: StateDep,
    organization: Annotated[
        str | None, Query(max_length=63, description="Only jobs of this organisation (slug).")
    ] = None,
    kind: Annotated[JobKind | None, Query(description="Only jobs of this kind.")] = None,
    status: Annotated[
        JobStatus | None, Query(description="Only jobs in this status (`dead`: the DLQ).")
    ] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[Job]:
    """List background jobs, newest first, filtered by tenant, kind and status."""
    found = jobs_page(
        ctx.session,
        organization=organization,
        kind=kind,
        status=status,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(Job, found)  # type: ignore[no-any-return]


@provider_router.get("/jobs/{job_id}", response_model=JobDetail, responses=PROVIDER_READ)
def get_job(job_id: uuid.UUID, ctx: Provider) -> JobDetail:
    """Get a job with every attempt."""
    view, attempts = job_detail(ctx.session, job_id=job_id)
    return JobDetail(
        job=Job.model_validate(view), attempts=[JobAttempt.model_validate(a) for a in attempts]
    )


@provider_router.post("/jobs/{job_id}/retry", response_model=Job, responses=PROVIDER_CHANGE)
def retry_job(job_id: uuid.UUID, ctx: Provider) -> Job:
    """Queue a dead, failed or cancelled job again with a fresh set of attempts."""
    job = jobs.retry_job(ctx.session, job_id=job_id, actor=ctx.actor, now=ctx.now)
    return Job.model_validate(describe_job(ctx.session, job))


@provider_router.post("/jobs/{job_id}/cancel", response_model=Job, responses=PROVIDER_CHANGE)
def cancel_job(job_id: uuid.UUID, ctx: Provider) -> Job:
    """Cancel a queued or running job (idempotent)."""
    job = jobs.cancel_job(ctx.session, job_id=job_id, actor=ctx.actor, now=ctx.now)
    return Job.model_validate(describe_job(ctx.session, job))


@provider_router.post("/jobs/retry-dead", response_model=JobsRetried, responses=PROVIDER_CHANGE)
def retry_dead_jobs(body: JobsRetry, ctx: Provider) -> JobsRetried:
    """Queue again every dead job of a kind (up to 1,000 per call)."""
    retried = jobs.retry_dead(ctx.session, kind=body.kind, actor=ctx.actor, now=ctx.now)
    return JobsRetried(retried=[job.id for job in retried])
