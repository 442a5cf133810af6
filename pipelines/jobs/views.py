"""Read models of jobs: listings with filters, one job with its attempts, queue gauges."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from models.db.enums import JobKind, JobStatus
from models.db.repositories.jobs import JobRepository
from models.db.repositories.organizations import OrganizationRepository
from models.db.tables import Job, JobAttempt
from pipelines.errors import InvalidInput, NotFound
from pipelines.jobs.read_models import AttemptView, JobView, QueueGauges
from pipelines.pagination import Paged, after_key, as_paged, next_cursor


def job_view(job: Job, organization: str) -> JobView:
    return JobView(
        id=job.id,
        organization=organization,
        kind=job.kind,
        status=job.status,
        idempotency_key=job.idempotency_key,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        next_attempt_at=job.next_attempt_at,
        lease_owner=job.lease_owner,
        lease_expires_at=job.lease_expires_at,
        last_error=job.last_error,
        flow_run_id=job.flow_run_id,
        webhook_endpoint_id=job.webhook_endpoint_id,
        payload=dict(job.payload),
        result=dict(job.result),
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def attempt_view(attempt: JobAttempt) -> AttemptView:
    return AttemptView(
        number=attempt.number,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        outcome=attempt.outcome,
        status_code=attempt.status_code,
        error=attempt.error,
    )


def _check_filter(value: str | None, allowed: type[JobKind] | type[JobStatus], name: str) -> None:
    if value is not None and value not in set(allowed):
        raise InvalidInput(f"{name}: {value!r} is not one of {', '.join(allowed)}", field=name)


def jobs_page(
    session: Session,
    *,
    organization: str | None,
    kind: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Paged[JobView]:
    """Jobs newest first, filtered by organisation slug, kind and status."""
    _check_filter(kind, JobKind, "kind")
    _check_filter(status, JobStatus, "status")
    organizations = OrganizationRepository(session)
    organization_id = None
    if organization is not None:
        found = organizations.get_by_slug(organization)
        if found is None:
            raise NotFound(f"organisation {organization!r} not found", field="organization")
        organization_id = found.id
    page = JobRepository(session).page_matching(
        organization_id=organization_id,
        kind=kind,
        status=status,
        after=after_key(cursor, JobRepository.ORDER),
        limit=limit,
    )
    slugs = _slugs(session, {job.organization_id for job in page.items})
    return Paged(
        [job_view(job, slugs[job.organization_id]) for job in page.items], next_cursor(page)
    )


def _slugs(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    organizations = OrganizationRepository(session)
    slugs = {}
    for organization_id in ids:
        found = organizations.get(organization_id)
        slugs[organization_id] = found.slug if found else str(organization_id)
    return slugs


def describe_job(session: Session, job: Job) -> JobView:
    """A job's view, with its organisation's slug."""
    return job_view(job, _slugs(session, {job.organization_id})[job.organization_id])


def job_detail(session: Session, *, job_id: uuid.UUID) -> tuple[JobView, list[AttemptView]]:
    """One job and all its attempts (the provider's view)."""
    jobs = JobRepository(session)
    job = jobs.get(job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found", field="job_id")
    slug = _slugs(session, {job.organization_id})[job.organization_id]
    return job_view(job, slug), [attempt_view(a) for a in jobs.attempts_of(job.id)]


def attempts_page(
    session: Session, *, job_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[AttemptView]:
    """The attempts of a job, first first."""
    page = JobRepository(session).page_attempts(
        job_id, after=after_key(cursor, JobRepository.ATTEMPT_ORDER), limit=limit
    )
    return as_paged(page, attempt_view)


def queue_gauges(session: Session, *, now: datetime) -> QueueGauges:
    """The numbers /metrics exports about the queue."""
    jobs = JobRepository(session)
    oldest = jobs.oldest_due(now)
    queued = jobs.queued_by_kind()
    return QueueGauges(
        queued_by_kind={str(kind): queued.get(str(kind), 0) for kind in JobKind},
        oldest_queued_age_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        dead=jobs.count_status(str(JobStatus.DEAD)),
        delivery_attempts_by_outcome=jobs.attempt_outcomes(str(JobKind.WEBHOOK)),
    )
