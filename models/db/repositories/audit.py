"""The audit log: one row per mutation, written in the mutation's own transaction."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from sqlalchemy.orm import Session

from models.db.tables import AuditLogEntry


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
