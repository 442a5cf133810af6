"""Requests/second and p50/p99 of `POST /v1/agents/{agent}/predict` with no experiment vs a
shadow experiment at sample 1.0, in the same run, on the same champion model, one uvicorn
worker (embedded SQLite, or a fresh database on `--postgres URL`; in-process rate limits).

The experiment is paused and resumed in one server process, so `--repetitions` pairs of
no-experiment and shadow phases alternate (ABBA order); medians are reported, with each
phase's p99, the CPU ms per request of the API process and of the shadow workers, and
server-side spans (`bench/predict_server.py`; `--stage no_run` cuts the challenger out of the
shadow path).

Two loads per phase, from an asyncio client in this process over loopback:
- closed loop: `--concurrency` clients each send the next request when the last answered
  (the maximum throughput);
- open loop: requests start at a fixed rate, about half the no-experiment maximum, whatever
  the answers do (latency as a caller at a steady rate sees it, queueing included). A phase
  answering under 95 % of that rate is reported as `overloaded` (on a shared machine the
  rate measured at warm-up can exceed what is left later: its latencies are then seconds of
  queue) and left out of the open loop's added p99, as is one whose load generator was itself
  late by over 100 ms (`client_stalled`).

What else is reported, to tell the shadow's cost from the machine's: per phase, the machine's
busy share, the PostgreSQL backends' CPU ms per request and what they waited on; the load
generator's own stalls; the server's garbage-collector pauses and stalls (a thread's
oversleep), each long one placed in its phase; the serving log's writes with their CPU time
and statements. `--pin` runs the server on the last core and the load generator on the
others (the database and the rest of the machine stay unpinned).

The challenger is another registered version of the same classifier, so the shadow adds only
the shadow machinery's own work (queueing, the worker process, batched writes).

    uv run python -m bench.predict_bench [--seconds 10] [--repetitions 3] [--postgres URL] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

TEXTS = [
    "My invoice shows the wrong amount",
    "The app crashes when I open the schedule",
    "I want a refund for last month",
    "How do I add a technician to my team",
    "Payment failed twice this morning",
    "The map does not load on my phone",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed(env: dict[str, str]) -> str:
    """Register the classifier twice (champion v1, challenger v2) and a tenant's key."""
    os.environ.update(env)
    from models.db.engine import make_engine, make_sessionmaker, transaction
    from models.db.migrate import ensure_schema
    from models.registry import client as registry
    from models.settings import RegistrySettings, StorageSettings
    from pipelines.access.service import issue_api_key
    from pipelines.agents.intent_classifier import train_tfidf_logistic_regression
    from pipelines.organizations import ensure_organization

    settings = RegistrySettings()
    registry.configure(settings)
    labels = ["billing", "bug", "billing", "account", "billing", "bug"]
    model = train_tfidf_logistic_regression(TEXTS * 5, labels * 5)
    experiment = registry.experiment_id(settings)
    for _ in range(2):
        registry.register_model_version(
            "intent-bench", model, agent_type="intent", task="classification", experiment=experiment
        )
    registry.set_alias("intent-bench", "champion", "1")
    storage = StorageSettings()
    engine = make_engine(storage.resolved_database_url())
    ensure_schema(engine)
    with transaction(make_sessionmaker(engine)) as session:
        ensure_organization(session, slug="provider", name="P", kind="provider", actor="bench")
        org, _ = ensure_organization(session, slug="acme", name="Acme", kind="tenant", actor="b")
        issued = issue_api_key(
            session, organization_id=org.id, name="bench", scopes=["predict"], actor="bench"
        )
    engine.dispose()
    return issued.plaintext


def _start_shadow() -> str:
    from datetime import UTC, datetime

    from models.db.engine import make_engine, make_sessionmaker, transaction
    from models.settings import StorageSettings
    from pipelines.experiments.service import ExperimentRequest, change_status, create_experiment

    engine = make_engine(StorageSettings().resolved_database_url())
    request = ExperimentRequest(
        kind="shadow",  # type: ignore[arg-type]
        agent_type="intent",
        challenger="intent-bench@2",
        mde=0.05,
        sample_rate=1.0,
    )
    with transaction(make_sessionmaker(engine)) as session:
        now = datetime.now(UTC)
        created = create_experiment(
            session,
            request,
            champion="intent-bench@1",
            resolve=lambda ref: ref,
            actor="bench",
            now=now,
        )
        change_status(session, uuid.UUID(created.id), "start", actor="b", now=now)
    engine.dispose()
    return created.id


def _change_shadow(experiment_id: str, action: str) -> None:
    """Pause or resume the shadow experiment (the API sees it within its 1 s cache)."""
    from datetime import UTC, datetime

    from models.db.engine import make_engine, make_sessionmaker, transaction
    from models.settings import StorageSettings
    from pipelines.experiments.service import change_status

    engine = make_engine(StorageSettings().resolved_database_url())
    with transaction(make_sessionmaker(engine)) as session:
        change_status(session, uuid.UUID(experiment_id), action, actor="b", now=datetime.now(UTC))
    engine.dispose()
    time.sleep(2)


def _shadow_rows() -> int:
    from sqlalchemy import func, select

    from models.db.engine import make_engine
    from models.db.tables import TrafficLogEntry
    from models.settings import StorageSettings

    engine = make_engine(StorageSettings().resolved_database_url())
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count()).where(TrafficLogEntry.role == "shadow")
        ).scalar_one()
    engine.dispose()
    return int(count)


def _serve(env: dict[str, str], *, pin: bool) -> tuple[subprocess.Popen[bytes], int]:
    """One uvicorn worker; with `pin`, it (and its shadow workers) on the last core and this
    process (the load generator) on the others."""
    port = _free_port()
    cores = sorted(os.sched_getaffinity(0))
    if pin:
        if len(cores) < 2:
            raise SystemExit("--pin needs two cores")
        os.sched_setaffinity(0, cores[:-1])
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.predict_server:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--timeout-keep-alive",
        "120",
        "--log-level",
        "warning",
    ]
    if pin:
        command = ["taskset", "--cpu-list", str(cores[-1]), *command]
    process = subprocess.Popen(command, env={**os.environ, **env})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process, port
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the API did not start")


def _summary(latencies: list[float], seconds: float, errors: int) -> dict[str, float]:
    ordered = sorted(latencies)
    if not ordered:
        return {"requests": 0, "errors": errors}

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "requests": len(ordered),
        "errors": errors,
        "req_per_s": round(len(ordered) / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


async def _closed(url: str, key: str, seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def one_client(offset: int) -> None:
            nonlocal errors
            n = offset
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await client.post(url, json={"input": TEXTS[n % len(TEXTS)]})
                except httpx.HTTPError:
                    errors += 1
                    n += 1
                    continue
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(one_client(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return _summary(latencies, elapsed, errors)


async def _open(url: str, key: str, seconds: float, rate: float) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(headers=headers, timeout=30, limits=limits) as client:

        async def one(n: int) -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                response = await client.post(url, json={"input": TEXTS[n % len(TEXTS)]})
            except httpx.HTTPError:
                errors += 1
                return
            if response.status_code == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

        stalls: list[float] = []

        async def watch() -> None:
            while True:
                started = time.perf_counter()
                await asyncio.sleep(0.05)
                stalls.append((time.perf_counter() - started) * 1000 - 50)

        watcher = asyncio.create_task(watch())
        tasks = []
        begin = time.perf_counter()
        total = int(seconds * rate)
        for n in range(total):
            wait = begin + n / rate - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
        watcher.cancel()
    result = _summary(latencies, elapsed, errors)
    result["offered_per_s"] = rate
    # Answered slower than offered: the server (or the shared machine) could not keep up, so
    # requests queued and the phase's latencies measure the queue, not the shadow.
    result["overloaded"] = result.get("req_per_s", 0) < OVERLOADED_BELOW * rate
    result["max_ms"] = round(max(latencies, default=0.0) * 1000, 1)
    result["over_1s"] = sum(1 for latency in latencies if latency > 1)
    # The load generator's own stalls (its event loop late by this much): a slow answer
    # measured while the client itself could not run is not the server's.
    result["client_stall_max_ms"] = round(max(stalls, default=0.0), 1)
    result["client_stalled"] = result["client_stall_max_ms"] > CLIENT_STALL_LIMIT_MS
    return result


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by process `pid` and by its living descendants
    (the fork server and the shadow workers); Linux /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick

    def descends(candidate: int) -> bool:
        while candidate in parents and candidate > 1:
            candidate = parents[candidate]
            if candidate == pid:
                return True
        return False

    children = sum(value for found, value in used.items() if found != pid and descends(found))
    return used.get(pid, 0.0), children


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (Linux /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / tick, sum(fields) / tick


class PostgresWatch:
    """The bench database's backends during a phase: their CPU seconds (Linux /proc, so the
    server must run on this machine) and, sampled every 0.1 s from `pg_stat_activity`, how many
    were active and what they waited on."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._connection = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
        self._database = url.rsplit("/", 1)[1]
        self._samples: list[list[tuple[str, str | None]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_before = 0.0

    def _activity(self) -> list[tuple[int, str, str | None]]:
        rows = self._connection.execute(
            "SELECT pid, state, wait_event_type || ':' || wait_event FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (self._database,),
        ).fetchall()
        return [(int(pid), str(state), wait) for pid, state, wait in rows]

    def _cpu(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid, _state, _wait in self._activity():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self._samples.append(
                [(state, wait) for _pid, state, wait in self._activity() if state == "active"]
            )

    def start(self) -> None:
        self._samples = []
        self._stop.clear()
        self._cpu_before = self._cpu()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def stop(self, requests: int) -> dict[str, Any]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        cpu = self._cpu() - self._cpu_before
        waits: dict[str, int] = {}
        for sample in self._samples:
            for _state, wait in sample:
                waits[wait or "cpu"] = waits.get(wait or "cpu", 0) + 1
        n = max(1, len(self._samples))
        return {
            "pg_cpu_ms_per_request": round(1000 * cpu / max(1, requests), 2),
            "pg_active_backends_mean": round(sum(len(s) for s in self._samples) / n, 2),
            "pg_active_samples_pct": round(100 * sum(1 for s in self._samples if s) / n, 1),
            "pg_waits": dict(sorted(waits.items(), key=lambda item: -item[1])[:4]),
        }

    def close(self) -> None:
        self._connection.close()


OVERLOADED_BELOW = 0.95
"""An open-loop phase answering under this share of the offered rate is overloaded."""
CLIENT_STALL_LIMIT_MS = 100.0
"""An open-loop phase whose load generator was late by more than this measured its own stall."""
OPEN_LOOP_DETAIL = (
    "req_per_s",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "over_1s",
    "client_stall_max_ms",
    "overloaded",
    "client_stalled",
)
"""Reported for each open-loop phase: one that queued (server slower than the offered rate for
a while) shows in its throughput and its count of answers over 1 s."""


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: statistics.median(run[key] for run in runs)
        for key in runs[0]
        if isinstance(runs[0][key], int | float) and key not in ("began", "ended")
    }


def _postgres_database(admin_url: str) -> str:
    """A fresh database on the server of `admin_url`; its URL."""
    import psycopg

    name = f"predict_bench_{os.getpid()}"
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def _drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--repetitions",
        type=int,
        default=3,
        help="interleaved no-experiment / shadow pairs; the medians are reported",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on a fresh database on this PostgreSQL server instead of embedded SQLite",
    )
    parser.add_argument(
        "--stage",
        choices=["full", "no_run"],
        default="full",
        help="cut a stage out of the shadow path (profiling; see bench/predict_server.py)",
    )
    parser.add_argument(
        "--log-flush-seconds",
        type=float,
        default=None,
        help="the serving log's batching (0: write each served prediction before its response)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the server on the last core, the load generator on the others (PostgreSQL and "
        "the rest of the machine are not pinned)",
    )
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="predict-bench-"))
    env = {
        "STREAMFLOW_HOME": str(home),
        "STREAMFLOW_RATE_LIMITS_PER_MINUTE": json.dumps({"predict": 10**9}),
        "STREAMFLOW_RATE_LIMIT_PER_MINUTE": str(10**9),
        "STREAMFLOW_SERVING_ALIAS_CACHE_SECONDS": "1",
        "STREAMFLOW_LOG_LEVEL": "WARNING",
        "PREDICT_BENCH_STAGE": args.stage,
        "PREDICT_BENCH_SPANS": str(home / "spans.json"),
    }
    if args.log_flush_seconds is not None:
        env["STREAMFLOW_SERVING_LOG_FLUSH_SECONDS"] = str(args.log_flush_seconds)
    if args.postgres:
        env["STREAMFLOW_DATABASE_URL"] = _postgres_database(args.postgres)
    key = _seed(env)
    process, port = _serve(env, pin=args.pin)
    watch = PostgresWatch(env["STREAMFLOW_DATABASE_URL"]) if args.postgres else None
    url = f"http://127.0.0.1:{port}/v1/agents/intent/predict"
    results: dict[str, Any] = {
        "database": "postgresql" if args.postgres else "sqlite",
        "stage": args.stage,
        "log_flush_seconds": args.log_flush_seconds,
        "cpu_pinning": (
            f"server on cores {sorted(os.sched_getaffinity(process.pid))}, load generator on "
            f"{sorted(os.sched_getaffinity(0))}; database unpinned"
            if args.pin
            else "none (load generator, server and database share the cores)"
        ),
        "load_average_start": os.getloadavg(),
    }
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        mode: {"closed_loop": [], "open_loop": []} for mode in ("no_experiment", "shadow_sample_1")
    }
    try:
        asyncio.run(_closed(url, key, 3, args.concurrency))  # warm-up
        rate = max(1.0, round(asyncio.run(_closed(url, key, 5, args.concurrency))["req_per_s"] / 2))
        experiment_id = _start_shadow()
        time.sleep(2)  # the API's experiment cache (1 s here)
        deadline = time.monotonic() + 180
        while _shadow_rows() == 0 and time.monotonic() < deadline:  # the worker starts
            asyncio.run(_closed(url, key, 1, 1))
            time.sleep(1)
        _change_shadow(experiment_id, "pause")
        # Let the warm-up's queued shadow work finish, so no phase pays for it.
        before, settled = -1, _shadow_rows()
        while settled != before and time.monotonic() < deadline:
            time.sleep(2)
            before, settled = settled, _shadow_rows()
        for repetition in range(args.repetitions):
            # Alternate which mode goes first, so a drift in machine load favours neither.
            order = ["no_experiment", "shadow_sample_1"]
            if repetition % 2:
                order.reverse()
            for mode in order:
                _change_shadow(experiment_id, "start" if mode != "no_experiment" else "pause")
                api_before, workers_before = _cpu_seconds(process.pid)
                began = time.time()
                busy_before, total_before = _machine_busy()
                if watch is not None:
                    watch.start()
                closed = asyncio.run(_closed(url, key, args.seconds, args.concurrency))
                if watch is not None:
                    closed.update(watch.stop(int(closed["requests"])))
                busy_after, total_after = _machine_busy()
                api_after, workers_after = _cpu_seconds(process.pid)
                closed["machine_busy_pct"] = round(
                    100 * (busy_after - busy_before) / max(1e-9, total_after - total_before), 1
                )
                closed["load_average_1m"] = round(os.getloadavg()[0], 2)
                closed["api_cpu_ms_per_request"] = round(
                    1000 * (api_after - api_before) / max(1, closed["requests"]), 2
                )
                closed["worker_cpu_ms_per_request"] = round(
                    1000 * max(0.0, workers_after - workers_before) / max(1, closed["requests"]), 2
                )
                closed["began"], closed["ended"] = began, time.time()
                runs[mode]["closed_loop"].append(closed)
                if watch is not None:
                    watch.start()
                began = time.time()
                opened = asyncio.run(_open(url, key, args.seconds, rate))
                opened["began"], opened["ended"] = began, time.time()
                if watch is not None:
                    opened.update(watch.stop(int(opened["requests"])))
                runs[mode]["open_loop"].append(opened)
                _change_shadow(experiment_id, "pause")
        time.sleep(3)
        results["shadow_rows_written"] = _shadow_rows() - settled
        shadowed = sum(
            run["requests"] for found in runs["shadow_sample_1"].values() for run in found
        )
        results["shadow_phase_requests"] = shadowed
        # Requests of shadow phases whose challenger answered (or failed) and was logged; the
        # rest were dropped at the full queue (the idle-class worker starved on a busy machine).
        results["shadow_coverage_pct"] = round(100 * results["shadow_rows_written"] / shadowed, 1)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if watch is not None:
            watch.close()
        if args.postgres:
            _drop_database(args.postgres, env["STREAMFLOW_DATABASE_URL"])
    results["load_average_end"] = os.getloadavg()
    for mode, kinds in runs.items():
        results[mode] = {kind: _median(found) for kind, found in kinds.items()}
        results[mode]["p99_ms_each_run"] = {
            kind: [run["p99_ms"] for run in found] for kind, found in kinds.items()
        }
        results[mode]["open_loop_each_run"] = [
            {key: run[key] for key in OPEN_LOOP_DETAIL if key in run} for run in kinds["open_loop"]
        ]
        results[mode]["api_cpu_ms_per_request_each_run"] = [
            run["api_cpu_ms_per_request"] for run in kinds["closed_loop"]
        ]
    before = results["no_experiment"]["closed_loop"]["p99_ms"]
    after = results["shadow_sample_1"]["closed_loop"]["p99_ms"]
    results["p99_added_closed_loop_pct"] = round(100 * (after - before) / before, 1)
    # The open loop compares only phases that kept up with the offered rate and whose load
    # generator was not itself stalled.
    kept_up = {
        mode: [
            run["p99_ms"]
            for run in kinds["open_loop"]
            if not run["overloaded"] and not run["client_stalled"]
        ]
        for mode, kinds in runs.items()
    }
    if all(kept_up.values()):
        before = statistics.median(kept_up["no_experiment"])
        after = statistics.median(kept_up["shadow_sample_1"])
        results["p99_added_open_loop_pct"] = round(100 * (after - before) / before, 1)
    else:
        results["p99_added_open_loop_pct"] = "not measured: no phase of a mode was comparable"
    results["open_loop_phases_compared"] = {mode: len(found) for mode, found in kept_up.items()}
    spans = home / "spans.json"
    if spans.exists():
        results["server_spans_all_runs"] = json.loads(spans.read_text())
        # Each long stall or collection of the server, placed in the phase it fell in.
        phases = [
            (f"{mode} {kind} #{number + 1}", run["began"], run["ended"])
            for mode, kinds in runs.items()
            for kind, found in kinds.items()
            for number, run in enumerate(found)
        ]
        results["server_long_pauses"] = [
            {"what": what, "ms": ms, "phase": next((p for p, b, e in phases if b <= at <= e), None)}
            for what, at, ms in results["server_spans_all_runs"].pop("long")
        ]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
