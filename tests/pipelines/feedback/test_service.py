"""Feedback becomes a golden dataset version (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from models.db.enums import FeedbackKind, Task
from pipelines.errors import NotFound
from pipelines.feedback.service import export_feedback_dataset, record_feedback
from pipelines.organizations import ensure_organization
from pipelines.serving.service import Prediction, record_served

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def test_corrections_export_as_a_dataset_version_once(session: Session, tmp_path: Path) -> None:
    provider, _ = ensure_organization(session, slug="p-fb", name="P", kind="provider", actor="t")
    tenant, _ = ensure_organization(session, slug="t-fb", name="T", kind="tenant", actor="t")
    for n, (text, label) in enumerate((("invoice wrong", "billing"), ("app crash", "bug"))):
        request_id = f"{n:032x}"
        record_served(
            session,
            Prediction(request_id, tenant.id, "intent-fb", "m@1", text, "other", 1.0),
            now=NOW,
            text_limit=100,
        )
        record_feedback(
            session,
            organization_id=tenant.id,
            request_id=request_id,
            kind=FeedbackKind.LABEL,
            value=label,
            actor="t",
            now=NOW,
        )
    first = export_feedback_dataset(
        session,
        organization_id=provider.id,
        agent_type="intent-fb",
        task=Task.CLASSIFICATION,
        name="intent-feedback",
        storage_dir=tmp_path,
        actor="t",
    )
    assert (first.created, first.version.row_count) == (True, 2)
    assert sorted(first.version.label_set or []) == ["billing", "bug"]
    again = export_feedback_dataset(
        session,
        organization_id=provider.id,
        agent_type="intent-fb",
        task=Task.CLASSIFICATION,
        name="intent-feedback",
        storage_dir=tmp_path,
        actor="t",
    )
    assert (again.created, again.version.id) == (False, first.version.id)
    with pytest.raises(NotFound):
        export_feedback_dataset(
            session,
            organization_id=provider.id,
            agent_type="intent-fb",
            task=Task.TEXT_GENERATION,
            name="none",
            storage_dir=tmp_path,
            actor="t",
        )
