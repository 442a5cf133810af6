"""Experiments, the traffic log and feedback: the tables serving, shadow mode and A/B tests
write, and the windowed reads the comparison flow makes.

Experiments are platform-wide (no organisation). Traffic rows and feedback belong to a tenant;
tenant-facing reads take the organisation and filter by it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import (
    Experiment,
    Feedback,
    ProfitabilityDirtyDay,
    TrafficLogEntry,
    UsageEvent,
)

ACTIVE_STATUSES = ("running", "paused")
"""Statuses that hold an agent type (one experiment per agent type at most)."""


class ExperimentRepository(Repository):
    """SQL for experiments (platform-wide)."""

    ORDER = Keyset.of(Experiment.created_at, Experiment.id, descending=True)
    """Listings: newest first."""

    def get(self, experiment_id: uuid.UUID) -> Experiment | None:
        return self.session.get(Experiment, experiment_id)

    def get_for_update(self, experiment_id: uuid.UUID) -> Experiment | None:
        """The experiment, locked against concurrent status changes (PostgreSQL)."""
        return self.session.scalars(
            select(Experiment).where(Experiment.id == experiment_id).with_for_update()
        ).first()

    def add(self, experiment: Experiment) -> Experiment:
        self.session.add(experiment)
        self.session.flush()
        return experiment

    def active_for(self, agent_type: str) -> Experiment | None:
        """The running or paused experiment of an agent type, if any."""
        return self.session.scalars(
            select(Experiment).where(
                Experiment.agent_type == agent_type, Experiment.status.in_(ACTIVE_STATUSES)
            )
        ).first()

    def running(self) -> list[Experiment]:
        """Every running experiment (what the serving path consults)."""
        return list(self.session.scalars(select(Experiment).where(Experiment.status == "running")))

    def page_matching(
        self,
        *,
        agent_type: str | None = None,
        status: str | None = None,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[Experiment]:
        query = select(Experiment)
        if agent_type is not None:
            query = query.where(Experiment.agent_type == agent_type)
        if status is not None:
            query = query.where(Experiment.status == status)
        return self.page(query, self.ORDER, after=after, limit=limit)


class TrafficRepository(Repository):
    """SQL for the traffic log and feedback."""

    ORDER = Keyset.of(TrafficLogEntry.created_at, TrafficLogEntry.id)
    """Windowed reads: oldest first."""
    FEEDBACK_ORDER = Keyset.of(Feedback.created_at, Feedback.id)

    def add_entries(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert traffic rows (built alike, every column given) in one executemany; a row
        whose (request, role) is taken is skipped (a retried batch adds nothing)."""
        self.insert_rows_unless_taken(TrafficLogEntry, rows)

    def served(self, organization_id: uuid.UUID, request_id: str) -> TrafficLogEntry | None:
        """The served row of one of the organisation's requests."""
        return self.session.scalars(
            select(TrafficLogEntry).where(
                TrafficLogEntry.request_id == request_id,
                TrafficLogEntry.role == "served",
                TrafficLogEntry.organization_id == organization_id,
            )
        ).first()

    def served_counts(self, experiment_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """Requests served under each experiment (one row per request, shadows not counted)."""
        if not experiment_ids:
            return {}
        query = (
            select(TrafficLogEntry.experiment_id, func.count())
            .where(
                TrafficLogEntry.experiment_id.in_(list(experiment_ids)),
                TrafficLogEntry.role == "served",
            )
            .group_by(TrafficLogEntry.experiment_id)
        )
        return {row[0]: int(row[1]) for row in self.session.execute(query) if row[0] is not None}

    def window(
        self,
        *,
        experiment_id: uuid.UUID,
        since: datetime,
        until: datetime,
        role: str | None = None,
        after: Key | None = None,
        limit: int = 10_000,
    ) -> KeysetPage[TrafficLogEntry]:
        """An experiment's rows in [since, until), oldest first, a page at a time."""
        query = select(TrafficLogEntry).where(
            TrafficLogEntry.experiment_id == experiment_id,
            TrafficLogEntry.created_at >= since,
            TrafficLogEntry.created_at < until,
        )
        if role is not None:
            query = query.where(TrafficLogEntry.role == role)
        return self.page(query, self.ORDER, after=after, limit=limit)

    def prune(self, *, before: datetime, batch: int = 10_000) -> int:
        """Delete rows older than `before`, up to `batch` of them; how many went."""
        oldest = (
            select(TrafficLogEntry.id)
            .where(TrafficLogEntry.created_at < before)
            .order_by(TrafficLogEntry.created_at)
            .limit(batch)
        )
        result = self.session.execute(
            delete(TrafficLogEntry).where(TrafficLogEntry.id.in_(oldest.scalar_subquery()))
        )
        return int(_rowcount(result))

    def feedback(self, request_id: str, kind: str) -> Feedback | None:
        return self.session.scalars(
            select(Feedback).where(Feedback.request_id == request_id, Feedback.kind == kind)
        ).first()

    def add_feedback(self, row: Mapping[str, Any]) -> bool:
        """Insert feedback unless the request already has feedback of that kind."""
        return self.insert_unless_taken(Feedback, row)

    def feedback_page(
        self,
        *,
        organization_id: uuid.UUID | None,
        kind: str | None = None,
        agent_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: Key | None = None,
        limit: int = 10_000,
    ) -> KeysetPage[Feedback]:
        """Feedback oldest first; every tenant's when `organization_id` is None (the platform)."""
        query = select(Feedback)
        if organization_id is not None:
            query = query.where(Feedback.organization_id == organization_id)
        if kind is not None:
            query = query.where(Feedback.kind == kind)
        if agent_type is not None:
            query = query.where(Feedback.agent_type == agent_type)
        if since is not None:
            query = query.where(Feedback.created_at >= since)
        if until is not None:
            query = query.where(Feedback.created_at < until)
        return self.page(query, self.FEEDBACK_ORDER, after=after, limit=limit)

    def corrections_with_inputs(
        self, *, agent_type: str, kinds: Sequence[str], organization_id: uuid.UUID | None = None
    ) -> list[tuple[Feedback, TrafficLogEntry]]:
        """Feedback of `kinds` joined to the served row of its request (input and output)."""
        query = (
            select(Feedback, TrafficLogEntry)
            .join(
                TrafficLogEntry,
                (TrafficLogEntry.request_id == Feedback.request_id)
                & (TrafficLogEntry.role == "served"),
            )
            .where(Feedback.agent_type == agent_type, Feedback.kind.in_(kinds))
            .order_by(Feedback.created_at, Feedback.id)
        )
        if organization_id is not None:
            query = query.where(Feedback.organization_id == organization_id)
        return [(row[0], row[1]) for row in self.session.execute(query)]


def insert_traffic_rows(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain bulk insert of traffic rows (the shadow writer's batches), skipping taken keys."""
    TrafficRepository(session).add_entries(rows)


def _rowcount(result: Any) -> int:
    return int(result.rowcount) if isinstance(result, CursorResult) else 0


def record_usage_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Usage events (built alike, every column given) in one insert (each skipped if its id
    is stored) and their tenant-days
    (UTC) marked for the rollup, as the usage ingest marks them: a mark already there is
    raised to a new version, so a rollup that read the old one does not clear it."""
    if not rows:
        return
    Repository(session).insert_rows_unless_taken(UsageEvent, rows)
    latest: dict[tuple[Any, date], datetime] = {}
    for row in rows:
        occurred: datetime = row["occurred_at"]
        key = (row["organization_id"], occurred.astimezone(UTC).date())
        latest[key] = max(occurred, latest.get(key, occurred))
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    for (organization_id, day), marked_at in sorted(latest.items(), key=lambda item: item[0]):
        statement = insert(ProfitabilityDirtyDay).values(
            organization_id=organization_id, day=day, marked_at=marked_at
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["organization_id", "day"],
                set_={
                    "marked_at": statement.excluded.marked_at,
                    "version": ProfitabilityDirtyDay.version + 1,
                },
            )
        )
