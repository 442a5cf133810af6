"""The traffic-log retention flow: scheduled daily, deletes a batch per transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from flows.deployments import deployments
from flows.runtime import Runtime
from flows.serving import prune_traffic_now
from models.db.engine import transaction
from models.db.tables import AuditLogEntry, TrafficLogEntry
from pipelines.organizations import ensure_organization
from pipelines.serving.service import Prediction, record_shadow_batch, traffic_row

NOW = datetime(2026, 3, 10, tzinfo=UTC)


def test_the_worker_prunes_traffic_daily() -> None:
    served = {d.name: d for d in deployments() if d.entrypoint == "flows.serving.prune_traffic_log"}
    assert list(served) == ["daily"]


def test_old_traffic_goes_in_batches(streamflow: Runtime) -> None:
    with transaction(streamflow.sessions) as session:
        org, _ = ensure_organization(session, slug="t-prune", name="T", kind="tenant", actor="t")
        record_shadow_batch(
            session,
            [
                traffic_row(
                    Prediction(f"r{n}", org.id, "intent", "m@1", "x", "y", 1.0),
                    now=NOW - timedelta(days=40 if n < 5 else 1),
                    text_limit=10,
                )
                for n in range(7)
            ],
        )
    deleted = prune_traffic_now(streamflow.sessions, retention_days=30, clock=lambda: NOW, batch=2)
    assert deleted == 5
    with transaction(streamflow.sessions) as session:
        assert session.scalar(select(func.count()).select_from(TrafficLogEntry)) == 2
        audits = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "traffic_log.pruned")
        )
        assert sum(a.details["deleted"] for a in audits) == 5
