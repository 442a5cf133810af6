"""Recording served predictions, shadow batches and pruning, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from models.db.enums import TrafficRole
from models.db.tables import ProfitabilityDirtyDay, TrafficLogEntry, UsageEvent
from pipelines.organizations import ensure_organization
from pipelines.serving.service import (
    Prediction,
    prune_traffic,
    record_batch,
    record_served,
    record_shadow_batch,
    traffic_row,
    usage_row,
)

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _org(session: Session) -> uuid.UUID:
    org, _ = ensure_organization(session, slug="t-serve", name="T", kind="tenant", actor="t")
    return org.id


def test_a_served_prediction_is_logged_clipped_and_metered(session: Session) -> None:
    org = _org(session)
    text = "word " * 50
    prediction = Prediction("r1", org, "intent", "m@1", text, "billing", 3.21)
    record_served(session, prediction, now=NOW, text_limit=10)
    record_served(session, prediction, now=NOW, text_limit=10)  # a retry adds nothing
    (row,) = session.scalars(select(TrafficLogEntry).where(TrafficLogEntry.request_id == "r1"))
    assert (row.input_text, row.input_chars, row.output_text) == (text[:10], 250, "billing")
    event = session.get(UsageEvent, "predict:r1")
    assert event is not None
    assert (event.tokens_in, event.tokens_out, event.requests) == (50, 1, 1)
    marked = session.get(ProfitabilityDirtyDay, (org, NOW.date()))
    assert marked is not None


def test_a_failed_prediction_is_logged_but_not_metered(session: Session) -> None:
    org = _org(session)
    failed = Prediction("r2", org, "intent", "m@1", "x", None, 1.0, error="boom")
    record_served(session, failed, now=NOW, text_limit=100)
    assert session.get(UsageEvent, "predict:r2") is None
    (row,) = session.scalars(select(TrafficLogEntry).where(TrafficLogEntry.request_id == "r2"))
    assert row.error == "boom"


def test_prune_deletes_only_rows_past_the_retention(session: Session) -> None:
    org = _org(session)
    rows = [
        traffic_row(
            Prediction(f"p{n}", org, "intent", "m@1", "x", "y", 1.0),
            now=NOW - timedelta(days=age),
            text_limit=100,
        )
        for n, age in enumerate((40, 31, 29, 1))
    ]
    record_shadow_batch(session, rows)
    assert prune_traffic(session, now=NOW, retention_days=30, actor="t", batch=1) == 1
    assert prune_traffic(session, now=NOW, retention_days=30, actor="t") == 1
    left = session.scalars(
        select(TrafficLogEntry.request_id).where(TrafficLogEntry.request_id.like("p%"))
    )
    assert sorted(left) == ["p2", "p3"]


def test_a_batch_writes_traffic_and_usage_and_raises_each_days_mark(session: Session) -> None:
    """Served and shadow rows of several requests in one call; a tenant-day marked already
    is raised to a new version, so a rollup that read the old mark does not clear it."""
    org = _org(session)
    served = [Prediction(f"b{n}", org, "intent", "m@1", "a b", "billing", 1.0) for n in range(3)]
    shadow = Prediction("b0", org, "intent", "m@2", "a b", "other", 2.0, role=TrafficRole.SHADOW)
    rows = [traffic_row(p, now=NOW, text_limit=100) for p in [*served, shadow]]
    usage = [usage_row(p, now=NOW) for p in served]
    record_batch(session, rows[:2], [u for u in usage[:2] if u])
    day = NOW.astimezone(UTC).date()
    first = session.get(ProfitabilityDirtyDay, (org, day))
    assert first is not None
    version = first.version
    record_batch(session, rows, [u for u in usage if u])  # the first two again: skipped
    session.expire_all()
    stored = session.execute(
        select(TrafficLogEntry.request_id, TrafficLogEntry.role)
        .where(TrafficLogEntry.request_id.like("b%"))
        .order_by(TrafficLogEntry.id)
    )
    assert [tuple(row) for row in stored] == [
        ("b0", "served"),
        ("b1", "served"),
        ("b2", "served"),
        ("b0", "shadow"),
    ]
    events = session.scalars(
        select(UsageEvent.event_id).where(UsageEvent.event_id.like("predict:b%"))
    )
    assert sorted(events) == ["predict:b0", "predict:b1", "predict:b2"]
    marked = session.get(ProfitabilityDirtyDay, (org, day))
    assert marked is not None
    assert marked.version == version + 1


def test_a_failed_prediction_has_no_usage_row() -> None:
    failed = Prediction("f", uuid.uuid4(), "intent", "m@1", "x", None, 1.0, error="boom")
    assert usage_row(failed, now=NOW) is None


def test_a_batch_mixing_answers_and_errors_is_one_insert_per_table(session: Session) -> None:
    """Answered and failed predictions alternate in a batch (a failing challenger's shadow rows
    have no output): still one traffic insert and one usage insert, each row as built."""
    org = _org(session)
    rows, usage = [], []
    for n in range(6):
        served = Prediction(f"m{n}", org, "intent", "m@1", "a b", "billing", 1.0)
        failed = Prediction(
            f"m{n}", org, "intent", "m@2", "a b", None, 2.0, error="boom", role=TrafficRole.SHADOW
        )
        rows += [traffic_row(p, now=NOW, text_limit=100) for p in (served, failed)]
        usage.append(usage_row(served, now=NOW))
    statements: list[str] = []
    session.flush()  # the organisation's rows, before counting
    bind = session.connection()

    def count(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(bind, "before_cursor_execute", count)
    try:
        record_batch(session, rows, [u for u in usage if u])
    finally:
        event.remove(bind, "before_cursor_execute", count)
    inserts = [s.split("(", 1)[0].strip() for s in statements if s.startswith("INSERT")]
    assert inserts == [
        "INSERT INTO traffic_log",
        "INSERT INTO usage_events",
        "INSERT INTO profitability_dirty_days",
    ]
    stored = session.execute(
        select(TrafficLogEntry.role, TrafficLogEntry.output_text, TrafficLogEntry.error)
        .where(TrafficLogEntry.request_id.like("m%"))
        .order_by(TrafficLogEntry.id)
    )
    assert [tuple(row) for row in stored] == [
        ("served", "billing", None),
        ("shadow", None, "boom"),
    ] * 6


def test_rows_of_different_shapes_are_refused(session: Session) -> None:
    org = _org(session)
    row = traffic_row(Prediction("s1", org, "intent", "m@1", "x", "y", 1.0), now=NOW, text_limit=9)
    shorter = {key: value for key, value in row.items() if key != "error"} | {"request_id": "s2"}
    with pytest.raises(ValueError, match="same columns"):
        record_shadow_batch(session, [row, shorter])
