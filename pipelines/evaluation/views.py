"""Evaluation results as readers see them: JSON-ready documents, and the cache keys they live under.

One shape for the API, the CLI and cache warming, so a warmed cache entry is exactly what the
API would have answered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session

from models.cache.cache import ResultCache
from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import EvaluationMetric, EvaluationRun, GoldenDataset, GoldenDatasetVersion
from pipelines.evaluation.service import RunComparison, compare_runs, get_run, run_dataset
from pipelines.pagination import Paged, after_key, next_cursor

DETAIL_VERSION = "v1"


def run_tag(run_id: uuid.UUID | str) -> str:
    """Cache tag of everything derived from one run."""
    return f"run:{run_id}"


def run_detail_key(organization_id: uuid.UUID | str, run_id: uuid.UUID | str) -> str:
    """Cache key of a run's detail document (org in the key: no cross-tenant hits)."""
    return f"org:{organization_id}:run:{run_id}:detail:{DETAIL_VERSION}"


def comparison_key(
    organization_id: uuid.UUID | str, run_a: uuid.UUID | str, run_b: uuid.UUID | str
) -> str:
    """Cache key of the paired comparison of run b against run a (order matters)."""
    return f"org:{organization_id}:comparison:{run_a}:{run_b}:{DETAIL_VERSION}"


def timestamp(moment: datetime) -> str:
    """A UTC time as RFC 3339 with `Z`, the way the API's response models write times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def subject(run: EvaluationRun) -> str:
    """How a run's subject reads: model version (alias) or predictions file."""
    if run.registered_model_name:
        alias = f" ({run.model_alias})" if run.model_alias else ""
        return f"{run.registered_model_name}@{run.model_version}{alias}"
    return f"predictions {run.predictions_filename}"


def _model(run: EvaluationRun) -> dict[str, Any] | None:
    if not run.registered_model_name:
        return None
    return {
        "name": run.registered_model_name,
        "version": run.model_version,
        "alias": run.model_alias,
    }


def run_summary(run: EvaluationRun) -> dict[str, Any]:
    """The fields of a run shown in lists."""
    return {
        "id": str(run.id),
        "status": run.status,
        "task": run.task,
        "agent_type": run.agent_type,
        "subject": subject(run),
        "model": _model(run),
        "predictions_file": run.predictions_filename,
        "examples": run.example_count,
        "created_at": timestamp(run.created_at),
        "finished_at": timestamp(run.finished_at) if run.finished_at else None,
    }


def _dataset(dataset: GoldenDataset, version: GoldenDatasetVersion) -> dict[str, Any]:
    return {"name": dataset.name, "version": version.version, "sha256": version.content_hash}


def run_detail(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> dict[str, Any]:
    """A run with its dataset version, progress, metrics and CIs (overall and per slice)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    dataset, version = run_dataset(session, organization_id=organization_id, run=run)
    runs = EvaluationRepository(session)
    metrics = runs.metrics(run.id)
    overall = [m for m in metrics if m.slice == ""]
    quality = next((m for m in overall if m.name == "quality_score"), None)
    slices: dict[str, list[dict[str, Any]]] = {}
    for m in metrics:
        if m.slice:
            slices.setdefault(m.slice, []).append(metric_document(m))
    stored_batches = (
        len(runs.stored_batches(run.id)) if run.status != "completed" else run.batch_count
    )
    return {
        **run_summary(run),
        "golden_dataset": _dataset(dataset, version),
        "progress": {"batches_done": stored_batches, "batches_total": run.batch_count},
        "config": run.config,
        "mlflow_run_id": run.mlflow_run_id,
        "error": run.error,
        "quality_score": metric_document(quality) if quality else None,
        "metrics": [metric_document(m) for m in overall],
        "slices": [{"slice": name, "metrics": rows} for name, rows in sorted(slices.items())],
    }


def metric_document(m: EvaluationMetric) -> dict[str, Any]:
    """A stored metric as readers see it: name, value, CI and n."""
    return {"name": m.name, "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n}


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a document, as cached and served."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def comparison_payload(result: RunComparison) -> dict[str, Any]:
    """A comparison as JSON-ready data."""
    return {
        "run_a": {"id": str(result.run_a.id), "subject": subject(result.run_a)},
        "run_b": {"id": str(result.run_b.id), "subject": subject(result.run_b)},
        "n": result.comparison.n,
        "overall": [asdict(row) for row in result.comparison.overall],
        "slices": [asdict(row) for row in result.comparison.slices],
        "mcnemar": [asdict(row) for row in result.comparison.mcnemar],
    }


async def _read_through(
    cache: ResultCache | None,
    key: str,
    load: Callable[[], dict[str, Any]],
    *,
    tags: Sequence[str],
    cacheable: Callable[[dict[str, Any]], bool],
) -> bytes:
    if cache is not None:
        cached = await cache.get(key)
        if cached is not None:
            return cached
    # The load runs blocking SQL (and, for comparisons, bootstrap resampling): off the event loop.
    document = await anyio.to_thread.run_sync(load)
    body = encode(document)
    if cache is not None and cacheable(document):
        await cache.set(key, body, tags=tags)
    return body


async def cached_run_detail(
    session: Callable[[], Session],
    cache: ResultCache | None,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
) -> bytes:
    """A run's detail as JSON bytes, read through the cache once the run is completed.

    `session` opens the database session only when the cache cannot answer.

    Results of a completed run never change, so only those are cached; a pending or running
    run is read from the database on every poll.
    """
    return await _read_through(
        cache,
        run_detail_key(organization_id, run_id),
        lambda: run_detail(session(), organization_id=organization_id, run_id=run_id),
        tags=[run_tag(run_id)],
        cacheable=lambda document: document["status"] == "completed",
    )


async def cached_comparison(
    session: Callable[[], Session],
    cache: ResultCache | None,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID,
    run_b: uuid.UUID,
) -> bytes:
    """The paired comparison of run b against run a as JSON bytes, read through the cache.

    Only completed runs can be compared, so every comparison is cacheable.
    """

    def load() -> dict[str, Any]:
        result = compare_runs(session(), organization_id=organization_id, run_a=run_a, run_b=run_b)
        return comparison_payload(result)

    return await _read_through(
        cache,
        comparison_key(organization_id, run_a, run_b),
        load,
        tags=[run_tag(run_a), run_tag(run_b)],
        cacheable=lambda _: True,
    )


def runs_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[dict[str, Any]]:
    """An organisation's runs, newest first, with the dataset version each evaluated."""
    page = EvaluationRepository(session).page_with_datasets(
        organization_id, after=after_key(cursor, EvaluationRepository.ORDER), limit=limit
    )
    return Paged(
        [{**run_summary(run), "golden_dataset": _dataset(d, v)} for run, d, v in page.items],
        next_cursor(page),
    )


def run_examples_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> Paged[dict[str, Any]]:
    """Per-example predictions and scores of a run, by example id."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    after = after_key(cursor, EvaluationRepository.SCORE_ORDER)
    page = EvaluationRepository(session).page_scores(run.id, after=after, limit=limit)
    return Paged(
        [
            {
                "example_id": row.example_id,
                "slice": row.slice,
                "batch_index": row.batch_index,
                "prediction": row.prediction,
                "scores": row.scores,
            }
            for row in page.items
        ],
        next_cursor(page),
    )


def quality_scores_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    agent_type: str | None,
    cursor: str | None,
    limit: int,
) -> Paged[dict[str, Any]]:
    """The quality score of each completed run, oldest finished first: a time series."""
    page = EvaluationRepository(session).quality_scores(
        organization_id,
        agent_type=agent_type,
        after=after_key(cursor, EvaluationRepository.QUALITY_ORDER),
        limit=limit,
    )
    return Paged(
        [
            {
                "run_id": str(run.id),
                "finished_at": timestamp(_finished(run)),
                "agent_type": run.agent_type,
                "task": run.task,
                "subject": subject(run),
                "model": _model(run),
                "value": metric.value,
                "ci_low": metric.ci_low,
                "ci_high": metric.ci_high,
                "n": metric.n,
            }
            for run, metric in page.items
        ],
        next_cursor(page),
    )


def _finished(run: EvaluationRun) -> datetime:
    assert run.finished_at is not None, "completed runs have finished_at"
    return run.finished_at
