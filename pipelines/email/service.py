"""E-mail through SMTP: queued as jobs in the cause's transaction, sent by the dispatcher.

The job id is the message's `Message-ID`, so a retry after a lost answer can be recognised."""

from __future__ import annotations

import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy.orm import Session

from models.db.enums import JobAttemptOutcome, JobKind
from models.db.repositories.audit import record_audit
from models.db.repositories.organizations import OrganizationRepository
from models.db.tables import Job
from pipelines.errors import InvalidInput, NotFound
from pipelines.jobs import service as jobs
from pipelines.links import LOCAL_PUBLIC_URL, with_links


@dataclass(frozen=True)
class SmtpSettings:
    """Where mail goes (the caller reads them from `STREAMFLOW_SMTP_*`)."""

    host: str | None = None
    """None: e-mail is off and e-mail jobs fail with that reason."""
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    use_ssl: bool = False
    sender: str = "StreamFlow <streamflow@localhost>"
    timeout_seconds: float = 15.0


def check_address(address: str, *, field: str = "email") -> str:
    """A plausible single e-mail address, trimmed; InvalidInput otherwise."""
    text = address.strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or "." not in domain or any(c in text for c in " \r\n,;<>\x00"):
        raise InvalidInput(f"{address!r} is not an e-mail address", field=field)
    if len(text) > 320:
        raise InvalidInput("an e-mail address has at most 320 characters", field=field)
    return text


def queue_email(
    session: Session,
    *,
    organization_id: uuid.UUID,
    subject: str,
    text: str,
    idempotency_key: str,
    now: datetime,
    not_before: datetime | None = None,
    links: dict[str, str] | None = None,
) -> Job | None:
    """Queue an e-mail to the organisation's notification address (none set: nothing).

    `links` (label → API path) end the message as absolute links, made when it is sent."""
    organization = OrganizationRepository(session).get(organization_id)
    if organization is None or not organization.notification_email:
        return None
    job, _ = jobs.enqueue(
        session,
        organization_id=organization_id,
        kind=JobKind.EMAIL,
        payload={
            "to": organization.notification_email,
            "subject": subject,
            "text": text,
            **({"links": links} if links else {}),
        },
        idempotency_key=idempotency_key,
        now=now,
        not_before=not_before,
    )
    return job


def send_email(
    settings: SmtpSettings,
    *,
    job_id: uuid.UUID,
    payload: dict[str, Any],
    now: datetime,
    public_url: str = LOCAL_PUBLIC_URL,
) -> jobs.Outcome:
    """Send one queued e-mail over SMTP; its links are made absolute under `public_url`."""
    if not settings.host:
        return jobs.Outcome(
            JobAttemptOutcome.FAILED,
            error="e-mail is not configured (set STREAMFLOW_SMTP_HOST)",
            permanent=True,
        )
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = payload["to"]
    message["Subject"] = payload["subject"]
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<{job_id}@streamflow>"
    message.set_content(with_links(public_url, payload["text"], payload.get("links") or {}))
    try:
        if settings.use_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout_seconds,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        with client:
            if settings.starttls:
                client.starttls(context=ssl.create_default_context())
            if settings.username:
                client.login(settings.username, settings.password or "")
            client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        return jobs.Outcome(
            JobAttemptOutcome.FAILED, error=f"recipient refused: {error}", permanent=True
        )
    except (smtplib.SMTPException, OSError) as error:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error=f"{type(error).__name__}: {error}")
    return jobs.Outcome(JobAttemptOutcome.SUCCEEDED, result={"to": payload["to"]})


def set_notification_email(
    session: Session, *, slug: str, address: str | None, actor: str
) -> str | None:
    """Set (or clear, with None) where an organisation's notices and report links go."""
    organization = OrganizationRepository(session).get_by_slug(slug)
    if organization is None:
        raise NotFound(f"organisation {slug!r} not found", field="organization")
    organization.notification_email = check_address(address) if address else None
    record_audit(
        session,
        "organization.notification_email_set",
        organization.id,
        actor=actor,
        organization_id=organization.id,
        details={"set": organization.notification_email is not None},
    )
    return organization.notification_email
