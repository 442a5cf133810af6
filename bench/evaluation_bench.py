"""End-to-end seconds of a predictions-file evaluation: import, score, store, aggregate with CIs.

Runs on the embedded default (SQLite, local MLflow store) in a temporary home, or on
`--database-url`. Prefect's share is measured from outside, in the same run: the same work once
through the flow (`run_evaluation`) and once as the plain task bodies, without Prefect.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.rouge_bench import generate_pairs

SLICES = ("hvac", "plumbing", "electrical", "appliance")


def generate(n: int, seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Golden rows (id, input, expected, slice) and predictions (id, prediction) of n examples."""
    predictions, references = generate_pairs(n, seed)
    golden = [
        {"id": f"ex{i:06d}", "input": f"note {i}", "expected": reference, "slice": SLICES[i % 4]}
        for i, reference in enumerate(references)
    ]
    return golden, [{"id": f"ex{i:06d}", "prediction": p} for i, p in enumerate(predictions)]


def run(
    n_examples: int = 100_000, seed: int = 20261125, database_url: str | None = None
) -> dict[str, Any]:
    """Measure one evaluation of `n_examples` end to end; returns the figures."""
    home = Path(tempfile.mkdtemp(prefix="streamflow-bench-"))
    os.environ["STREAMFLOW_HOME"] = str(home)
    os.environ["PREFECT_HOME"] = str(home / "prefect")
    if database_url:
        os.environ["STREAMFLOW_DATABASE_URL"] = database_url
    from flows import evaluation
    from flows.runtime import reset_runtime, runtime
    from models.db.engine import transaction
    from pipelines.golden_datasets.service import import_golden_dataset
    from pipelines.organizations import ensure_organization

    reset_runtime()
    figures: dict[str, Any] = {"examples": n_examples, "cpu_count": os.cpu_count()}
    started = time.perf_counter()
    golden, predictions = generate(n_examples, seed)
    figures["generate_s"] = time.perf_counter() - started
    golden_path = home / "golden.jsonl"
    golden_path.write_text("\n".join(json.dumps(row) for row in golden))
    predictions_path = home / "predictions.jsonl"
    predictions_path.write_text("\n".join(json.dumps(row) for row in predictions))

    started = time.perf_counter()
    rt = runtime()
    figures["open_runtime_s"] = time.perf_counter() - started

    started = time.perf_counter()
    with transaction(rt.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="bench"
        )
        import_golden_dataset(
            session,
            organization_id=provider.id,
            actor="bench",
            name="bench-notes",
            task="text_generation",
            data=golden_path.read_bytes(),
            filename=golden_path.name,
            storage_dir=rt.storage.golden_dataset_dir,
        )
    figures["import_s"] = time.perf_counter() - started

    from flows.orchestrator import LocalOrchestrator, orchestrated

    # The local orchestrator, started (and timed) once, as the first CLI command would.
    started = time.perf_counter()
    with orchestrated():
        figures["orchestrator_start_s"] = time.perf_counter() - started

        # Both measured runs find the same warm per-process caches (files read, models loaded).
        started = time.perf_counter()
        _evaluate_without_prefect(evaluation, str(predictions_path))
        figures["warm_up_s"] = time.perf_counter() - started

        started = time.perf_counter()
        outcome = evaluation.run_evaluation(
            "provider",
            "bench",
            dataset="bench-notes",
            predictions_path=str(predictions_path),
            agent_type="summarizer",
            force=True,
        )
        wall = time.perf_counter() - started
    LocalOrchestrator().stop()
    figures["evaluate_s"] = wall
    figures["batches"] = outcome.batches_scored
    figures["run_id"] = outcome.run_id

    started = time.perf_counter()
    _evaluate_without_prefect(evaluation, str(predictions_path))
    plain = time.perf_counter() - started
    figures["without_prefect_s"] = plain
    figures["prefect_overhead_s"] = wall - plain
    figures["prefect_overhead_share"] = (wall - plain) / wall
    figures["import_plus_evaluate_s"] = figures["import_s"] + wall
    return figures


def _evaluate_without_prefect(evaluation: Any, predictions_path: str) -> None:
    """The flow's work as plain calls of its task bodies (`.fn`): no Prefect machinery."""
    import structlog

    from flows.runtime import runtime
    from pipelines.evaluation.scoring import ScoringOptions
    from pipelines.evaluation.service import EvaluationRequest

    settings = runtime().evaluation
    request = EvaluationRequest(
        dataset="bench-notes",
        agent_type="summarizer",
        options=ScoringOptions(
            n_resamples=settings.bootstrap_resamples,
            confidence=settings.confidence,
            seed=settings.seed,
        ),
        batch_size=settings.batch_size,
        force=True,
    )
    structlog.contextvars.clear_contextvars()
    prepared = evaluation.prepare_evaluation.fn("provider", "bench", request, predictions_path)
    for batch_index in prepared.pending_batches:
        evaluation.evaluate_batch.fn(
            "provider", str(prepared.run_id), batch_index, predictions_path, prepared.claim
        )
    evaluation.finish_evaluation.fn("provider", "bench", str(prepared.run_id), prepared.claim)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    figures = run(args.examples, database_url=args.database_url)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
