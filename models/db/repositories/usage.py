"""Usage events: bulk loads (PostgreSQL COPY into a staging table, SQLite executemany into a
temporary table) merged idempotently by event id, and extracts for the rollup as Arrow.

Everything runs on the session's connection, inside the caller's transaction: a batch that
fails part way leaves nothing behind once the caller rolls back.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.repositories.base import Repository
from models.db.tables import UsageEvent

STAGED = (
    "event_id",
    "organization_id",
    "occurred_at",
    "agent_type",
    "model_version",
    "tokens_in",
    "tokens_out",
    "requests",
    "end_user_key",
    "job_id",
    "month",
)
EVENT_COLUMNS = STAGED[:-1]
EXTRACTED = pa.schema(
    [
        ("organization_id", pa.string()),
        ("occurred_at", pa.timestamp("us")),
        ("agent_type", pa.string()),
        ("model_version", pa.string()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        ("requests", pa.int64()),
        ("end_user_key", pa.string()),
        ("job_id", pa.string()),
    ]
)
"""An extract for the rollup: times are naive UTC, organisation ids canonical UUID text."""

COPY_SLICE = 65_536
"""Rows encoded and sent to COPY at a time."""
SQLITE_CHUNK = 65_536
"""Rows an SQLite extract reads at a time."""
INDEXED_EXTRACT_DAYS = 20_000
"""Up to this many tenant-days, a PostgreSQL extract reads each span by the index."""


@contextmanager
def planner_setting(cursor: Any, name: str, on: bool) -> Iterator[None]:
    """A PostgreSQL planner setting (`enable_…`) for the statements inside, then as it was (in
    the transaction; an error aborts it, and the setting with it)."""
    cursor.execute("SELECT current_setting(%s)", (name,))
    before = cursor.fetchone()[0]
    cursor.execute("SELECT set_config(%s, %s, true)", (name, "on" if on else "off"))
    yield
    cursor.execute("SELECT set_config(%s, %s, true)", (name, before))


def _sqlite_chunk(rows: list[Any]) -> pa.Table:
    """SQLite rows of an extract as Arrow: UUIDs (32 hex digits) get their dashes back and
    times (text) are parsed, column by column."""
    columns = list(zip(*rows, strict=True))
    hex_ids = pa.array(columns[0], pa.string())
    parts = [pc.utf8_slice_codeunits(hex_ids, a, b) for a, b in _UUID_PARTS]
    return pa.table(
        {
            "organization_id": pc.binary_join_element_wise(*parts, "-"),
            "occurred_at": pa.array(columns[1], pa.string()).cast(pa.timestamp("us")),
            **{
                name: pa.array(values, EXTRACTED.field(name).type)
                for name, values in zip(EXTRACTED.names[2:], columns[2:], strict=True)
            },
        },
        schema=EXTRACTED,
    )


_UUID_PARTS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))

PG_STAGED = ("event_id", "organization_id", "occurred_us", *EVENT_COLUMNS[3:])
"""PostgreSQL's staging columns: the time travels as microseconds since 1970-01-01 UTC, which
Arrow writes as CSV 5 times faster than a timestamp and PostgreSQL parses faster too."""


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


_PG_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS usage_staging (
    event_id text, organization_id uuid, occurred_us bigint, agent_type text,
    model_version text, tokens_in bigint, tokens_out bigint, requests bigint,
    end_user_key text, job_id text
) ON COMMIT DROP
"""
_PG_STAGED_TIME = "timestamptz 'epoch' + occurred_us * interval '1 microsecond'"
_SQLITE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS usage_staging (
    event_id TEXT, organization_id TEXT, occurred_at TEXT, agent_type TEXT,
    model_version TEXT, tokens_in INTEGER, tokens_out INTEGER, requests INTEGER,
    end_user_key TEXT, job_id TEXT, month TEXT
)
"""
_MERGE = f"""
INSERT INTO usage_events ({", ".join(EVENT_COLUMNS)})
SELECT {", ".join(EVENT_COLUMNS)} FROM usage_staging WHERE true
ON CONFLICT (event_id) DO NOTHING
"""
_PG_INSERT_NEW = f"""
    INSERT INTO usage_events ({", ".join(EVENT_COLUMNS)})
    SELECT {", ".join(PG_STAGED).replace("occurred_us", _PG_STAGED_TIME)} FROM usage_staging
"""
"""PostgreSQL's insert of the staged events. Without `ON CONFLICT` when no staged id can be
stored yet (the fast path; a unique violation sends the batch to the slow one), with it
otherwise. No ORDER BY: sorting the batch by event id or by (organisation, time) before the
insert cost more than it saved in index maintenance (measured at 1,000,000 events). Most of
the insert's time is the two indexes' maintenance (event id, organisation and time)."""
_PG_ON_CONFLICT = "    ON CONFLICT (event_id) DO NOTHING\n"
PROBE_SAMPLE = 64
"""Event ids of each staged chunk looked up in `usage_events` before the fast path is tried:
a resent batch is caught here, without the cost of a failed insert."""

# --- Dirty-period marking ------------------------------------------------------------------
# Which periods a load marks for the rollup: the tenant-days of the events it inserted.
# SQLite marks before its merge (`_MARK_NEW`); PostgreSQL's fast path marks every staged
# tenant-day after its insert (`_PG_MARK_STAGED_DAYS`), its slow path in the merge's own
# statement (`_PG_MARKED`, fed by the `inserted` rows). Kept apart from the load's SQL above.
_MARK_NEW = """
INSERT INTO profitability_dirty_days (organization_id, day, marked_at)
SELECT organization_id, substr(occurred_at, 1, 10), {now} FROM usage_staging s
WHERE NOT EXISTS (SELECT 1 FROM usage_events e WHERE e.event_id = s.event_id)
GROUP BY 1, 2
ON CONFLICT (organization_id, day) DO UPDATE SET marked_at = excluded.marked_at,
    version = profitability_dirty_days.version + 1
"""
_PG_MARKED = """
    INSERT INTO profitability_dirty_days (organization_id, day, marked_at)
    SELECT organization_id, (occurred_at AT TIME ZONE 'UTC')::date, %s
    FROM inserted GROUP BY 1, 2
    ON CONFLICT (organization_id, day) DO UPDATE SET marked_at = excluded.marked_at,
    version = profitability_dirty_days.version + 1
"""
_PG_STAGED_DAYS = """
CREATE TEMP TABLE IF NOT EXISTS usage_staged_days (organization_id uuid, day date) ON COMMIT DROP
"""
_PG_MARK_STAGED_DAYS = """
INSERT INTO profitability_dirty_days (organization_id, day, marked_at)
SELECT organization_id, day, %s FROM usage_staged_days
ON CONFLICT (organization_id, day) DO UPDATE SET marked_at = excluded.marked_at,
    version = profitability_dirty_days.version + 1
"""
"""The fast path's marks: it inserted every staged event, so it marks every staged tenant-day,
grouped in Arrow as the events were staged. Grouping them in the insert's own statement
(`RETURNING` the time, then a UTC date per row) cost about as much server time as the heap."""
# -------------------------------------------------------------------------------------------


def _staged_days(batch: pa.Table) -> pa.Table:
    """The distinct (organisation, UTC day) pairs of a checked batch."""
    days = pc.floor_temporal(batch.column("occurred_at"), unit="day")
    pairs = pa.table(
        {
            "organization_id": batch.column("organization_id"),
            "day": days.cast(pa.timestamp("us")).cast(pa.date32()),
        }
    )
    return pairs.group_by(["organization_id", "day"], use_threads=False).aggregate([])


_PG_MERGE = (
    f"WITH inserted AS ({_PG_INSERT_NEW}{_PG_ON_CONFLICT}"
    "    RETURNING organization_id, occurred_at\n), "
    f"marked AS ({_PG_MARKED})\nSELECT count(*) FROM inserted"
)
"""The slow path on PostgreSQL, one statement: the staged events not stored yet go in, and
the periods of exactly those are marked."""


class UsageRepository(Repository):
    """SQL for usage events."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._probe: list[str] = []
        self._days: list[pa.Table] = []
        self.last_merge = ""
        """How the last merge went in: "insert" (fast path) or "merge" (ON CONFLICT)."""

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _driver(self) -> Any:
        """The DB-API connection of the session's transaction (psycopg 3 or sqlite3)."""
        return self.session.connection().connection.driver_connection

    def open_staging(self) -> None:
        """An empty staging table for this transaction."""
        self._probe = []
        self._days = []
        driver = self._driver()
        if self.dialect == "postgresql":
            with driver.cursor() as cursor:
                cursor.execute(_PG_STAGING)
                cursor.execute("TRUNCATE usage_staging")
        else:
            cursor = driver.cursor()
            try:
                cursor.execute(_SQLITE_STAGING)
                cursor.execute("DELETE FROM usage_staging")
            finally:
                cursor.close()

    def stage(self, batch: pa.Table) -> None:
        """Add a checked batch (`pipelines.usage.events.NORMALISED`) to the staging table."""
        if batch.num_rows == 0:
            return
        driver = self._driver()
        if self.dialect == "postgresql":
            step = max(1, batch.num_rows // PROBE_SAMPLE)
            ids = batch.column("event_id")
            self._probe.extend(ids.take(list(range(0, batch.num_rows, step))).to_pylist())
            self._probe.append(ids[batch.num_rows - 1].as_py())
            self._days.append(_staged_days(batch))
            # Marks come from the time itself: the month is not staged here.
            times = batch.column("occurred_at").cast(pa.timestamp("us", tz="UTC"))
            staged = batch.select(list(EVENT_COLUMNS)).set_column(
                2, "occurred_us", times.cast(pa.int64())
            )
            with (
                driver.cursor() as cursor,
                cursor.copy(
                    f"COPY usage_staging ({', '.join(PG_STAGED)}) FROM STDIN (FORMAT csv)"
                ) as copy,
            ):
                # Encoded a slice at a time: the server parses one while the next is encoded.
                for start in range(0, batch.num_rows, COPY_SLICE):
                    buffer = io.BytesIO()
                    pa_csv.write_csv(
                        staged.slice(start, COPY_SLICE),
                        buffer,
                        pa_csv.WriteOptions(include_header=False, batch_size=COPY_SLICE),
                    )
                    copy.write(buffer.getbuffer())
            return
        # SQLite stores UUIDs as 32 hex digits and times as text, as SQLAlchemy does.
        columns = {
            "event_id": batch.column("event_id"),
            "organization_id": pc.replace_substring(batch.column("organization_id"), "-", ""),
            "occurred_at": pc.strftime(
                batch.column("occurred_at").cast(pa.timestamp("us")), "%Y-%m-%d %H:%M:%S"
            ),
            **{name: batch.column(name) for name in STAGED[3:10]},
            "month": batch.column("month").cast(pa.string()),
        }
        rows = zip(*(columns[name].to_pylist() for name in STAGED), strict=True)
        cursor = driver.cursor()
        try:
            cursor.executemany(
                f"INSERT INTO usage_staging VALUES ({', '.join('?' * len(STAGED))})", rows
            )
        finally:
            cursor.close()

    def merge_staging(self, *, now: datetime) -> int:
        """Move staged events not stored yet into `usage_events`, marking their tenant-days
        dirty; events already stored (same event id) are left alone. The number inserted.

        PostgreSQL first tries the fast path, a plain insert of every staged event inside a
        savepoint, unless a sample of the staged ids is stored already; a unique violation
        (an id stored already, or twice in the batch) rolls the savepoint back and the batch
        goes in with `ON CONFLICT DO NOTHING`, which checks every id before inserting it.
        """
        self.last_merge = "merge"
        driver = self._driver()
        if self.dialect == "postgresql":
            with driver.cursor() as cursor:
                # The marks' grouping stays in memory for large batches.
                cursor.execute("SET LOCAL work_mem = '256MB'")
                if self._probe_is_clear(cursor):
                    cursor.execute("SAVEPOINT usage_fast_path")
                    try:
                        cursor.execute(_PG_INSERT_NEW)
                    except psycopg.errors.UniqueViolation:
                        cursor.execute("ROLLBACK TO SAVEPOINT usage_fast_path")
                    else:
                        inserted = int(cursor.rowcount)
                        cursor.execute("RELEASE SAVEPOINT usage_fast_path")
                        self._mark_staged_days(cursor, now)
                        self.last_merge = "insert"
                        return inserted
                cursor.execute(_PG_MERGE, (now,))
                row = cursor.fetchone()
                return int(row[0]) if row else 0
        cursor = driver.cursor()
        try:
            stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor.execute(_MARK_NEW.format(now="?"), (stamp,))
            cursor.execute(_MERGE)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def _mark_staged_days(self, cursor: Any, now: datetime) -> None:
        """Mark every staged tenant-day dirty (after the fast path inserted every event)."""
        if not self._days:
            return
        days = pa.concat_tables(self._days).group_by(["organization_id", "day"]).aggregate([])
        cursor.execute(_PG_STAGED_DAYS)
        cursor.execute("TRUNCATE usage_staged_days")
        buffer = io.BytesIO()
        pa_csv.write_csv(days, buffer, pa_csv.WriteOptions(include_header=False))
        with cursor.copy("COPY usage_staged_days FROM STDIN (FORMAT csv)") as copy:
            copy.write(buffer.getbuffer())
        cursor.execute(_PG_MARK_STAGED_DAYS, (now,))

    def _probe_is_clear(self, cursor: Any) -> bool:
        """Whether none of the sampled staged ids is stored yet."""
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM usage_events WHERE event_id = ANY(%s))",
            (self._probe,),
        )
        row = cursor.fetchone()
        return bool(row and row[0])

    def count(self) -> int:
        from sqlalchemy import func

        return int(self.session.scalar(select(func.count()).select_from(UsageEvent)) or 0)

    def extract(self, targets: Sequence[tuple[uuid.UUID, date]]) -> pa.Table:
        """The events of these tenant-months (organisation, first day of month) as Arrow."""
        return self.extract_spans([(org, month, _next_month(month)) for org, month in targets])

    def extract_spans(self, spans: Sequence[tuple[uuid.UUID, date, date]]) -> pa.Table:
        """The events of these spans of days (organisation, first day, day after the last;
        UTC days) as Arrow."""
        if not spans:
            return EXTRACTED.empty_table()
        driver = self._driver()
        if self.dialect == "postgresql":
            return self._extract_postgres(driver, spans)
        return self._extract_sqlite(driver, spans)

    def _extract_postgres(
        self, driver: Any, spans: Sequence[tuple[uuid.UUID, date, date]]
    ) -> pa.Table:
        with driver.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS rollup_targets "
                "(organization_id uuid, first_day date, stop date) ON COMMIT DROP"
            )
            cursor.execute("DELETE FROM rollup_targets")
            with cursor.copy("COPY rollup_targets FROM STDIN") as copy:
                for span in spans:
                    copy.write_row(span)
            cursor.execute("ANALYZE rollup_targets")
            buffer = io.BytesIO()
            columns = (
                "e.organization_id, e.occurred_at AT TIME ZONE 'UTC', e.agent_type, "
                "e.model_version, e.tokens_in, e.tokens_out, e.requests, e.end_user_key, e.job_id"
            )
            within = (
                "e.organization_id = t.organization_id "
                "AND e.occurred_at >= (t.first_day::timestamp AT TIME ZONE 'UTC') "
                "AND e.occurred_at < (t.stop::timestamp AT TIME ZONE 'UTC')"
            )
            days = sum((stop - first).days for _, first, stop in spans)
            if days <= INDEXED_EXTRACT_DAYS:
                # A few tenant-days (an incremental run): each span by the (organisation,
                # time) index, never a scan of every event. `OFFSET 0` keeps the subquery
                # apart: pulled up, it became one hash join over every event (the planner
                # guesses a third of a tenant's events per bound).
                source = (
                    f"rollup_targets t CROSS JOIN LATERAL (SELECT {columns} "
                    f"FROM usage_events e WHERE {within} OFFSET 0) x"
                )
                columns = "x.*"
            else:
                # Many (whole months): one scan hashed on the organisation; left to itself
                # the planner probed the index once per span, reading every event at random.
                source = f"usage_events e JOIN rollup_targets t ON {within}"
            # Times leave as naive UTC in PostgreSQL's own text form (faster than to_char),
            # which the Arrow reader parses.
            query = f"COPY (SELECT {columns} FROM {source}) TO STDOUT (FORMAT csv)"
            indexed = days <= INDEXED_EXTRACT_DAYS
            with (
                planner_setting(cursor, "enable_nestloop", indexed),
                cursor.copy(query) as copy,
            ):
                for data in copy:
                    buffer.write(data)
        buffer.seek(0)
        if buffer.getbuffer().nbytes == 0:
            return EXTRACTED.empty_table()
        return pa_csv.read_csv(
            buffer,
            read_options=pa_csv.ReadOptions(column_names=EXTRACTED.names),
            convert_options=pa_csv.ConvertOptions(
                column_types=EXTRACTED, strings_can_be_null=True, quoted_strings_can_be_null=False
            ),
        )

    def _extract_sqlite(
        self, driver: Any, spans: Sequence[tuple[uuid.UUID, date, date]]
    ) -> pa.Table:
        cursor = driver.cursor()
        try:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS rollup_spans_extract "
                "(organization_id TEXT, first_day TEXT, stop TEXT)"
            )
            cursor.execute("DELETE FROM rollup_spans_extract")
            cursor.executemany(
                "INSERT INTO rollup_spans_extract VALUES (?, ?, ?)",
                [(org.hex, first.isoformat(), stop.isoformat()) for org, first, stop in spans],
            )
            cursor.execute(
                "SELECT e.organization_id, e.occurred_at, e.agent_type, e.model_version, "
                "e.tokens_in, e.tokens_out, e.requests, e.end_user_key, e.job_id "
                "FROM usage_events e JOIN rollup_spans_extract t "
                "ON e.organization_id = t.organization_id "
                "AND e.occurred_at >= t.first_day AND e.occurred_at < t.stop"
            )
            # Read in chunks, each turned into Arrow columns at once: no list of every row.
            chunks = []
            while rows := cursor.fetchmany(SQLITE_CHUNK):
                chunks.append(_sqlite_chunk(rows))
        finally:
            cursor.close()
        if not chunks:
            return EXTRACTED.empty_table()
        return pa.concat_tables(chunks)
