"""Golden dataset import on real PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.db.tables import AuditLogEntry, GoldenDataset, GoldenDatasetVersion
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.golden_datasets.errors import GoldenDatasetInvalid
from pipelines.golden_datasets.service import (
    diff,
    import_golden_dataset,
    list_datasets,
    load_version_frame,
    resolve_version,
)
from tests.factories import create_organization, csv_bytes

ROWS = [
    ("a1", "Where is my invoice?", "billing_question", "email"),
    ("a2", "The technician never came", "technician_no_show", "phone"),
    ("a3", "Move my visit to Friday", "reschedule_appointment", "chat"),
]


def _import(
    session: Session,
    org_id,
    tmp_path: Path,
    rows=ROWS,
    name: str = "intents",
    task: str = "classification",
):
    return import_golden_dataset(
        session,
        organization_id=org_id,
        actor="test",
        name=name,
        task=task,
        data=csv_bytes(rows),
        filename="intents.csv",
        storage_dir=tmp_path,
    )


def _count(session: Session, table) -> int:
    return session.scalar(select(func.count()).select_from(table)) or 0


class TestImportGoldenDataset:
    def test_first_import_creates_version_one_with_audit_row(
        self, session: Session, tmp_path: Path
    ) -> None:
        """A new file becomes version 1, stored as Parquet, with an audit row."""
        org = create_organization(session)
        result = _import(session, org.id, tmp_path)
        assert result.created
        assert result.version.version == 1
        assert result.version.row_count == 3
        assert result.version.slice_counts == {"email": 1, "phone": 1, "chat": 1}
        frame = load_version_frame(tmp_path, result.version)
        assert sorted(frame["id"]) == ["a1", "a2", "a3"]
        audit = session.scalars(
            select(AuditLogEntry).where(AuditLogEntry.target_id == str(result.version.id))
        ).one()
        assert audit.action == "golden_dataset_version.created"
        assert audit.organization_id == org.id

    def test_same_content_returns_the_existing_version(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Re-importing identical content (in another order) makes no new version."""
        org = create_organization(session)
        first = _import(session, org.id, tmp_path)
        again = _import(session, org.id, tmp_path, rows=list(reversed(ROWS)))
        assert not again.created
        assert again.version.id == first.version.id
        assert _count(session, GoldenDatasetVersion) >= 1

    def test_new_content_makes_the_next_version_and_diff_names_ids(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Changed content becomes version 2; diff lists added, removed and changed ids."""
        org = create_organization(session)
        _import(session, org.id, tmp_path)
        changed = [
            ROWS[0],
            ("a2", "The technician never came", "billing_question", "phone"),
            ("a4", "Cancel please", "cancel_subscription", "email"),
        ]
        second = _import(session, org.id, tmp_path, rows=changed)
        assert second.created
        assert second.version.version == 2
        result = diff(
            session, organization_id=org.id, storage_dir=tmp_path, old="intents@1", new="intents@2"
        )
        assert list(result.added) == ["a4"]
        assert list(result.removed) == ["a3"]
        assert list(result.changed) == ["a2"]

    def test_rejected_file_writes_nothing(self, session: Session, tmp_path: Path) -> None:
        """A file with a duplicate id and an empty label is rejected whole, naming the cells."""
        org = create_organization(session)
        before = (
            _count(session, GoldenDataset),
            _count(session, GoldenDatasetVersion),
            _count(session, AuditLogEntry),
        )
        bad = [("x1", "hello", "billing_question", ""), ("x1", "again", "", "")]
        with pytest.raises(GoldenDatasetInvalid) as raised:
            _import(session, org.id, tmp_path, rows=bad, name="broken")
        message = str(raised.value)
        assert "x1" in message or "row" in message
        assert "expected" in message
        after = (
            _count(session, GoldenDataset),
            _count(session, GoldenDatasetVersion),
            _count(session, AuditLogEntry),
        )
        assert after == before
        assert not any(tmp_path.rglob("*.parquet"))

    def test_task_mismatch_is_a_conflict(self, session: Session, tmp_path: Path) -> None:
        """Importing into an existing name with another task is refused with the fix."""
        org = create_organization(session)
        _import(session, org.id, tmp_path)
        with pytest.raises(Conflict, match="as task classification") as raised:
            _import(
                session,
                org.id,
                tmp_path,
                task="text_generation",
                rows=[("b1", "note", "summary", "")],
            )
        assert raised.value.field == "task"

    def test_unknown_task_names_the_choices(self, session: Session, tmp_path: Path) -> None:
        """An unknown --task lists the valid ones."""
        org = create_organization(session)
        with pytest.raises(InvalidInput, match="classification"):
            _import(session, org.id, tmp_path, task="regression")


class TestTenantScoping:
    def test_tenant_sees_own_and_provider_datasets_but_not_other_tenants(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Datasets are scoped: a tenant sees its own and the provider's shared ones only."""
        provider = create_organization(session, kind="provider")
        tenant_a = create_organization(session)
        tenant_b = create_organization(session)
        _import(session, provider.id, tmp_path, name="shared-intents")
        _import(session, tenant_a.id, tmp_path, name="a-private")
        names_b = {d.name for d, _ in list_datasets(session, organization_id=tenant_b.id)}
        assert "shared-intents" in names_b
        assert "a-private" not in names_b
        names_a = {d.name for d, _ in list_datasets(session, organization_id=tenant_a.id)}
        assert {"shared-intents", "a-private"} <= names_a
        with pytest.raises(NotFound):
            resolve_version(session, organization_id=tenant_b.id, reference="a-private")

    def test_bad_version_reference_names_the_fix(self, session: Session, tmp_path: Path) -> None:
        """NAME@x is refused with an example of the right form."""
        org = create_organization(session)
        with pytest.raises(InvalidInput, match="must be a number"):
            resolve_version(session, organization_id=org.id, reference="intents@latest")
