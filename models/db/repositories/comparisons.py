"""Stored paired comparisons of evaluation runs, and the champion's run they are made against."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from models.db.base import new_id, utcnow
from models.db.enums import RunStatus
from models.db.repositories.base import Repository
from models.db.tables import EvaluationComparison, EvaluationRun


class ComparisonRepository(Repository):
    """SQL for stored comparisons; every query is scoped by the owning organisation."""

    def get(
        self,
        organization_id: uuid.UUID,
        *,
        run_a: uuid.UUID,
        run_b: uuid.UUID,
        document_version: str,
    ) -> EvaluationComparison | None:
        return self.session.scalars(
            select(EvaluationComparison).where(
                EvaluationComparison.organization_id == organization_id,
                EvaluationComparison.run_a_id == run_a,
                EvaluationComparison.run_b_id == run_b,
                EvaluationComparison.document_version == document_version,
            )
        ).first()

    def add_unless_stored(
        self,
        organization_id: uuid.UUID,
        *,
        run_a: uuid.UUID,
        run_b: uuid.UUID,
        document_version: str,
        document: dict[str, Any],
        reason: str,
    ) -> bool:
        """Store a comparison unless one of this version is stored already; True when stored.

        Completed runs never change, so the one already stored is as right as this one.
        """
        return self.insert_unless_taken(
            EvaluationComparison,
            {
                "id": new_id(),
                "organization_id": organization_id,
                "run_a_id": run_a,
                "run_b_id": run_b,
                "document_version": document_version,
                "document": document,
                "reason": reason,
                "computed_at": utcnow(),
            },
        )

    def latest_completed_run(
        self,
        organization_id: uuid.UUID,
        *,
        registered_model_name: str,
        model_version: str,
        golden_dataset_version_id: uuid.UUID,
        excluding: uuid.UUID,
    ) -> EvaluationRun | None:
        """The newest completed run of a model version on a dataset version (not `excluding`)."""
        return self.session.scalars(
            select(EvaluationRun)
            .where(
                EvaluationRun.organization_id == organization_id,
                EvaluationRun.registered_model_name == registered_model_name,
                EvaluationRun.model_version == model_version,
                EvaluationRun.golden_dataset_version_id == golden_dataset_version_id,
                EvaluationRun.status == RunStatus.COMPLETED,
                EvaluationRun.id != excluding,
            )
            .order_by(EvaluationRun.finished_at.desc(), EvaluationRun.id.desc())
            .limit(1)
        ).first()
