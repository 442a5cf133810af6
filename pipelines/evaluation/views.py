"""Evaluation results as readers see them: JSON-ready documents, and the cache keys they live under.

One shape for the API, the CLI and cache warming, so a warmed cache entry is exactly what the
API would have answered.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.orm import Session

from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import EvaluationRun
from pipelines.evaluation.service import get_run, run_dataset

DETAIL_VERSION = "v1"


def run_tag(run_id: uuid.UUID | str) -> str:
    """Cache tag of everything derived from one run."""
    return f"run:{run_id}"


def run_detail_key(organization_id: uuid.UUID | str, run_id: uuid.UUID | str) -> str:
    """Cache key of a run's detail document (org in the key: no cross-tenant hits)."""
    return f"org:{organization_id}:run:{run_id}:detail:{DETAIL_VERSION}"


def run_summary(run: EvaluationRun) -> dict[str, Any]:
    """The fields of a run shown in lists."""
    return {
        "id": str(run.id),
        "status": run.status,
        "task": run.task,
        "agent_type": run.agent_type,
        "model": (
            {"name": run.registered_model_name, "version": run.model_version, "alias": run.model_alias}
            if run.registered_model_name
            else None
        ),
        "predictions_file": run.predictions_filename,
        "examples": run.example_count,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def run_detail(session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str) -> dict[str, Any]:
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
            slices.setdefault(m.slice, []).append(_metric(m))
    stored_batches = len(runs.stored_batches(run.id)) if run.status != "completed" else run.batch_count
    return {
        **run_summary(run),
        "golden_dataset": {"name": dataset.name, "version": version.version, "sha256": version.content_hash},
        "progress": {"batches_done": stored_batches, "batches_total": run.batch_count},
        "config": run.config,
        "mlflow_run_id": run.mlflow_run_id,
        "error": run.error,
        "quality_score": _metric(quality) if quality else None,
        "metrics": [_metric(m) for m in overall],
        "slices": [{"slice": name, "metrics": rows} for name, rows in sorted(slices.items())],
    }


def _metric(m: Any) -> dict[str, Any]:
    return {"name": m.name, "value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high, "n": m.n}


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a document, as cached and served."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
