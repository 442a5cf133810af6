"""The usage load's paths on PostgreSQL and SQLite: the fast insert of a batch of new events,
the fall back to the per-id merge when a batch holds stored or repeated ids the probe did not
see, and a bad row in a later chunk of a file leaving nothing behind."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Generator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from models.db.repositories.usage import UsageRepository
from models.db.tables import ProfitabilityDirtyDay, UsageEvent
from pipelines.usage.events import UsageRowInvalid, normalise
from pipelines.usage.service import ingest_usage, read_ahead, read_usage_file
from tests.factories import create_organization

NOW = datetime(2026, 3, 20, 12, tzinfo=UTC)


def _rows(tenant: str, numbers: range, month: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{tenant}-{n}",
            "tenant": tenant,
            "occurred_at": f"2026-{month:02d}-02T10:00:00Z",
            "agent_type": "summarizer",
            "model_version": "summ@1",
            "tokens_in": "10",
            "tokens_out": "5",
            "requests": "1",
            "end_user_key": None,
            "job_id": f"job-{n}",
        }
        for n in numbers
    ]


def _table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=pa.schema([(k, pa.string()) for k in rows[0]]))


@pytest.fixture
def tenant(session: Session) -> tuple[str, uuid.UUID]:
    slug = f"load-{uuid.uuid4().hex[:6]}"
    return slug, create_organization(session, slug=slug).id


def _load(session: Session, tenant: tuple[str, uuid.UUID], rows: list[dict[str, Any]]) -> Any:
    """Stage and merge through the repository; (inserted, how the merge went in)."""
    usage = UsageRepository(session)
    usage.open_staging()
    usage.stage(normalise(_table(rows), {tenant[0]: tenant[1]}))
    return usage.merge_staging(now=NOW), usage.last_merge


def _stored(session: Session) -> list[str]:
    return sorted(session.scalars(select(UsageEvent.event_id)).all())


def _marks(session: Session) -> list[tuple[uuid.UUID, date]]:
    marks = session.scalars(select(ProfitabilityDirtyDay)).all()
    return sorted((m.organization_id, m.day) for m in marks)


def test_new_events_go_in_and_their_days_are_marked(
    session: Session, tenant: tuple[str, uuid.UUID]
) -> None:
    rows = _rows(tenant[0], range(5), month=2) + _rows(tenant[0], range(5, 9), month=3)
    inserted, how = _load(session, tenant, rows)
    assert inserted == 9
    is_postgres = session.get_bind().dialect.name == "postgresql"
    assert how == ("insert" if is_postgres else "merge")
    assert _stored(session) == sorted(r["event_id"] for r in rows)
    assert _marks(session) == [(tenant[1], date(2026, 2, 2)), (tenant[1], date(2026, 3, 2))]


def test_days_staged_in_several_chunks_are_marked_once_by_their_utc_day(
    session: Session, tenant: tuple[str, uuid.UUID]
) -> None:
    slug, organization = tenant
    # An earlier load marked 2026-03-02 already: marking it again raises its version.
    assert _load(session, tenant, _rows(slug, range(1)))[0] == 1
    before = session.get(ProfitabilityDirtyDay, (organization, date(2026, 3, 2)))
    assert before is not None
    version = before.version
    first, second = _rows(slug, range(1, 4)), _rows(slug, range(4, 7))
    first[0]["occurred_at"] = "2026-03-03T01:30:00+02:00"  # 2026-03-02 in UTC
    second[0]["occurred_at"] = "2026-03-02T23:59:59.999999Z"
    second[1]["occurred_at"] = "2026-03-03T00:00:00Z"
    usage = UsageRepository(session)
    usage.open_staging()
    for rows in (first, second):
        usage.stage(normalise(_table(rows), {slug: organization}))
    assert usage.merge_staging(now=NOW) == 6
    is_postgres = session.get_bind().dialect.name == "postgresql"
    assert usage.last_merge == ("insert" if is_postgres else "merge")
    assert _marks(session) == [(organization, date(2026, 3, 2)), (organization, date(2026, 3, 3))]
    session.expire_all()
    after = session.get(ProfitabilityDirtyDay, (organization, date(2026, 3, 2)))
    assert after is not None
    assert after.version == version + 1


def test_times_are_stored_to_the_microsecond(
    session: Session, tenant: tuple[str, uuid.UUID]
) -> None:
    rows = _rows(tenant[0], range(2))
    rows[0]["occurred_at"] = "2026-03-02T10:00:00.123457+02:00"
    rows[1]["occurred_at"] = "2000-01-01T00:00:00.000001Z"
    assert _load(session, tenant, rows)[0] == 2
    stored = {e.event_id: e.occurred_at for e in session.scalars(select(UsageEvent))}
    first, second = (stored[row["event_id"]] for row in rows)
    assert first.replace(tzinfo=UTC) == datetime(2026, 3, 2, 8, 0, 0, 123457, tzinfo=UTC)
    assert second.replace(tzinfo=UTC) == datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


def test_a_stored_id_the_probe_missed_falls_back_to_the_merge(
    session: Session, tenant: tuple[str, uuid.UUID]
) -> None:
    slug = tenant[0]
    assert _load(session, tenant, _rows(slug, range(1, 2), month=2))[0] == 1
    session.execute(delete(ProfitabilityDirtyDay))
    # 200 rows: the probe samples every third id and the last; the stored id is the second.
    inserted, how = _load(session, tenant, _rows(slug, range(200)))
    assert (inserted, how) == (199, "merge")
    assert len(_stored(session)) == 200
    stored = session.get(UsageEvent, f"{slug}-1")
    assert stored is not None
    assert stored.occurred_at.month == 2  # the stored event is left alone
    assert _marks(session) == [(tenant[1], date(2026, 3, 2))]


def test_an_id_repeated_in_the_batch_goes_in_once(
    session: Session, tenant: tuple[str, uuid.UUID]
) -> None:
    rows = _rows(tenant[0], range(4))
    inserted, how = _load(session, tenant, rows + rows[1:2])
    assert (inserted, how) == (4, "merge")
    assert len(_stored(session)) == 4


def test_a_bad_row_in_a_later_chunk_leaves_nothing(
    session: Session, tenant: tuple[str, uuid.UUID], tmp_path: Path
) -> None:
    rows = _rows(tenant[0], range(30))
    rows[25]["tokens_in"] = "-3"
    path = tmp_path / "events.parquet"
    pq.write_table(_table(rows), path)
    with pytest.raises(UsageRowInvalid) as raised, session.begin_nested():
        ingest_usage(
            session,
            read_usage_file(path, chunk_rows=10),
            actor="test",
            now=NOW,
            source="file",
        )
    assert (raised.value.row, raised.value.column) == (26, "tokens_in")
    assert session.scalar(select(func.count()).select_from(UsageEvent)) == 0
    assert _marks(session) == []


def test_reading_ahead_keeps_order_raises_in_place_and_stops_with_its_reader() -> None:
    def numbers() -> Iterator[int]:
        yield from range(3)
        raise ValueError("bad chunk")

    seen: list[int] = []
    with pytest.raises(ValueError, match="bad chunk"):
        seen.extend(read_ahead(numbers()))
    assert seen == [0, 1, 2]

    def endless() -> Iterator[int]:
        n = 0
        while True:
            yield n
            n += 1

    ahead = read_ahead(endless())
    assert isinstance(ahead, Generator)
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()
    assert not [t for t in threading.enumerate() if t.name == "usage-read-ahead"]
