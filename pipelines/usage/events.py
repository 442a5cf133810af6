"""Usage events as Arrow tables: the columns a file or an API batch carries, checked row by row
(vectorised) and normalised to the stored types.

A batch is accepted whole or not at all: the first bad row is reported with its number (1 for
the first data row of the file or the first event of a request), the column and the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import InvalidInput

COLUMNS = (
    "event_id",
    "tenant",
    "occurred_at",
    "agent_type",
    "model_version",
    "tokens_in",
    "tokens_out",
    "requests",
    "end_user_key",
    "job_id",
)
"""The columns of a usage file or batch, in this order."""
REQUIRED = ("event_id", "tenant", "occurred_at")
COUNTS = ("tokens_in", "tokens_out", "requests")
MAX_COUNT = 10**12
"""Largest token or request count one event may carry."""
TEXT_LIMITS = {
    "event_id": 100,
    "tenant": 63,
    "agent_type": 64,
    "model_version": 200,
    "end_user_key": 200,
    "job_id": 200,
}
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIMESTAMP = pa.timestamp("us", tz="UTC")

NORMALISED = pa.schema(
    [
        ("event_id", pa.string()),
        ("organization_id", pa.string()),
        ("occurred_at", TIMESTAMP),
        ("agent_type", pa.string()),
        ("model_version", pa.string()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("requests", pa.int64()),
        ("end_user_key", pa.string()),
        ("job_id", pa.string()),
        ("month", pa.date32()),
    ]
)
"""What a checked batch holds: the tenant resolved to its organisation id (canonical UUID
text) and the UTC calendar month of each event (for marking periods to recompute)."""


class UsageRowInvalid(InvalidInput):
    """A row of a usage batch is wrong: the batch is refused and nothing is written."""

    def __init__(self, row: int, column: str, reason: str, *, field: str | None = None) -> None:
        super().__init__(
            f"row {row}, {column}: {reason}; fix it and send the whole batch again "
            "(nothing was written)",
            field=field,
        )
        self.row = row
        self.column = column
        self.reason = reason


@dataclass(frozen=True)
class BatchPosition:
    """Where a batch starts in its source, and how its errors name fields.

    `first_row` is the number of the batch's first row in the whole file or request (1-based);
    `field_prefix`, when set, makes errors name `<prefix>/<index>/<column>` (the API's events).
    """

    first_row: int = 1
    field_prefix: str | None = None

    def error(self, index: int, column: str, reason: str) -> UsageRowInvalid:
        field = None
        if self.field_prefix is not None:
            field = f"{self.field_prefix}/{self.first_row - 1 + index}/{column}"
        return UsageRowInvalid(self.first_row + index, column, reason, field=field)


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    """The index of the first true value of a boolean mask (nulls are false)."""
    filled = pc.fill_null(mask, False)
    if not pc.any(filled).as_py():
        return None
    return int(pc.index(filled, True).as_py())


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])


def _text(table: pa.Table, name: str, at: BatchPosition) -> pa.ChunkedArray:
    column = _column(table, name)
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        convertible = pa.types.is_dictionary(column.type) or (
            pa.types.is_integer(column.type) and name in ("end_user_key", "job_id", "event_id")
        )
        if not convertible:
            raise at.error(0, name, f"must be text, not {column.type}")
    column = column.cast(pa.string())
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(column)), 0)
    column = pc.if_else(blank, pa.scalar(None, pa.string()), column)
    if name in REQUIRED:
        missing = _first(pc.is_null(column))
        if missing is not None:
            raise at.error(missing, name, "is missing; every event needs one")
    too_long = _first(pc.greater(pc.utf8_length(column), TEXT_LIMITS[name]))
    if too_long is not None:
        raise at.error(too_long, name, f"is longer than {TEXT_LIMITS[name]} characters")
    nul = _first(pc.match_substring(column, "\x00"))
    if nul is not None:
        raise at.error(nul, name, "must not contain a NUL character")
    return column


def _count(table: pa.Table, name: str, at: BatchPosition) -> pa.ChunkedArray:
    column = _column(table, name)
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        trimmed = pc.utf8_trim_whitespace(column.cast(pa.string()))
        blank = pc.equal(pc.utf8_length(trimmed), 0)
        trimmed = pc.if_else(blank, pa.scalar(None, pa.string()), trimmed)
        bad = _first(pc.invert(pc.match_substring_regex(trimmed, r"^\d{1,13}$")))
        if bad is not None:
            raise at.error(bad, name, "must be a whole number of at least 0")
        column = trimmed.cast(pa.int64())
    elif pa.types.is_integer(column.type):
        column = column.cast(pa.int64())
    elif pa.types.is_floating(column.type):
        whole = pc.equal(pc.floor(column), column)
        bad = _first(pc.invert(whole))
        if bad is not None:
            raise at.error(bad, name, "must be a whole number of at least 0")
        bad = _first(pc.greater(pc.abs(column), float(MAX_COUNT)))
        if bad is not None:
            raise at.error(bad, name, f"must be at most {MAX_COUNT}")
        column = column.cast(pa.int64())
    else:
        raise at.error(0, name, f"must be a whole number, not {column.type}")
    column = pc.fill_null(column, 0)
    negative = _first(pc.less(column, 0))
    if negative is not None:
        raise at.error(negative, name, "must be a whole number of at least 0")
    too_big = _first(pc.greater(column, MAX_COUNT))
    if too_big is not None:
        raise at.error(too_big, name, f"must be at most {MAX_COUNT}")
    return column


def _timestamps(table: pa.Table, at: BatchPosition) -> pa.ChunkedArray:
    name = "occurred_at"
    column = _column(table, name)
    if pa.types.is_timestamp(column.type):
        if column.type.tz is None:
            raise at.error(0, name, "must carry a time zone (store UTC timestamps with tz=UTC)")
        stamps = column.cast(TIMESTAMP)
    elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        text = pc.utf8_trim_whitespace(column.cast(pa.string()))
        missing = _first(pc.is_null(text))
        if missing is not None:
            raise at.error(missing, name, "is missing; every event needs one")
        try:
            stamps = text.cast(TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise _bad_time(text, at) from None
    else:
        raise at.error(0, name, f"must be a time with a zone, not {column.type}")
    missing = _first(pc.is_null(stamps))
    if missing is not None:
        raise at.error(missing, name, "is missing; every event needs one")
    early = pa.scalar(EARLIEST, TIMESTAMP)
    late = pa.scalar(LATEST, TIMESTAMP)
    outside = _first(pc.or_(pc.less(stamps, early), pc.greater_equal(stamps, late)))
    if outside is not None:
        raise at.error(outside, name, "must be between 2000-01-01 and 2100-01-01 (UTC)")
    return stamps


def _bad_time(text: pa.ChunkedArray, at: BatchPosition) -> UsageRowInvalid:
    """The error for the first value that is not an ISO 8601 time with a zone."""
    for index, value in enumerate(text.to_pylist()):
        try:
            pa.array([value]).cast(TIMESTAMP)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return at.error(
                index, "occurred_at", "must be an ISO 8601 time with a zone, e.g. 2026-03-01T12:00Z"
            )
    return at.error(0, "occurred_at", "must be an ISO 8601 time with a zone")


def normalise(
    table: pa.Table, tenants: Mapping[str, uuid.UUID], at: BatchPosition | None = None
) -> pa.Table:
    """A batch checked and converted to `NORMALISED`; UsageRowInvalid at its first bad row.

    `tenants` maps every known tenant slug to its organisation id. An event with an agent type
    names its model version; one without (activity that used no AI agent) carries no model
    version, tokens or requests.
    """
    at = at or BatchPosition()
    unknown = sorted(set(table.column_names) - set(COLUMNS))
    if unknown:
        raise at.error(
            0, unknown[0], f"is not a usage column; the columns are {', '.join(COLUMNS)}"
        )
    event_id = _text(table, "event_id", at)
    tenant = _text(table, "tenant", at)
    slugs = pa.array(sorted(tenants), pa.string())
    ids = pa.array([str(tenants[slug]) for slug in sorted(tenants)], pa.string())
    positions = pc.index_in(tenant, value_set=slugs)
    unknown_tenant = _first(pc.is_null(positions))
    if unknown_tenant is not None:
        value = tenant[unknown_tenant].as_py()
        raise at.error(unknown_tenant, "tenant", f"{value!r} is not a tenant of this platform")
    organization_id = pc.take(ids, positions.combine_chunks())
    occurred_at = _timestamps(table, at)
    agent_type = _text(table, "agent_type", at)
    model_version = _text(table, "model_version", at)
    counts = {name: _count(table, name, at) for name in COUNTS}
    with_agent = pc.is_valid(agent_type)
    no_model = _first(pc.and_(with_agent, pc.is_null(model_version)))
    if no_model is not None:
        raise at.error(no_model, "model_version", "is missing; an AI event names its model version")
    without_agent = pc.invert(with_agent)
    stray = _first(pc.and_(without_agent, pc.is_valid(model_version)))
    if stray is not None:
        raise at.error(stray, "agent_type", "is missing; an event with a model version names it")
    for name in COUNTS:
        used = _first(pc.and_(without_agent, pc.greater(counts[name], 0)))
        if used is not None:
            raise at.error(used, name, "must be 0 for an event without an agent type")
    month = pc.floor_temporal(occurred_at, unit="month").cast(pa.timestamp("us")).cast(pa.date32())
    return pa.table(
        {
            "event_id": event_id,
            "organization_id": organization_id,
            "occurred_at": occurred_at,
            "agent_type": agent_type,
            "model_version": model_version,
            **counts,
            "end_user_key": _text(table, "end_user_key", at),
            "job_id": _text(table, "job_id", at),
            "month": month,
        },
        schema=NORMALISED,
    )
