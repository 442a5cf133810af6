"""Evaluation runs, their per-example scores and their aggregate metrics."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CursorResult, String, case, cast, delete, func, insert, or_, select, update
from sqlalchemy.orm import aliased

from models.db.base import new_id
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import (
    EvaluationExampleScore,
    EvaluationMetric,
    EvaluationRun,
    GoldenDataset,
    GoldenDatasetVersion,
    Organization,
)

ACTIVE = ("pending", "running")
"""Statuses of a run a flow is about to carry out or carrying out (one per identity)."""


def cast_result(result: Any) -> CursorResult[Any]:
    """An UPDATE's result, whose `rowcount` says how many rows it changed."""
    return typing.cast(CursorResult[Any], result)


PAIRED_A = aliased(EvaluationExampleScore, name="score_a")
PAIRED_B = aliased(EvaluationExampleScore, name="score_b")
PAIRED_FILTERS = ("all", "regressed", "improved", "below")
"""Which paired examples to list: every one, B worse than A, B better, or B under a threshold."""


class EvaluationRepository(Repository):
    """SQL for evaluations; every query is scoped by the owning organisation."""

    ORDER = Keyset.of(EvaluationRun.created_at, EvaluationRun.id, descending=True)
    """Run listings: newest first."""
    QUALITY_ORDER = Keyset.of(EvaluationRun.finished_at, EvaluationRun.id)
    """Quality score series: oldest finished first."""
    SCORE_ORDER = Keyset.of(EvaluationExampleScore.example_id)
    """A run's per-example scores: by example id."""

    def get(self, organization_id: uuid.UUID, run_id: uuid.UUID) -> EvaluationRun | None:
        return self.session.scalars(
            select(EvaluationRun).where(
                EvaluationRun.id == run_id, EvaluationRun.organization_id == organization_id
            )
        ).first()

    def find_by_prefix(self, organization_id: uuid.UUID, prefix: str) -> list[EvaluationRun]:
        """Runs whose id starts with `prefix` (users type short ids, as with git)."""
        prefix = prefix.lower()
        if self.session.get_bind().dialect.name == "sqlite":
            # SQLite keeps UUIDs as 32 hex digits without dashes.
            prefix = prefix.replace("-", "")
        pattern = prefix.replace("%", "").replace("_", "") + "%"
        return list(
            self.session.scalars(
                select(EvaluationRun).where(
                    EvaluationRun.organization_id == organization_id,
                    cast(EvaluationRun.id, String).like(pattern),
                )
            )
        )

    def find_reusable(
        self,
        organization_id: uuid.UUID,
        *,
        subject_key: str,
        golden_dataset_version_id: uuid.UUID,
        config_hash: str,
    ) -> EvaluationRun | None:
        """The active (pending or running) run of the same subject, dataset version and config,
        else the newest of any status."""
        active = case((EvaluationRun.status.in_(ACTIVE), 0), else_=1)
        return self.session.scalars(
            select(EvaluationRun)
            .where(
                EvaluationRun.organization_id == organization_id,
                EvaluationRun.subject_key == subject_key,
                EvaluationRun.golden_dataset_version_id == golden_dataset_version_id,
                EvaluationRun.config_hash == config_hash,
            )
            .order_by(active, EvaluationRun.created_at.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        ).first()

    def add(self, run: EvaluationRun) -> EvaluationRun | None:
        """Store a new run; None when an active run of the same identity exists already (a
        concurrent request stored it first): find that one and decide."""
        run.id = run.id or new_id()
        values = {
            column.key: getattr(run, column.key)
            for column in EvaluationRun.__table__.columns
            if getattr(run, column.key) is not None
        }
        if not self.insert_unless_taken(EvaluationRun, values):
            return None
        return self.reload(run.id)

    def reload(self, run_id: uuid.UUID) -> EvaluationRun | None:
        """A run as stored now (an UPDATE of another transaction or statement included)."""
        return self.session.get(EvaluationRun, run_id, populate_existing=True)

    def claim(
        self,
        run_id: uuid.UUID,
        *,
        claim: str,
        flow_run_id: str | None,
        now: datetime,
        stale_before: datetime,
    ) -> bool:
        """Make a run `running` for the holder of `claim`, in one statement; False when it is
        completed, or running for a holder seen alive since `stale_before`."""
        claimable = or_(
            EvaluationRun.status.in_(("pending", "failed")),
            (EvaluationRun.status == "running")
            & (EvaluationRun.heartbeat_at.is_(None) | (EvaluationRun.heartbeat_at < stale_before)),
        )
        return self._update(
            (EvaluationRun.id == run_id) & claimable,
            status="running",
            claimed_by=claim,
            heartbeat_at=now,
            started_at=now,
            flow_run_id=flow_run_id,
            error=None,
            finished_at=None,
        )

    def renew(self, run_id: uuid.UUID, *, claim: str, now: datetime) -> bool:
        """Show the holder of `claim` is alive; False when the run is no longer its own."""
        return self._update(self._held(run_id, claim), heartbeat_at=now)

    def settle(
        self,
        run_id: uuid.UUID,
        *,
        claim: str | None,
        statuses: Sequence[str],
        **values: Any,
    ) -> bool:
        """Change a run that is in one of `statuses` (and, with `claim`, held by it); False when
        it is not. A completed run is never in `statuses`: it is never reopened."""
        if "completed" in statuses:
            raise ValueError("a completed run is final")
        where = (
            self._held(run_id, claim)
            if claim is not None
            else (EvaluationRun.id == run_id) & EvaluationRun.status.in_(statuses)
        )
        return self._update(where & EvaluationRun.status.in_(statuses), **values)

    @staticmethod
    def _held(run_id: uuid.UUID, claim: str) -> Any:
        return (
            (EvaluationRun.id == run_id)
            & (EvaluationRun.status == "running")
            & (EvaluationRun.claimed_by == claim)
        )

    def _update(self, where: Any, **values: Any) -> bool:
        result = self.session.execute(
            update(EvaluationRun)
            .where(where)
            .values(**values)
            .execution_options(synchronize_session="fetch")
        )
        return bool(cast_result(result).rowcount)

    def page_with_datasets(
        self,
        organization_id: uuid.UUID,
        *,
        after: Key | None = None,
        limit: int = 50,
    ) -> KeysetPage[tuple[EvaluationRun, GoldenDataset, GoldenDatasetVersion]]:
        """Runs in `ORDER` with the dataset version each evaluated."""
        query = (
            select(EvaluationRun, GoldenDataset, GoldenDatasetVersion)
            .join(
                GoldenDatasetVersion,
                GoldenDatasetVersion.id == EvaluationRun.golden_dataset_version_id,
            )
            .join(GoldenDataset, GoldenDataset.id == GoldenDatasetVersion.golden_dataset_id)
            .where(EvaluationRun.organization_id == organization_id)
        )
        return self.page(query, self.ORDER, after=after, limit=limit)

    def page_across_organizations(
        self,
        *,
        organization_id: uuid.UUID | None = None,
        agent_type: str | None = None,
        model_name: str | None = None,
        dataset_name: str | None = None,
        status: str | None = None,
        after: Key | None = None,
        limit: int = 50,
    ) -> KeysetPage[tuple[EvaluationRun, GoldenDataset, GoldenDatasetVersion, Organization]]:
        """Runs of every organisation (or one) in `ORDER`, filtered, for the provider's views."""
        query = (
            select(EvaluationRun, GoldenDataset, GoldenDatasetVersion, Organization)
            .join(
                GoldenDatasetVersion,
                GoldenDatasetVersion.id == EvaluationRun.golden_dataset_version_id,
            )
            .join(GoldenDataset, GoldenDataset.id == GoldenDatasetVersion.golden_dataset_id)
            .join(Organization, Organization.id == EvaluationRun.organization_id)
        )
        if organization_id is not None:
            query = query.where(EvaluationRun.organization_id == organization_id)
        if agent_type:
            query = query.where(EvaluationRun.agent_type == agent_type)
        if model_name:
            query = query.where(EvaluationRun.registered_model_name == model_name)
        if dataset_name:
            query = query.where(GoldenDataset.name == dataset_name)
        if status:
            query = query.where(EvaluationRun.status == status)
        return self.page(query, self.ORDER, after=after, limit=limit)

    def organization_of(self, run_id: uuid.UUID) -> uuid.UUID | None:
        """The organisation owning a run (provider views, which see every organisation)."""
        return self.session.scalar(
            select(EvaluationRun.organization_id).where(EvaluationRun.id == run_id)
        )

    def agent_types(self) -> list[str]:
        """Agent types with at least one run."""
        return list(
            self.session.scalars(
                select(EvaluationRun.agent_type).distinct().order_by(EvaluationRun.agent_type)
            )
        )

    PAIRED_ORDER = Keyset.of(PAIRED_A.example_id)
    """Paired examples of two runs: by example id."""

    def page_paired_scores(
        self,
        run_a: uuid.UUID,
        run_b: uuid.UUID,
        *,
        metric: str,
        show: str = "all",
        threshold: float | None = None,
        after: Key | None = None,
        limit: int = 50,
    ) -> KeysetPage[tuple[EvaluationExampleScore, EvaluationExampleScore]]:
        """The examples both runs scored, side by side, filtered on one per-example metric."""
        score_a = PAIRED_A.scores[metric].as_float()
        score_b = PAIRED_B.scores[metric].as_float()
        query = (
            select(PAIRED_A, PAIRED_B)
            .join(PAIRED_B, PAIRED_B.example_id == PAIRED_A.example_id)
            .where(PAIRED_A.run_id == run_a, PAIRED_B.run_id == run_b)
        )
        if show == "regressed":
            query = query.where(score_b < score_a)
        elif show == "improved":
            query = query.where(score_b > score_a)
        elif show == "below":
            query = query.where(score_b < (threshold if threshold is not None else 0.5))
        elif show != "all":
            raise ValueError(f"show must be one of {PAIRED_FILTERS}, not {show!r}")
        return self.page(query, self.PAIRED_ORDER, after=after, limit=limit)

    def count_paired(self, run_a: uuid.UUID, run_b: uuid.UUID, *, metric: str) -> dict[str, int]:
        """How many paired examples regressed, improved or stayed equal on `metric`."""
        score_a = PAIRED_A.scores[metric].as_float()
        score_b = PAIRED_B.scores[metric].as_float()
        row = self.session.execute(
            select(
                func.count(),
                func.count().filter(score_b < score_a),
                func.count().filter(score_b > score_a),
            )
            .select_from(PAIRED_A)
            .join(PAIRED_B, PAIRED_B.example_id == PAIRED_A.example_id)
            .where(PAIRED_A.run_id == run_a, PAIRED_B.run_id == run_b)
        ).one()
        total, regressed, improved = (int(value) for value in row)
        return {
            "all": total,
            "regressed": regressed,
            "improved": improved,
            "equal": total - regressed - improved,
        }

    def quality_scores(
        self,
        organization_id: uuid.UUID,
        *,
        agent_type: str | None = None,
        after: Key | None = None,
        limit: int = 50,
    ) -> KeysetPage[tuple[EvaluationRun, EvaluationMetric]]:
        """Completed runs with their overall quality score, in `QUALITY_ORDER`."""
        query = (
            select(EvaluationRun, EvaluationMetric)
            .join(EvaluationMetric, EvaluationMetric.run_id == EvaluationRun.id)
            .where(
                EvaluationRun.organization_id == organization_id,
                EvaluationRun.status == "completed",
                EvaluationRun.finished_at.is_not(None),
                EvaluationMetric.slice == "",
                EvaluationMetric.name == "quality_score",
            )
        )
        if agent_type is not None:
            query = query.where(EvaluationRun.agent_type == agent_type)
        return self.page(query, self.QUALITY_ORDER, after=after, limit=limit)

    def stored_batches(self, run_id: uuid.UUID) -> set[int]:
        """Batch indexes whose scores are already stored (each batch lands whole or not at all)."""
        rows = self.session.scalars(
            select(EvaluationExampleScore.batch_index)
            .where(EvaluationExampleScore.run_id == run_id)
            .distinct()
        )
        return set(rows)

    def insert_scores(self, rows: Sequence[dict[str, Any]]) -> None:
        """Bulk insert per-example score rows (one executemany); a row already stored (a batch
        retried after its commit) is skipped, so an example keeps exactly one score."""
        self.insert_many_unless_taken(EvaluationExampleScore, rows)

    def page_scores(
        self, run_id: uuid.UUID, *, after: Key | None = None, limit: int = 50
    ) -> KeysetPage[EvaluationExampleScore]:
        """Per-example scores in `SCORE_ORDER`."""
        query = select(EvaluationExampleScore).where(EvaluationExampleScore.run_id == run_id)
        return self.page(query, self.SCORE_ORDER, after=after, limit=limit)

    def score_rows(self, run_id: uuid.UUID) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(example_id, slice, prediction, scores) of every example, ordered by example id."""
        result = self.session.execute(
            select(
                EvaluationExampleScore.example_id,
                EvaluationExampleScore.slice,
                EvaluationExampleScore.prediction,
                EvaluationExampleScore.scores,
            )
            .where(EvaluationExampleScore.run_id == run_id)
            .order_by(EvaluationExampleScore.example_id)
        )
        return [(row[0], row[1], row[2], row[3]) for row in result]

    def replace_metrics(self, run_id: uuid.UUID, metrics: Sequence[dict[str, Any]]) -> None:
        self.session.execute(delete(EvaluationMetric).where(EvaluationMetric.run_id == run_id))
        if metrics:
            self.session.execute(
                insert(EvaluationMetric), [{"run_id": run_id, **m} for m in metrics]
            )

    def metrics(self, run_id: uuid.UUID) -> list[EvaluationMetric]:
        return list(
            self.session.scalars(
                select(EvaluationMetric)
                .where(EvaluationMetric.run_id == run_id)
                .order_by(EvaluationMetric.slice, EvaluationMetric.name)
            )
        )

    def count_by_status(self) -> dict[str, int]:
        """How many runs are in each status, over every organisation the session may see."""
        rows = self.session.execute(
            select(EvaluationRun.status, func.count()).group_by(EvaluationRun.status)
        )
        return {str(row[0]): int(row[1]) for row in rows}

    def pending_created_before(self, created_before: datetime) -> list[EvaluationRun]:
        """Runs still `pending` that were created before `created_before` (every organisation
        the session may see), oldest first."""
        return list(
            self.session.scalars(
                select(EvaluationRun)
                .where(
                    EvaluationRun.status == "pending",
                    EvaluationRun.created_at < created_before,
                )
                .order_by(EvaluationRun.created_at)
            )
        )

    def agent_types_of_dataset(
        self, organization_id: uuid.UUID, golden_dataset_id: uuid.UUID
    ) -> set[str]:
        """The agent types of every run of this organisation on any version of a dataset."""
        return set(
            self.session.scalars(
                select(EvaluationRun.agent_type)
                .join(
                    GoldenDatasetVersion,
                    GoldenDatasetVersion.id == EvaluationRun.golden_dataset_version_id,
                )
                .where(
                    EvaluationRun.organization_id == organization_id,
                    GoldenDatasetVersion.golden_dataset_id == golden_dataset_id,
                )
                .distinct()
            )
        )
