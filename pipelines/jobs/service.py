"""The jobs use cases: enqueue in the cause's transaction, claim due jobs under a lease, record
each attempt's outcome (success, a retry at the scheduled time, or `dead`), return expired
leases, and let operators retry or cancel. Every function takes the caller's session."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from models.db.enums import JobAttemptOutcome, JobKind, JobStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.jobs import ClaimLimits as ClaimLimits
from models.db.repositories.jobs import JobRepository
from models.db.tables import Job
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.jobs.retry import schedule_for

log = structlog.get_logger()

FINISHED = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED}
RETRYABLE = {JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED}
ERROR_LENGTH = 1000


def enqueue(
    session: Session,
    *,
    organization_id: uuid.UUID,
    kind: JobKind,
    payload: dict[str, Any],
    idempotency_key: str,
    now: datetime,
    not_before: datetime | None = None,
    webhook_endpoint_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
) -> tuple[Job, bool]:
    """Queue a job in the caller's transaction (it commits or rolls back with its cause).

    The same (organisation, kind, idempotency key) returns the stored job: (job, added)."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidInput("idempotency_key: give 1 to 200 characters", field="idempotency_key")
    job = Job(
        id=job_id or uuid.uuid4(),
        organization_id=organization_id,
        kind=str(kind),
        status=str(JobStatus.QUEUED),
        payload=payload,
        idempotency_key=idempotency_key,
        webhook_endpoint_id=webhook_endpoint_id,
        attempts=0,
        max_attempts=schedule_for(kind).max_attempts,
        next_attempt_at=max(not_before or now, now),
        created_at=now,
        updated_at=now,
        result={},
    )
    return JobRepository(session).enqueue(job)


@dataclass(frozen=True)
class ClaimedJob:
    """A job leased to one dispatcher: what its handler needs, detached from any session."""

    id: uuid.UUID
    organization_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    webhook_endpoint_id: uuid.UUID | None
    created_at: datetime
    owner: str
    started_at: datetime


@dataclass(frozen=True)
class Round:
    """The jobs one claim leased to a dispatcher, and how many of them may run at once per
    tenant and per webhook endpoint: the limit less what other dispatchers were running."""

    jobs: list[ClaimedJob]
    tenant_slots: dict[uuid.UUID, int]
    endpoint_slots: dict[uuid.UUID, int]


def claim(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_seconds: float,
    limits: ClaimLimits,
    flow_run_id: str | None = None,
) -> Round:
    """Lease up to `limits.prefetch` due jobs to `owner` until now + `lease_seconds`.

    Tenants and endpoints whose running jobs already reach their limit are skipped; the
    others may have more jobs leased than their limit, and the dispatcher runs at most their
    slots of them at once. Because leased jobs count as running, another dispatcher then
    leaves those tenants and endpoints alone until the round is recorded. The lease is one
    guarded UPDATE (FOR UPDATE SKIP LOCKED on PostgreSQL), so two dispatchers never hold the
    same job."""
    repository = JobRepository(session)
    per_tenant: dict[uuid.UUID, int] = {}
    per_endpoint: dict[uuid.UUID, int] = {}
    for tenant, endpoint, count in repository.running_counts():
        per_tenant[tenant] = per_tenant.get(tenant, 0) + count
        if endpoint is not None:
            per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + count
    rows = repository.lease_due(
        now=now,
        limit=limits.prefetch,
        skip_tenants=[t for t, n in per_tenant.items() if n >= limits.per_tenant],
        skip_endpoints=[e for e, n in per_endpoint.items() if n >= limits.per_endpoint],
        owner=owner,
        lease_until=now + timedelta(seconds=lease_seconds),
        flow_run_id=flow_run_id,
    )
    claimed = [
        ClaimedJob(
            id=row.id,
            organization_id=row.organization_id,
            kind=row.kind,
            payload=dict(row.payload),
            attempt=row.attempts,
            max_attempts=row.max_attempts,
            webhook_endpoint_id=row.webhook_endpoint_id,
            created_at=row.created_at,
            owner=owner,
            started_at=now,
        )
        for row in rows
    ]
    claimed.sort(key=lambda c: (c.created_at, str(c.id)))
    return Round(
        jobs=claimed,
        tenant_slots={
            job.organization_id: limits.per_tenant - per_tenant.get(job.organization_id, 0)
            for job in claimed
        },
        endpoint_slots={
            job.webhook_endpoint_id: limits.per_endpoint
            - per_endpoint.get(job.webhook_endpoint_id, 0)
            for job in claimed
            if job.webhook_endpoint_id is not None
        },
    )


def release(session: Session, job_ids: list[uuid.UUID], *, owner: str, now: datetime) -> int:
    """Return leased jobs a round never started to the queue, their attempt uncounted."""
    return JobRepository(session).release(job_ids, owner=owner, now=now)


def reclaim_expired(session: Session, *, now: datetime, draw: float = 0.5) -> list[uuid.UUID]:
    """Return jobs whose lease expired (their dispatcher died) to the queue, or to `dead` if
    that was their last attempt; the lost attempt is recorded."""
    jobs = JobRepository(session)
    reclaimed = []
    for job in jobs.expired_leases(now):
        owner = job.lease_owner or "unknown"
        started_at = job.updated_at
        if not jobs.take_expired(job.id, now):
            continue  # another dispatcher returned it first
        jobs.add_attempt(
            job,
            owner=owner,
            started_at=started_at,
            finished_at=now,
            outcome=JobAttemptOutcome.LEASE_EXPIRED,
            error=f"the lease of {owner} expired before the job finished",
        )
        _reschedule(session, job, now=now, error="lease expired", draw=draw, retry_after=None)
        log.warning("job.lease_expired", job_id=str(job.id), owner=owner, status=job.status)
        reclaimed.append(job.id)
    return reclaimed


def _reschedule(
    session: Session,
    job: Job,
    *,
    now: datetime,
    error: str,
    draw: float,
    retry_after: float | None,
) -> None:
    schedule = schedule_for(job.kind)
    # An operator's retry grants a fresh schedule: count the attempts made since then.
    made = max(job.attempts - (job.max_attempts - schedule.max_attempts), 1)
    delay = schedule.delay_after(made, draw=draw, retry_after=retry_after)
    job.lease_owner = None
    job.lease_expires_at = None
    job.last_error = error[:ERROR_LENGTH]
    job.updated_at = now
    if delay is None or job.attempts >= job.max_attempts:
        job.status = str(JobStatus.DEAD)
        job.finished_at = now
        record_audit(
            session,
            "job.dead",
            job.id,
            actor="system:jobs",
            organization_id=job.organization_id,
            details={"kind": job.kind, "attempts": job.attempts, "error": job.last_error[:300]},
        )
    else:
        job.status = str(JobStatus.QUEUED)
        job.next_attempt_at = now + timedelta(seconds=delay)


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, as a handler reports it."""

    outcome: JobAttemptOutcome
    error: str | None = None
    status_code: int | None = None
    retry_after: float | None = None
    """Seconds the other side asked to wait before retrying."""
    permanent: bool = False
    """No retry can help (bad payload, endpoint gone): the job fails at once."""
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return self.outcome == JobAttemptOutcome.SUCCEEDED


def record(
    session: Session, claimed: ClaimedJob, outcome: Outcome, *, now: datetime, draw: float
) -> str | None:
    """Store an attempt's outcome if `claimed.owner` still holds the lease; the job's new
    status, or None when the lease was lost (another dispatcher owns the job now)."""
    job = JobRepository(session).leased(claimed.id, claimed.owner)
    if job is None:
        log.warning("job.lease_lost", job_id=str(claimed.id), owner=claimed.owner)
        return None
    _apply(session, job, Attempted(claimed, outcome, claimed.started_at, now), draw=draw)
    return job.status


@dataclass(frozen=True)
class Attempted:
    """One attempt a round made: the job, how it ended, when it started and finished."""

    job: ClaimedJob
    outcome: Outcome
    started_at: datetime
    finished_at: datetime


def record_many(
    session: Session, attempted: list[Attempted], *, draw: Callable[[], float]
) -> dict[uuid.UUID, str | None]:
    """Store the outcomes of a round's attempts in the caller's one transaction (the leases
    are checked with one query); each job's new status, None where the lease was lost."""
    if not attempted:
        return {}
    owners = {a.job.owner for a in attempted}
    leased: dict[uuid.UUID, Job] = {}
    repository = JobRepository(session)
    for owner in owners:
        leased |= repository.leased_many(
            [a.job.id for a in attempted if a.job.owner == owner], owner
        )
    statuses: dict[uuid.UUID, str | None] = {}
    for attempt in attempted:
        job = leased.get(attempt.job.id)
        if job is None:
            log.warning("job.lease_lost", job_id=str(attempt.job.id), owner=attempt.job.owner)
            statuses[attempt.job.id] = None
            continue
        _apply(session, job, attempt, draw=draw(), flush=False)
        statuses[attempt.job.id] = job.status
    session.flush()
    return statuses


def _apply(
    session: Session, job: Job, attempt: Attempted, *, draw: float, flush: bool = True
) -> None:
    outcome, now = attempt.outcome, attempt.finished_at
    JobRepository(session).add_attempt(
        job,
        owner=attempt.job.owner,
        started_at=attempt.started_at,
        finished_at=now,
        outcome=outcome.outcome,
        status_code=outcome.status_code,
        error=outcome.error[:ERROR_LENGTH] if outcome.error else None,
        flush=flush,
    )
    if outcome.succeeded:
        job.status = str(JobStatus.SUCCEEDED)
        job.result = outcome.result
        job.last_error = None
        job.finished_at = now
        job.updated_at = now
        job.lease_owner = None
        job.lease_expires_at = None
    elif outcome.permanent:
        job.status = str(JobStatus.FAILED)
        job.last_error = (outcome.error or "failed")[:ERROR_LENGTH]
        job.finished_at = now
        job.updated_at = now
        job.lease_owner = None
        job.lease_expires_at = None
    else:
        _reschedule(
            session,
            job,
            now=now,
            error=outcome.error or "failed",
            draw=draw,
            retry_after=outcome.retry_after,
        )
    log.info(
        "job.attempt_recorded",
        job_id=str(job.id),
        kind=job.kind,
        attempt=job.attempts,
        outcome=str(outcome.outcome),
        status=job.status,
    )


def queued_jobs(
    session: Session, *, kind: JobKind, key: str | None = None, key_prefix: str | None = None
) -> list[Job]:
    """The queued jobs a cause made (by their idempotency key, or its prefix), so the cause
    can move or cancel them in its own transaction; a running job is left to finish."""
    return JobRepository(session).queued_by_key(str(kind), key=key, key_prefix=key_prefix)


def withdraw(session: Session, queued: list[Job], *, now: datetime, reason: str) -> int:
    """Cancel those of the jobs still queued, whose cause is gone (the caller audits the
    cause); how many."""
    return JobRepository(session).cancel_queued(
        [job.id for job in queued], now=now, reason=reason[:ERROR_LENGTH]
    )


# --- operations --------------------------------------------------------------------------


def get_job(
    session: Session, *, job_id: uuid.UUID, organization_id: uuid.UUID | None = None
) -> Job:
    """A job (of one organisation when given); NotFound otherwise."""
    job = JobRepository(session).get(job_id, organization_id=organization_id)
    if job is None:
        raise NotFound(f"job {job_id} not found", field="job_id")
    return job


def retry_job(
    session: Session,
    *,
    job_id: uuid.UUID,
    actor: str,
    now: datetime,
    organization_id: uuid.UUID | None = None,
) -> Job:
    """Queue a dead, failed or cancelled job again with a fresh set of attempts."""
    job = get_job(session, job_id=job_id, organization_id=organization_id)
    if job.status not in RETRYABLE:
        raise Conflict(
            f"job {job.id} is {job.status}; only dead, failed or cancelled jobs are retried",
            field="job_id",
        )
    previous = job.status
    job.status = str(JobStatus.QUEUED)
    job.max_attempts = job.attempts + schedule_for(job.kind).max_attempts
    job.next_attempt_at = now
    job.finished_at = None
    job.updated_at = now
    record_audit(
        session,
        "job.retried",
        job.id,
        actor=actor,
        organization_id=job.organization_id,
        details={"kind": job.kind, "previous_status": previous},
    )
    return job


def retry_dead(
    session: Session, *, kind: str, actor: str, now: datetime, limit: int = 1000
) -> list[Job]:
    """Queue again every dead job of a kind (up to `limit`)."""
    if kind not in set(JobKind):
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(JobKind)}", field="kind")
    ids = JobRepository(session).ids_matching(kind=kind, status=str(JobStatus.DEAD), limit=limit)
    return [retry_job(session, job_id=job_id, actor=actor, now=now) for job_id in ids]


def cancel_job(
    session: Session,
    *,
    job_id: uuid.UUID,
    actor: str,
    now: datetime,
    organization_id: uuid.UUID | None = None,
) -> Job:
    """Cancel a queued or running job (a running attempt's result is then discarded)."""
    job = get_job(session, job_id=job_id, organization_id=organization_id)
    if job.status == JobStatus.CANCELLED:
        return job
    if job.status in FINISHED:
        raise Conflict(f"job {job.id} is already {job.status}", field="job_id")
    job.status = str(JobStatus.CANCELLED)
    job.lease_owner = None
    job.lease_expires_at = None
    job.finished_at = now
    job.updated_at = now
    record_audit(
        session,
        "job.cancelled",
        job.id,
        actor=actor,
        organization_id=job.organization_id,
        details={"kind": job.kind},
    )
    return job
