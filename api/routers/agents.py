"""Serving the agents to tenants (`/v1/agents`, `/v1/feedback`) and the provider's experiments
(`/provider/v1/experiments`)."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response
from fastapi.concurrency import run_in_threadpool

from api.deps import Cursor, Limit, Provider, StateDep, TenantPredict, page_size
from api.edge import SignedRoute
from api.errors import problem_responses
from api.routers.tenant import DocstringSummaryRoute
from api.schemas.agents import (
    AGENT_TYPE_PATTERN,
    Agent,
    ExperimentCreate,
    FeedbackCreate,
    FeedbackOut,
    PredictRequest,
    PredictResponse,
)
from api.schemas.common import Page
from api.serving import ServingRuntime
from api.shadow import ShadowTask
from api.state import ApiState
from models.db.enums import ExperimentStatus
from models.registry import client as registry
from pipelines.errors import NotFound
from pipelines.experiments import service as experiments
from pipelines.experiments.service import ExperimentDetail
from pipelines.feedback.service import record_feedback
from pipelines.serving.views import agents_page

tenant_router = APIRouter(prefix="/v1", tags=["tenant"], route_class=DocstringSummaryRoute)
provider_router = APIRouter(prefix="/provider/v1", tags=["experiments"], route_class=SignedRoute)

PREDICT_ERRORS = problem_responses(401, 403, 404, 413, 422, 429, 502)
READ_ERRORS = problem_responses(401, 403, 422, 429)
FEEDBACK_ERRORS = problem_responses(401, 403, 404, 413, 422, 429)
PROVIDER_READ_ERRORS = problem_responses(401, 404, 422, 429, 503)
PROVIDER_WRITE_ERRORS = problem_responses(401, 404, 409, 413, 422, 429, 503)

AgentTypePath = Annotated[
    str, Path(pattern=AGENT_TYPE_PATTERN, description="An agent type, e.g. `intent`.")
]


def _serving(state: ApiState) -> ServingRuntime:
    if state.serving is None:
        raise NotFound("serving is not configured in this process", field="agent_type")
    return state.serving


async def _queue_shadow(serving: ServingRuntime, task: ShadowTask) -> None:
    serving.shadow.submit(task)


@tenant_router.post(
    "/agents/{agent_type}/predict", response_model=PredictResponse, responses=PREDICT_ERRORS
)
async def predict(
    agent_type: AgentTypePath,
    body: PredictRequest,
    context: TenantPredict,
    state: StateDep,
    background: BackgroundTasks,
) -> PredictResponse:
    """Ask an agent: the model version behind its champion alias answers (in an A/B test, the
    variant your tenant or end user is assigned). Keep `request_id` to send feedback."""
    serving = _serving(state)
    served = await run_in_threadpool(
        serving.predict,
        agent_type=agent_type,
        text=body.input,
        organization_id=context.principal.organization_id,
        end_user_key=body.end_user_key,
    )
    if served.shadow is not None:
        # Runs once the response is sent, and only queues: it never waits for the challenger.
        # Async, so it runs on the event loop: no hop through the thread pool per request.
        background.add_task(_queue_shadow, serving, served.shadow)
    return PredictResponse(
        request_id=served.request_id,
        agent_type=served.agent_type,
        model_version=served.model_version,
        output=served.output,
        latency_ms=served.latency_ms,
        experiment_id=served.experiment_id,
        variant=served.variant,
    )


@tenant_router.get("/agents", response_model=Page[Agent], responses=READ_ERRORS)
async def list_agents(
    context: TenantPredict, state: StateDep, limit: Limit = None, cursor: Cursor = None
) -> Page[Agent]:
    """List the agent types you can call, with the model version answering for each."""
    del context
    serving = _serving(state)
    champions = await run_in_threadpool(serving.agents)
    found = agents_page(champions, cursor=cursor, limit=page_size(state, limit))
    return Page[Agent](
        items=[Agent.model_validate(asdict(item)) for item in found.items],
        next_cursor=found.next_cursor,
    )


@tenant_router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses={
        200: {"model": FeedbackOut, "description": "Repeated or replaced feedback"},
        **FEEDBACK_ERRORS,
    },
)
def post_feedback(
    body: FeedbackCreate, context: TenantPredict, state: StateDep, response: Response
) -> FeedbackOut:
    """Rate a prediction, or give its correct label or corrected text, by `request_id`.
    Idempotent per request and kind: a repeat answers 200, a new value replaces the old."""
    if state.serving is not None:
        # This process's predictions may still wait in the serving log: write them before the
        # request is looked up (the tenant's session is not opened yet, so it sees them).
        state.serving.flush()
    stored = record_feedback(
        context.session,
        organization_id=context.principal.organization_id,
        request_id=body.request_id,
        kind=body.kind,
        value=body.value,
        actor=context.principal.actor,
        now=context.now,
    )
    if not stored.created:
        response.status_code = 200
    return FeedbackOut.model_validate(asdict(stored))


# --- provider: experiments ---------------------------------------------------------------


def _champion(serving: ServingRuntime, agent_type: str) -> str | None:
    serving.champions.forget()
    champion = serving.champions.get(agent_type)
    return None if champion is None else str(champion.champion)


def _resolve(reference: str) -> str:
    try:
        return str(registry.resolve(reference))
    except registry.InvalidModelReference as error:
        raise LookupError(str(error)) from error


@provider_router.post(
    "/experiments",
    status_code=201,
    response_model=ExperimentDetail,
    responses=PROVIDER_WRITE_ERRORS,
)
def create_experiment(body: ExperimentCreate, ctx: Provider, state: StateDep) -> ExperimentDetail:
    """Create a draft shadow or A/B experiment; the answer holds its planned sample size."""
    serving = _serving(state)
    request = experiments.ExperimentRequest(**body.model_dump())
    created = experiments.create_experiment(
        ctx.session,
        request,
        champion=_champion(serving, body.agent_type),
        resolve=_resolve,
        actor=ctx.actor,
        now=ctx.now,
    )
    return created


@provider_router.get(
    "/experiments", response_model=Page[ExperimentDetail], responses=PROVIDER_READ_ERRORS
)
def list_experiments(
    ctx: Provider,
    state: StateDep,
    agent_type: Annotated[str | None, Query(pattern=AGENT_TYPE_PATTERN)] = None,
    status: Annotated[ExperimentStatus | None, Query()] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[ExperimentDetail]:
    """List experiments, newest first."""
    found = experiments.experiments_page(
        ctx.session,
        agent_type=agent_type,
        status=None if status is None else str(status),
        cursor=cursor,
        limit=page_size(state, limit),
    )
    return Page[ExperimentDetail](items=list(found.items), next_cursor=found.next_cursor)


@provider_router.get(
    "/experiments/{experiment_id}", response_model=ExperimentDetail, responses=PROVIDER_READ_ERRORS
)
def get_experiment(experiment_id: uuid.UUID, ctx: Provider) -> ExperimentDetail:
    """Read one experiment."""
    return experiments.get_experiment(ctx.session, experiment_id)


def _change(
    state: ApiState, ctx: Provider, experiment_id: uuid.UUID, action: str
) -> ExperimentDetail:
    serving = _serving(state)
    champion = None
    if action == "start":
        found = experiments.get_experiment(ctx.session, experiment_id)
        champion = _champion(serving, found.agent_type)
    changed = experiments.change_status(
        ctx.session, experiment_id, action, actor=ctx.actor, now=ctx.now, champion=champion
    )
    serving.experiments.forget()
    return changed


@provider_router.post(
    "/experiments/{experiment_id}/start",
    response_model=ExperimentDetail,
    responses=PROVIDER_WRITE_ERRORS,
)
def start_experiment(experiment_id: uuid.UUID, ctx: Provider, state: StateDep) -> ExperimentDetail:
    """Start (or resume) an experiment: traffic reaches the challenger from now on."""
    return _change(state, ctx, experiment_id, "start")


@provider_router.post(
    "/experiments/{experiment_id}/pause",
    response_model=ExperimentDetail,
    responses=PROVIDER_WRITE_ERRORS,
)
def pause_experiment(experiment_id: uuid.UUID, ctx: Provider, state: StateDep) -> ExperimentDetail:
    """Pause a running experiment: the champion alone answers until it is started again."""
    return _change(state, ctx, experiment_id, "pause")


@provider_router.post(
    "/experiments/{experiment_id}/stop",
    response_model=ExperimentDetail,
    responses=PROVIDER_WRITE_ERRORS,
)
def stop_experiment(experiment_id: uuid.UUID, ctx: Provider, state: StateDep) -> ExperimentDetail:
    """Stop an experiment for good (its traffic stays for the comparison)."""
    return _change(state, ctx, experiment_id, "stop")
