"""Concurrent imports of the same new dataset name (abuse suite: concurrent identical imports).

Two imports race from separate sessions, each having read that nothing exists yet before
either writes; the loser must reuse what the winner stored (or take the next number), never
fail with the database's unique-key error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models.db.repositories.golden_datasets import GoldenDatasetRepository
from models.db.tables import AuditLogEntry, GoldenDataset, GoldenDatasetVersion
from pipelines.golden_datasets.service import ImportResult, import_golden_dataset
from tests.concurrency import BACKENDS, Database, at_once, database, meet_after
from tests.conftest import TemplateCache
from tests.factories import create_organization, csv_bytes

ROWS = [
    ("a1", "Where is my invoice?", "billing_question", "email"),
    ("a2", "The technician never came", "technician_no_show", "phone"),
]
OTHER_ROWS = [*ROWS, ("a3", "Move my visit to Friday", "reschedule_appointment", "chat")]


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest, migrated_templates: TemplateCache, tmp_path: Path
) -> Iterator[Database]:
    with database(migrated_templates, request.param, tmp_path) as opened:
        yield opened


def _importer(db: Database, org_id: object, storage: Path, rows: list) -> object:
    def run() -> ImportResult:
        with db.unit_of_work(org_id) as session:
            return import_golden_dataset(
                session,
                organization_id=org_id,  # type: ignore[arg-type]
                actor="test",
                name="intents",
                task="classification",
                data=csv_bytes(rows),
                filename="intents.csv",
                storage_dir=storage,
            )

    return run


def _stored(db: Database) -> tuple[int, list[int], int]:
    with db.platform() as session:
        return (
            session.scalar(select(func.count()).select_from(GoldenDataset)) or 0,
            sorted(session.scalars(select(GoldenDatasetVersion.version))),
            session.scalar(
                select(func.count())
                .select_from(AuditLogEntry)
                .where(AuditLogEntry.action == "golden_dataset_version.created")
            )
            or 0,
        )


class TestConcurrentFirstImport:
    def test_same_file_twice_at_once_makes_one_dataset_and_one_version(
        self, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Both imports saw no dataset; one creates version 1, the other reuses it."""
        with db.platform.begin() as session:
            org_id = create_organization(session).id
        meet_after(monkeypatch, GoldenDatasetRepository, "get_owned")
        importer = _importer(db, org_id, tmp_path, ROWS)
        results = at_once(importer, importer)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert sorted(r.created for r in results) == [False, True]  # type: ignore[union-attr]
        assert {r.version.version for r in results} == {1}  # type: ignore[union-attr]
        assert _stored(db) == (1, [1], 1)

    def test_different_files_at_once_take_consecutive_versions(
        self, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Both imports read the same latest version; the loser takes the next number."""
        with db.platform.begin() as session:
            org_id = create_organization(session).id
            GoldenDatasetRepository(session).add(
                organization_id=org_id, name="intents", task="classification"
            )
        meet_after(monkeypatch, GoldenDatasetRepository, "get_version")
        results = at_once(
            _importer(db, org_id, tmp_path, ROWS), _importer(db, org_id, tmp_path, OTHER_ROWS)
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert all(r.created for r in results)  # type: ignore[union-attr]
        assert sorted(r.version.version for r in results) == [1, 2]  # type: ignore[union-attr]
        assert _stored(db) == (1, [1, 2], 2)
