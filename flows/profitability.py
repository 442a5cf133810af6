"""The profitability rollup flow: hourly (served by `streamflow worker`) or on demand for a range.

Each chunk of tenant-months is one task and one transaction (aggregate the marked days' events,
compute the figures from the stored usage in DuckDB, write what changed, clear their marks), so
a crash leaves every period fully old or fully new and the next run picks up the marks left.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import structlog
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session, sessionmaker

from flows.orchestrator import orchestrated
from flows.runtime import report_progress, runtime
from models.db.engine import transaction
from pipelines.profitability import service
from pipelines.profitability.service import EMPTY, RollupResult

log = structlog.get_logger()

CHUNK = 500
"""Tenant-months per task and transaction."""

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def rollup_profitability_now(
    sessions: sessionmaker[Session],
    *,
    since: date | None = None,
    until: date | None = None,
    clock: Clock = _utcnow,
    chunk: int = CHUNK,
) -> RollupResult:
    """The rollup without Prefect: plan, then one transaction per chunk (bench and flow)."""
    with transaction(sessions) as session:
        plan = service.plan_rollup(session, now=clock(), since=since, until=until)
    total = EMPTY
    chunks = [plan.targets[i : i + chunk] for i in range(0, len(plan.targets), chunk)]
    for done, targets in enumerate(chunks, start=1):
        with transaction(sessions) as session:
            total = total + service.rollup_chunk(
                session, targets, through=plan.through, now=clock(), rebuild=plan.rebuild
            )
        report_progress("rollup", done, len(chunks))
    return total


@task(name="rollup-chunk", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def rollup_chunk(
    targets: list[tuple[str, str]], through: str, rebuild: bool = False
) -> dict[str, int]:
    import uuid

    with transaction(runtime().sessions) as session:
        result = service.rollup_chunk(
            session,
            [(uuid.UUID(org), date.fromisoformat(month)) for org, month in targets],
            through=date.fromisoformat(through),
            now=_utcnow(),
            rebuild=rebuild,
        )
    return result.__dict__


@flow(name="rollup-profitability", log_prints=False)
def rollup_profitability(since: str | None = None, until: str | None = None) -> dict[str, int]:
    """Recompute marked tenant-months (and the current month of tenants with a plan); with
    `since`/`until` (YYYY-MM-DD, months [since, until)), every tenant-month of the range."""
    sessions = runtime().sessions
    with transaction(sessions) as session:
        plan = service.plan_rollup(
            session,
            now=_utcnow(),
            since=date.fromisoformat(since) if since else None,
            until=date.fromisoformat(until) if until else None,
        )
    total = EMPTY
    chunks = [plan.targets[i : i + CHUNK] for i in range(0, len(plan.targets), CHUNK)]
    for done, targets in enumerate(chunks, start=1):
        counts = rollup_chunk(
            [(str(org), month.isoformat()) for org, month in targets],
            plan.through.isoformat(),
            plan.rebuild,
        )
        total = total + RollupResult(**counts)
        report_progress("rollup", done, len(chunks))
    log.info("profitability rolled up", **total.__dict__)
    return total.__dict__


def run_rollup(
    *,
    since: date | None = None,
    until: date | None = None,
    announce: Callable[[str], None] | None = None,
) -> RollupResult:
    """Run the rollup flow on the orchestrator (started if needed); what the CLI calls."""
    with orchestrated(announce):
        counts = rollup_profitability(
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
        )
    return RollupResult(**counts)
