"""Use cases of usage metering: ingest events from a file or an API batch, idempotently.

A batch (a whole file, or one request) is checked chunk by chunk as it streams in, staged, and
merged into `usage_events` in the caller's transaction: the first bad row refuses the batch
(its number, column and reason) and, once the caller rolls back, nothing is written. Events
whose `event_id` is stored already are skipped, so resending a batch adds nothing; the
tenant-months that received new events are marked for the rollup.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from queue import Full, Queue
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.enums import OrganizationKind
from models.db.repositories.audit import record_audit
from models.db.repositories.usage import UsageRepository
from models.db.tables import Organization
from pipelines.errors import InvalidInput
from pipelines.usage.events import COLUMNS, BatchPosition, normalise

CHUNK_ROWS = 262_144
"""Rows read, checked and staged at a time: memory stays flat whatever the file's size."""
MAX_API_BATCH = 10_000
"""Events one API request may carry."""
TEXT_COLUMNS = ("event_id", "tenant", "occurred_at", "agent_type", "model_version")
"""Columns a JSON reader must keep as text (times are parsed, with their zone, by the checks)."""
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

T = TypeVar("T")
Progress = Callable[[int], None]
"""Told the number of rows checked so far."""


@dataclass(frozen=True)
class IngestResult:
    """What a batch did: rows received, events new to the platform, events already stored."""

    received: int
    inserted: int
    duplicates: int
    source: str


def _tenants(session: Session) -> dict[str, Any]:
    rows = session.execute(
        select(Organization.slug, Organization.id).where(
            Organization.kind == OrganizationKind.TENANT
        )
    )
    return {slug: org for slug, org in rows}  # noqa: C416 - rows are Row objects


def read_ahead(items: Iterator[T]) -> Iterator[T]:
    """The items of `items`, each produced in a thread while the caller works on the one
    before (reading and checking a chunk overlaps the COPY of the previous one); errors are
    raised here, in order. Stopping early stops the thread."""
    queue: Queue[tuple[bool, Any]] = Queue(maxsize=1)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.05)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as error:
            put((False, error))
            return
        put((False, None))

    thread = threading.Thread(target=produce, name="usage-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = queue.get()
            if not ok:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        thread.join()


def checked(
    batches: Iterable[pa.Table], tenants: dict[str, Any], field_prefix: str | None = None
) -> Iterator[pa.Table]:
    """Each batch checked and normalised, its rows numbered from the first batch's first row."""
    received = 0
    for batch in batches:
        yield normalise(batch, tenants, BatchPosition(received + 1, field_prefix))
        received += batch.num_rows


def ingest_usage(
    session: Session,
    batches: Iterable[pa.Table],
    *,
    actor: str,
    now: datetime,
    source: str,
    field_prefix: str | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    """Check, stage and merge every batch as one unit; audited as `usage_events.ingested`."""
    tenants = _tenants(session)
    usage = UsageRepository(session)
    usage.open_staging()
    received = 0
    for batch in read_ahead(checked(batches, tenants, field_prefix)):
        usage.stage(batch)
        received += batch.num_rows
        if progress is not None:
            progress(received)
    inserted = usage.merge_staging(now=now) if received else 0
    result = IngestResult(received, inserted, received - inserted, source)
    record_audit(
        session,
        "usage_events.ingested",
        source,
        actor=actor,
        details={"received": received, "inserted": inserted, "duplicates": received - inserted},
    )
    return result


def ingest_events(
    session: Session, events: Sequence[dict[str, Any]], *, actor: str, now: datetime
) -> IngestResult:
    """Ingest one API batch (mappings with the usage columns); errors name `events/<i>/<field>`."""
    if not events:
        raise InvalidInput("send at least one event", field="events")
    if len(events) > MAX_API_BATCH:
        raise InvalidInput(
            f"a batch holds at most {MAX_API_BATCH} events; split it", field="events"
        )
    columns = {name: [event.get(name) for event in events] for name in COLUMNS}
    table = pa.table(
        {
            name: pa.array(
                [v.isoformat() if isinstance(v, datetime) else v for v in values],
                pa.int64() if name in ("tokens_in", "tokens_out", "requests") else pa.string(),
            )
            for name, values in columns.items()
        }
    )
    return ingest_usage(session, [table], actor=actor, now=now, source="api", field_prefix="events")


def file_format(path: Path) -> str:
    """csv, jsonl or parquet, from the file's suffix."""
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise InvalidInput(
            f"{path.name}: give a .csv, .jsonl or .parquet file of usage events", field="file"
        )
    return found


def read_usage_file(path: Path, *, chunk_rows: int = CHUNK_ROWS) -> Iterator[pa.Table]:
    """The file's rows in chunks of about `chunk_rows` (CSV and JSONL read as text)."""
    kind = file_format(path)
    try:
        if kind == "parquet":
            parquet = pq.ParquetFile(path)
            for record_batch in parquet.iter_batches(batch_size=chunk_rows):
                yield pa.Table.from_batches([record_batch])
            return
        if kind == "csv":
            header = pa_csv.open_csv(path).schema.names
            reader: Any = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(block_size=16 << 20),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.string() for name in header},
                    strings_can_be_null=True,
                ),
            )
        else:
            text = pa.schema([(name, pa.string()) for name in TEXT_COLUMNS])
            reader = pa_json.open_json(
                path,
                read_options=pa_json.ReadOptions(block_size=16 << 20),
                parse_options=pa_json.ParseOptions(explicit_schema=text),
            )
        for record_batch in reader:
            yield pa.Table.from_batches([record_batch])
    except (pa.ArrowInvalid, OSError) as error:
        raise InvalidInput(f"{path.name} cannot be read as {kind}: {error}", field="file") from None
