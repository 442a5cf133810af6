"""Profitability at scale on PostgreSQL: load, full rollup, the same aggregation three ways,
peak memory, and the incremental rollup of one new day.

    uv run python -m bench.profitability_bench                 # 10,000,000 events (minutes)
    uv run python -m bench.profitability_bench --events 500000 # a quick run
    uv run python -m bench.profitability_bench --events 1000000 --load-only

Generates usage events (2,000 tenants, 90 days, 20 model versions; seeded) to Parquet in a
temporary folder, creates a fresh database on the test PostgreSQL server
(`STREAMFLOW_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/test), and
measures in the same run:

- load: `streamflow usage import`'s path (read Parquet in chunks and check every row in a
  thread, COPY into a staging table, insert into `usage_events`: plainly when no staged id is
  stored, else merged by event id), events/s, with the COPY and insert steps apart; and, as the
  ceiling, COPY of the same rows into an unindexed UNLOGGED table in the same run;
- full rollup of every tenant-month, rebuilt from the events: extract (COPY TO STDOUT →
  Arrow), stage 1 (DuckDB: each tenant-day's usage and each tenant-month's keys), the stored
  usage written (day and month usage, the months' usage by agent type and model version,
  keys), stage 2 (DuckDB, exact integers: the figures from the usage), bulk upsert (COPY into
  staging + one INSERT … ON CONFLICT DO UPDATE WHERE changed); and the aggregation itself
  (per tenant, day and model
  version: events, tokens, requests, AI cost) in DuckDB over the extract vs pandas over the same
  data vs a PostgreSQL GROUP BY over the table (median of 3 each);
- peak memory of the process (ru_maxrss) after each stage;
- incremental: one new day of events for every tenant, imported (timed apart), then the
  rollup of what it marked: the new day's events only are read and aggregated, each tenant's
  month usage updated by difference, and the new day's and the month's figures computed from
  the stored usage (the new day falls mid-month).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import text

from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.migrate import upgrade
from models.db.repositories.usage import EVENT_COLUMNS, PG_STAGED, UsageRepository
from models.db.tables import Organization
from pipelines.profitability import service
from pipelines.profitability.pricing import Tier
from pipelines.profitability.rollup import rollup_table
from pipelines.usage.service import _tenants, checked, read_ahead, read_usage_file

ADMIN_URL = os.environ.get(
    "STREAMFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TENANTS = 2_000
DAYS = 90
MODELS = 20
FIRST_DAY = date(2025, 12, 15)
"""90 days from here end on 2026-03-14, so the extra day (03-15) falls mid-month."""
AGENTS = ("summarizer", "intent_classifier", "concierge")
CHUNK = 1_000_000


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median(run: Callable[[], Any], repeat: int = 3) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def _slugs() -> list[str]:
    return [f"bench-{i:04d}" for i in range(TENANTS)]


def generate(
    path: Path, events: int, *, first_day: date, days: int, seed: int, offset: int = 0
) -> None:
    """Seeded events to Parquet, written in chunks (never all in memory)."""
    rng = np.random.default_rng(seed)
    slugs = pa.array(_slugs())
    models = pa.array([f"model-{m:02d}@1" for m in range(MODELS)])
    agents = pa.array(list(AGENTS))
    weights = 1.0 / np.arange(1, TENANTS + 1) ** 0.6
    weights /= weights.sum()
    start = int(datetime.combine(first_day, datetime.min.time(), tzinfo=UTC).timestamp() * 1e6)
    span = days * 86_400 * 1_000_000
    schema = pa.schema(
        [
            ("event_id", pa.string()),
            ("tenant", pa.string()),
            ("occurred_at", pa.timestamp("us", tz="UTC")),
            ("agent_type", pa.string()),
            ("model_version", pa.string()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("requests", pa.int64()),
            ("end_user_key", pa.string()),
            ("job_id", pa.string()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for low in range(0, events, CHUNK):
            n = min(CHUNK, events - low)
            ids = np.arange(offset + low, offset + low + n)
            tenant_index = rng.choice(TENANTS, size=n, p=weights)
            ai = rng.random(n) >= 0.1
            tokens_in = np.where(ai, rng.integers(50, 4000, n), 0)
            tokens_out = np.where(ai, rng.integers(10, 1500, n), 0)
            requests = np.where(ai, rng.integers(1, 4, n), 0)
            agent = pc.take(agents, pa.array(rng.integers(0, len(AGENTS), n)))
            model = pc.take(models, pa.array(rng.integers(0, MODELS, n)))
            mask = pa.array(~ai)
            tenant = pc.take(slugs, pa.array(tenant_index))
            id_text = pc.cast(pa.array(ids), pa.string())
            table = pa.table(
                {
                    "event_id": pc.binary_join_element_wise("e", id_text, ""),
                    "tenant": tenant,
                    "occurred_at": pa.array(
                        start + rng.integers(0, span, n), pa.timestamp("us", tz="UTC")
                    ),
                    "agent_type": pc.if_else(mask, pa.scalar(None, pa.string()), agent),
                    "model_version": pc.if_else(mask, pa.scalar(None, pa.string()), model),
                    "tokens_in": pa.array(tokens_in),
                    "tokens_out": pa.array(tokens_out),
                    "requests": pa.array(requests),
                    "end_user_key": pc.binary_join_element_wise(
                        tenant, pc.cast(pa.array(rng.integers(0, 40, n)), pa.string()), "-u"
                    ),
                    "job_id": pc.binary_join_element_wise(
                        "j", pc.cast(pa.array(ids // 3), pa.string()), ""
                    ),
                },
                schema=schema,
            )
            writer.write_table(table)


def _fresh_database() -> tuple[str, str]:
    name = f"streamflow_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(sessions: Any, now: datetime) -> None:
    with transaction(sessions) as session:
        session.add(
            Organization(slug="provider", name="provider", kind="provider", status="active")
        )
        session.add_all(
            Organization(slug=slug, name=slug, kind="tenant", status="active") for slug in _slugs()
        )
    with transaction(sessions) as session:
        for m in range(MODELS):
            service.set_ai_cost_rate(
                session,
                model_version=f"model-{m:02d}@1",
                effective_from=date(2025, 1, 1),
                currency="USD",
                micros_per_1k_tokens_in=100 + 10 * m,
                micros_per_1k_tokens_out=300 + 20 * m,
                micros_per_request=50,
                actor="bench",
                now=now,
            )
        service.set_infrastructure_rule(
            session,
            effective_from=date(2025, 1, 1),
            currency="USD",
            micros_per_request=20,
            micros_per_1k_tokens=15,
            micros_per_tenant_month=5_000_000,
            actor="bench",
            now=now,
        )
        service.set_adoption_tiers(
            session,
            effective_from=date(2025, 1, 1),
            basis="jobs",
            tiers=[Tier("base", 0, 0), Tier("silver", 5000, 500), Tier("gold", 9000, 1500)],
            actor="bench",
            now=now,
        )
        for index, slug in enumerate(_slugs()):
            service.set_tenant_plan(
                session,
                tenant=slug,
                effective_from=date(2025, 12, 1),
                currency="USD",
                monthly_fee_micros=(200 + index % 7 * 100) * 1_000_000,
                included_tokens=2_000_000,
                overage_micros_per_1k_tokens=1_500,
                actor="bench",
                now=now,
            )


def load(sessions: Any, path: Path, now: datetime) -> dict[str, Any]:
    """The import path, timed by step; one transaction. Reading and checking run in a thread
    beside the COPY (`read_ahead`): `waiting` is the time the COPY waited for them."""
    timings: dict[str, Any] = {"waiting": 0.0, "copy": 0.0}
    rows = 0
    started = time.perf_counter()
    with transaction(sessions) as session:
        tenants = _tenants(session)
        usage = UsageRepository(session)
        usage.open_staging()
        waiting = time.perf_counter()
        for batch in read_ahead(checked(read_usage_file(path), tenants)):
            copying = time.perf_counter()
            timings["waiting"] += copying - waiting
            usage.stage(batch)
            waiting = time.perf_counter()
            timings["copy"] += waiting - copying
            rows += batch.num_rows
        merging = time.perf_counter()
        inserted = usage.merge_staging(now=now)
        timings["merge"] = time.perf_counter() - merging
        timings["merge_path"] = usage.last_merge
        committing = time.perf_counter()
    timings["commit"] = time.perf_counter() - committing
    timings["total"] = time.perf_counter() - started
    timings["rows"] = rows
    timings["inserted"] = inserted
    return timings


def copy_ceiling(url: str, path: Path) -> dict[str, float]:
    """The reference: the same events (checked, encoded as the load encodes them) COPYed into
    an UNLOGGED table with no index, no constraint and no row-level security, in one
    transaction rolled back: what this server and machine take at most through COPY."""
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    engine = make_engine(url)
    with transaction(make_sessionmaker(engine)) as session:
        tenants = _tenants(session)
    engine.dispose()
    columns = ", ".join(PG_STAGED)
    out = {"encode": 0.0, "copy": 0.0, "rows": 0.0}
    with psycopg.connect(plain) as connection:
        connection.execute(
            "CREATE UNLOGGED TABLE copy_ceiling (event_id text, organization_id uuid, "
            "occurred_us bigint, agent_type text, model_version text, tokens_in bigint, "
            "tokens_out bigint, requests bigint, end_user_key text, job_id text)"
        )
        for batch in checked(read_usage_file(path), tenants):
            step = time.perf_counter()
            times = batch.column("occurred_at").cast(pa.timestamp("us", tz="UTC"))
            staged = batch.select(list(EVENT_COLUMNS)).set_column(
                2, "occurred_us", times.cast(pa.int64())
            )
            data = io.BytesIO()
            pa_csv.write_csv(staged, data, pa_csv.WriteOptions(include_header=False))
            out["encode"] += time.perf_counter() - step
            step = time.perf_counter()
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY copy_ceiling ({columns}) FROM STDIN (FORMAT csv)") as copy,
            ):
                copy.write(data.getbuffer())
            out["copy"] += time.perf_counter() - step
            out["rows"] += batch.num_rows
        connection.rollback()
    return out


class Steps:
    """Times the rollup's steps (`service.rollup_chunk`'s `step` callback)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.times: dict[str, float] = {}

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + now - self.last
        self.last = now

    def text(self) -> str:
        return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.times.items())


def full_rollup(sessions: Any, now: datetime) -> dict[str, Any]:
    """Every tenant-month of the range, rebuilt from the events in one transaction (one chunk),
    timed by step; then the events and price book for the comparisons."""
    out: dict[str, Any] = {}
    started = time.perf_counter()
    with transaction(sessions) as session:
        plan = service.plan_rollup(
            session, now=now, since=date(2025, 12, 1), until=date(2026, 4, 1)
        )
        out["tenant_months"] = len(plan.targets)
        steps = Steps()
        result = service.rollup_chunk(
            session, plan.targets, through=plan.through, now=now, rebuild=True, step=steps
        )
        out["steps"] = steps.text()
        out["extract_rows"] = result.events
        out["inserted"] = result.inserted
        committing = time.perf_counter()
    out["commit_s"] = time.perf_counter() - committing
    out["total_s"] = time.perf_counter() - started
    with transaction(sessions) as session:
        out["periods"] = session.scalar(text("SELECT count(*) FROM tenant_profitability"))
        out["events"] = UsageRepository(session).extract(plan.targets)
        out["book"] = service.price_book(session)
    return out


def _months(events: pa.Table) -> tuple[list[str], list[date]]:
    months = pc.floor_temporal(events.column("occurred_at"), unit="month").cast(pa.date32())
    pairs = pa.table({"o": events.column("organization_id"), "m": months}).group_by(["o", "m"])
    grouped = pairs.aggregate([])
    return grouped.column("o").to_pylist(), grouped.column("m").to_pylist()


def compare_aggregations(events: pa.Table, book: Any, url: str) -> dict[str, Any]:
    """Per (tenant, day, model version): events, tokens, requests, AI cost — three engines."""
    out: dict[str, Any] = {}
    targets = sorted({(o, m) for o, m in zip(*_months(events), strict=True)})
    out["rollup_aggregate"] = _median(
        lambda: rollup_table(events, targets, book, through=date(2026, 3, 14), threads=2),
        repeat=1,
    )
    rates_table = pa.table(
        {
            "model_version": list(book.cost_rates),
            "per_1k_in": [r[0].micros_per_1k_tokens_in for r in book.cost_rates.values()],
            "per_1k_out": [r[0].micros_per_1k_tokens_out for r in book.cost_rates.values()],
            "per_request": [r[0].micros_per_request for r in book.cost_rates.values()],
        }
    )
    duck = duckdb.connect()
    duck.execute("SET threads = 2")
    duck.register("ev", events)
    duck.register("rates", rates_table)
    same = (
        "SELECT e.organization_id, CAST(e.occurred_at AS DATE) AS day, e.agent_type, "
        "e.model_version, count(*), sum(e.tokens_in), sum(e.tokens_out), sum(e.requests), "
        "sum(e.tokens_in * r.per_1k_in + e.tokens_out * r.per_1k_out "
        "+ e.requests * r.per_request * 1000) FROM ev e JOIN rates r "
        "ON r.model_version = e.model_version WHERE e.agent_type IS NOT NULL GROUP BY ALL"
    )
    out["duckdb"] = _median(lambda: duck.sql(same).to_arrow_table())
    out["duckdb_groups"] = duck.sql(same).to_arrow_table().num_rows
    duck.close()
    frame = events.to_pandas()
    rates = {
        model: (
            r[0].micros_per_1k_tokens_in,
            r[0].micros_per_1k_tokens_out,
            r[0].micros_per_request,
        )
        for model, r in book.cost_rates.items()
    }

    def with_pandas() -> Any:
        ai = frame[frame["agent_type"].notna()]
        day = ai["occurred_at"].dt.floor("D")
        price = ai["model_version"].map(lambda m: rates[m])
        cost = (
            ai["tokens_in"] * price.str[0]
            + ai["tokens_out"] * price.str[1]
            + ai["requests"] * price.str[2] * 1000
        )
        return (
            ai.assign(day=day, cost=cost)
            .groupby(["organization_id", "day", "agent_type", "model_version"], sort=False)
            .agg(
                events=("cost", "size"),
                tokens_in=("tokens_in", "sum"),
                tokens_out=("tokens_out", "sum"),
                requests=("requests", "sum"),
                cost=("cost", "sum"),
            )
        )

    out["pandas"] = _median(with_pandas)
    out["pandas_groups"] = len(with_pandas())
    query = (
        "SELECT e.organization_id, (e.occurred_at AT TIME ZONE 'UTC')::date AS day, e.agent_type, "
        "e.model_version, count(*), sum(e.tokens_in), sum(e.tokens_out), sum(e.requests), "
        "sum(e.tokens_in * r.micros_per_1k_tokens_in + e.tokens_out * r.micros_per_1k_tokens_out "
        "+ e.requests * r.micros_per_request * 1000) FROM usage_events e JOIN ai_cost_rates r "
        "ON r.model_version = e.model_version WHERE e.agent_type IS NOT NULL GROUP BY 1, 2, 3, 4"
    )
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    # The database's owner: row-level security does not stand in the way.
    with psycopg.connect(plain) as connection:

        def with_postgres() -> int:
            return len(connection.execute(query).fetchall())

        out["postgresql"] = _median(with_postgres)
        out["postgresql_groups"] = with_postgres()
    return out


def incremental_day(sessions: Any, folder: Path, events: int, now: datetime) -> dict[str, Any]:
    """One new day of events for every tenant: its load (the import path), then the rollup of
    what it marked (one transaction), timed by step."""
    path = folder / "day.parquet"
    per_day = max(1, events // DAYS)
    generate(
        path, per_day, first_day=FIRST_DAY + timedelta(days=DAYS), days=1, seed=7, offset=events
    )
    out: dict[str, Any] = {"events": per_day}
    out["load_s"] = load(sessions, path, now)["total"]
    started = time.perf_counter()
    with transaction(sessions) as session:
        plan = service.plan_rollup(session, now=now)
        out["tenant_months"] = len(plan.targets)
        out["plan_s"] = time.perf_counter() - started
        steps = Steps()
        result = service.rollup_chunk(
            session, plan.targets, through=plan.through, now=now, step=steps
        )
        out["steps"] = steps.text()
        out["extract_rows"] = result.events
        out["written"] = result.inserted + result.updated + result.deleted
        committing = time.perf_counter()
    out["commit_s"] = time.perf_counter() - committing
    out["rollup_s"] = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument(
        "--load-only", action="store_true", help="measure the load (and its ceiling) only"
    )
    args = parser.parse_args(argv)
    # The clock stands at the end of the last generated day; the new day comes after it.
    now = datetime.combine(
        FIRST_DAY + timedelta(days=DAYS - 1), datetime.min.time(), tzinfo=UTC
    ) + timedelta(hours=23)
    name, url = _fresh_database()
    engine = make_engine(url)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            path = folder / "events.parquet"
            started = time.perf_counter()
            generate(path, args.events, first_day=FIRST_DAY, days=DAYS, seed=args.seed)
            print(
                f"generated {args.events:,} events ({TENANTS} tenants, {DAYS} days, {MODELS} model "
                f"versions) in {time.perf_counter() - started:.1f} s, Parquet "
                f"{path.stat().st_size / 2**20:.0f} MiB; peak RSS {_peak_mib():.0f} MiB"
            )
            upgrade(engine)
            sessions = make_sessionmaker(engine)
            _seed(sessions, now)
            loaded = load(sessions, path, now)
            rate = loaded["rows"] / loaded["total"]
            ceiling = copy_ceiling(url, path)
            print(
                f"load (import path, load average {os.getloadavg()[0]:.1f}): "
                f"{loaded['total']:.1f} s = {rate / 1e6:.2f} M events/s "
                f"[waiting for read+check {loaded['waiting']:.1f} s, COPY into staging "
                f"{loaded['copy']:.1f} s ({loaded['rows'] / loaded['copy'] / 1e6:.2f} M rows/s), "
                f"insert into usage_events ({loaded['merge_path']}) {loaded['merge']:.1f} s, "
                f"commit {loaded['commit']:.1f} s]; reference, same run: COPY of the same "
                f"events into an unindexed UNLOGGED table {ceiling['copy']:.1f} s = "
                f"{ceiling['rows'] / ceiling['copy'] / 1e6:.2f} M rows/s (+ CSV encoding "
                f"{ceiling['encode']:.1f} s); peak RSS {_peak_mib():.0f} MiB"
            )
            if args.load_only:
                return 0
            with psycopg.connect(
                url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
            ) as c:
                c.execute("VACUUM ANALYZE usage_events")
            rolled = full_rollup(sessions, now)
            print(
                f"full rollup (rebuilt from the events): {rolled['total_s']:.1f} s for "
                f"{rolled['tenant_months']} tenant-months, {rolled['periods']:,} periods "
                f"({rolled['extract_rows']:,} events) [{rolled['steps']}, commit "
                f"{rolled['commit_s']:.2f} s]; peak RSS {_peak_mib():.0f} MiB"
            )
            compared = compare_aggregations(rolled["events"], rolled["book"], url)
            duck, pandas, postgres = compared["duckdb"], compared["pandas"], compared["postgresql"]
            print(
                "aggregation per (tenant, day, agent type, model version), median of 3: "
                f"DuckDB over the Arrow extract {duck[0]:.2f} s, pandas {pandas[0]:.2f} s "
                f"(×{pandas[0] / duck[0]:.1f}), PostgreSQL GROUP BY {postgres[0]:.2f} s "
                f"(×{postgres[0] / duck[0]:.1f}); groups: DuckDB {compared['duckdb_groups']:,}, "
                f"pandas {compared['pandas_groups']:,}, "
                f"PostgreSQL {compared['postgresql_groups']:,}; "
                f"runs {[round(t, 2) for t in duck[1]]} / {[round(t, 2) for t in pandas[1]]} / "
                f"{[round(t, 2) for t in postgres[1]]}; the rollup's whole computation (every "
                f"tenant-month with events: usage, adoption, money, explanations, as Arrow) "
                f"{compared['rollup_aggregate'][0]:.2f} s"
            )
            del rolled, compared
            # As autovacuum would between two hourly runs: the full rollup left dead rows
            # (marks cleared, rows replaced) and no statistics on the new tables.
            with psycopg.connect(
                url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
            ) as c:
                c.execute("VACUUM ANALYZE")
            day = incremental_day(sessions, folder, args.events, now + timedelta(days=1))
            print(
                f"incremental day: {day['events']:,} new events loaded in {day['load_s']:.2f} s "
                f"(import path); rollup of the {day['tenant_months']} marked tenant-months "
                f"{day['rollup_s']:.2f} s ({day['extract_rows']:,} events read, "
                f"{day['written']} rows written) [plan {day['plan_s']:.2f} s, {day['steps']}, "
                f"commit {day['commit_s']:.2f} s]; peak RSS {_peak_mib():.0f} MiB"
            )
    finally:
        engine.dispose()
        _drop_database(name)
    print(
        f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; "
        f"duckdb {duckdb.__version__}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
