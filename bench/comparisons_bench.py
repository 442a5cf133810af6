"""Cold and warm `/v1/comparisons` of two 50,000-example runs: server CPU seconds and wall time,
before (the code at `--before`, without single flight) and after (this checkout).

    uv run python -m bench.comparisons_bench [--examples 50000] [--rounds 3] [--before REF]

The two runs are built once through the services (import, prepare, score, store, aggregate,
complete; no MLflow) in a SQLite home. Each round starts, for each code version in turn, a
fresh `uvicorn` with two workers on Redis (a key prefix of its own, so nothing is cached yet),
then sends three identical requests at once (cold: nothing cached) and three more (warm). The
server's CPU is read from /proc (user + system of the uvicorn process and all its children)
before and after each step. `--before` names a git revision of this repository, exported to a
temporary folder and served with this environment; the default is the revision before single
flight was added. Needs Redis (`STREAMFLOW_REDIS_URL`, default 127.0.0.1:6379), Linux and git.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
BEFORE = "77b2c0e"
"""The last revision without single flight, the computation cap or the threadpool session."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

WORDS = [
    "valve",
    "filter",
    "unit",
    "tested",
    "replaced",
    "checked",
    "airflow",
    "leak",
    "pressure",
    "pump",
    "fan",
    "coil",
    "duct",
    "thermostat",
    "boiler",
    "pipe",
    "drain",
    "seal",
    "motor",
    "belt",
    "sensor",
    "wiring",
    "breaker",
    "panel",
    "compressor",
    "refrigerant",
    "gauge",
    "tank",
    "heater",
    "vent",
    "damper",
    "hose",
    "clamp",
    "gasket",
    "fitting",
    "noise",
    "vibration",
    "customer",
    "arrived",
    "left",
    "cleaned",
    "adjusted",
    "calibrated",
    "ordered",
    "part",
    "scheduled",
    "follow",
    "up",
    "no",
    "issue",
    "found",
    "resolved",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def _noisy(rng: random.Random, reference: str, rate: float) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < rate else w for w in reference.split())


def _seed(env: dict[str, str], n_examples: int) -> tuple[str, str, str]:
    """A tenant, its API key and two completed runs on one dataset: (key, run a, run b)."""
    os.environ.update(env)
    from api.app import build_state
    from models.db.engine import transaction
    from pipelines.access.service import issue_api_key
    from pipelines.evaluation import service
    from pipelines.golden_datasets.service import import_golden_dataset
    from pipelines.organizations import ensure_organization

    rng = random.Random(20261201)
    rows = []
    for i in range(n_examples):
        expected = _text(rng, rng.randint(12, 24))
        rows.append(
            {"id": f"e{i:06d}", "input": _text(rng, 30), "expected": expected, "slice": f"s{i % 5}"}
        )
    state = build_state()
    with transaction(state.sessions) as session:
        ensure_organization(session, slug="provider", name="Provider", kind="provider", actor="b")
        tenant, _ = ensure_organization(
            session, slug="bench-tenant", name="Bench", kind="tenant", actor="bench"
        )
        key = issue_api_key(
            session, organization_id=tenant.id, name="bench", scopes=["results:read"], actor="b"
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
    run_ids = []
    for name, rate in (("a.jsonl", 0.35), ("b.jsonl", 0.25)):
        predictions = {r["id"]: _noisy(rng, r["expected"], rate) for r in rows}
        with transaction(state.sessions) as session:
            prepared = service.prepare_evaluation(
                session,
                organization_id=tenant.id,
                actor="bench",
                request=service.EvaluationRequest(
                    dataset="notes",
                    agent_type="summarizer",
                    predictions=service.PredictionsFile(name, predictions, uuid.uuid4().hex),
                ),
                storage_dir=state.storage.golden_dataset_dir,
                flow_run_id=None,
            )
        batch_size = service.EvaluationRequest.batch_size
        for index in prepared.pending_batches:
            batch = service.batch_rows(prepared.examples, index, batch_size)
            ordered = [predictions[i] for i in batch["id"]]
            scores = service.score_batch(
                task="text_generation",
                examples=batch,
                predictions=ordered,
                options=service.ScoringOptions(),
            )
            with transaction(state.sessions) as session:
                service.store_batch(
                    session,
                    run_id=prepared.run_id,
                    batch_index=index,
                    examples=batch,
                    predictions=ordered,
                    scores=scores,
                )
        with transaction(state.sessions) as session:
            metrics = service.aggregate_run(
                session, organization_id=tenant.id, run_id=prepared.run_id
            )
            service.complete_run(
                session,
                organization_id=tenant.id,
                run_id=prepared.run_id,
                actor="bench",
                metrics=metrics,
                mlflow_run_id=None,
            )
        run_ids.append(str(prepared.run_id))
    state.engine.dispose()
    return key.plaintext, run_ids[0], run_ids[1]


def _export(revision: str) -> Path:
    """The tree of `revision` in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="streamflow-before-"))
    archive = folder / "tree.tar"
    subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", "-o", str(archive), revision],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(folder, filter="data")
    archive.unlink()
    return folder


def _tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its living descendants, from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _serve(code: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "2",
        # uvicorn restarts a worker that misses its health check for 5 s; on a loaded machine a
        # worker busy with comparisons can, which would cut the measured requests.
        "--timeout-worker-healthcheck",
        "120",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    full_env = {**os.environ, **env, "PYTHONPATH": str(code)}
    process = subprocess.Popen(command, cwd=code, env=full_env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            # Both workers must be up: ask until two different processes have answered.
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(3)
                return process, port
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the API from {code} did not start")


def _served_from(code: Path) -> str:
    """Where `api` is imported from with the environment the server gets (a sanity check)."""
    found = subprocess.run(
        [sys.executable, "-c", "import api; print(api.__file__)"],
        cwd=code,
        env={**os.environ, "PYTHONPATH": str(code)},
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


def _burst(url: str, headers: dict[str, str], pid: int, n: int = 3) -> dict[str, Any]:
    """`n` identical requests at once: wall time until the last answers, server CPU used."""
    cpu = _tree_cpu_seconds(pid)
    started = time.perf_counter()

    def get(_: int) -> tuple[int | str, int]:
        try:
            response = httpx.get(url, headers=headers, timeout=600)
        except httpx.HTTPError as error:
            return type(error).__name__, 0
        return response.status_code, len(response.content)

    with ThreadPoolExecutor(n) as pool:
        answers = list(pool.map(get, range(n)))
    wall = time.perf_counter() - started
    time.sleep(0.2)  # let finished threads' CPU reach /proc
    return {
        "wall_s": round(wall, 3),
        "server_cpu_s": round(_tree_cpu_seconds(pid) - cpu, 3),
        "statuses": sorted(str(status) for status, _ in answers),
        "bytes": max(size for _, size in answers),
    }


def _measure(code: Path, env: dict[str, str], url: str, headers: dict[str, str]) -> dict[str, Any]:
    process, port = _serve(code, {**env, "STREAMFLOW_KEY_PREFIX": f"bench:{uuid.uuid4().hex}:"})
    try:
        full = f"http://127.0.0.1:{port}{url}"
        cold = _burst(full, headers, process.pid)
        warm = _burst(full, headers, process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {"cold": cold, "warm": warm}


def _median(rounds: list[dict[str, Any]], phase: str, field: str) -> float:
    return round(statistics.median(r[phase][field] for r in rounds), 3)


def run(n_examples: int = 50_000, rounds: int = 3, before: str = BEFORE) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="streamflow-comparisons-bench-"))
    env = {
        "STREAMFLOW_HOME": str(home),
        "STREAMFLOW_REDIS_URL": os.environ.get("STREAMFLOW_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "STREAMFLOW_RATE_LIMIT_PER_MINUTE": "1000000000",
        "STREAMFLOW_RATE_LIMITS_PER_MINUTE": "{}",
        "STREAMFLOW_RATE_LIMIT_PER_ADDRESS_PER_MINUTE": "1000000000",
        "STREAMFLOW_LOG_LEVEL": "WARNING",
    }
    started = time.perf_counter()
    key, run_a, run_b = _seed(env, n_examples)
    seeded = time.perf_counter() - started
    print(f"seeded two runs of {n_examples} examples in {seeded:.0f} s", file=sys.stderr)
    url = f"/v1/comparisons?run_a={run_a}&run_b={run_b}"
    headers = {"Authorization": f"Bearer {key}"}
    old = _export(before)
    versions = {"before": old, "after": REPO}
    sources = {name: _served_from(code) for name, code in versions.items()}
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in versions}
    try:
        for round_index in range(rounds):
            for name, code in versions.items():
                measured[name].append(_measure(code, env, url, headers))
                print(
                    f"round {round_index + 1} {name}: {json.dumps(measured[name][-1])}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    summary: dict[str, Any] = {}
    for name, results in measured.items():
        summary[name] = {
            f"{phase}_{field}": _median(results, phase, field)
            for phase in ("cold", "warm")
            for field in ("server_cpu_s", "wall_s")
        }
    summary["cold_cpu_ratio_before_over_after"] = round(
        summary["before"]["cold_server_cpu_s"] / summary["after"]["cold_server_cpu_s"], 2
    )
    return {
        "input": {
            "examples_per_run": n_examples,
            "requests_per_burst": 3,
            "uvicorn_workers": 2,
            "rounds": rounds,
            "before": before,
            "api_imported_from": sources,
            "seeding_s": round(seeded, 1),
        },
        "median": summary,
        "rounds": measured,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="git revision served as 'before'")
    args = parser.parse_args()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print(f"machine: {os.cpu_count()} cores, {memory:.0f} GiB")
    print(json.dumps(run(args.examples, args.rounds, args.before), indent=2))


if __name__ == "__main__":
    main()
