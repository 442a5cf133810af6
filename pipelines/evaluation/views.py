"""Evaluation results as readers see them (the read models), as JSON-ready documents.

One shape for the API, the CLI and cache warming, so a warmed cache entry is exactly what the
API would have answered: the read models of `read_models`, dumped to JSON by `run_detail` and
`comparison_payload`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from models.cache.keys import run_detail_key, run_tag
from models.cache.settings import CacheSettings
from models.db.enums import RunStatus
from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import EvaluationRun, GoldenDataset, GoldenDatasetVersion
from pipelines.evaluation import intervals
from pipelines.evaluation.read_models import (
    DatasetRef,
    EvaluationDetail,
    EvaluationSummary,
    ExampleScore,
    Metric,
    ModelRef,
    Progress,
    QualityScorePoint,
    RunRef,
    SliceMetrics,
)
from pipelines.evaluation.read_models import RunComparison as ComparisonView
from pipelines.evaluation.runs import get_run, run_dataset
from pipelines.pagination import Paged, after_key, next_cursor

if TYPE_CHECKING:
    from pipelines.evaluation.service import RunComparison


def timestamp(moment: datetime) -> str:
    """A UTC time as RFC 3339 with `Z`, the way the API's response models write times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def subject(run: EvaluationRun) -> str:
    """How a run's subject reads: model version (alias) or predictions file."""
    if run.registered_model_name:
        alias = f" ({run.model_alias})" if run.model_alias else ""
        return f"{run.registered_model_name}@{run.model_version}{alias}"
    return f"predictions {run.predictions_filename}"


def _model(run: EvaluationRun) -> ModelRef | None:
    if not run.registered_model_name:
        return None
    return ModelRef(
        name=run.registered_model_name, version=run.model_version, alias=run.model_alias
    )


def _dataset(dataset: GoldenDataset, version: GoldenDatasetVersion) -> DatasetRef:
    return DatasetRef(name=dataset.name, version=version.version, sha256=version.content_hash)


def _summary_fields(
    run: EvaluationRun, dataset: GoldenDataset, version: GoldenDatasetVersion
) -> dict[str, Any]:
    return {
        "id": run.id,
        "status": run.status,
        "task": run.task,
        "agent_type": run.agent_type,
        "subject": subject(run),
        "model": _model(run),
        "predictions_file": run.predictions_filename,
        "examples": run.example_count,
        "golden_dataset": _dataset(dataset, version),
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def evaluation_summary(
    run: EvaluationRun, dataset: GoldenDataset, version: GoldenDatasetVersion
) -> EvaluationSummary:
    """A run as listed, with the dataset version it evaluated."""
    return EvaluationSummary(**_summary_fields(run, dataset, version))


def evaluation_detail(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> EvaluationDetail:
    """A run with its dataset version, progress, metrics and CIs (overall and per slice)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    dataset, version = run_dataset(session, organization_id=organization_id, run=run)
    runs = EvaluationRepository(session)
    metrics = runs.metrics(run.id)
    policy = reading_policy(run)
    overall = [Metric.of(m, **policy) for m in metrics if m.slice == ""]
    quality = next((m for m in overall if m.name == "quality_score"), None)
    slices: dict[str, list[Metric]] = {}
    for m in metrics:
        if m.slice:
            slices.setdefault(m.slice, []).append(Metric.of(m, **policy))
    stored_batches = (
        len(runs.stored_batches(run.id)) if run.status != RunStatus.COMPLETED else run.batch_count
    )
    return EvaluationDetail(
        **_summary_fields(run, dataset, version),
        progress=Progress(batches_done=stored_batches, batches_total=run.batch_count),
        config=run.config,
        mlflow_run_id=run.mlflow_run_id,
        error=run.error,
        quality_score=quality,
        metrics=overall,
        slices=[SliceMetrics(slice=name, metrics=rows) for name, rows in sorted(slices.items())],
    )


def reading_policy(run: EvaluationRun) -> dict[str, Any]:
    """How a run's metrics are flagged: its minimum n and its quality score's parts."""
    options = (run.config or {}).get("options") or {}
    weights = (run.config or {}).get("quality_weights") or {}
    return {
        "min_n": int(options.get("min_n", intervals.DEFAULT_MIN_N)),
        "parts": tuple(weights),
    }


def run_detail(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID | str
) -> dict[str, Any]:
    """`evaluation_detail` as the JSON document the API serves and the cache stores."""
    return evaluation_detail(session, organization_id=organization_id, run_id=run_id).model_dump(
        mode="json"
    )


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
    from models.cache.cache import warm  # Redis's client, only where a cache is warmed

    document = run_detail(session, organization_id=organization_id, run_id=run_id)
    warm(
        settings, run_detail_key(organization_id, run_id), encode(document), tags=[run_tag(run_id)]
    )


def compare_runs(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID | str,
    run_b: uuid.UUID | str,
    primary: str | None = None,
) -> RunComparison:
    """`service.compare_runs`, imported when first needed: it brings the scoring stack."""
    from pipelines.evaluation.service import compare_runs as compare

    return compare(
        session, organization_id=organization_id, run_a=run_a, run_b=run_b, primary=primary
    )


def comparison(result: RunComparison) -> ComparisonView:
    """A paired comparison as readers see it, with each run's own overall metrics."""
    return ComparisonView(
        run_a=RunRef(
            id=result.run_a.id,
            subject=subject(result.run_a),
            metrics=[
                Metric.of(m, **reading_policy(result.run_a)) for m in result.metrics_a.values()
            ],
        ),
        run_b=RunRef(
            id=result.run_b.id,
            subject=subject(result.run_b),
            metrics=[
                Metric.of(m, **reading_policy(result.run_b)) for m in result.metrics_b.values()
            ],
        ),
        task=result.run_a.task,
        n=result.comparison.n,
        overall=list(result.comparison.overall),
        slices=list(result.comparison.slices),
        mcnemar=list(result.comparison.mcnemar),
        verdict=result.comparison.verdict,
    )


def comparison_payload(result: RunComparison) -> dict[str, Any]:
    """`comparison` as the JSON document the API serves and the cache stores."""
    return comparison(result).model_dump(mode="json")


def runs_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[EvaluationSummary]:
    """An organisation's runs, newest first, with the dataset version each evaluated."""
    page = EvaluationRepository(session).page_with_datasets(
        organization_id, after=after_key(cursor, EvaluationRepository.ORDER), limit=limit
    )
    return Paged([evaluation_summary(*row) for row in page.items], next_cursor(page))


def run_examples_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID | str,
    cursor: str | None,
    limit: int,
) -> Paged[ExampleScore]:
    """Per-example predictions and scores of a run, by example id."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    after = after_key(cursor, EvaluationRepository.SCORE_ORDER)
    page = EvaluationRepository(session).page_scores(run.id, after=after, limit=limit)
    return Paged([ExampleScore.model_validate(row) for row in page.items], next_cursor(page))


def quality_scores_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    agent_type: str | None,
    cursor: str | None,
    limit: int,
) -> Paged[QualityScorePoint]:
    """The quality score of each completed run, oldest finished first: a time series."""
    page = EvaluationRepository(session).quality_scores(
        organization_id,
        agent_type=agent_type,
        after=after_key(cursor, EvaluationRepository.QUALITY_ORDER),
        limit=limit,
    )
    return Paged(
        [
            QualityScorePoint(
                run_id=run.id,
                finished_at=_finished(run),
                agent_type=run.agent_type,
                task=run.task,
                subject=subject(run),
                model=_model(run),
                value=metric.value,
                ci_low=metric.ci_low,
                ci_high=metric.ci_high,
                n=metric.n,
            )
            for run, metric in page.items
        ],
        next_cursor(page),
    )


def _finished(run: EvaluationRun) -> datetime:
    assert run.finished_at is not None, "completed runs have finished_at"
    return run.finished_at
