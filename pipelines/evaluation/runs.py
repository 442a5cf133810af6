"""Finding an organisation's evaluation runs: by id or unique id prefix, as users type them.

Light on purpose (no scoring stack), so readers of results load quickly.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.db.repositories.evaluations import EvaluationRepository
from models.db.repositories.golden_datasets import GoldenDatasetRepository
from models.db.tables import EvaluationRun, GoldenDataset, GoldenDatasetVersion
from pipelines.errors import InvalidInput, NotFound


def get_run(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> EvaluationRun:
    """A run of this organisation by id or unique id prefix."""
    runs = EvaluationRepository(session)
    text = str(run_id).strip()
    exact = run_id if isinstance(run_id, uuid.UUID) else _full_id(text)
    if exact is not None:
        found = runs.get(organization_id, exact)
        if found is None:
            raise NotFound(f"evaluation run {exact} not found", field="run_id")
        return found
    if len(text) < 4:
        raise InvalidInput(
            f"run id {text!r} is too short; give at least 4 characters", field="run_id"
        )
    matches = runs.find_by_prefix(organization_id, text)
    if not matches:
        raise NotFound(f"evaluation run {text!r} not found", field="run_id")
    if len(matches) > 1:
        raise InvalidInput(
            f"run id {text!r} matches {len(matches)} runs; give more characters", field="run_id"
        )
    return matches[0]


def _full_id(text: str) -> uuid.UUID | None:
    """`text` as a complete run id, or None when it is (or may be) a prefix."""
    if len(text) not in (32, 36):
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def run_dataset(
    session: Session, *, organization_id: uuid.UUID, run: EvaluationRun
) -> tuple[GoldenDataset, GoldenDatasetVersion]:
    """The golden dataset and version a run evaluated."""
    found = GoldenDatasetRepository(session).get_version_by_id(
        organization_id, run.golden_dataset_version_id
    )
    if found is None:
        raise NotFound(f"golden dataset version of run {run.id} not found")
    return found
