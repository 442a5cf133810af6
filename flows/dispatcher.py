"""The job dispatcher: claims due jobs, runs each with its handler, records the outcome.

`dispatch_once` is one pass (return expired leases, claim a batch, run it on `workers`
threads); the `dispatch-jobs` flow (flows/jobs.py) runs one pass as a Prefect flow run (the
local worker serves it every 15 seconds); `streamflow jobs dispatch` runs passes without
Prefect, once or until interrupted. A pass holds no transaction while a handler talks to the
outside world. Importing this module imports neither Prefect nor MLflow.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session, sessionmaker

from models.db.engine import transaction
from models.db.enums import JobAttemptOutcome, JobKind
from models.db.repositories.jobs import ClaimLimits
from pipelines.email.service import SmtpSettings, send_email
from pipelines.jobs import service as jobs
from pipelines.reports.service import generate_report
from pipelines.webhooks import service as webhooks

log = structlog.get_logger()

Clock = Callable[[], datetime]


class JobSettings(BaseSettings):
    """The dispatcher (`STREAMFLOW_JOBS_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_JOBS_", extra="ignore")

    workers: int = Field(default=2, ge=1)
    """Jobs run at once by one dispatcher."""
    batch_size: int = Field(default=50, ge=1)
    """Jobs claimed per pass."""
    lease_seconds: float = Field(default=300.0, gt=0)
    """How long a claimed job stays with its dispatcher before it returns to the queue."""
    per_tenant_concurrency: int = Field(default=4, ge=1)
    per_endpoint_concurrency: int = Field(default=2, ge=1)
    poll_seconds: float = Field(default=2.0, gt=0)
    """Pause between passes of `streamflow jobs dispatch` when the queue is empty."""
    ai_batch_size: int = Field(default=64, ge=1)


class WebhookSettings(BaseSettings):
    """Webhook deliveries (`STREAMFLOW_WEBHOOK_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_WEBHOOK_", extra="ignore")

    timeout_seconds: float = Field(default=15.0, gt=0)
    allow_private_addresses: bool = False
    api_base_url: str = "http://127.0.0.1:8000"


class SmtpEnvironment(BaseSettings):
    """SMTP (`STREAMFLOW_SMTP_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_SMTP_", extra="ignore")

    host: str | None = None
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    sender: str = "StreamFlow <streamflow@localhost>"
    timeout_seconds: float = 15.0

    def settings(self) -> SmtpSettings:
        return SmtpSettings(
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            starttls=self.starttls,
            use_ssl=self.ssl,
            sender=self.sender,
            timeout_seconds=self.timeout_seconds,
        )


@dataclass
class Dispatcher:
    """Everything one dispatcher needs; tests inject the clock, settings and predictor."""

    sessions: sessionmaker[Session]
    settings: JobSettings = field(default_factory=JobSettings)
    delivery: webhooks.DeliverySettings = field(default_factory=webhooks.DeliverySettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    clock: Clock = lambda: datetime.now(UTC)
    draw: Callable[[], float] = random.random
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )
    predict: Callable[[Any, list[str]], list[str]] | None = None
    flow_run_id: str | None = None

    @classmethod
    def from_environment(cls, sessions: sessionmaker[Session]) -> Dispatcher:
        webhook = WebhookSettings()
        return cls(
            sessions=sessions,
            settings=JobSettings(),
            delivery=webhooks.DeliverySettings(
                timeout_seconds=webhook.timeout_seconds,
                allow_private_addresses=webhook.allow_private_addresses,
                api_base_url=webhook.api_base_url,
            ),
            smtp=SmtpEnvironment().settings(),
        )

    @property
    def limits(self) -> ClaimLimits:
        return ClaimLimits(
            batch=self.settings.batch_size,
            per_tenant=self.settings.per_tenant_concurrency,
            per_endpoint=self.settings.per_endpoint_concurrency,
        )


@dataclass(frozen=True)
class DispatchOutcome:
    """What one pass did."""

    reclaimed: int
    claimed: int
    statuses: dict[str, int]


def dispatch_once(dispatcher: Dispatcher) -> DispatchOutcome:
    """Return expired leases, claim a batch of due jobs and run them on `workers` threads."""
    with transaction(dispatcher.sessions) as session:
        reclaimed = jobs.reclaim_expired(session, now=dispatcher.clock(), draw=dispatcher.draw())
    with transaction(dispatcher.sessions) as session:
        claimed = jobs.claim(
            session,
            owner=dispatcher.owner,
            now=dispatcher.clock(),
            lease_seconds=dispatcher.settings.lease_seconds,
            limits=dispatcher.limits,
            flow_run_id=dispatcher.flow_run_id,
        )
        # Webhooks are signed in the claim's transaction: one transaction fewer per delivery.
        prepared = {
            job.id: _prepare(dispatcher, session, job)
            for job in claimed
            if job.kind == JobKind.WEBHOOK
        }
    statuses: dict[str, int] = {}
    workers = min(dispatcher.settings.workers, len(claimed))
    if workers == 1:
        results = [run_job(dispatcher, job, prepared.get(job.id)) for job in claimed]
    elif workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job") as pool:
            results = list(
                pool.map(lambda job: run_job(dispatcher, job, prepared.get(job.id)), claimed)
            )
    else:
        results = []
    for status in results:
        key = status or "lease_lost"
        statuses[key] = statuses.get(key, 0) + 1
    return DispatchOutcome(len(reclaimed), len(claimed), statuses)


def _prepare(
    dispatcher: Dispatcher, session: Session, job: jobs.ClaimedJob
) -> webhooks.PreparedDelivery:
    return webhooks.prepare_delivery(
        session,
        organization_id=job.organization_id,
        endpoint_id=job.webhook_endpoint_id,
        payload=job.payload,
        settings=dispatcher.delivery,
        now=dispatcher.clock(),
    )


def run_job(dispatcher: Dispatcher, job: jobs.ClaimedJob, prepared: Any = None) -> str | None:
    """Run one claimed job (a webhook already `prepared` when given) and record its outcome;
    the job's new status."""
    with structlog.contextvars.bound_contextvars(job_id=str(job.id), job_kind=job.kind):
        try:
            if job.kind == JobKind.WEBHOOK:
                return _webhook(dispatcher, job, prepared)
            return _HANDLERS[job.kind](dispatcher, job)
        except _LeaseLost:
            return None
        except Exception as error:  # an unexpected failure is retried like any other
            log.exception("job.handler_crashed")
            outcome = jobs.Outcome(
                JobAttemptOutcome.FAILED, error=f"{type(error).__name__}: {error}"
            )
            return _record(dispatcher, job, outcome)


def _record(
    dispatcher: Dispatcher,
    job: jobs.ClaimedJob,
    outcome: jobs.Outcome,
    then: Callable[[Session], None] | None = None,
) -> str | None:
    with transaction(dispatcher.sessions) as session:
        status = jobs.record(session, job, outcome, now=dispatcher.clock(), draw=dispatcher.draw())
        if status is not None and then is not None:
            then(session)
    return status


def _webhook(
    dispatcher: Dispatcher,
    job: jobs.ClaimedJob,
    prepared: webhooks.PreparedDelivery | None = None,
) -> str | None:
    if prepared is None:
        with transaction(dispatcher.sessions) as session:
            prepared = _prepare(dispatcher, session, job)
    if prepared.skip_reason is not None:
        outcome = jobs.Outcome(JobAttemptOutcome.FAILED, error=prepared.skip_reason, permanent=True)
        return _record(dispatcher, job, outcome)
    outcome = webhooks.send_delivery(prepared, settings=dispatcher.delivery, now=dispatcher.clock())
    log.info("webhook.attempted", status_code=outcome.status_code, outcome=str(outcome.outcome))
    then = None
    if outcome.outcome == JobAttemptOutcome.GONE and job.webhook_endpoint_id is not None:
        endpoint_id = job.webhook_endpoint_id

        def then(session: Session) -> None:
            webhooks.endpoint_gone(
                session,
                organization_id=job.organization_id,
                endpoint_id=endpoint_id,
                now=dispatcher.clock(),
            )

    return _record(dispatcher, job, outcome, then)


def _email(dispatcher: Dispatcher, job: jobs.ClaimedJob) -> str | None:
    outcome = send_email(
        dispatcher.smtp, job_id=job.id, payload=job.payload, now=dispatcher.clock()
    )
    return _record(dispatcher, job, outcome)


class _LeaseLost(Exception):
    """The job's lease moved on: what the handler wrote in this transaction is dropped."""


def _record_or_abort(
    dispatcher: Dispatcher, session: Session, job: jobs.ClaimedJob, outcome: jobs.Outcome
) -> str:
    status = jobs.record(session, job, outcome, now=dispatcher.clock(), draw=dispatcher.draw())
    if status is None:
        raise _LeaseLost
    return status


def _report(dispatcher: Dispatcher, job: jobs.ClaimedJob) -> str | None:
    with transaction(dispatcher.sessions) as session:
        outcome = generate_report(
            session,
            organization_id=job.organization_id,
            job_id=job.id,
            payload=job.payload,
            now=dispatcher.clock(),
        )
        status = _record_or_abort(dispatcher, session, job, outcome)
    return status


def _ai_task(dispatcher: Dispatcher, job: jobs.ClaimedJob) -> str | None:
    from pipelines.ai_tasks import service as ai_tasks  # imports MLflow: only when needed

    predict = dispatcher.predict
    model, outputs = ai_tasks.run_ai_task(
        job.payload,
        batch_size=dispatcher.settings.ai_batch_size,
        **({"predict": predict} if predict is not None else {}),
    )
    with transaction(dispatcher.sessions) as session:
        outcome = ai_tasks.store_outputs(
            session,
            organization_id=job.organization_id,
            job_id=job.id,
            model=model,
            outputs=outputs,
            now=dispatcher.clock(),
        )
        status = _record_or_abort(dispatcher, session, job, outcome)
    return status


_HANDLERS: dict[str, Callable[[Dispatcher, jobs.ClaimedJob], str | None]] = {
    str(JobKind.EMAIL): _email,
    str(JobKind.REPORT): _report,
    str(JobKind.AI_TASK): _ai_task,
}


def dispatch_forever(
    dispatcher: Dispatcher, *, stop: threading.Event | None = None, passes: int | None = None
) -> int:
    """Run passes until `stop` is set (or `passes` ran); pause only when a pass found nothing.
    The number of jobs run."""
    done = 0
    count = 0
    while not (stop is not None and stop.is_set()) and (passes is None or count < passes):
        try:
            outcome = dispatch_once(dispatcher)
        except Exception:  # a database hiccup: log it and try again after a pause
            log.exception("jobs.dispatch_failed")
            outcome = DispatchOutcome(0, 0, {})
        done += outcome.claimed
        count += 1
        if outcome.claimed == 0:
            if stop is not None:
                stop.wait(dispatcher.settings.poll_seconds)
            else:
                time.sleep(dispatcher.settings.poll_seconds)
    return done
