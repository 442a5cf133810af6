"""The jobs table as a queue: enqueue in the caller's transaction, claim due jobs with a lease,
finish them as their lease holder, return expired leases."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models.db.enums import JobAttemptOutcome, JobStatus
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import Job, JobArtifact, JobAttempt

QUEUED, RUNNING = str(JobStatus.QUEUED), str(JobStatus.RUNNING)


@dataclass(frozen=True)
class ClaimLimits:
    """How many jobs one claim may take (`prefetch`), and how many may run at once per tenant
    and per webhook endpoint, across dispatchers."""

    prefetch: int
    per_tenant: int
    per_endpoint: int


class JobRepository(Repository):
    """SQL for jobs, their attempts and artifacts."""

    ORDER = Keyset.of(Job.created_at, Job.id, descending=True)
    """Listings: newest first."""
    ATTEMPT_ORDER = Keyset.of(JobAttempt.number)

    def enqueue(self, job: Job) -> tuple[Job, bool]:
        """Add `job` unless one with its (organisation, kind, idempotency key) exists:
        (the stored job, whether it was added). Runs in the caller's transaction: one
        INSERT … ON CONFLICT DO NOTHING, so concurrent enqueuers of one key add one job."""
        existing = self.by_key(job.organization_id, job.kind, job.idempotency_key)
        if existing is not None:
            return existing, False
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        values = {
            column.key: getattr(job, column.key)
            for column in cast(Table, Job.__table__).columns
            if getattr(job, column.key) is not None
        }
        table = cast(Table, Job.__table__)
        statement = (
            insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["organization_id", "kind", "idempotency_key"])
            .returning(table.c.id)
        )
        added = self.session.execute(statement).scalar_one_or_none() is not None
        stored = self.by_key(job.organization_id, job.kind, job.idempotency_key)
        if stored is None:
            raise RuntimeError("a job vanished right after it was enqueued")
        return stored, added

    def by_key(self, organization_id: uuid.UUID, kind: str, key: str) -> Job | None:
        return self.session.scalars(
            select(Job).where(
                Job.organization_id == organization_id, Job.kind == kind, Job.idempotency_key == key
            )
        ).first()

    def get(self, job_id: uuid.UUID, *, organization_id: uuid.UUID | None = None) -> Job | None:
        query = select(Job).where(Job.id == job_id)
        if organization_id is not None:
            query = query.where(Job.organization_id == organization_id)
        return self.session.scalars(query).first()

    def page_matching(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        kind: str | None = None,
        status: str | None = None,
        webhook_endpoint_id: uuid.UUID | None = None,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[Job]:
        query = select(Job)
        if organization_id is not None:
            query = query.where(Job.organization_id == organization_id)
        if kind is not None:
            query = query.where(Job.kind == kind)
        if status is not None:
            query = query.where(Job.status == status)
        if webhook_endpoint_id is not None:
            query = query.where(Job.webhook_endpoint_id == webhook_endpoint_id)
        return self.page(query, self.ORDER, after=after, limit=limit)

    def ids_matching(self, *, kind: str, status: str, limit: int) -> list[uuid.UUID]:
        return list(
            self.session.scalars(
                select(Job.id)
                .where(Job.kind == kind, Job.status == status)
                .order_by(Job.created_at)
                .limit(limit)
            )
        )

    def queued_by_key(
        self, kind: str, *, key: str | None = None, key_prefix: str | None = None
    ) -> list[Job]:
        """Queued jobs of `kind` (every organisation) whose idempotency key is `key` or starts
        with `key_prefix`, locked on PostgreSQL against a dispatcher's claim."""
        query = select(Job).where(Job.kind == kind, Job.status == QUEUED)
        if key is not None:
            query = query.where(Job.idempotency_key == key)
        if key_prefix is not None:
            query = query.where(Job.idempotency_key.startswith(key_prefix, autoescape=True))
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update()
        return list(self.session.scalars(query.order_by(Job.created_at, Job.id)))

    def cancel_queued(self, job_ids: Sequence[uuid.UUID], *, now: datetime, reason: str) -> int:
        """Cancel those of the jobs still queued (one guarded UPDATE); how many."""
        if not job_ids:
            return 0
        statement = (
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.status == QUEUED)
            .values(
                status=str(JobStatus.CANCELLED), last_error=reason, finished_at=now, updated_at=now
            )
            .returning(Job.id)
            .execution_options(synchronize_session="fetch")
        )
        return len(list(self.session.execute(statement)))

    # --- the queue ---------------------------------------------------------------------------

    def running_counts(self) -> list[tuple[uuid.UUID, uuid.UUID | None, int]]:
        """Running jobs per (organisation, webhook endpoint), expired leases included."""
        rows = self.session.execute(
            select(Job.organization_id, Job.webhook_endpoint_id, func.count())
            .where(Job.status == RUNNING)
            .group_by(Job.organization_id, Job.webhook_endpoint_id)
        )
        return [(row[0], row[1], int(row[2])) for row in rows]

    def lease_due(
        self,
        *,
        now: datetime,
        limit: int,
        skip_tenants: Sequence[uuid.UUID],
        skip_endpoints: Sequence[uuid.UUID],
        owner: str,
        lease_until: datetime,
        flow_run_id: str | None,
    ) -> list[Any]:
        """Lease up to `limit` due queued jobs, oldest due first, outside the skipped tenants
        and endpoints, with ONE guarded `UPDATE … RETURNING` whose subquery picks the rows.

        On PostgreSQL the subquery locks them `FOR UPDATE SKIP LOCKED` (rows another
        dispatcher is claiming are passed over); on SQLite the UPDATE holds the single
        writer's lock. Either way the UPDATE checks `status = 'queued'` again, so a job is
        leased once. Rows of (id, organization_id, kind, payload, attempts, max_attempts,
        webhook_endpoint_id, created_at)."""
        due = select(Job.id).where(Job.status == QUEUED, Job.next_attempt_at <= now)
        if skip_tenants:
            due = due.where(Job.organization_id.not_in(list(skip_tenants)))
        if skip_endpoints:
            due = due.where(
                or_(
                    Job.webhook_endpoint_id.is_(None),
                    Job.webhook_endpoint_id.not_in(list(skip_endpoints)),
                )
            )
        due = due.order_by(Job.next_attempt_at, Job.id).limit(limit)
        if self.session.get_bind().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        statement = (
            update(Job)
            .where(Job.id.in_(due.scalar_subquery()), Job.status == QUEUED)
            .values(
                status=RUNNING,
                lease_owner=owner,
                lease_expires_at=lease_until,
                attempts=Job.attempts + 1,
                flow_run_id=flow_run_id,
                updated_at=now,
            )
            .returning(
                Job.id,
                Job.organization_id,
                Job.kind,
                Job.payload,
                Job.attempts,
                Job.max_attempts,
                Job.webhook_endpoint_id,
                Job.created_at,
            )
            .execution_options(synchronize_session=False)
        )
        return list(self.session.execute(statement))

    def leased_many(self, job_ids: Sequence[uuid.UUID], owner: str) -> dict[uuid.UUID, Job]:
        """Those of the jobs whose lease `owner` still holds (one query)."""
        if not job_ids:
            return {}
        rows = self.session.scalars(
            select(Job)
            .where(Job.id.in_(list(job_ids)), Job.status == RUNNING, Job.lease_owner == owner)
            .execution_options(populate_existing=True)
        )
        return {job.id: job for job in rows}

    def release(self, job_ids: Sequence[uuid.UUID], *, owner: str, now: datetime) -> int:
        """Give leased jobs that were never started back to the queue, the attempt uncounted."""
        if not job_ids:
            return 0
        statement = (
            update(Job)
            .where(Job.id.in_(list(job_ids)), Job.status == RUNNING, Job.lease_owner == owner)
            .values(
                status=QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                attempts=Job.attempts - 1,
                updated_at=now,
            )
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        return len(list(self.session.execute(statement)))

    def leased(self, job_id: uuid.UUID, owner: str) -> Job | None:
        """The job if `owner` still holds its lease."""
        return self.session.scalars(
            select(Job)
            .where(Job.id == job_id, Job.status == RUNNING, Job.lease_owner == owner)
            .execution_options(populate_existing=True)
        ).first()

    def expired_leases(self, now: datetime) -> list[Job]:
        query = select(Job).where(Job.status == RUNNING, Job.lease_expires_at < now)
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def take_expired(self, job_id: uuid.UUID, now: datetime) -> bool:
        """Take a job whose lease expired away from its holder (one guarded UPDATE), so two
        dispatchers never both return it to the queue."""
        statement = (
            update(Job)
            .where(Job.id == job_id, Job.status == RUNNING, Job.lease_expires_at < now)
            .values(lease_expires_at=None, updated_at=now)
            .returning(Job.id)
            .execution_options(synchronize_session=False)
        )
        return self.session.execute(statement).first() is not None

    def add_attempt(
        self,
        job: Job,
        *,
        owner: str,
        started_at: datetime,
        finished_at: datetime,
        outcome: JobAttemptOutcome,
        status_code: int | None = None,
        error: str | None = None,
        flush: bool = True,
    ) -> JobAttempt:
        attempt = JobAttempt(
            job_id=job.id,
            organization_id=job.organization_id,
            number=job.attempts,
            lease_owner=owner,
            started_at=started_at,
            finished_at=finished_at,
            outcome=str(outcome),
            status_code=status_code,
            error=error,
        )
        self.session.add(attempt)
        if flush:
            self.session.flush()
        return attempt

    def page_attempts(
        self, job_id: uuid.UUID, *, after: Key | None, limit: int
    ) -> KeysetPage[JobAttempt]:
        query = select(JobAttempt).where(JobAttempt.job_id == job_id)
        return self.page(query, self.ATTEMPT_ORDER, after=after, limit=limit)

    def attempts_of(self, job_id: uuid.UUID) -> list[JobAttempt]:
        return list(
            self.session.scalars(
                select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
            )
        )

    # --- artifacts ---------------------------------------------------------------------------

    def put_artifact(self, job: Job, name: str, media_type: str, content: str) -> JobArtifact:
        """Store (or replace) one artifact of a job."""
        artifact = self.session.get(JobArtifact, (job.id, name))
        if artifact is None:
            artifact = JobArtifact(job_id=job.id, organization_id=job.organization_id, name=name)
            self.session.add(artifact)
        artifact.media_type = media_type
        artifact.content = content
        self.session.flush()
        return artifact

    def artifact(self, job_id: uuid.UUID, name: str) -> JobArtifact | None:
        return self.session.get(JobArtifact, (job_id, name))

    def artifact_names(self, job_id: uuid.UUID) -> list[str]:
        return list(
            self.session.scalars(
                select(JobArtifact.name)
                .where(JobArtifact.job_id == job_id)
                .order_by(JobArtifact.name)
            )
        )

    # --- gauges ------------------------------------------------------------------------------

    def queued_by_kind(self) -> dict[str, int]:
        rows = self.session.execute(
            select(Job.kind, func.count()).where(Job.status == QUEUED).group_by(Job.kind)
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def oldest_due(self, now: datetime) -> datetime | None:
        found: datetime | None = self.session.scalar(
            select(func.min(Job.next_attempt_at)).where(
                Job.status == QUEUED, Job.next_attempt_at <= now
            )
        )
        return found

    def count_status(self, status: str) -> int:
        return int(self.session.scalar(select(func.count()).where(Job.status == status)) or 0)

    def attempt_outcomes(self, kind: str) -> dict[str, int]:
        rows = self.session.execute(
            select(JobAttempt.outcome, func.count())
            .join(Job, Job.id == JobAttempt.job_id)
            .where(Job.kind == kind)
            .group_by(JobAttempt.outcome)
        )
        return {str(row[0]): int(row[1]) for row in rows}
