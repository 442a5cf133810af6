"""The dirty-mark race, played deterministically on PostgreSQL and SQLite: an ingest that
starts before a rollup's extract and commits after it keeps its mark, so the next rollup
computes its events (marks are per tenant-day)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from models.db.tables import ProfitabilityDirtyDay, TenantProfitability
from pipelines.profitability import service
from pipelines.usage.service import ingest_usage
from tests.concurrency import Database, database
from tests.conftest import TemplateCache
from tests.factories import create_organization

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)
MARCH = date(2026, 3, 1)


@pytest.fixture(params=("sqlite", "postgresql"))
def db(
    request: pytest.FixtureRequest, migrated_templates: TemplateCache, tmp_path: Path
) -> Iterator[Database]:
    with database(migrated_templates, request.param, tmp_path) as opened:
        yield opened


def _events(slug: str, numbers: range) -> pa.Table:
    rows: list[dict[str, Any]] = [
        {
            "event_id": f"{slug}-{n}",
            "tenant": slug,
            "occurred_at": "2026-03-02T10:00:00Z",
            "agent_type": "summarizer",
            "model_version": "summ@1",
            "tokens_in": "100",
            "tokens_out": "50",
            "requests": "1",
            "job_id": f"job-{n}",
        }
        for n in numbers
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema([(k, pa.string()) for k in rows[0]]))


def test_a_mark_committed_after_the_extract_survives_the_rollup(db: Database) -> None:
    with db.platform.begin() as session:
        organization = create_organization(session, slug="racer")
        org = organization.id
        ingest_usage(session, [_events("racer", range(3))], actor="t", now=NOW, source="t")
    targets = [(org, MARCH)]
    ingest = db.platform()
    ingest.begin()
    try:
        # The ingest writes its events and raises the mark, and has not committed yet.
        ingest_usage(ingest, [_events("racer", range(3, 5))], actor="t", now=NOW, source="t")

        def commit_the_ingest() -> None:
            ingest.commit()

        try:
            with db.platform.begin() as session:
                first = service.rollup_chunk(
                    session, targets, through=NOW.date(), now=NOW, extracted=commit_the_ingest
                )
        except (OperationalError, sqlite3.OperationalError):
            # SQLite: a transaction that read before another one committed may not write
            # after it ("database is locked"); the rollup rolls back (the flow retries it).
            assert db.backend == "sqlite"
        else:
            assert db.backend == "postgresql"
            assert first.events == 3  # the extract did not see the uncommitted events
    finally:
        ingest.close()
    with db.platform.begin() as session:
        marks = session.scalars(select(ProfitabilityDirtyDay)).all()
        assert [(m.organization_id, m.day) for m in marks] == [(org, date(2026, 3, 2))]
        assert (org, MARCH) in service.plan_rollup(session, now=NOW).targets
        second = service.rollup_chunk(session, targets, through=NOW.date(), now=NOW)
    assert second.events == 5
    with db.platform.begin() as session:
        assert session.scalars(select(ProfitabilityDirtyDay)).all() == []
        month = session.get(TenantProfitability, (org, "month", MARCH))
        assert month is not None
        assert month.events == 5


def test_a_mark_seen_before_the_extract_is_cleared(db: Database) -> None:
    with db.platform.begin() as session:
        org = create_organization(session, slug="calm").id
        ingest_usage(session, [_events("calm", range(2))], actor="t", now=NOW, source="t")
    with db.platform.begin() as session:
        result = service.rollup_chunk(session, [(org, MARCH)], through=NOW.date(), now=NOW)
    assert result.events == 2
    with db.platform.begin() as session:
        assert session.scalars(select(ProfitabilityDirtyDay)).all() == []
