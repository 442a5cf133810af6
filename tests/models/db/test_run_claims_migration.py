"""Migration 0008_runs on both backends: one active run per identity, duplicates settled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from models.db.engine import make_engine
from models.db.migrate import alembic_config, upgrade
from models.db.tables import EvaluationRun, GoldenDataset, GoldenDatasetVersion, Organization
from tests.conftest import BACKENDS, fresh_database_url

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BEFORE = "0007_domains"
"""The revision this migration follows."""


def _run(version_id: uuid.UUID, org_id: uuid.UUID, status: str, minutes: int) -> dict:
    return {
        "id": uuid.uuid4(),
        "organization_id": org_id,
        "golden_dataset_version_id": version_id,
        "task": "text_generation",
        "agent_type": "summarizer",
        "subject_key": "model:m@1",
        "config": {},
        "config_hash": "c" * 64,
        "status": status,
        "batch_size": 10,
        "created_at": T0 + timedelta(minutes=minutes),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_duplicate_active_runs_are_settled_and_no_new_one_can_be_added(
    backend: str, tmp_path: Path
) -> None:
    """Before it, two identical runs are `running`: the upgrade fails the older one with a reason,
    keeps the newer and the completed one, and the index then refuses a second active run;
    the downgrade removes it again."""
    with fresh_database_url(backend, tmp_path) as url:
        engine = make_engine(url)
        try:
            upgrade(engine, BEFORE)
            org_id, version_id = uuid.uuid4(), uuid.uuid4()
            dataset_id = uuid.uuid4()
            older, newer, done = (
                _run(version_id, org_id, status, minutes)
                for status, minutes in (("running", 0), ("running", 5), ("completed", 9))
            )
            with engine.begin() as connection:
                connection.execute(
                    insert(Organization.__table__).values(
                        id=org_id, slug="acme", name="Acme", kind="tenant"
                    )
                )
                connection.execute(
                    insert(GoldenDataset.__table__).values(
                        id=dataset_id, organization_id=org_id, name="notes", task="x"
                    )
                )
                connection.execute(
                    insert(GoldenDatasetVersion.__table__).values(
                        id=version_id,
                        golden_dataset_id=dataset_id,
                        version=1,
                        content_hash="h" * 64,
                        row_count=1,
                        storage_path="p",
                        source_filename="f",
                    )
                )
                for row in (older, newer, done):
                    columns = EvaluationRun.__table__.c
                    connection.execute(
                        insert(EvaluationRun.__table__).values(
                            {columns[key]: value for key, value in row.items()}
                        )
                    )
            upgrade(engine)
            with engine.connect() as connection:
                stored = {
                    row.id: (row.status, row.error)
                    for row in connection.execute(select(EvaluationRun.__table__))
                }
            assert stored[newer["id"]] == ("running", None)
            assert stored[done["id"]] == ("completed", None)
            assert stored[older["id"]][0] == "failed"
            assert stored[older["id"]][1].startswith("superseded by a newer run")
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(
                    insert(EvaluationRun.__table__).values(_run(version_id, org_id, "pending", 20))
                )
            config = alembic_config(engine.url.render_as_string(hide_password=False))
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.downgrade(config, BEFORE)
            with engine.begin() as connection:
                connection.execute(
                    insert(EvaluationRun.__table__).values(_run(version_id, org_id, "pending", 20))
                )
        finally:
            engine.dispose()
