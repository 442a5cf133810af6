"""Reading the audit log: filtered, newest first, a page at a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models.db.repositories.audit import AuditRepository
from models.db.tables import AuditLogEntry
from pipelines.errors import InvalidInput
from pipelines.organizations import get_organization
from pipelines.pagination import Paged, after_key, as_paged


@dataclass(frozen=True)
class AuditEntryView:
    """An audit row with the slug of its organisation (None for platform-wide changes)."""

    entry: AuditLogEntry
    organization_slug: str | None


def audit_log_page(
    session: Session,
    *,
    organization: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Paged[AuditEntryView]:
    """Audit rows matching every given filter, newest first; `since` ≤ time < `until`."""
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until: must be after since")
    organization_id = get_organization(session, organization).id if organization else None
    page = AuditRepository(session).page_matching(
        organization_id=organization_id,
        actor=actor,
        action=action,
        since=since,
        until=until,
        after=after_key(cursor, AuditRepository.ORDER),
        limit=limit,
    )
    return as_paged(page, lambda row: AuditEntryView(*row))
