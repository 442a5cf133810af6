"""Writing the audit log: one row per mutation, in the mutation's own transaction."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from models.db.repositories.audit import AuditRepository
from models.db.tables import AuditLogEntry


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
