"""Evaluation runs, their per-example scores and their aggregate metrics."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, insert, select
from sqlalchemy.orm import aliased

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import (
    EvaluationExampleScore,
    EvaluationMetric,
    EvaluationRun,
    GoldenDataset,
    GoldenDatasetVersion,
    Organization,
)

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
        """The newest run of the same subject, dataset version and config (any status)."""
        return self.session.scalars(
            select(EvaluationRun)
            .where(
                EvaluationRun.organization_id == organization_id,
                EvaluationRun.subject_key == subject_key,
                EvaluationRun.golden_dataset_version_id == golden_dataset_version_id,
                EvaluationRun.config_hash == config_hash,
            )
            .order_by(EvaluationRun.created_at.desc())
            .limit(1)
        ).first()

    def add(self, run: EvaluationRun) -> EvaluationRun:
        self.session.add(run)
        self.session.flush()
        return run

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
        """Bulk insert per-example score rows (one executemany)."""
        if rows:
            self.session.execute(insert(EvaluationExampleScore), list(rows))

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
