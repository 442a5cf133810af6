"""The rollup's stored usage: each tenant-day's and tenant-month's exact usage and each
tenant-month's distinct keys, read and written in bulk as Arrow (`pipelines.profitability.
rollup`'s `DAY_USAGE`, `MONTH_USAGE`, `MONTH_KEYS` and `KEY_COUNTS` shapes: organisation ids as
canonical UUID text).

The tenant-months a chunk works on are put once in a temporary table (`open_months`), with
the first day whose figures it writes; reads and writes join it. On PostgreSQL rows go in by
COPY into a temporary table then one INSERT … SELECT (COPY into a table under row-level
security is refused) and come out by COPY TO STDOUT; on SQLite by executemany and fetchall.
Everything runs in the caller's transaction.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from models.db.repositories.base import Repository

SUMS = (
    "events",
    "tokens_in",
    "tokens_out",
    "requests",
    "cost_thousandths",
    "unpriced_events",
    "jobs",
    "ai_jobs",
    "users",
    "ai_users",
)
_UUID_PARTS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))
_ROLLUP_LOCK = 0x50524F46
"""The PostgreSQL advisory lock one rollup chunk holds until it commits (month usage is kept
by difference, so two chunks must not apply theirs to the same month at once)."""


DAY_USAGE = pa.schema(
    [
        ("organization_id", pa.string()),
        ("day", pa.date32()),
        *((name, pa.int64()) for name in SUMS),
        ("breakdown", pa.string()),
    ]
)
MONTH_USAGE = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        *((name, pa.int64()) for name in SUMS),
    ]
)
COMBO_SUMS = ("events", "tokens_in", "tokens_out", "requests", "cost", "unpriced_events")
MONTH_COMBOS = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        ("agent_type", pa.string()),
        ("model_version", pa.string()),
        *((name, pa.int64()) for name in COMBO_SUMS),
    ]
)
KEY_COUNTS = pa.schema(
    [
        ("organization_id", pa.string()),
        ("month", pa.date32()),
        ("jobs", pa.int64()),
        ("ai_jobs", pa.int64()),
        ("users", pa.int64()),
        ("ai_users", pa.int64()),
    ]
)


def _dashed(hex_ids: pa.Array) -> pa.Array:
    parts = [pc.utf8_slice_codeunits(hex_ids, a, b) for a, b in _UUID_PARTS]
    return pc.binary_join_element_wise(*parts, "-")


class ProfitabilityUsageRepository(Repository):
    """SQL for the rollup's stored usage."""

    @property
    def postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _cursor(self) -> Any:
        driver: Any = self.session.connection().connection.driver_connection
        return driver.cursor()

    def lock(self) -> None:
        """Wait for any other rollup chunk to commit (PostgreSQL; SQLite has one writer)."""
        if self.postgres:
            with self._cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_ROLLUP_LOCK,))

    # --- the chunk's tenant-months ------------------------------------------------------------

    def open_months(self, months: Iterable[tuple[uuid.UUID, date, date]]) -> None:
        """The chunk's tenant-months (organisation, first day, first day to write)."""
        rows = sorted(set(months))
        cursor = self._cursor()
        try:
            if self.postgres:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS rollup_months (organization_id uuid, "
                    "month date, from_day date, month_end date) ON COMMIT DROP"
                )
                cursor.execute("DELETE FROM rollup_months")
                with cursor.copy("COPY rollup_months FROM STDIN") as copy:
                    for org, month, from_day in rows:
                        copy.write_row((org, month, from_day, _next_month(month)))
                cursor.execute("ANALYZE rollup_months")
            else:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS rollup_months (organization_id TEXT, "
                    "month TEXT, from_day TEXT, month_end TEXT)"
                )
                cursor.execute("DELETE FROM rollup_months")
                cursor.executemany(
                    "INSERT INTO rollup_months VALUES (?, ?, ?, ?)",
                    [
                        (org.hex, m.isoformat(), f.isoformat(), _next_month(m).isoformat())
                        for org, m, f in rows
                    ],
                )
        finally:
            cursor.close()

    def last_day_rows(self) -> dict[tuple[uuid.UUID, date], date]:
        """The last day with a profitability row of each open tenant-month that has one."""
        # One probe of the primary key (organisation, kind, start) per tenant-month, not a
        # read of all its day rows.
        rows = self._fetch(
            "SELECT x.organization_id, x.month, (SELECT max(p.period_start) "
            "FROM tenant_profitability p WHERE p.organization_id = x.organization_id "
            "AND p.period_kind = 'day' AND p.period_start >= x.month "
            "AND p.period_start < x.month_end) FROM rollup_months x"
        )
        return {
            (_uuid(org), _date(month)): _date(last) for org, month, last in rows if last is not None
        }

    # --- reads --------------------------------------------------------------------------------

    def day_usage(self) -> pa.Table:
        """The stored usage of every day of the open tenant-months; breakdowns only of the
        days from each one's first day to write ('[]' before)."""
        sums = ", ".join(f"d.{name}" for name in SUMS)
        breakdown = "CASE WHEN d.day >= x.from_day THEN d.breakdown ELSE '[]' END"
        if self.postgres:
            # Each month by the primary key (`OFFSET 0` keeps the probes apart: a join guessed
            # a third of the table per bound and scanned all of it).
            return self._read(
                f"SELECT d.organization_id, d.day, {sums}, {breakdown} FROM rollup_months x "
                "CROSS JOIN LATERAL (SELECT * FROM profitability_day_usage d "
                "WHERE d.organization_id = x.organization_id AND d.day >= x.month "
                "AND d.day < x.month_end OFFSET 0) d",
                DAY_USAGE,
            )
        return self._read(
            f"SELECT d.organization_id, d.day, {sums}, {breakdown} "
            "FROM profitability_day_usage d JOIN rollup_months x "
            "ON x.organization_id = d.organization_id AND d.day >= x.month AND d.day < x.month_end",
            DAY_USAGE,
        )

    def month_usage(self) -> pa.Table:
        """The stored usage of the open tenant-months."""
        sums = ", ".join(f"m.{name}" for name in SUMS)
        return self._read(
            f"SELECT m.organization_id, m.month, {sums} "
            "FROM profitability_month_usage m JOIN rollup_months x "
            "ON x.organization_id = m.organization_id AND x.month = m.month",
            MONTH_USAGE,
        )

    def month_combos(self) -> pa.Table:
        """The stored usage by agent type and model version of the open tenant-months."""
        sums = ", ".join(f"c.{name}" for name in COMBO_SUMS)
        # A missing model version is stored as '' (it is part of the key).
        columns = f"c.organization_id, c.month, c.agent_type, NULLIF(c.model_version, ''), {sums}"
        if self.postgres:
            # Each month by the primary key (see `day_usage`).
            return self._read(
                f"SELECT {columns} FROM rollup_months x CROSS JOIN LATERAL (SELECT * "
                "FROM profitability_month_combos c WHERE c.organization_id = x.organization_id "
                "AND c.month = x.month OFFSET 0) c",
                MONTH_COMBOS,
            )
        return self._read(
            f"SELECT {columns} FROM profitability_month_combos c JOIN rollup_months x "
            "ON x.organization_id = c.organization_id AND x.month = c.month",
            MONTH_COMBOS,
        )

    # --- writes -------------------------------------------------------------------------------

    def replace_days(self, spans: Sequence[tuple[uuid.UUID, date, date]], days: pa.Table) -> None:
        """Make the stored day usage of these spans (organisation, first day, day after the
        last) the given rows (`DAY_USAGE`, all within the spans)."""
        self._spans(spans)
        cursor = self._cursor()
        try:
            if self.postgres:
                # Each span by the primary key (see `day_usage`).
                cursor.execute(
                    "DELETE FROM profitability_day_usage WHERE ctid = ANY(ARRAY(SELECT d.ctid "
                    "FROM rollup_spans s CROSS JOIN LATERAL (SELECT ctid "
                    "FROM profitability_day_usage d WHERE d.organization_id = s.organization_id "
                    "AND d.day >= s.first_day AND d.day < s.stop OFFSET 0) d))"
                )
            else:
                cursor.execute(
                    "DELETE FROM profitability_day_usage AS d WHERE EXISTS (SELECT 1 FROM "
                    "rollup_spans s WHERE s.organization_id = d.organization_id "
                    "AND d.day >= s.first_day AND d.day < s.stop)"
                )
        finally:
            cursor.close()
        self._insert_rows("profitability_day_usage", days)

    def replace_months(self, months: Sequence[tuple[uuid.UUID, date]], rows: pa.Table) -> None:
        """Make the stored usage of these tenant-months the given rows (`MONTH_USAGE`)."""
        self._spans([(org, month, _next_month(month)) for org, month in months])
        cursor = self._cursor()
        try:
            cursor.execute(
                "DELETE FROM profitability_month_usage WHERE EXISTS (SELECT 1 FROM rollup_spans s"
                " WHERE s.organization_id = profitability_month_usage.organization_id "
                "AND profitability_month_usage.month = s.first_day)"
            )
        finally:
            cursor.close()
        self._insert_rows("profitability_month_usage", rows)

    def add_combos(
        self, changes: pa.Table, *, rebuilt: Sequence[tuple[uuid.UUID, date]], only: bool = False
    ) -> None:
        """Apply changes (`MONTH_COMBOS`, signed) to the stored usage by agent type and model
        version; the combinations of the `rebuilt` tenant-months are replaced by those given.
        `only`: every change is of a month rebuilt (each combination once: plain inserts)."""
        table = "profitability_month_combos"
        cursor = self._cursor()
        try:
            if rebuilt:
                self._spans([(org, month, _next_month(month)) for org, month in rebuilt])
                cursor.execute(
                    f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM rollup_spans s WHERE "
                    f"s.organization_id = {table}.organization_id AND {table}.month = s.first_day)"
                )
            if changes.num_rows == 0:
                return
            changes = changes.set_column(
                3, "model_version", pc.fill_null(changes.column("model_version"), "")
            )
            staged = f"staged_{table}"
            if self.postgres:
                self._stage(cursor, table, changes)
            else:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {staged} (organization_id TEXT, "
                    "month TEXT, agent_type TEXT, model_version TEXT, "
                    + ", ".join(f"{name} INTEGER" for name in COMBO_SUMS)
                    + ")"
                )
                cursor.execute(f"DELETE FROM {staged}")
                cursor.executemany(
                    f"INSERT INTO {staged} VALUES ({', '.join('?' * changes.num_columns)})",
                    _sqlite_rows(changes),
                )
            names = ", ".join(MONTH_COMBOS.names)
            insert = f"INSERT INTO {table} ({names}) SELECT {names} FROM {staged}"
            if not only:
                key = "organization_id, month, agent_type, model_version"
                added = ", ".join(
                    f"{name} = {table}.{name} + excluded.{name}" for name in COMBO_SUMS
                )
                insert += f" WHERE true ON CONFLICT ({key}) DO UPDATE SET {added}"
            cursor.execute(insert)
            if not only and pc.min(changes.column("events")).as_py() < 0:
                # A combination left without events is gone (as a month without events);
                # only a day aggregated again with fewer events can leave one.
                cursor.execute(
                    f"DELETE FROM {table} WHERE events = 0 AND EXISTS (SELECT 1 FROM {staged} s "
                    f"WHERE s.organization_id = {table}.organization_id "
                    f"AND s.month = {table}.month AND s.agent_type = {table}.agent_type "
                    f"AND s.model_version = {table}.model_version)"
                )
        finally:
            cursor.close()

    def add_keys(
        self, keys: pa.Table, *, rebuilt: Sequence[tuple[uuid.UUID, date]], gained: bool = True
    ) -> pa.Table:
        """Add tenant-months' keys (`MONTH_KEYS`), a key seen with an AI event becoming AI;
        the keys of the `rebuilt` tenant-months are replaced by those given. Returns how many
        keys each tenant-month gained (`KEY_COUNTS`: new jobs, jobs newly AI, new users, users
        newly AI), so its distinct counts need no count of its stored keys; without `gained`,
        nothing (every key given is of a month rebuilt: the caller counts them)."""
        cursor = self._cursor()
        try:
            if rebuilt:
                self._spans([(org, month, _next_month(month)) for org, month in rebuilt])
                cursor.execute(
                    "DELETE FROM profitability_month_keys WHERE EXISTS (SELECT 1 FROM "
                    "rollup_spans s WHERE s.organization_id = "
                    "profitability_month_keys.organization_id "
                    "AND profitability_month_keys.month = s.first_day)"
                )
            if keys.num_rows == 0:
                return KEY_COUNTS.empty_table()
            staged = "staged_profitability_month_keys"
            if self.postgres:
                self._stage(cursor, "profitability_month_keys", keys)
            else:
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {staged} (organization_id TEXT, "
                    "month TEXT, kind TEXT, key TEXT, ai BOOLEAN)"
                )
                cursor.execute(f"DELETE FROM {staged}")
                cursor.executemany(
                    f"INSERT INTO {staged} VALUES (?, ?, ?, ?, ?)", _sqlite_rows(keys)
                )
        finally:
            cursor.close()
        insert = (
            "INSERT INTO profitability_month_keys (organization_id, month, kind, key, ai) "
            f"SELECT organization_id, month, kind, key, ai FROM {staged}"
        )
        if not gained:
            # Every key given is of a month rebuilt: its stored keys are gone and the keys
            # given are distinct, so a plain insert (no conflict check per key) suffices.
            cursor = self._cursor()
            try:
                cursor.execute(insert)
            finally:
                cursor.close()
            return KEY_COUNTS.empty_table()
        insert += (
            " WHERE true ON CONFLICT (organization_id, month, kind, key) DO UPDATE SET "
            "ai = excluded.ai WHERE excluded.ai AND NOT profitability_month_keys.ai"
        )
        if self.postgres:
            # One statement: the keys written come back, new ones (no earlier row version:
            # `xmax = 0`) or made AI; a key already stored as it is comes back not at all.
            return _key_counts(
                self._fetch(
                    f"WITH written AS ({insert} RETURNING organization_id, month, kind, ai, "
                    "xmax = 0 AS new) SELECT organization_id, month, "
                    "sum(CASE WHEN kind = 'j' AND new THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN kind = 'j' AND ai THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN kind = 'u' AND new THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN kind = 'u' AND ai THEN 1 ELSE 0 END) "
                    "FROM written GROUP BY organization_id, month"
                )
            )
        # SQLite: the keys new or newly AI, looked up before they are written.
        found = self._read(
            "SELECT s.organization_id, s.month, "
            "sum(CASE WHEN s.kind = 'j' AND k.key IS NULL THEN 1 ELSE 0 END), "
            "sum(CASE WHEN s.kind = 'j' AND s.ai AND (k.key IS NULL OR NOT k.ai) "
            "THEN 1 ELSE 0 END), "
            "sum(CASE WHEN s.kind = 'u' AND k.key IS NULL THEN 1 ELSE 0 END), "
            "sum(CASE WHEN s.kind = 'u' AND s.ai AND (k.key IS NULL OR NOT k.ai) "
            "THEN 1 ELSE 0 END) "
            f"FROM {staged} s LEFT JOIN profitability_month_keys k "
            "ON k.organization_id = s.organization_id AND k.month = s.month "
            "AND k.kind = s.kind AND k.key = s.key GROUP BY s.organization_id, s.month",
            KEY_COUNTS,
        )
        cursor = self._cursor()
        try:
            cursor.execute(insert)
        finally:
            cursor.close()
        return found

    # --- helpers ------------------------------------------------------------------------------

    def _spans(self, spans: Sequence[tuple[uuid.UUID, date, date]]) -> None:
        cursor = self._cursor()
        try:
            if self.postgres:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS rollup_spans (organization_id uuid, "
                    "first_day date, stop date) ON COMMIT DROP"
                )
                cursor.execute("DELETE FROM rollup_spans")
                with cursor.copy("COPY rollup_spans FROM STDIN") as copy:
                    for row in spans:
                        copy.write_row(row)
                cursor.execute("ANALYZE rollup_spans")
            else:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS rollup_spans (organization_id TEXT, "
                    "first_day TEXT, stop TEXT)"
                )
                cursor.execute("DELETE FROM rollup_spans")
                cursor.executemany(
                    "INSERT INTO rollup_spans VALUES (?, ?, ?)",
                    [(org.hex, a.isoformat(), b.isoformat()) for org, a, b in spans],
                )
        finally:
            cursor.close()

    def _stage(self, cursor: Any, table: str, rows: pa.Table) -> None:
        staged = f"staged_{table}"
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staged} (LIKE {table}) ON COMMIT DROP")
        cursor.execute(f"DELETE FROM {staged}")
        buffer = io.BytesIO()
        pa_csv.write_csv(rows, buffer, pa_csv.WriteOptions(include_header=False))
        with cursor.copy(
            f"COPY {staged} ({', '.join(rows.column_names)}) FROM STDIN (FORMAT csv)"
        ) as copy:
            copy.write(buffer.getbuffer())
        # Statistics, so the planner joins the few staged rows by index, not by a scan.
        cursor.execute(f"ANALYZE {staged}")

    def _insert_rows(self, table: str, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        names = ", ".join(rows.column_names)
        cursor = self._cursor()
        try:
            if self.postgres:
                self._stage(cursor, table, rows)
                cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM staged_{table}")
            else:
                cursor.executemany(
                    f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * rows.num_columns)})",
                    _sqlite_rows(rows),
                )
        finally:
            cursor.close()

    def _fetch(self, query: str) -> list[tuple[Any, ...]]:
        cursor = self._cursor()
        try:
            cursor.execute(query)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _read(self, query: str, schema: pa.Schema) -> pa.Table:
        if self.postgres:
            buffer = io.BytesIO()
            statement = f"COPY ({query}) TO STDOUT (FORMAT csv)"
            with self._cursor() as cursor, cursor.copy(statement) as copy:
                for data in copy:
                    buffer.write(data)
            if buffer.getbuffer().nbytes == 0:
                return schema.empty_table()
            buffer.seek(0)
            return pa_csv.read_csv(
                buffer,
                read_options=pa_csv.ReadOptions(column_names=schema.names),
                convert_options=pa_csv.ConvertOptions(column_types=schema),
            )
        rows = self._fetch(query)
        if not rows:
            return schema.empty_table()
        columns = list(zip(*rows, strict=True))
        arrays = [_dashed(pa.array(columns[0], pa.string()))]
        arrays.append(pa.array(columns[1], pa.string()).cast(pa.date32()))
        arrays.extend(
            pa.array(values, field.type)
            for values, field in zip(columns[2:], list(schema)[2:], strict=True)
        )
        return pa.Table.from_arrays(arrays, schema=schema)


def _key_counts(rows: list[tuple[Any, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in KEY_COUNTS]
    return pa.table(
        [
            pa.array([str(org) for org in columns[0]], pa.string()),
            pa.array(columns[1], pa.date32()),
            *(pa.array([int(n) for n in values], pa.int64()) for values in columns[2:]),
        ],
        schema=KEY_COUNTS,
    )


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _sqlite_rows(rows: pa.Table) -> Iterable[tuple[Any, ...]]:
    """Arrow rows as SQLite stores them: UUIDs as 32 hex digits, dates as text."""
    columns = []
    for name in rows.column_names:
        column = rows.column(name)
        if name == "organization_id":
            columns.append(pc.replace_substring(column, "-", "").to_pylist())
        elif pa.types.is_date32(column.type):
            columns.append(column.cast(pa.string()).to_pylist())
        else:
            columns.append(column.to_pylist())
    return zip(*columns, strict=True)
