"""The provider's promotion routes: decisions with their evidence, gates, drift reports.

Signed like every provider route; setting a gate is audited by the service it calls."""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import ConfigDict, Field
from sqlalchemy.orm import Session

from api.deps import Cursor, Limit, Provider, StateDep, page_size
from api.edge import SignedRoute
from api.errors import problem_responses
from api.schemas.common import InputModel, Page
from api.state import ApiState
from pipelines.errors import NotFound
from pipelines.promotion import service
from pipelines.promotion.read_models import (
    DecisionDetail,
    DecisionSummary,
    DriftReportView,
    GateView,
)

provider_router = APIRouter(
    prefix="/provider/v1/promotion", tags=["promotion"], route_class=SignedRoute
)

READ_ERRORS = problem_responses(401, 422, 429, 503)
ONE_ERRORS = problem_responses(401, 404, 422, 429, 503)

AgentType = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", description="Agent type."),
]
AgentFilter = Annotated[
    str | None,
    Query(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$", description="Only this type."
    ),
]


class GuardrailBody(InputModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(max_length=64, examples=["latency_p95_ms"])
    margin: float = Field(
        ge=0,
        le=1e9,
        description="Worst allowed change, in metric units (cost_per_request: micro-units of "
        "the AI cost rates' currency per request).",
    )
    higher_is_better: bool | None = None


class GateBody(InputModel):
    """A gate to pre-register; fields left out take the defaults."""

    model_config = ConfigDict(extra="forbid")

    primary_metric: str | None = Field(default=None, max_length=64, examples=["quality"])
    higher_is_better: bool | None = None
    guardrails: list[GuardrailBody] | None = Field(default=None, max_length=20)
    min_n: int | None = Field(default=None, ge=1, le=1_000_000_000)
    min_duration_seconds: int | None = Field(default=None, ge=0, le=1_000_000_000)
    alpha: float | None = Field(default=None, gt=0, le=0.5)
    golden_dataset: str | None = Field(
        default=None, max_length=300, description="Pinned golden dataset version, NAME@VERSION."
    )
    sample_seed: int | None = Field(default=None, ge=0, le=2**31)
    critical_slices: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None,
        max_length=50,
        description="Slices of the pinned golden dataset on which the primary metric is a "
        "guardrail (Holm-adjusted across them); needs golden_dataset and slice_margin.",
        examples=[["billing", "refunds"]],
    )
    slice_margin: float | None = Field(
        default=None,
        ge=0,
        le=1e9,
        description="Worst allowed drop of the primary metric on a critical slice, in its units.",
    )


@provider_router.get("/decisions", response_model=Page[DecisionSummary], responses=READ_ERRORS)
def list_decisions(
    ctx: Provider,
    state: StateDep,
    agent_type: AgentFilter = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[DecisionSummary]:
    """List promotion decisions (promote, reject, wait), newest first."""
    found = service.decisions_page(
        ctx.session, agent_type=agent_type, cursor=cursor, limit=page_size(state, limit)
    )
    return Page[DecisionSummary](items=found.items, next_cursor=found.next_cursor)


@provider_router.get(
    "/decisions/{decision_id}", response_model=DecisionDetail, responses=ONE_ERRORS
)
def get_decision(decision_id: uuid.UUID, ctx: Provider) -> DecisionDetail:
    """Read one decision with its evidence: checks, metrics with intervals, tests, seeds."""
    return service.decision_detail(ctx.session, decision_id)


@provider_router.get("/gates/{agent_type}", response_model=GateView, responses=ONE_ERRORS)
def get_gate(agent_type: AgentType, ctx: Provider) -> GateView:
    """Read the gate in force for an agent type (version 0: the default, never set)."""
    return service.gate_view(ctx.session, agent_type)


@provider_router.put(
    "/gates/{agent_type}",
    response_model=GateView,
    responses=problem_responses(401, 409, 422, 429, 503),
)
def put_gate(agent_type: AgentType, body: GateBody, ctx: Provider) -> GateView:
    """Pre-register a new version of an agent type's gate (audited)."""
    return service.set_gate(
        ctx.session,
        agent_type=agent_type,
        config=body.model_dump(exclude_none=True),
        actor=ctx.actor,
        now=ctx.now,
    )


@provider_router.get("/drift-reports", response_model=Page[DriftReportView], responses=READ_ERRORS)
def list_drift_reports(
    ctx: Provider,
    state: StateDep,
    agent_type: AgentFilter = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page[DriftReportView]:
    """List drift reports, newest first."""
    found = service.drift_reports_page(
        ctx.session, agent_type=agent_type, cursor=cursor, limit=page_size(state, limit)
    )
    return Page[DriftReportView](items=found.items, next_cursor=found.next_cursor)


def drift_report_html(state: ApiState, session: Session, report_id: uuid.UUID) -> tuple[bytes, str]:
    """A drift report's stored HTML and its SHA-256, refused (404) unless they still match."""
    relative, sha256 = service.drift_report_file(session, report_id)
    home = state.storage.home.resolve()
    path = (home / relative).resolve()
    if not path.is_relative_to(home) or not path.is_file():
        raise NotFound(f"drift report {report_id} has no HTML file", field="report_id")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise NotFound(
            f"drift report {report_id}'s HTML does not match its digest", field="report_id"
        )
    return data, sha256


@provider_router.get(
    "/drift-reports/{report_id}/html",
    response_class=Response,
    responses={200: {"content": {"text/html": {}}}, **ONE_ERRORS},
)
def get_drift_report_html(report_id: uuid.UUID, ctx: Provider, state: StateDep) -> Response:
    """Read a drift report's HTML (checked against its stored SHA-256)."""
    data, sha256 = drift_report_html(state, ctx.session, report_id)
    return Response(
        content=data,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": "sandbox", "ETag": f'"{sha256}"'},
    )
