"""E-mail through a real SMTP server (aiosmtpd on 127.0.0.1): notices reach tenants by e-mail
and webhook when they start, from jobs queued with the notice."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from flows.dispatcher import dispatch_once
from models.db.engine import transaction
from models.db.tables import Job
from pipelines.email.service import SmtpSettings, set_notification_email
from pipelines.notices.service import NoticeDraft, create_notice
from tests.pipelines.jobs.conftest import JobWorld


class Inbox:
    """Collects every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Inbox, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_a_notice_is_mailed_and_announced_when_it_starts(
    job_world: JobWorld, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    address = f"ops-{uuid.uuid4().hex[:8]}@acme.example"
    url, _ = job_world.endpoint("ok", ["notice.published"])
    with transaction(job_world.sessions) as session:
        set_notification_email(session, slug="acme", address=address, actor="test")
        notice = create_notice(
            session,
            draft=NoticeDraft(
                title="Maintenance",
                body="Down for an hour.",
                severity="warning",
                starts_at=job_world.clock() + timedelta(hours=1),
            ),
            actor="provider:test",
            now=job_world.clock(),
        )
    dispatcher = job_world.dispatcher()
    dispatcher.smtp = SmtpSettings(host="127.0.0.1", port=port, timeout_seconds=5)
    dispatcher.public_url = "https://api.example.com/streamflow/"
    assert dispatch_once(dispatcher).claimed == 0  # due when the notice starts
    job_world.clock.advance(3600)
    assert dispatch_once(dispatcher).statuses == {"succeeded": 2}

    mine = [(to, m) for to, m in inbox.messages if to == [address]]
    assert len(mine) == 1
    message = mine[0][1]
    assert message["Subject"] == "[warning] Maintenance"
    with transaction(job_world.sessions) as session:
        email_job = session.scalars(select(Job).where(Job.kind == "email")).one()
    assert message["Message-ID"] == f"<{email_job.id}@streamflow>"
    text = message.get_payload()
    assert "Down for an hour." in text
    assert "Every active notice: https://api.example.com/streamflow/v1/notices" in text
    (delivered,) = job_world.receiver.at(url)
    assert b'"notice.published"' in delivered.body
    assert str(notice.id).encode() in delivered.body
    links = json.loads(delivered.body)["data"]["links"]
    assert links == {"notices": "https://api.example.com/streamflow/v1/notices"}


def test_without_smtp_an_email_job_fails_with_the_reason(job_world: JobWorld) -> None:
    with transaction(job_world.sessions) as session:
        set_notification_email(session, slug="acme", address="ops@acme.example", actor="test")
        create_notice(
            session,
            draft=NoticeDraft(title="t", body="b"),
            actor="provider:test",
            now=job_world.clock(),
        )
    assert dispatch_once(job_world.dispatcher()).statuses == {"failed": 1}
    with transaction(job_world.sessions) as session:
        job = session.scalars(select(Job)).one()
        assert job.last_error == "e-mail is not configured (set STREAMFLOW_SMTP_HOST)"


def test_a_bad_address_is_refused(job_world: JobWorld) -> None:
    from pipelines.errors import InvalidInput

    with transaction(job_world.sessions) as session, pytest.raises(InvalidInput, match="e-mail"):
        set_notification_email(session, slug="acme", address="not an address", actor="test")
