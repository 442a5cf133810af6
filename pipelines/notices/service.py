"""System notices: the provider creates, schedules, updates and retires them.

Tenants list the active notices addressed to them and acknowledge them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models.db.enums import JobKind, JobStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.notices import NoticeRepository
from models.db.repositories.organizations import OrganizationRepository
from models.db.repositories.webhooks import WebhookRepository
from models.db.tables import Job, NoticeAcknowledgement, SystemNotice
from pipelines.email.service import queue_email
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.jobs import service as jobs
from pipelines.pagination import Paged, after_key, as_paged, next_cursor
from pipelines.webhooks.service import emit_event

SEVERITIES = ("info", "warning", "critical")
PUBLISHED = "notice.published"
DROPPED = "the notice is no longer addressed to this tenant"
"""Why a tenant's notice jobs were cancelled; only those come back if it is addressed again."""


@dataclass(frozen=True)
class NoticeDraft:
    """Fields of a notice to create, or to change (None = leave as is) on update."""

    title: str | None = None
    body: str | None = None
    severity: str | None = None
    audience: Sequence[str] | None = None
    """None or ["*"] for every tenant, else tenant slugs."""
    starts_at: datetime | None = None
    ends_at: datetime | None = None


def notice_status(notice: SystemNotice, now: datetime) -> str:
    """scheduled, active, expired or retired."""
    if notice.retired_at is not None:
        return "retired"
    if notice.starts_at > now:
        return "scheduled"
    if notice.ends_at is not None and notice.ends_at <= now:
        return "expired"
    return "active"


def _audience_ids(session: Session, slugs: Sequence[str] | None) -> tuple[str, list[uuid.UUID]]:
    if slugs is None or list(slugs) == ["*"]:
        return "all", []
    if not slugs:
        raise InvalidInput(
            'audience: list tenant slugs, or omit it (or give ["*"]) for all tenants'
        )
    organizations = OrganizationRepository(session)
    ids = []
    for slug in slugs:
        organization = organizations.get_by_slug(slug)
        if organization is None or organization.kind != "tenant":
            raise InvalidInput(f"audience: {slug!r} is not a tenant slug")
        ids.append(organization.id)
    return "listed", ids


def _check(
    title: str, body: str, severity: str, starts_at: datetime, ends_at: datetime | None
) -> None:
    if not title.strip():
        raise InvalidInput("title: must not be empty")
    if not body.strip():
        raise InvalidInput("body: must not be empty")
    if severity not in SEVERITIES:
        raise InvalidInput(f"severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    if ends_at is not None and ends_at <= starts_at:
        raise InvalidInput("ends_at: must be after starts_at")


def create_notice(
    session: Session, *, draft: NoticeDraft, actor: str, now: datetime
) -> SystemNotice:
    """Create a notice, active from `starts_at` (default now) to `ends_at` (default open)."""
    title, body, severity = draft.title or "", draft.body or "", draft.severity or "info"
    starts_at = draft.starts_at or now
    _check(title, body, severity, starts_at, draft.ends_at)
    audience, ids = _audience_ids(session, draft.audience)
    notice = NoticeRepository(session).add(
        SystemNotice(
            title=title.strip(),
            body=body.strip(),
            severity=severity,
            audience=audience,
            starts_at=starts_at,
            ends_at=draft.ends_at,
            created_at=now,
            updated_at=now,
        ),
        ids,
    )
    record_audit(
        session,
        "system_notice.created",
        notice.id,
        actor=actor,
        details={"severity": severity, "audience": audience, "tenants": len(ids)},
    )
    _announce(session, notice, ids if audience == "listed" else None, now)
    return notice


def _announce(
    session: Session, notice: SystemNotice, tenants: list[uuid.UUID] | None, now: datetime
) -> None:
    """Queue `notice.published` webhooks and e-mails for each addressed tenant, due when the
    notice starts, in the notice's own transaction. Idempotent: a tenant keeps the jobs it
    has, and one addressed again after being dropped gets those jobs back (not jobs an
    operator cancelled)."""
    queued: list[Job | None] = []
    for organization_id in (
        tenants if tenants is not None else WebhookRepository(session).tenant_ids()
    ):
        queued += emit_event(
            session,
            organization_id=organization_id,
            event_type=PUBLISHED,
            subject_id=str(notice.id),
            data={
                "notice_id": str(notice.id),
                "severity": notice.severity,
                "links": {"notices": "/v1/notices"},
            },
            now=now,
            not_before=notice.starts_at,
        )
        email = queue_email(
            session,
            organization_id=organization_id,
            subject=_subject(notice),
            text=_text(notice),
            links=EMAIL_LINKS,
            idempotency_key=_email_key(notice.id),
            now=now,
            not_before=notice.starts_at,
        )
        queued.append(email)
    for job in queued:
        if job is not None and job.status == JobStatus.CANCELLED and job.last_error == DROPPED:
            job.status, job.finished_at, job.last_error = str(JobStatus.QUEUED), None, None
            job.next_attempt_at, job.updated_at = max(notice.starts_at, now), now


EMAIL_LINKS = {"Every active notice": "/v1/notices"}


def _subject(notice: SystemNotice) -> str:
    return f"[{notice.severity}] {notice.title}"


def _text(notice: SystemNotice) -> str:
    return f"{notice.body}\n"


def _email_key(notice_id: uuid.UUID) -> str:
    return f"notice:{notice_id}"


def _queued_jobs(session: Session, notice_id: uuid.UUID) -> list[Job]:
    """The notice's webhooks and e-mails still in the queue (keys as `_announce` and
    `emit_event` make them)."""
    return jobs.queued_jobs(
        session, kind=JobKind.WEBHOOK, key_prefix=f"{PUBLISHED}:{notice_id}:"
    ) + jobs.queued_jobs(session, kind=JobKind.EMAIL, key=_email_key(notice_id))


def _follow(session: Session, notice: SystemNotice, now: datetime) -> int:
    """Bring the notice's queued, never-attempted jobs in line with it: due when it starts
    now, with its current text. A retry of a message already attempted keeps its schedule.
    How many jobs changed."""
    due = max(notice.starts_at, now)
    changed = 0
    for job in _queued_jobs(session, notice.id):
        if job.attempts:
            continue
        if job.kind == JobKind.WEBHOOK:
            payload = {
                **job.payload,
                "timestamp": notice.starts_at.isoformat(),
                "data": {**job.payload.get("data", {}), "severity": notice.severity},
            }
        else:
            payload = {**job.payload, "subject": _subject(notice), "text": _text(notice)}
        if job.next_attempt_at != due or payload != job.payload:
            job.next_attempt_at, job.payload, job.updated_at = due, payload, now
            changed += 1
    return changed


def update_notice(
    session: Session, *, notice_id: uuid.UUID, draft: NoticeDraft, actor: str, now: datetime
) -> SystemNotice:
    """Change a notice's text, severity, audience or schedule (not once retired)."""
    notices = NoticeRepository(session)
    notice = notices.get(notice_id)
    if notice is None:
        raise NotFound(f"system notice {notice_id} not found")
    if notice.retired_at is not None:
        raise Conflict("this notice is retired; create a new one instead")
    title = draft.title if draft.title is not None else notice.title
    body = draft.body if draft.body is not None else notice.body
    severity = draft.severity if draft.severity is not None else notice.severity
    starts_at = draft.starts_at or notice.starts_at
    ends_at = draft.ends_at if draft.ends_at is not None else notice.ends_at
    _check(title, body, severity, starts_at, ends_at)
    changed = {
        field: True
        for field, value in (
            ("title", draft.title),
            ("body", draft.body),
            ("severity", draft.severity),
            ("starts_at", draft.starts_at),
            ("ends_at", draft.ends_at),
            ("audience", draft.audience),
        )
        if value is not None
    }
    notice.title, notice.body, notice.severity = title.strip(), body.strip(), severity
    notice.starts_at, notice.ends_at, notice.updated_at = starts_at, ends_at, now
    if draft.audience is not None:
        notice.audience, ids = _audience_ids(session, draft.audience)
        notices.set_audience(notice.id, ids)
        if notice.audience == "listed":
            dropped = [j for j in _queued_jobs(session, notice.id) if j.organization_id not in ids]
            jobs.withdraw(session, dropped, now=now, reason=DROPPED)
        _announce(session, notice, ids if notice.audience == "listed" else None, now)
    moved = _follow(session, notice, now)
    record_audit(
        session,
        "system_notice.updated",
        notice.id,
        actor=actor,
        details={"fields": sorted(changed)} | ({"jobs_updated": moved} if moved else {}),
    )
    return notice


def retire_notice(
    session: Session, *, notice_id: uuid.UUID, actor: str, now: datetime
) -> SystemNotice:
    """Retire a notice: tenants stop seeing it, and its webhooks and e-mails not yet sent are
    cancelled (idempotent)."""
    notice = NoticeRepository(session).get(notice_id)
    if notice is None:
        raise NotFound(f"system notice {notice_id} not found")
    if notice.retired_at is None:
        notice.retired_at = now
        notice.updated_at = now
        cancelled = jobs.withdraw(
            session, _queued_jobs(session, notice.id), now=now, reason="the notice was retired"
        )
        record_audit(
            session,
            "system_notice.retired",
            notice.id,
            actor=actor,
            details={"jobs_cancelled": cancelled} if cancelled else None,
        )
    return notice


@dataclass(frozen=True)
class TenantNotice:
    """An active notice as one tenant sees it: the notice and when the tenant acknowledged it."""

    id: uuid.UUID
    title: str
    body: str
    severity: str
    starts_at: datetime
    ends_at: datetime | None
    acknowledged_at: datetime | None


def notices_for_tenant(
    session: Session,
    *,
    organization_id: uuid.UUID,
    now: datetime,
    cursor: str | None,
    limit: int,
) -> Paged[TenantNotice]:
    """Active notices addressed to a tenant, newest first, with its acknowledgement times."""
    after = after_key(cursor, NoticeRepository.ACTIVE_ORDER)
    page = NoticeRepository(session).page_active_for(
        organization_id, now=now, after=after, limit=limit
    )
    return as_paged(page, lambda row: _tenant_notice(*row))


def _tenant_notice(notice: SystemNotice, acknowledged_at: datetime | None) -> TenantNotice:
    return TenantNotice(
        id=notice.id,
        title=notice.title,
        body=notice.body,
        severity=notice.severity,
        starts_at=notice.starts_at,
        ends_at=notice.ends_at,
        acknowledged_at=acknowledged_at,
    )


def acknowledge_notice(
    session: Session, *, organization_id: uuid.UUID, notice_id: uuid.UUID, actor: str, now: datetime
) -> NoticeAcknowledgement:
    """A tenant acknowledges an active notice addressed to it (idempotent)."""
    notices = NoticeRepository(session)
    if notices.get_active_for(organization_id, notice_id, now=now) is None:
        raise NotFound(f"system notice {notice_id} not found")
    existing = notices.acknowledgement(organization_id, notice_id)
    if existing is not None:
        return existing
    ack = notices.acknowledge(organization_id, notice_id, actor=actor, now=now)
    record_audit(
        session,
        "system_notice.acknowledged",
        notice_id,
        actor=actor,
        organization_id=organization_id,
    )
    return ack


@dataclass(frozen=True)
class NoticeView:
    """A notice as the provider sees it: with its status now and its audience by slug."""

    notice: SystemNotice
    status: str
    audience: tuple[str, ...]
    """("*",) for every tenant, else the tenant slugs it is addressed to."""


def _views(session: Session, notices: Sequence[SystemNotice], now: datetime) -> list[NoticeView]:
    slugs = NoticeRepository(session).audience_slugs(
        [n.id for n in notices if n.audience == "listed"]
    )
    return [
        NoticeView(
            notice=notice,
            status=notice_status(notice, now),
            audience=("*",) if notice.audience == "all" else tuple(slugs.get(notice.id, [])),
        )
        for notice in notices
    ]


def create_notice_view(
    session: Session, *, draft: NoticeDraft, actor: str, now: datetime
) -> NoticeView:
    """Create a notice (see `create_notice`) and describe it."""
    return _views(session, [create_notice(session, draft=draft, actor=actor, now=now)], now)[0]


def update_notice_view(
    session: Session, *, notice_id: uuid.UUID, draft: NoticeDraft, actor: str, now: datetime
) -> NoticeView:
    """Change a notice (see `update_notice`) and describe it."""
    notice = update_notice(session, notice_id=notice_id, draft=draft, actor=actor, now=now)
    return _views(session, [notice], now)[0]


def retire_notice_view(
    session: Session, *, notice_id: uuid.UUID, actor: str, now: datetime
) -> NoticeView:
    """Retire a notice (see `retire_notice`) and describe it."""
    notice = retire_notice(session, notice_id=notice_id, actor=actor, now=now)
    return _views(session, [notice], now)[0]


def notice_views_page(
    session: Session, *, now: datetime, cursor: str | None, limit: int
) -> Paged[NoticeView]:
    """Every notice, newest first, whatever its status (the provider's view)."""
    page = NoticeRepository(session).page_all(
        after=after_key(cursor, NoticeRepository.ORDER), limit=limit
    )
    return Paged(_views(session, page.items, now), next_cursor(page))
