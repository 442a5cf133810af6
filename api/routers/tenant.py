"""The tenant API: a tenant's evaluation results, model versions, notices and API keys."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Query, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.cache import cached_comparison, cached_run_detail
from api.deps import (
    Cursor,
    Limit,
    StateDep,
    TenantContext,
    TenantDomains,
    TenantKeys,
    TenantNotices,
    TenantRead,
    page_size,
)
from api.domain_checks import check_tenant_domain_now
from api.errors import problem_responses
from api.schemas.common import RUN_ID_HELP, RUN_ID_PATTERN, Page, RunId
from api.schemas.tenant import (
    ApiKey,
    DomainCreate,
    EvaluationDetail,
    EvaluationSummary,
    ExampleScore,
    ModelVersion,
    Notice,
    NoticeAcknowledgement,
    QualityScorePoint,
    RunComparison,
)
from api.state import ApiState
from models.cache.cache import ResultCache
from pipelines.access.service import api_keys_page, revoke_api_key
from pipelines.agents.service import model_versions_page
from pipelines.certificates.read_models import CertificateAttemptView, CertificateDetail
from pipelines.certificates.views import (
    attempts_page,
    certificate_of_domain,
    certificates_page,
)
from pipelines.domains.read_models import DomainDetail
from pipelines.domains.service import (
    add_domain,
    dns_config_from,
    remove_domain,
)
from pipelines.domains.views import domains_page, get_domain
from pipelines.evaluation.runs import get_run
from pipelines.evaluation.views import quality_scores_page, run_examples_page, runs_page
from pipelines.notices.service import acknowledge_notice, notices_for_tenant
from pipelines.pagination import Paged


class DocstringSummaryRoute(APIRoute):
    """A route whose OpenAPI summary is the first line of its endpoint's docstring."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        first = inspect.cleandoc(endpoint.__doc__ or "").partition("\n")[0]
        if kwargs.get("summary") is None and first:
            kwargs["summary"] = first.rstrip(".")
        super().__init__(path, endpoint, **kwargs)


router = APIRouter(prefix="/v1", tags=["tenant"], route_class=DocstringSummaryRoute)

Item = TypeVar("Item", bound=BaseModel)

AgentType = Annotated[
    str | None, Query(max_length=64, description="Only this agent type, e.g. `summarizer`.")
]

READ_ERRORS = problem_responses(401, 403, 422, 429)
ONE_ERRORS = problem_responses(401, 403, 404, 422, 429)


def _cache(state: ApiState) -> ResultCache | None:
    """The cache of completed results (immutable, so an in-process tier may hold them)."""
    return state.immutable_cache if state.api.cache_results else None


def _page(model: type[Item], found: Paged[Any]) -> Page[Item]:
    return Page(
        items=[model.model_validate(item) for item in found.items], next_cursor=found.next_cursor
    )


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


async def _run_id(context: TenantContext, run_id: str) -> uuid.UUID:
    """The id of this tenant's run named by a full id or a unique prefix of it."""
    try:
        return uuid.UUID(run_id)
    except ValueError:
        pass
    organization_id = context.principal.organization_id
    run = await anyio.to_thread.run_sync(
        lambda: get_run(context.session, organization_id=organization_id, run_id=run_id)
    )
    return run.id


@router.get("/evaluations", response_model=Page[EvaluationSummary], responses=READ_ERRORS)
def list_evaluations(
    context: TenantRead, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[EvaluationSummary]:
    """List evaluation runs, newest first."""
    found = runs_page(
        context.session,
        organization_id=context.principal.organization_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(EvaluationSummary, found)


@router.get("/evaluations/{run_id}", response_model=EvaluationDetail, responses=ONE_ERRORS)
async def get_evaluation(run_id: RunId, context: TenantRead, state: StateDep) -> Response:
    """Get an evaluation run with its progress, metrics, CIs and per-slice results."""
    body = await cached_run_detail(
        lambda: context.session,
        _cache(state),
        organization_id=context.principal.organization_id,
        run_id=await _run_id(context, run_id),
    )
    return _json(body)


@router.get(
    "/evaluations/{run_id}/examples", response_model=Page[ExampleScore], responses=ONE_ERRORS
)
def list_evaluation_examples(
    run_id: RunId,
    context: TenantRead,
    state: StateDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[ExampleScore]:
    """List the per-example predictions and scores of a run, by example id."""
    found = run_examples_page(
        context.session,
        organization_id=context.principal.organization_id,
        run_id=run_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(ExampleScore, found)


@router.get(
    "/comparisons",
    response_model=RunComparison,
    responses=problem_responses(401, 403, 404, 409, 422, 429),
)
async def compare_evaluations(
    run_a: Annotated[
        str,
        Query(pattern=RUN_ID_PATTERN, description=f"The baseline run (A). {RUN_ID_HELP}"),
    ],
    run_b: Annotated[
        str,
        Query(pattern=RUN_ID_PATTERN, description=f"The run compared with it (B). {RUN_ID_HELP}"),
    ],
    context: TenantRead,
    state: StateDep,
) -> Response:
    """Compare two completed runs on the same golden dataset version, example by example."""
    body = await cached_comparison(
        lambda: context.session,
        _cache(state),
        organization_id=context.principal.organization_id,
        run_a=await _run_id(context, run_a),
        run_b=await _run_id(context, run_b),
    )
    return _json(body)


@router.get("/model-versions", response_model=Page[ModelVersion], responses=READ_ERRORS)
def list_model_versions(
    _: TenantRead,
    state: StateDep,
    agent_type: AgentType = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[ModelVersion]:
    """List registered model versions by name, newest version first."""
    found = model_versions_page(agent_type=agent_type, cursor=cursor, limit=page_size(state, limit))
    return _page(ModelVersion, found)


@router.get("/quality-scores", response_model=Page[QualityScorePoint], responses=READ_ERRORS)
def list_quality_scores(
    context: TenantRead,
    state: StateDep,
    agent_type: AgentType = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[QualityScorePoint]:
    """List the quality score of each completed run over time, oldest first."""
    found = quality_scores_page(
        context.session,
        organization_id=context.principal.organization_id,
        agent_type=agent_type,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(QualityScorePoint, found)


@router.get("/notices", response_model=Page[Notice], responses=READ_ERRORS)
def list_notices(
    context: TenantRead, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[Notice]:
    """List active system notices addressed to this tenant, newest first."""
    found = notices_for_tenant(
        context.session,
        organization_id=context.principal.organization_id,
        now=context.now,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(Notice, found)


@router.post(
    "/notices/{notice_id}/acknowledgement",
    response_model=NoticeAcknowledgement,
    responses=ONE_ERRORS,
)
def acknowledge(notice_id: uuid.UUID, context: TenantNotices) -> NoticeAcknowledgement:
    """Acknowledge a notice (idempotent: repeating it keeps the first time)."""
    ack = acknowledge_notice(
        context.session,
        organization_id=context.principal.organization_id,
        notice_id=notice_id,
        actor=context.principal.actor,
        now=context.now,
    )
    return NoticeAcknowledgement.model_validate(ack)


@router.get("/api-keys", response_model=Page[ApiKey], responses=READ_ERRORS)
def list_api_keys(
    context: TenantKeys, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[ApiKey]:
    """List this tenant's API keys, oldest first (never their secrets)."""
    found = api_keys_page(
        context.session,
        organization_id=context.principal.organization_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(ApiKey, found)


@router.delete("/api-keys/{key_id}", response_model=ApiKey, responses=ONE_ERRORS)
def revoke_key(key_id: uuid.UUID, context: TenantKeys, state: StateDep) -> ApiKey:
    """Revoke one of this tenant's API keys (idempotent); it stops authenticating at once."""
    key = revoke_api_key(
        context.session,
        organization_id=context.principal.organization_id,
        key_id=key_id,
        actor=context.principal.actor,
        now=context.now,
    )
    state.principals.forget_all()
    return ApiKey.model_validate(key)


# --- domains and certificates -----------------------------------------------------------


@router.post(
    "/domains",
    status_code=201,
    response_model=DomainDetail,
    responses=problem_responses(401, 403, 422, 429),
)
def create_domain(body: DomainCreate, context: TenantDomains, state: StateDep) -> DomainDetail:
    """Claim a hostname; publish the returned TXT record to prove ownership (idempotent)."""
    return add_domain(
        context.session,
        organization_id=context.principal.organization_id,
        hostname=body.hostname,
        actor=context.principal.actor,
        now=context.now,
        config=dns_config_from(state.domains),
    )


@router.get("/domains", response_model=Page[DomainDetail], responses=READ_ERRORS)
def list_domains(
    context: TenantRead, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[DomainDetail]:
    """List this tenant's domains with their ownership and certificate status, oldest first."""
    found = domains_page(
        context.session,
        organization_id=context.principal.organization_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(DomainDetail, found)


@router.get("/domains/{domain_id}", response_model=DomainDetail, responses=ONE_ERRORS)
def show_domain(domain_id: uuid.UUID, context: TenantRead) -> DomainDetail:
    """Get a domain: the record to publish and what the last checks found."""
    return get_domain(
        context.session, organization_id=context.principal.organization_id, domain_id=domain_id
    )


@router.post("/domains/{domain_id}/verify", response_model=DomainDetail, responses=ONE_ERRORS)
def verify_domain(domain_id: uuid.UUID, context: TenantDomains, state: StateDep) -> DomainDetail:
    """Check ownership now through DNS; a timeout or SERVFAIL is reported, not counted as failed."""
    return check_tenant_domain_now(
        state,
        context.session,
        organization_id=context.principal.organization_id,
        domain_id=domain_id,
        now=context.now,
        actor=context.principal.actor,
    )


@router.delete(
    "/domains/{domain_id}",
    status_code=204,
    response_class=Response,
    responses=ONE_ERRORS,
)
def delete_domain(domain_id: uuid.UUID, context: TenantDomains) -> Response:
    """Remove a domain and its certificate."""
    remove_domain(
        context.session,
        organization_id=context.principal.organization_id,
        domain_id=domain_id,
        actor=context.principal.actor,
    )
    return Response(status_code=204)


@router.get(
    "/domains/{domain_id}/certificate", response_model=CertificateDetail, responses=ONE_ERRORS
)
def show_domain_certificate(domain_id: uuid.UUID, context: TenantRead) -> CertificateDetail:
    """Get the certificate of a domain: its own status, validity and renewal time."""
    return certificate_of_domain(
        context.session, organization_id=context.principal.organization_id, domain_id=domain_id
    )


@router.get("/certificates", response_model=Page[CertificateDetail], responses=READ_ERRORS)
def list_certificates(
    context: TenantRead, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[CertificateDetail]:
    """List this tenant's certificates, oldest first."""
    found = certificates_page(
        context.session,
        organization_id=context.principal.organization_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(CertificateDetail, found)


@router.get(
    "/certificates/{certificate_id}/attempts",
    response_model=Page[CertificateAttemptView],
    responses=ONE_ERRORS,
)
def list_certificate_attempts(
    certificate_id: uuid.UUID,
    context: TenantRead,
    state: StateDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[CertificateAttemptView]:
    """List every ACME order placed for a certificate, newest first."""
    found = attempts_page(
        context.session,
        organization_id=context.principal.organization_id,
        certificate_id=certificate_id,
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return _page(CertificateAttemptView, found)
