"""The audit log: one row per mutation, written in the mutation's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.tables import AuditLogEntry, Organization


class AuditRepository:
    """SQL for audit rows."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        actor: str,
        organization_id: uuid.UUID | None,
        action: str,
        target_type: str,
        target_id: str,
        details: dict[str, Any] | None = None,
    ) -> AuditLogEntry:
        """Add an audit row; the request or flow-run id comes from the logging context."""
        context = structlog.contextvars.get_contextvars()
        entry = AuditLogEntry(
            actor=actor,
            organization_id=organization_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            request_id=context.get("request_id"),
            flow_run_id=context.get("flow_run_id"),
            details=details or {},
        )
        self.session.add(entry)
        return entry

    def page(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[tuple[AuditLogEntry, str | None]]:
        """Matching rows newest first (keyset on id) with their organisation's slug."""
        query = (
            select(AuditLogEntry, Organization.slug)
            .outerjoin(Organization, Organization.id == AuditLogEntry.organization_id)
            .order_by(AuditLogEntry.id.desc())
            .limit(limit)
        )
        if organization_id is not None:
            query = query.where(AuditLogEntry.organization_id == organization_id)
        if actor is not None:
            query = query.where(AuditLogEntry.actor == actor)
        if action is not None:
            query = query.where(AuditLogEntry.action == action)
        if since is not None:
            query = query.where(AuditLogEntry.occurred_at >= since)
        if until is not None:
            query = query.where(AuditLogEntry.occurred_at < until)
        if before_id is not None:
            query = query.where(AuditLogEntry.id < before_id)
        return [(row[0], row[1]) for row in self.session.execute(query)]
