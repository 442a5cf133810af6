"""Checking usage batches on literal inputs: every refusal names the row, column and reason."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa
import pytest

from pipelines.usage.events import BatchPosition, UsageRowInvalid, normalise

TENANTS = {"acme": uuid.UUID(int=1)}


def _batch(**changes: list[Any]) -> pa.Table:
    columns: dict[str, list[Any]] = {
        "event_id": ["a", "b"],
        "tenant": ["acme", "acme"],
        "occurred_at": ["2026-03-01T10:00:00Z", "2026-03-31T23:30:00-01:00"],
        "agent_type": ["summarizer", None],
        "model_version": ["s@1", None],
        "tokens_in": ["10", ""],
        "tokens_out": [5, 0],
        "requests": [1, 0],
        **changes,
    }
    return pa.table(columns)


def test_a_good_batch_is_normalised() -> None:
    checked = normalise(_batch(), TENANTS)
    assert checked.column("organization_id").to_pylist() == [str(uuid.UUID(int=1))] * 2
    assert checked.column("tokens_in").to_pylist() == [10, 0]
    # 23:30 at UTC-1 is 00:30 on April 1st in UTC: the event belongs to April.
    assert [m.isoformat() for m in checked.column("month").to_pylist()] == [
        "2026-03-01",
        "2026-04-01",
    ]


@pytest.mark.parametrize(
    ("changes", "row", "column"),
    [
        ({"tokens_out": [5, -1]}, 2, "tokens_out"),
        ({"tokens_in": ["1.5", "0"]}, 1, "tokens_in"),
        ({"requests": [1, 10**13]}, 2, "requests"),
        ({"occurred_at": ["2026-03-01T10:00:00Z", "yesterday"]}, 2, "occurred_at"),
        ({"occurred_at": ["1999-12-31T10:00:00Z", "2026-03-01T10:00:00Z"]}, 1, "occurred_at"),
        ({"tenant": ["acme", "globex"]}, 2, "tenant"),
        ({"agent_type": [None, None]}, 1, "agent_type"),
        ({"requests": [1, 1]}, 2, "requests"),
        ({"event_id": ["a", "x" * 101]}, 2, "event_id"),
        ({"job_id": ["j\x00", None]}, 1, "job_id"),
    ],
)
def test_the_first_bad_row_is_named(changes: dict[str, list[Any]], row: int, column: str) -> None:
    with pytest.raises(UsageRowInvalid) as raised:
        normalise(_batch(**changes), TENANTS, BatchPosition(first_row=1))
    assert (raised.value.row, raised.value.column) == (row, column)


def test_rows_are_counted_across_batches_and_named_for_the_api() -> None:
    with pytest.raises(UsageRowInvalid) as raised:
        normalise(_batch(tokens_out=[5, -1]), TENANTS, BatchPosition(101, "events"))
    assert raised.value.row == 102
    assert raised.value.field == "events/101/tokens_out"
