"""The audit log: one row per mutation, written in the mutation's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import AuditLogEntry, Organization


class AuditRepository(Repository):
    """SQL for audit rows."""

    ORDER = Keyset.of(AuditLogEntry.id, descending=True)
    """Newest first (ids grow with time)."""

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

    def page_matching(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: Key | None = None,
        limit: int = 50,
    ) -> KeysetPage[tuple[AuditLogEntry, str | None]]:
        """Matching rows in `ORDER` with their organisation's slug."""
        query = select(AuditLogEntry, Organization.slug).outerjoin(
            Organization, Organization.id == AuditLogEntry.organization_id
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
        return self.page(query, self.ORDER, after=after, limit=limit)


def record_audit(
    session: Session,
    action: str,
    target: object,
    *,
    actor: str,
    organization_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Record that `actor` did `action` (`<target type>.<verb>`, e.g. `api_key.issued`) to `target`.

    The target's type is the action's noun; `organization_id` is None for platform-wide changes.
    """
    target_type, dot, verb = action.partition(".")
    if not (dot and target_type and verb):
        raise ValueError(f"audit action {action!r} is not '<target type>.<verb>'")
    return AuditRepository(session).record(
        actor=actor,
        organization_id=organization_id,
        action=action,
        target_type=target_type,
        target_id=str(target),
        details=details,
    )
