"""The traffic-log retention flow: daily (served by `streamflow worker`) or on demand.

Deletes traffic rows older than `STREAMFLOW_SERVING_TRAFFIC_RETENTION_DAYS`, a batch per
transaction, so a long backlog never holds one huge transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from prefect import flow
from sqlalchemy.orm import Session, sessionmaker

from flows.runtime import runtime
from models.db.engine import transaction
from models.settings import ServingSettings
from pipelines.serving.service import prune_traffic

log = structlog.get_logger()

BATCH = 10_000


def prune_traffic_now(
    sessions: sessionmaker[Session],
    *,
    retention_days: int,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    batch: int = BATCH,
) -> int:
    """Delete every traffic row past the retention, a batch per transaction; how many went."""
    now = clock()
    total = 0
    while True:
        with transaction(sessions) as session:
            deleted = prune_traffic(
                session, now=now, retention_days=retention_days, actor="system", batch=batch
            )
        total += deleted
        if deleted < batch:
            return total


@flow(name="prune-traffic", log_prints=False)
def prune_traffic_log(retention_days: int | None = None) -> int:
    """Delete traffic-log rows older than the retention (default: the setting)."""
    days = retention_days or ServingSettings().traffic_retention_days
    deleted = prune_traffic_now(runtime().sessions, retention_days=days)
    log.info("traffic log pruned", deleted=deleted, retention_days=days)
    return deleted
