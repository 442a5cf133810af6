"""A notice's queued webhooks and e-mails follow it, in its own transaction, on PostgreSQL and
SQLite: a new start time moves them, new text rewrites them, a dropped tenant loses them and
retiring the notice cancels what was not sent yet."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from flows.dispatcher import dispatch_once
from models.db.engine import transaction
from models.db.tables import AuditLogEntry, Job
from pipelines.email.service import set_notification_email
from pipelines.notices.service import NoticeDraft, create_notice, retire_notice, update_notice
from pipelines.organizations import ensure_organization
from tests.pipelines.jobs.conftest import JobWorld


def _notice(world: JobWorld, *, hours: float = 1, audience: list[str] | None = None) -> uuid.UUID:
    world.endpoint("ok", ["notice.published"])
    with transaction(world.sessions) as session:
        set_notification_email(session, slug="acme", address="ops@acme.example", actor="test")
        notice = create_notice(
            session,
            draft=NoticeDraft(
                title="Maintenance",
                body="Down for an hour.",
                severity="warning",
                audience=audience or ["acme"],
                starts_at=world.clock() + timedelta(hours=hours),
            ),
            actor="provider:test",
            now=world.clock(),
        )
    return notice.id


def _jobs(world: JobWorld) -> list[Job]:
    with transaction(world.sessions) as session:
        return list(session.scalars(select(Job).order_by(Job.kind)))


def _update(world: JobWorld, notice_id: uuid.UUID, draft: NoticeDraft) -> None:
    with transaction(world.sessions) as session:
        update_notice(
            session, notice_id=notice_id, draft=draft, actor="provider:test", now=world.clock()
        )


def test_a_new_start_time_moves_the_queued_jobs(job_world: JobWorld) -> None:
    notice_id = _notice(job_world, hours=1)
    later = job_world.clock() + timedelta(hours=3)
    _update(job_world, notice_id, NoticeDraft(starts_at=later))
    queued = _jobs(job_world)
    assert [(j.kind, j.status, j.next_attempt_at) for j in queued] == [
        ("email", "queued", later),
        ("webhook", "queued", later),
    ]
    assert queued[1].payload["timestamp"] == later.isoformat()
    dispatcher = job_world.dispatcher()
    job_world.clock.advance(3600)
    assert dispatch_once(dispatcher).claimed == 0  # the old start: nothing is due
    job_world.clock.advance(2 * 3600)
    assert dispatch_once(dispatcher).claimed == 2
    with transaction(job_world.sessions) as session:
        audit = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "system_notice.updated")
        ).one()
        assert audit.details["jobs_updated"] == 2


def test_an_earlier_start_makes_them_due_and_new_text_reaches_the_email(
    job_world: JobWorld,
) -> None:
    notice_id = _notice(job_world, hours=5)
    _update(
        job_world,
        notice_id,
        NoticeDraft(starts_at=job_world.clock() - timedelta(minutes=1), title="Outage"),
    )
    email, webhook = _jobs(job_world)
    assert email.next_attempt_at == webhook.next_attempt_at == job_world.clock()
    assert email.payload["subject"] == "[warning] Outage"
    assert dispatch_once(job_world.dispatcher()).claimed == 2


def test_retiring_the_notice_cancels_what_was_not_sent(job_world: JobWorld) -> None:
    notice_id = _notice(job_world, hours=1)
    with transaction(job_world.sessions) as session:
        retire_notice(session, notice_id=notice_id, actor="provider:test", now=job_world.clock())
    assert {(j.status, j.last_error) for j in _jobs(job_world)} == {
        ("cancelled", "the notice was retired")
    }
    job_world.clock.advance(7200)
    assert dispatch_once(job_world.dispatcher()).claimed == 0
    with transaction(job_world.sessions) as session:
        audit = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.action == "system_notice.retired")
        ).one()
        assert audit.details == {"jobs_cancelled": 2}


def test_a_sent_message_is_left_alone(job_world: JobWorld) -> None:
    notice_id = _notice(job_world, hours=0)
    assert dispatch_once(job_world.dispatcher()).claimed == 2
    before = {(j.id, j.status, j.attempts) for j in _jobs(job_world)}
    _update(job_world, notice_id, NoticeDraft(starts_at=job_world.clock() + timedelta(hours=2)))
    with transaction(job_world.sessions) as session:
        retire_notice(session, notice_id=notice_id, actor="provider:test", now=job_world.clock())
    assert {(j.id, j.status, j.attempts) for j in _jobs(job_world)} == before


def test_a_dropped_tenant_loses_its_jobs_and_gets_them_back_when_added_again(
    job_world: JobWorld,
) -> None:
    with transaction(job_world.sessions) as session:
        ensure_organization(session, slug="globex", name="Globex", kind="tenant", actor="test")
    notice_id = _notice(job_world, hours=1, audience=["acme"])
    _update(job_world, notice_id, NoticeDraft(audience=["globex"]))
    assert {j.status for j in _jobs(job_world)} == {"cancelled"}
    _update(job_world, notice_id, NoticeDraft(audience=["acme", "globex"]))
    assert {(j.status, j.next_attempt_at) for j in _jobs(job_world)} == {
        ("queued", job_world.clock() + timedelta(hours=1))
    }
