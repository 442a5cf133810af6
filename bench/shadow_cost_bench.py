"""CPU time the API process spends per shadowed request, without HTTP: shadow tasks are
submitted to a serving runtime (`SHADOW_MODE=process`, the defaults) at a steady rate, then
drained (every row written), and the CPU seconds of this process and of its descendants (the
fork server and the shadow workers) are divided by the tasks. The pacing loop's own CPU,
measured alone at the same rate, is subtracted.

CPU time depends much less on the machine's other work than latency does, so this isolates
what the shadow machinery costs the API process (the bench of `/predict` shows what that does
to p99).

    uv run python -m bench.shadow_cost_bench [--tasks 3000] [--rate 300] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from typing import Any


def _paced(tasks: int, rate: float, action: Any) -> float:
    """Call `action(n)` `tasks` times at `rate` per second; the wall seconds taken."""
    begin = time.perf_counter()
    for n in range(tasks):
        wait = begin + n / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        action(n)
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--postgres", metavar="URL")
    args = parser.parse_args()

    from bench.predict_bench import (
        TEXTS,
        _cpu_seconds,
        _drop_database,
        _postgres_database,
        _seed,
        _start_shadow,
    )

    env = {
        "STREAMFLOW_HOME": tempfile.mkdtemp(prefix="shadow-cost-"),
        "STREAMFLOW_LOG_LEVEL": "WARNING",
    }
    if args.postgres:
        env["STREAMFLOW_DATABASE_URL"] = _postgres_database(args.postgres)
    try:
        _seed(env)
        experiment_id = _start_shadow()

        from sqlalchemy import select

        from api.serving import ServingRuntime
        from api.shadow import ShadowTask
        from models.db.engine import make_engine, make_sessionmaker
        from models.db.tables import Organization
        from models.registry import client as registry
        from models.settings import RegistrySettings, ServingSettings, StorageSettings

        registry.configure(RegistrySettings())
        engine = make_engine(StorageSettings().resolved_database_url())
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            organization_id = session.scalars(
                select(Organization.id).where(Organization.slug == "acme")
            ).one()
        runtime = ServingRuntime(ServingSettings(), sessions)

        def submit(n: int) -> None:
            runtime.shadow.submit(
                ShadowTask(
                    request_id=uuid.uuid4().hex,
                    organization_id=organization_id,
                    agent_type="intent",
                    experiment_id=experiment_id,
                    challenger="intent-bench@2",
                    input_text=TEXTS[n % len(TEXTS)],
                )
            )

        _paced(50, 50.0, submit)  # the worker starts and loads the model
        assert runtime.drain(timeout=300)
        pid = os.getpid()
        idle_before, _ = _cpu_seconds(pid)
        _paced(args.tasks, args.rate, lambda _n: None)
        idle_after, _ = _cpu_seconds(pid)
        api_before, workers_before = _cpu_seconds(pid)
        wall = _paced(args.tasks, args.rate, submit)
        drained = runtime.drain(timeout=600)
        api_after, workers_after = _cpu_seconds(pid)
        stats = runtime.shadow.stats
        runtime.close()
        engine.dispose()
        pacing = idle_after - idle_before
        print(
            json.dumps(
                {
                    "database": "postgresql" if args.postgres else "sqlite",
                    "tasks": args.tasks,
                    "rate_per_s": args.rate,
                    "submit_seconds": round(wall, 2),
                    "drained": drained,
                    "completed": stats.completed,
                    "dropped": stats.dropped,
                    "api_cpu_ms_per_task": round(
                        1000 * (api_after - api_before - pacing) / args.tasks, 3
                    ),
                    "pacing_cpu_ms_per_task": round(1000 * pacing / args.tasks, 3),
                    "workers_cpu_ms_per_task": round(
                        1000 * max(0.0, workers_after - workers_before) / args.tasks, 3
                    ),
                    "load_average": os.getloadavg(),
                },
                indent=2,
            )
        )
    finally:
        if args.postgres:
            _drop_database(args.postgres, env["STREAMFLOW_DATABASE_URL"])


if __name__ == "__main__":
    main()
