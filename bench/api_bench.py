"""Requests/second and p50/p99 of a cached tenant result read vs a bare FastAPI endpoint.

Both servers run one uvicorn worker on loopback (pinned to CPU 0 when `taskset` exists) and are
loaded by wrk (pinned to CPU 1) for a bounded time, alternating, several rounds; the cached read
goes through everything a tenant request does (address and key rate limits in Redis, API-key
authentication, the Redis result cache). Needs wrk (`apt-get install wrk`) and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinned(cpu: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if shutil.which("taskset") else command


def _seed(env: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """A tenant, its API key and one completed run; returns (key, run id, detail document)."""
    os.environ.update(env)
    from api.app import build_state
    from models.db.engine import transaction
    from pipelines.access.service import issue_api_key
    from pipelines.evaluation import service
    from pipelines.evaluation.views import run_detail
    from pipelines.golden_datasets.service import import_golden_dataset
    from pipelines.organizations import ensure_organization

    state = build_state()
    rows = [
        {
            "id": f"e{i:03d}",
            "input": f"note {i}",
            "expected": f"replaced valve {i} and tested",
            "slice": f"s{i % 4}",
        }
        for i in range(200)
    ]
    predictions = {
        r["id"]: r["expected"] if i % 3 else "checked the unit" for i, r in enumerate(rows)
    }
    with transaction(state.sessions) as session:
        ensure_organization(
            session, slug="provider", name="Provider", kind="provider", actor="bench"
        )
        tenant, _ = ensure_organization(
            session, slug="bench-tenant", name="Bench", kind="tenant", actor="bench"
        )
        key = issue_api_key(
            session, organization_id=tenant.id, name="bench", scopes=["results:read"], actor="bench"
        )
        import_golden_dataset(
            session,
            organization_id=tenant.id,
            actor="bench",
            name="notes",
            task="text_generation",
            data="\n".join(json.dumps(r) for r in rows).encode(),
            filename="notes.jsonl",
            storage_dir=state.storage.golden_dataset_dir,
        )
        prepared = service.prepare_evaluation(
            session,
            organization_id=tenant.id,
            actor="bench",
            request=service.EvaluationRequest(
                dataset="notes",
                agent_type="summarizer",
                predictions=service.PredictionsFile("p.jsonl", predictions, uuid.uuid4().hex),
            ),
            storage_dir=state.storage.golden_dataset_dir,
            flow_run_id=None,
        )
        ordered = [predictions[i] for i in prepared.examples["id"]]
        scores = service.score_batch(
            task="text_generation",
            examples=prepared.examples,
            predictions=ordered,
            options=service.ScoringOptions(),
        )
        service.store_batch(
            session,
            run_id=prepared.run_id,
            batch_index=0,
            examples=prepared.examples,
            predictions=ordered,
            scores=scores,
        )
        metrics = service.aggregate_run(session, organization_id=tenant.id, run_id=prepared.run_id)
        service.complete_run(
            session,
            organization_id=tenant.id,
            run_id=prepared.run_id,
            actor="bench",
            metrics=metrics,
            mlflow_run_id=None,
        )
        document = run_detail(session, organization_id=tenant.id, run_id=prepared.run_id)
    state.engine.dispose()
    return key.plaintext, str(prepared.run_id), document


def _serve(factory: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(_pinned(0, command), env={**os.environ, **env})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process, port
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{factory} did not start")


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)


def _wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        _pinned(1, [*command, url]),
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {f"p{p}_ms": float(v) * scale[u] for p, v, u in _LATENCY.findall(output)}
    return {
        "requests_per_s": rate,
        **latency,
        "non_2xx": float(non_2xx.group(1)) if non_2xx else 0.0,
    }


def run(rounds: int = 3, seconds: int = 10, connections: int = 64) -> dict[str, Any]:
    """Alternate wrk runs against both servers; medians and the throughput ratio."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    home = Path(tempfile.mkdtemp(prefix="streamflow-api-bench-"))
    prefix = f"bench:{uuid.uuid4().hex[:8]}:"
    env = {
        "STREAMFLOW_HOME": str(home),
        "STREAMFLOW_REDIS_URL": os.environ.get("STREAMFLOW_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "STREAMFLOW_KEY_PREFIX": prefix,
        "STREAMFLOW_RATE_LIMIT_PER_MINUTE": "1000000000",
        "STREAMFLOW_RATE_LIMITS_PER_MINUTE": "{}",
        "STREAMFLOW_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "1000000000",
        "STREAMFLOW_LOG_LEVEL": "WARNING",
    }
    key, run_id, document = _seed(env)
    document_path = home / "document.json"
    document_path.write_text(json.dumps(document))
    api, api_port = _serve("api.app:create_app", env)
    bare, bare_port = _serve("bench.bare_app:create_app", {"BENCH_DOCUMENT": str(document_path)})
    cached_url = f"http://127.0.0.1:{api_port}/v1/evaluations/{run_id}"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        warm = httpx.get(cached_url, headers=auth, timeout=10)
        warm.raise_for_status()
        same = httpx.get(f"http://127.0.0.1:{bare_port}/bare", timeout=10).json() == warm.json()
        results: dict[str, list[dict[str, float]]] = {"bare": [], "cached": []}
        for _ in range(rounds):
            results["bare"].append(
                _wrk(f"http://127.0.0.1:{bare_port}/bare", {}, seconds, connections)
            )
            results["cached"].append(_wrk(cached_url, auth, seconds, connections))
    finally:
        for process in (api, bare):
            process.terminate()
            process.wait(timeout=30)
    summary: dict[str, Any] = {
        "same_json": same,
        "document_bytes": len(warm.content),
        "rounds": rounds,
        "seconds_per_run": seconds,
        "connections": connections,
    }
    for name, runs in results.items():
        summary[name] = {
            metric: statistics.median(r[metric] for r in runs) for metric in runs[0]
        } | {"runs_requests_per_s": [round(r["requests_per_s"]) for r in runs]}
    summary["cached_over_bare"] = (
        summary["cached"]["requests_per_s"] / summary["bare"]["requests_per_s"]
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    print(json.dumps(run(args.rounds, args.seconds, args.connections), indent=2))


if __name__ == "__main__":
    main()
