"""Evaluation results as readers see them: JSON-ready documents.

One shape for the API, the CLI and cache warming, so a warmed cache entry is exactly what the
API would have answered.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from models.cache.cache import warm
from models.cache.keys import run_detail_key, run_tag
from models.cache.settings import CacheSettings
from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import EvaluationMetric, EvaluationRun, GoldenDataset, GoldenDatasetVersion
from pipelines.evaluation.service import RunComparison, get_run, run_dataset
from pipelines.pagination import Paged, decode_cursor, paged


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


def warm_run_detail(
    session: Session, settings: CacheSettings, *, organization_id: uuid.UUID, run_id: uuid.UUID
) -> None:
    """Put a finished run's detail into the shared cache before anyone asks for it.

    Drops what was cached from the run before (its tag), so a reader never gets an older
    document. Without Redis there is no shared cache and nothing is read.
    """
    if settings.redis_url is None:
        return
    document = run_detail(session, organization_id=organization_id, run_id=run_id)
    warm(
        settings, run_detail_key(organization_id, run_id), encode(document), tags=[run_tag(run_id)]
    )


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


def runs_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[dict[str, Any]]:
    """An organisation's runs, newest first, with the dataset version each evaluated."""
    before = decode_cursor(cursor, datetime, uuid.UUID) if cursor else None
    rows = EvaluationRepository(session).page_with_datasets(
        organization_id,
        before=(before[0], before[1]) if before else None,
        limit=limit + 1,
    )
    page = paged(rows, limit, lambda row: (row[0].created_at, row[0].id))
    return Paged(
        [{**run_summary(run), "golden_dataset": _dataset(d, v)} for run, d, v in page.items],
        page.next_cursor,
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
    after = decode_cursor(cursor, str)[0] if cursor else None
    rows = EvaluationRepository(session).scores(run.id, after=after, limit=limit + 1)
    page = paged(rows, limit, lambda row: (row.example_id,))
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
        page.next_cursor,
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
    after = decode_cursor(cursor, datetime, uuid.UUID) if cursor else None
    rows = EvaluationRepository(session).quality_scores(
        organization_id,
        agent_type=agent_type,
        after=(after[0], after[1]) if after else None,
        limit=limit + 1,
    )
    page = paged(rows, limit, lambda row: (_finished(row[0]), row[0].id))
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
        page.next_cursor,
    )


def _finished(run: EvaluationRun) -> datetime:
    assert run.finished_at is not None, "completed runs have finished_at"
    return run.finished_at
