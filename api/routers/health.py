"""Probes and metrics for the platform: liveness, readiness and Prometheus exposition.

None of them needs credentials; readiness and metrics still count against the per-address
rate limit, since each one queries the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Metric, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field

from api.deps import AddressLimited, StateDep
from api.errors import problem_response, problem_responses
from pipelines.health.service import components_down, evaluation_runs_by_status

router = APIRouter(tags=["health"])


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
    down = await components_down(state.sessions, state.redis)
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
        **problem_responses(429),
    },
    dependencies=[AddressLimited],
)
async def metrics(state: StateDep) -> Response:
    """Prometheus metrics: request latency and status codes, cache, rate limits, run counts."""
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
