"""The compare page of two 100,000-example runs, measured in a real browser (Debian's Chromium).

Builds two classification runs on one golden dataset version through the services (no flow, no
model), serves the app with uvicorn on a loopback port, signs in with Playwright, and reads the
browser's own Navigation Timing: time to first byte and the time until the difference chart is
drawn and the first page of the example table has been swapped in. Cold is the first request;
warm is the next one (the comparison is read from the result cache). The example table is paged
by keyset, so its cost does not grow with the run.

As the evaluation flow does when run B completes (B compared with the champion's run A), the
comparison is computed and stored before the page is opened (`store_comparison_s`, off the
request path), so a cold page reads it; with `--on-demand` nothing is stored and the cold page
computes it (the fallback for pairs no flow compared).

    uv run python -m bench.dashboards_bench [--examples 100000] [--repeats 3] [--on-demand]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

LABELS = ("billing", "access", "outage", "feature", "refund", "bug", "sales", "other")
SLICES = ("chat", "email", "web_form", "phone")
PASSWORD = "a long enough passphrase"


def _rows(n: int, seed: int) -> tuple[list[dict[str, str]], dict[str, str], dict[str, str]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(LABELS), n)
    golden = [
        {
            "id": f"ex{i:06d}",
            "input": f"ticket {i}",
            "expected": LABELS[label],
            "slice": SLICES[i % len(SLICES)],
        }
        for i, label in enumerate(truth)
    ]

    def predictions(accuracy: float) -> dict[str, str]:
        right = rng.random(n) < accuracy
        noise = rng.integers(0, len(LABELS), n)
        return {
            row["id"]: row["expected"] if ok else LABELS[other]
            for row, ok, other in zip(golden, right, noise, strict=True)
        }

    return golden, predictions(0.86), predictions(0.88)


def _completed(
    sessions: Any, storage_dir: Path, org_id: uuid.UUID, predictions: dict[str, str]
) -> uuid.UUID:
    from models.db.engine import transaction
    from pipelines.evaluation import service

    options = service.ScoringOptions()
    with transaction(sessions) as session:
        prepared = service.prepare_evaluation(
            session,
            organization_id=org_id,
            actor="bench",
            request=service.EvaluationRequest(
                dataset="tickets",
                agent_type="intent_classifier",
                predictions=service.PredictionsFile("p.jsonl", predictions, uuid.uuid4().hex),
                options=options,
                batch_size=10_000,
            ),
            storage_dir=storage_dir,
            flow_run_id=None,
        )
    examples = prepared.examples
    for index in range(prepared.batch_count):
        rows = service.batch_rows(examples, index, 10_000)
        predicted = [predictions[i] for i in rows["id"]]
        scores = service.score_batch(
            task="classification", examples=rows, predictions=predicted, options=options
        )
        with transaction(sessions) as session:
            service.store_batch(
                session,
                run_id=prepared.run_id,
                batch_index=index,
                examples=rows,
                predictions=predicted,
                scores=scores,
            )
    with transaction(sessions) as session:
        metrics = service.aggregate_run(session, organization_id=org_id, run_id=prepared.run_id)
        service.complete_run(
            session,
            organization_id=org_id,
            run_id=prepared.run_id,
            actor="bench",
            metrics=metrics,
            mlflow_run_id=None,
        )
    return prepared.run_id


def _measure(page: Any, url: str) -> dict[str, float]:
    started = time.perf_counter()
    page.goto(url)
    page.locator("#examples tbody tr").first.wait_for(timeout=600_000)
    table_s = time.perf_counter() - started
    # A cold comparison of large runs takes long: wait as long as it takes, and say so.
    page.locator("figure.chart svg.marks").first.wait_for(timeout=600_000)
    chart_s = time.perf_counter() - started
    timing = page.evaluate(
        "(() => { const t = performance.getEntriesByType('navigation')[0];"
        " return {ttfb: t.responseStart - t.requestStart, dom: t.domContentLoadedEventEnd}; })()"
    )
    return {
        "ttfb_s": timing["ttfb"] / 1000,
        "dom_content_loaded_s": timing["dom"] / 1000,
        "chart_drawn_s": chart_s,
        "example_table_s": table_s,
    }


def run(examples: int, repeats: int, seed: int, *, on_demand: bool = False) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="streamflow-dashboards-bench-"))
    os.environ["STREAMFLOW_HOME"] = str(home)
    os.environ["STREAMFLOW_MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
    import uvicorn
    from playwright.sync_api import sync_playwright

    from api.app import build_state, create_app
    from api.settings import ApiSettings
    from flows.orchestrator import free_port
    from models.cache.settings import CacheSettings
    from models.db.engine import make_engine, make_sessionmaker, transaction
    from models.db.migrate import upgrade
    from models.settings import StorageSettings
    from pipelines.golden_datasets.service import import_golden_dataset
    from pipelines.logging import configure_logging
    from pipelines.organizations import ensure_organization
    from pipelines.provider_users.service import create_user

    configure_logging(level="WARNING")
    figures: dict[str, Any] = {"examples": examples, "cpu_count": os.cpu_count()}
    storage = StorageSettings(home=home)
    engine = make_engine(storage.resolved_database_url())
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    golden, a, b = _rows(examples, seed)
    started = time.perf_counter()
    with transaction(sessions) as session:
        org, _ = ensure_organization(
            session, slug="provider", name="Provider", kind="provider", actor="bench"
        )
        create_user(
            session,
            email="bench@provider.example",
            name="Bench",
            role="analyst",
            password=PASSWORD,
            actor="bench",
        )
        import_golden_dataset(
            session,
            organization_id=org.id,
            actor="bench",
            name="tickets",
            task="classification",
            data="\n".join(json.dumps(row) for row in golden).encode(),
            filename="tickets.jsonl",
            storage_dir=storage.golden_dataset_dir,
        )
    run_a = _completed(sessions, storage.golden_dataset_dir, org.id, a)
    run_b = _completed(sessions, storage.golden_dataset_dir, org.id, b)
    figures["build_runs_s"] = time.perf_counter() - started
    if not on_demand:
        from pipelines.evaluation.views import store_comparison

        started = time.perf_counter()
        with transaction(sessions) as session:
            store_comparison(
                session, organization_id=org.id, run_a=run_a, run_b=run_b, actor="bench"
            )
        figures["store_comparison_s"] = time.perf_counter() - started
    figures["stored_comparison"] = not on_demand

    state = build_state(
        api=ApiSettings(), storage=storage, cache_settings=CacheSettings(redis_url=None)
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/dashboards/compare?run_a={run_a}&run_b={run_b}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"))
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/dashboards/sign-in")
            page.get_by_label("E-mail").fill("bench@provider.example")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in", exact=True).click()
            page.wait_for_url(f"{base}/dashboards/evaluations")
            figures["cold"] = _measure(page, url)
            warm = [_measure(page, url) for _ in range(repeats)]
            figures["warm_median"] = {
                key: statistics.median(sample[key] for sample in warm) for key in warm[0]
            }
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
        shutil.rmtree(home, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument(
        "--on-demand", action="store_true", help="store no comparison: the page computes it"
    )
    args = parser.parse_args()
    figures = run(args.examples, args.repeats, args.seed, on_demand=args.on_demand)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
