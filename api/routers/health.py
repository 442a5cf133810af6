"""Probes and metrics for the platform: liveness, readiness and Prometheus exposition.

None of them needs credentials; readiness and metrics still count against the per-address
rate limit, since each one queries the database.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Iterator, Sequence
from typing import Annotated

import redis.asyncio
import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Metric, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker

from api.deps import AddressLimited, StateDep
from api.errors import problem_response, problem_responses
from models.cache.client import async_health_check
from models.db.repositories.evaluations import EvaluationRepository
from models.db.repositories.health import ping
from models.db.tables import EVALUATION_STATUSES

log = structlog.get_logger()

router = APIRouter(tags=["health"])

metrics_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="MetricsToken",
    description="The scrape token, when the process sets `STREAMFLOW_METRICS_TOKEN`.",
)


def _database_answers(sessions: sessionmaker[Session]) -> bool:
    try:
        with sessions() as session, session.begin():
            ping(session)
    except Exception as error:
        log.warning("readiness.database_down", error_type=type(error).__name__)
        return False
    return True


async def components_down(
    sessions: Sequence[sessionmaker[Session]], redis_client: redis.asyncio.Redis[bytes] | None
) -> list[str]:
    """Names of the dependencies that do not answer now: `database` (any of its logins),
    `redis` (if configured)."""
    down = []
    # The database driver blocks; keep the event loop free while it connects or times out.
    for logins in sessions:
        if not await asyncio.to_thread(_database_answers, logins):
            down.append("database")
            break
    if redis_client is not None and not await async_health_check(redis_client):
        down.append("redis")
    return down


def evaluation_runs_by_status(sessions: sessionmaker[Session]) -> dict[str, int] | None:
    """How many evaluation runs each status holds across all organisations (0 included).

    None when the database cannot answer (logged).
    """
    try:
        with sessions() as session, session.begin():
            counts = EvaluationRepository(session).count_by_status()
    except Exception as error:
        log.warning("metrics.database_down", error_type=type(error).__name__)
        return None
    return {status: counts.get(status, 0) for status in EVALUATION_STATUSES} | counts


class Health(BaseModel):
    """The process answers, or every dependency it needs answers."""

    status: str = Field(examples=["ok"])


class _Computed(Collector):
    """A collector yielding metrics computed before the scrape is rendered."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process is up and serving requests (checks nothing else)."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses=problem_responses(429, 503),
    dependencies=[AddressLimited],
)
async def readyz(request: Request, state: StateDep) -> Response:
    """Readiness: the database answers `SELECT 1` and, when configured, Redis answers PING."""
    logins = [state.sessions]
    if state.tenant_engine is not state.engine:
        logins.append(state.tenant_sessions)
    down = await components_down(logins, state.redis)
    if down:
        return problem_response(
            request,
            503,
            f"not ready: {', '.join(down)} did not answer",
            slug="not-ready",
            title="Not ready",
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok"})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format.",
        },
        **problem_responses(401, 404, 429),
    },
    dependencies=[AddressLimited],
)
async def metrics(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)],
) -> Response:
    """Prometheus metrics: request latency and status codes, cache, rate limits, run counts.

    Off (404) when `STREAMFLOW_METRICS_ENABLED` is false; when `STREAMFLOW_METRICS_TOKEN` is
    set, a scrape must send it as `Authorization: Bearer <token>`.
    """
    if not state.api.metrics_enabled:
        return problem_response(request, 404, "metrics are not served by this process")
    token = state.api.metrics_token
    if token is not None and (
        credentials is None
        or not hmac.compare_digest(
            credentials.credentials.encode(), token.get_secret_value().encode()
        )
    ):
        return problem_response(
            request,
            401,
            "send `Authorization: Bearer <metrics token>` (STREAMFLOW_METRICS_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    counts = await asyncio.to_thread(evaluation_runs_by_status, state.sessions)
    computed: list[Metric] = []
    # Without the database the gauge is left out; the process's own series still matter then.
    if counts is not None:
        runs = GaugeMetricFamily(
            "streamflow_evaluation_runs",
            "Evaluation runs by status, counted in the database at scrape time.",
            labels=["status"],
        )
        for status, count in sorted(counts.items()):
            runs.add_metric([status], count)
        computed.append(runs)
    scrape = CollectorRegistry()
    scrape.register(_Computed(computed))
    body = generate_latest(state.metrics.registry) + generate_latest(scrape)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
