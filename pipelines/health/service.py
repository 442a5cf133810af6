"""Readiness of the database and Redis, and evaluation run counts for the metrics endpoint."""

from __future__ import annotations

import asyncio

import redis.asyncio
import structlog
from sqlalchemy.orm import Session, sessionmaker

from models.cache.client import async_health_check
from models.db.engine import SYSTEM_SCOPE, set_row_scope
from models.db.repositories.evaluations import EvaluationRepository
from models.db.repositories.health import ping
from models.db.tables import EVALUATION_STATUSES

log = structlog.get_logger()


def _database_answers(sessions: sessionmaker[Session]) -> bool:
    try:
        with sessions() as session, session.begin():
            ping(session)
    except Exception as error:
        log.warning("readiness.database_down", error_type=type(error).__name__)
        return False
    return True


async def components_down(
    sessions: sessionmaker[Session], redis_client: redis.asyncio.Redis[bytes] | None
) -> list[str]:
    """Names of the dependencies that do not answer now: `database`, `redis` (if configured)."""
    down = []
    # The database driver blocks; keep the event loop free while it connects or times out.
    if not await asyncio.to_thread(_database_answers, sessions):
        down.append("database")
    if redis_client is not None and not await async_health_check(redis_client):
        down.append("redis")
    return down


def evaluation_runs_by_status(sessions: sessionmaker[Session]) -> dict[str, int] | None:
    """How many evaluation runs each status holds across all organisations (0 included).

    None when the database cannot answer (logged).
    """
    try:
        with sessions() as session, session.begin():
            set_row_scope(session, scope=SYSTEM_SCOPE)
            counts = EvaluationRepository(session).count_by_status()
    except Exception as error:
        log.warning("metrics.database_down", error_type=type(error).__name__)
        return None
    return {status: counts.get(status, 0) for status in EVALUATION_STATUSES} | counts
