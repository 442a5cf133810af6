"""The job dispatcher: works in rounds. A round leases due jobs, runs each with its handler,
and records the outcomes.

`dispatch_once` is one round: one transaction returns expired leases, leases up to `prefetch`
due jobs and signs their webhooks; `workers` threads run them within the per-tenant and
per-endpoint limits; one more transaction records what happened (reports and AI tasks store
their results with their outcome in their own transaction). So a job costs a fraction of two
commits, not two. The `dispatch-jobs` flow (flows/jobs.py) runs one round as a Prefect flow
run (the local worker serves it every 15 seconds); `streamflow jobs dispatch` runs rounds
without Prefect, once or until interrupted. A round holds no transaction while a handler
talks to the outside world. Importing this module imports neither Prefect nor MLflow."""

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
from pipelines.links import LOCAL_PUBLIC_URL
from pipelines.reports.service import generate_report
from pipelines.webhooks import service as webhooks

log = structlog.get_logger()

Clock = Callable[[], datetime]


class JobSettings(BaseSettings):
    """The dispatcher (`STREAMFLOW_JOBS_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_JOBS_", extra="ignore")

    workers: int = Field(default=2, ge=1)
    """Jobs run at once by one dispatcher."""
    prefetch: int = Field(default=50, ge=1)
    """Jobs leased per round (one transaction claims them, one records their outcomes); a
    tenant or endpoint still runs at most its concurrency limit of them at once."""
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


class PublicSettings(BaseSettings):
    """Where the API is reached from outside (`STREAMFLOW_PUBLIC_URL`): the base of the
    absolute links in webhook payloads and e-mails. Default: `streamflow serve`'s address."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_", extra="ignore")

    public_url: str = LOCAL_PUBLIC_URL


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
    public_url: str = LOCAL_PUBLIC_URL
    """The API's public base URL: links in webhook payloads and e-mails are made absolute."""

    @classmethod
    def from_environment(cls, sessions: sessionmaker[Session]) -> Dispatcher:
        webhook = WebhookSettings()
        return cls(
            sessions=sessions,
            settings=JobSettings(),
            delivery=webhooks.DeliverySettings(
                timeout_seconds=webhook.timeout_seconds,
                allow_private_addresses=webhook.allow_private_addresses,
            ),
            smtp=SmtpEnvironment().settings(),
            public_url=PublicSettings().public_url,
        )

    @property
    def limits(self) -> ClaimLimits:
        return ClaimLimits(
            prefetch=self.settings.prefetch,
            per_tenant=self.settings.per_tenant_concurrency,
            per_endpoint=self.settings.per_endpoint_concurrency,
        )


@dataclass(frozen=True)
class DispatchOutcome:
    """What one round did."""

    reclaimed: int
    claimed: int
    statuses: dict[str, int]


@dataclass(frozen=True)
class _Ran:
    """One job of a round: an outcome to record with the round, or a status its handler
    already recorded (reports and AI tasks store results with their outcome), or neither
    (never started, or the lease was lost)."""

    job: jobs.ClaimedJob
    attempted: jobs.Attempted | None = None
    status: str | None = None
    started: bool = True


class _Slots:
    """Hands a round's jobs to its workers, oldest first, while their tenant and endpoint
    have a free slot, and only while enough of the lease is left to finish one more."""

    def __init__(self, round_: jobs.Round, deadline: float) -> None:
        self.pending = list(round_.jobs)
        self.tenant_slots = dict(round_.tenant_slots)
        self.endpoint_slots = dict(round_.endpoint_slots)
        self.deadline = deadline
        self.condition = threading.Condition()

    def _fits(self, job: jobs.ClaimedJob) -> bool:
        if self.tenant_slots[job.organization_id] < 1:
            return False
        endpoint = job.webhook_endpoint_id
        return endpoint is None or self.endpoint_slots[endpoint] >= 1

    def _shift(self, job: jobs.ClaimedJob, by: int) -> None:
        self.tenant_slots[job.organization_id] += by
        if job.webhook_endpoint_id is not None:
            self.endpoint_slots[job.webhook_endpoint_id] += by

    def take(self) -> jobs.ClaimedJob | None:
        """The next job to run, waiting for a slot; None when the round has no more to start.
        Every tenant and endpoint of a round has at least one slot, so a wait always ends."""
        with self.condition:
            while self.pending and time.monotonic() < self.deadline:
                for index, job in enumerate(self.pending):
                    if self._fits(job):
                        del self.pending[index]
                        self._shift(job, -1)
                        return job
                self.condition.wait()
            return None

    def done(self, job: jobs.ClaimedJob) -> None:
        with self.condition:
            self._shift(job, +1)
            self.condition.notify_all()


def dispatch_once(dispatcher: Dispatcher) -> DispatchOutcome:
    """One round: in one transaction return expired leases, lease up to `prefetch` due jobs
    and sign their webhooks; run them on `workers` threads within the tenant and endpoint
    limits; record the outcomes in one more transaction."""
    started = time.monotonic()
    with transaction(dispatcher.sessions) as session:
        now = dispatcher.clock()
        reclaimed = jobs.reclaim_expired(session, now=now, draw=dispatcher.draw())
        round_ = jobs.claim(
            session,
            owner=dispatcher.owner,
            now=now,
            lease_seconds=dispatcher.settings.lease_seconds,
            limits=dispatcher.limits,
            flow_run_id=dispatcher.flow_run_id,
        )
        prepared = webhooks.prepare_deliveries(
            session,
            [job for job in round_.jobs if job.kind == JobKind.WEBHOOK],
            now=now,
            public_url=dispatcher.public_url,
        )
    # A job starts only while a webhook's timeout and a margin are left of the lease, so no
    # lease expires under a round that is still running.
    budget = max(
        dispatcher.settings.lease_seconds - dispatcher.delivery.timeout_seconds - 5.0,
        dispatcher.settings.lease_seconds / 2,
    )
    slots = _Slots(round_, deadline=started + budget)
    ran: list[_Ran] = []

    def work() -> None:
        while (job := slots.take()) is not None:
            try:
                result = run_job(dispatcher, job, prepared.get(job.id))
            finally:
                slots.done(job)
            ran.append(result)  # list.append is atomic

    workers = min(dispatcher.settings.workers, len(round_.jobs))
    if workers == 1:
        work()
    elif workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job") as pool:
            for future in [pool.submit(work) for _ in range(workers)]:
                future.result()
    statuses = _record_round(dispatcher, ran, unstarted=[job.id for job in slots.pending])
    return DispatchOutcome(len(reclaimed), len(round_.jobs), statuses)


def _record_round(
    dispatcher: Dispatcher, ran: list[_Ran], *, unstarted: list[uuid.UUID]
) -> dict[str, int]:
    """Record the round's pending outcomes (and release its unstarted jobs) in one
    transaction; the count of each resulting status."""
    attempted = [r.attempted for r in ran if r.attempted is not None]
    recorded: dict[uuid.UUID, str | None] = {}
    if attempted or unstarted:
        with transaction(dispatcher.sessions) as session:
            recorded = jobs.record_many(session, attempted, draw=dispatcher.draw)
            for attempt in attempted:
                endpoint_id = attempt.job.webhook_endpoint_id
                if (
                    attempt.outcome.outcome == JobAttemptOutcome.GONE
                    and endpoint_id is not None
                    and recorded.get(attempt.job.id) is not None
                ):
                    webhooks.endpoint_gone(
                        session,
                        organization_id=attempt.job.organization_id,
                        endpoint_id=endpoint_id,
                        now=attempt.finished_at,
                    )
            jobs.release(session, unstarted, owner=dispatcher.owner, now=dispatcher.clock())
    statuses: dict[str, int] = {}
    for result in ran:
        status = recorded.get(result.job.id) if result.attempted is not None else result.status
        key = status or "lease_lost"
        statuses[key] = statuses.get(key, 0) + 1
    if unstarted:
        statuses["released"] = len(unstarted)
    return statuses


def run_job(dispatcher: Dispatcher, job: jobs.ClaimedJob, prepared: Any = None) -> _Ran:
    """Run one claimed job (a webhook already `prepared` when given): its outcome for the
    round to record, or the status its handler recorded."""
    with structlog.contextvars.bound_contextvars(job_id=str(job.id), job_kind=job.kind):
        started_at = dispatcher.clock()
        try:
            if job.kind == JobKind.WEBHOOK:
                outcome = _webhook(dispatcher, job, prepared)
            elif job.kind == JobKind.EMAIL:
                outcome = send_email(
                    dispatcher.smtp,
                    job_id=job.id,
                    payload=job.payload,
                    now=started_at,
                    public_url=dispatcher.public_url,
                )
            else:
                return _Ran(job, status=_HANDLERS[job.kind](dispatcher, job))
        except _LeaseLost:
            return _Ran(job)
        except Exception as error:  # an unexpected failure is retried like any other
            log.exception("job.handler_crashed")
            outcome = jobs.Outcome(
                JobAttemptOutcome.FAILED, error=f"{type(error).__name__}: {error}"
            )
        return _Ran(job, attempted=jobs.Attempted(job, outcome, started_at, dispatcher.clock()))


def _webhook(
    dispatcher: Dispatcher,
    job: jobs.ClaimedJob,
    prepared: webhooks.PreparedDelivery | None = None,
) -> jobs.Outcome:
    if prepared is None:
        with transaction(dispatcher.sessions) as session:
            prepared = webhooks.prepare_delivery(
                session,
                organization_id=job.organization_id,
                endpoint_id=job.webhook_endpoint_id,
                payload=job.payload,
                now=dispatcher.clock(),
                public_url=dispatcher.public_url,
            )
    if prepared.skip_reason is not None:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error=prepared.skip_reason, permanent=True)
    outcome = webhooks.send_delivery(prepared, settings=dispatcher.delivery, now=dispatcher.clock())
    log.info("webhook.attempted", status_code=outcome.status_code, outcome=str(outcome.outcome))
    return outcome


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
