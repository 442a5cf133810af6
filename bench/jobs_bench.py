"""Webhook jobs per second through the dispatcher (2 workers) against a local receiver, and the
delay from a job's insert to its delivery (p50/p99).

Reference, measured in the same run: the same number of signed POSTs sent straight to the same
receiver by 2 threads, without a queue. Runs on SQLite (default) or PostgreSQL (`--postgres`,
`STREAMFLOW_TEST_POSTGRES_URL` or the local server).

    uv run python -m bench.jobs_bench [--jobs 1000] [--rate 100] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from flows.dispatcher import Dispatcher, JobSettings, dispatch_forever
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.migrate import upgrade
from pipelines.logging import configure_logging
from pipelines.organizations import ensure_organization
from pipelines.webhooks.service import DeliverySettings, emit_event, register_endpoint
from pipelines.webhooks.signing import encode_secret, webhook_headers


class Receiver:
    """Answers 204 and notes when each `webhook-id` arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                return None

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.arrivals.setdefault(self.headers["webhook-id"], time.time())
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.01)


@contextmanager
def database(postgres: bool, folder: Path) -> Iterator[str]:
    if not postgres:
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    admin = os.environ.get(
        "STREAMFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    name = f"streamflow_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def reference(receiver: Receiver, count: int) -> float:
    """Seconds for `count` signed POSTs from 2 threads with no queue in between."""
    secret = encode_secret(b"r" * 32)
    body = b'{"type":"evaluation.completed","data":{}}'

    client = httpx.Client(timeout=15, limits=httpx.Limits(max_keepalive_connections=0))

    def send(index: int) -> None:
        headers = webhook_headers([secret], f"ref_{index}", int(time.time()), body)
        client.post(receiver.url, content=body, headers=headers).raise_for_status()

    started = time.perf_counter()
    with client, ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(send, range(count)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs in the throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="inserts/s in the delay run")
    parser.add_argument("--delay-jobs", type=int, default=500, help="jobs in the delay run")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    options = parser.parse_args()
    configure_logging(level="WARNING")
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as folder, database(options.postgres, Path(folder)) as url:
        engine = make_engine(url)
        upgrade(engine)
        sessions = make_sessionmaker(engine)
        with transaction(sessions) as session:
            tenant, _ = ensure_organization(
                session, slug="bench", name="Bench", kind="tenant", actor="bench"
            )
            register_endpoint(
                session,
                organization_id=tenant.id,
                url=receiver.url,
                event_types=None,
                description="",
                actor="bench",
                now=datetime.now(UTC),
            )

        def insert(index: int) -> tuple[str, float]:
            with transaction(sessions) as session:
                (job,) = emit_event(
                    session,
                    organization_id=tenant.id,
                    event_type="evaluation.completed",
                    subject_id=f"run-{index}-{uuid.uuid4().hex}",
                    data={"links": {"evaluation": f"/v1/evaluations/{index}"}},
                    now=datetime.now(UTC),
                )
                message = str(job.payload["message_id"])
            return message, time.time()

        def dispatcher() -> Dispatcher:
            return Dispatcher(
                sessions=sessions,
                settings=JobSettings(
                    workers=2, prefetch=50, per_endpoint_concurrency=2, poll_seconds=0.02
                ),
                delivery=DeliverySettings(allow_private_addresses=True),
            )

        # 1. throughput: every job queued first, then drained by one dispatcher, 2 workers.
        for index in range(options.jobs):
            insert(index)
        started = time.perf_counter()
        stop = threading.Event()
        thread = threading.Thread(
            target=dispatch_forever, args=(dispatcher(),), kwargs={"stop": stop}
        )
        thread.start()
        receiver.wait_for(options.jobs, timeout=600)
        drained = time.perf_counter() - started
        stop.set()
        thread.join()
        delivered = len(receiver.arrivals)

        # 2. delay: inserts at a steady rate while the dispatcher polls.
        receiver.arrivals.clear()
        stop = threading.Event()
        thread = threading.Thread(
            target=dispatch_forever, args=(dispatcher(),), kwargs={"stop": stop}
        )
        thread.start()
        inserted: dict[str, float] = {}
        period = 1.0 / options.rate
        next_at = time.perf_counter()
        for index in range(options.delay_jobs):
            message, at = insert(options.jobs + index)
            inserted[message] = at
            next_at += period
            time.sleep(max(0.0, next_at - time.perf_counter()))
        receiver.wait_for(options.delay_jobs, timeout=600)
        stop.set()
        thread.join()
        delays = sorted(
            receiver.arrivals[m] - inserted[m] for m in inserted if m in receiver.arrivals
        )
        engine.dispose()

        receiver.arrivals.clear()
        bare = reference(receiver, options.jobs)

    backend = "PostgreSQL" if options.postgres else "SQLite"
    quantiles = statistics.quantiles(delays, n=100)
    print(f"backend {backend}; {options.jobs} webhook jobs, 1 dispatcher with 2 workers")
    print(
        f"dispatcher: {delivered / drained:,.0f} jobs/s ({delivered} delivered in {drained:.2f} s)"
    )
    print(f"reference (2 threads POSTing, no queue): {options.jobs / bare:,.0f} requests/s")
    print(f"ratio dispatcher / reference: {(delivered / drained) / (options.jobs / bare):.2f}")
    print(
        f"insert → delivery at {options.rate:g} inserts/s over {len(delays)} jobs: "
        f"p50 {quantiles[49] * 1000:.0f} ms, p99 {quantiles[98] * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
