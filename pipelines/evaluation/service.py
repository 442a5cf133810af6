"""Evaluation use cases: prepare (or reuse, or resume) a run, score a batch, aggregate, compare."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import structlog
from sqlalchemy.orm import Session

from models.db.enums import RunStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.evaluations import EvaluationRepository
from models.db.repositories.golden_datasets import GoldenDatasetRepository
from models.db.tables import (
    EvaluationMetric,
    EvaluationRun,
)
from models.registry import client as registry
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.evaluation.quality import (
    DEFAULT_QUALITY_WEIGHTS,
    QualityWeights,
    parse_quality_weights,
)
from pipelines.evaluation.runs import get_run as get_run  # re-exported for service callers
from pipelines.evaluation.runs import run_dataset as run_dataset
from pipelines.evaluation.scoring import (
    CLASSIFICATION,
    Comparison,
    MetricRow,
    ScoringOptions,
    compare,
    score_examples,
    summarize,
)
from pipelines.golden_datasets.service import load_version_frame, resolve_version
from pipelines.organizations import get_organization

log = structlog.get_logger()

DEFAULT_AGENT_TYPES = {CLASSIFICATION: "intent_classifier", "text_generation": "summarizer"}


@dataclass(frozen=True)
class PredictionsFile:
    """Predictions produced elsewhere: example id → prediction, with a content digest."""

    filename: str
    predictions: dict[str, str]
    digest: str

    @classmethod
    def read(cls, data: bytes, *, filename: str) -> PredictionsFile:
        """Parse a CSV, JSONL or Parquet file with columns `id` and `prediction`."""
        suffix = Path(filename).suffix.lower()
        try:
            if suffix == ".csv":
                frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
            elif suffix in (".jsonl", ".ndjson"):
                frame = pd.read_json(io.BytesIO(data), lines=True, dtype=False)
            elif suffix == ".parquet":
                frame = pd.read_parquet(io.BytesIO(data))
            else:
                raise InvalidInput(f"predictions file {filename!r}: use .csv, .jsonl or .parquet")
        except InvalidInput:
            raise
        except Exception as error:
            raise InvalidInput(
                f"predictions file {filename!r} could not be read as {suffix}: {error}"
            ) from error
        missing = {"id", "prediction"} - set(frame.columns)
        if missing:
            raise InvalidInput(
                f"predictions file {filename!r} lacks column(s) {', '.join(sorted(missing))}; "
                f"it needs `id` and `prediction` (found: {', '.join(map(str, frame.columns))})"
            )
        ids = frame["id"].astype(str).str.strip()
        duplicated = ids[ids.duplicated()].unique().tolist()
        if duplicated:
            raise InvalidInput(
                f"predictions file {filename!r}: duplicate id(s) {', '.join(duplicated[:10])}; "
                "keep one prediction per example"
            )
        predictions = dict(zip(ids, frame["prediction"].fillna("").astype(str), strict=True))
        canonical = json.dumps(sorted(predictions.items()), ensure_ascii=False).encode()
        return cls(filename, predictions, hashlib.sha256(canonical).hexdigest())


@dataclass(frozen=True)
class EvaluationRequest:
    """What to evaluate: a model version or a predictions file, on a golden dataset version."""

    dataset: str
    model_version: tuple[str, str, str | None] | None = None
    """(registered model name, version, alias asked for), already resolved."""
    agent_type: str | None = None
    predictions: PredictionsFile | None = None
    options: ScoringOptions = field(default_factory=ScoringOptions)
    quality_weights: str | None = None
    batch_size: int = 5000
    force: bool = False


@dataclass(frozen=True)
class PreparedEvaluation:
    """A run ready to score: which batches remain, and the examples they cover."""

    run_id: uuid.UUID
    reused: bool
    resumed: bool
    batch_count: int
    pending_batches: tuple[int, ...]
    examples: pd.DataFrame


def prepare_evaluation(
    session: Session,
    *,
    organization_id: uuid.UUID,
    actor: str,
    request: EvaluationRequest,
    storage_dir: Path,
    flow_run_id: str | None,
) -> PreparedEvaluation:
    """Reuse a finished run of the same inputs, resume an unfinished one, or start a new one."""
    if (request.model_version is None) == (request.predictions is None):
        raise InvalidInput(
            "give exactly one of a model version or a predictions file", field="model"
        )
    if request.batch_size < 1:
        raise InvalidInput("must be at least 1", field="batch_size")
    dataset, version = resolve_version(
        session, organization_id=organization_id, reference=request.dataset
    )
    examples = load_version_frame(storage_dir, version).sort_values("id", ignore_index=True)
    agent_type = request.agent_type or DEFAULT_AGENT_TYPES[dataset.task]
    quality = quality_weights_for(agent_type, dataset.task, request.quality_weights)
    if request.predictions is not None:
        _check_predictions_cover(request.predictions, examples)
        subject_key = f"predictions:{request.predictions.digest}"
    else:
        assert request.model_version is not None
        subject_key = f"model:{request.model_version[0]}@{request.model_version[1]}"
    config = {
        "task": dataset.task,
        "agent_type": agent_type,
        "options": asdict(request.options),
        "quality_weights": None if quality is None else dict(quality.weights),
    }
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    runs = EvaluationRepository(session)
    existing = None
    if not request.force:
        existing = runs.find_reusable(
            organization_id,
            subject_key=subject_key,
            golden_dataset_version_id=version.id,
            config_hash=config_hash,
        )
    if existing is not None:
        done = runs.stored_batches(existing.id)
        pending = tuple(i for i in range(existing.batch_count) if i not in done)
        reused = existing.status == "completed"
        if not reused:
            existing.status = "running"
            existing.flow_run_id = flow_run_id
            log.info("evaluation.resumed", run_id=str(existing.id), pending_batches=len(pending))
        return PreparedEvaluation(
            existing.id, reused, not reused, existing.batch_count, pending, examples
        )

    batch_count = max(1, -(-len(examples) // request.batch_size))
    name, number, alias = request.model_version or (None, None, None)
    run = runs.add(
        EvaluationRun(
            organization_id=organization_id,
            golden_dataset_version_id=version.id,
            task=dataset.task,
            agent_type=agent_type,
            registered_model_name=name,
            model_version=number,
            model_alias=alias,
            predictions_digest=request.predictions.digest if request.predictions else None,
            predictions_filename=request.predictions.filename if request.predictions else None,
            subject_key=subject_key,
            config=config,
            config_hash=config_hash,
            status="running",
            batch_size=request.batch_size,
            batch_count=batch_count,
            example_count=len(examples),
            flow_run_id=flow_run_id,
            started_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
        )
    )
    record_audit(
        session,
        "evaluation_run.created",
        run.id,
        actor=actor,
        organization_id=organization_id,
        details={"subject": subject_key, "dataset": f"{dataset.name}@{version.version}"},
    )
    log.info("evaluation.created", run_id=str(run.id), subject=subject_key, batches=batch_count)
    return PreparedEvaluation(
        run.id, False, False, batch_count, tuple(range(batch_count)), examples
    )


def resume_evaluation(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    storage_dir: Path,
    flow_run_id: str | None,
) -> PreparedEvaluation:
    """Pick up a run created earlier (e.g. by the API) and list the batches it still needs."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    found = GoldenDatasetRepository(session).get_version_by_id(
        organization_id, run.golden_dataset_version_id
    )
    if found is None:
        raise NotFound(f"golden dataset version of run {run.id} not found")
    examples = load_version_frame(storage_dir, found[1]).sort_values("id", ignore_index=True)
    if run.status == "completed":
        return PreparedEvaluation(run.id, True, False, run.batch_count, (), examples)
    if run.registered_model_name is None:
        raise InvalidInput(
            f"run {run.id} evaluates a predictions file; evaluate the file again to finish it",
            field="run_id",
        )
    done = EvaluationRepository(session).stored_batches(run.id)
    pending = tuple(i for i in range(run.batch_count) if i not in done)
    run.status = "running"
    run.flow_run_id = flow_run_id
    return PreparedEvaluation(run.id, False, bool(done), run.batch_count, pending, examples)


def quality_weights_for(agent_type: str, task: str, spec: str | None) -> QualityWeights | None:
    """The declared quality weighting for an agent type (an explicit spec wins)."""
    if spec:
        try:
            return parse_quality_weights(agent_type, spec)
        except ValueError as error:
            raise InvalidInput(str(error), field="quality_weights") from error
    if agent_type in DEFAULT_QUALITY_WEIGHTS:
        return DEFAULT_QUALITY_WEIGHTS[agent_type]
    fallback = DEFAULT_AGENT_TYPES[task]
    return DEFAULT_QUALITY_WEIGHTS.get(fallback)


def _check_predictions_cover(predictions: PredictionsFile, examples: pd.DataFrame) -> None:
    ids = set(examples["id"])
    missing = sorted(ids - predictions.predictions.keys())
    extra = sorted(predictions.predictions.keys() - ids)
    if missing or extra:
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} example(s) have no prediction (e.g. {', '.join(missing[:5])})"
            )
        if extra:
            parts.append(f"{len(extra)} id(s) are not in the dataset (e.g. {', '.join(extra[:5])})")
        raise InvalidInput(
            f"predictions file {predictions.filename!r}: {'; '.join(parts)}; "
            "the file needs exactly one prediction per golden example id"
        )


def batch_rows(examples: pd.DataFrame, batch_index: int, batch_size: int) -> pd.DataFrame:
    """The examples of one batch (examples are ordered by id)."""
    return examples.iloc[batch_index * batch_size : (batch_index + 1) * batch_size]


def score_batch(
    *,
    task: str,
    examples: pd.DataFrame,
    predictions: Sequence[str],
    options: ScoringOptions,
    processes: int = 1,
) -> pd.DataFrame:
    """Per-example scores of one batch (pure; no storage)."""
    return score_examples(
        task,
        predictions=predictions,
        expected=examples["expected"].astype(str).tolist(),
        use_stemmer=options.use_stemmer,
        processes=processes,
    )


def store_batch(
    session: Session,
    *,
    run_id: uuid.UUID,
    batch_index: int,
    examples: pd.DataFrame,
    predictions: Sequence[str],
    scores: pd.DataFrame,
) -> int:
    """Insert one batch's per-example scores; the whole batch lands in one transaction."""
    records = scores.to_dict(orient="records")
    slices = examples["slice"].fillna("").astype(str).tolist()
    rows = [
        {
            "run_id": run_id,
            "example_id": example_id,
            "batch_index": batch_index,
            "slice": slice_name,
            "prediction": prediction,
            "scores": _compact(record),
        }
        for example_id, slice_name, prediction, record in zip(
            examples["id"].tolist(), slices, predictions, records, strict=True
        )
    ]
    EvaluationRepository(session).insert_scores(rows)
    return len(rows)


def _compact(record: Mapping[Any, Any]) -> dict[str, Any]:
    """Integral floats as ints, so stored JSON stays small and exact."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, float) and value.is_integer():
            out[str(key)] = int(value)
        else:
            out[str(key)] = value
    return out


def load_scores(session: Session, run_id: uuid.UUID) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(scores frame, slices, example ids) of a run, ordered by example id."""
    rows = EvaluationRepository(session).score_rows(run_id)
    frame = pd.DataFrame.from_records([row[3] for row in rows])
    return frame, [row[1] for row in rows], [row[0] for row in rows]


def aggregate_run(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID
) -> list[MetricRow]:
    """Compute every aggregate of a fully scored run (pure over its stored scores)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    scores, slices, ids = load_scores(session, run.id)
    if len(ids) != run.example_count:
        raise Conflict(
            f"run {run.id} has {len(ids)} of {run.example_count} example scores; "
            "rerun the evaluation to finish the missing batches"
        )
    options = ScoringOptions(**run.config["options"])
    quality = _stored_quality(run)
    return summarize(run.task, scores, slices=slices, options=options, quality=quality)


def complete_run(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    actor: str,
    metrics: Sequence[MetricRow],
    mlflow_run_id: str | None,
) -> EvaluationRun:
    """Store the aggregates and mark the run completed (one transaction)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    EvaluationRepository(session).replace_metrics(run.id, [asdict(m) for m in metrics])
    run.status = "completed"
    run.mlflow_run_id = mlflow_run_id
    run.finished_at = pd.Timestamp.now(tz="UTC").to_pydatetime()
    record_audit(
        session,
        "evaluation_run.completed",
        run.id,
        actor=actor,
        organization_id=organization_id,
        details={"metrics": len(metrics), "mlflow_run_id": mlflow_run_id},
    )
    return run


def fail_run(
    session: Session, *, organization_id: uuid.UUID, run_id: uuid.UUID, actor: str, error: str
) -> None:
    """Mark a run failed with the error users will see."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    run.status = "failed"
    run.error = error[:4000]
    run.finished_at = pd.Timestamp.now(tz="UTC").to_pydatetime()
    record_audit(
        session,
        "evaluation_run.failed",
        run.id,
        actor=actor,
        organization_id=organization_id,
        details={"error": error[:500]},
    )


def _stored_quality(run: EvaluationRun) -> QualityWeights | None:
    weights = run.config.get("quality_weights")
    if not weights:
        return None
    spec = ",".join(f"{name}={weight!r}" for name, weight in weights.items())
    return parse_quality_weights(run.agent_type, spec)


@dataclass(frozen=True)
class RunComparison:
    """Two runs on the same golden dataset version, compared example by example."""

    run_a: EvaluationRun
    run_b: EvaluationRun
    comparison: Comparison
    metrics_a: dict[str, EvaluationMetric]
    """Run a's stored overall metrics (with their own CIs), by name."""
    metrics_b: dict[str, EvaluationMetric]


def compare_runs(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID | str,
    run_b: uuid.UUID | str,
) -> RunComparison:
    """Paired comparison of run b against run a."""
    first = get_run(session, organization_id=organization_id, run_id=run_a)
    second = get_run(session, organization_id=organization_id, run_id=run_b)
    for run in (first, second):
        if run.status != RunStatus.COMPLETED:
            raise Conflict(f"run {run.id} is {run.status}; compare completed runs only")
    if first.golden_dataset_version_id != second.golden_dataset_version_id:
        raise Conflict(
            "runs were evaluated on different golden dataset versions; a paired comparison "
            "needs the same examples (evaluate both on one NAME@VERSION)"
        )
    scores_a, slices, ids_a = load_scores(session, first.id)
    scores_b, _, ids_b = load_scores(session, second.id)
    if ids_a != ids_b:
        raise Conflict("the runs do not cover the same examples")
    options = ScoringOptions(**first.config["options"])
    comparison = compare(
        first.task,
        scores_a,
        scores_b,
        slices=slices,
        options=options,
        quality=_stored_quality(first),
    )
    runs = EvaluationRepository(session)
    overall_a = {m.name: m for m in runs.metrics(first.id) if m.slice == ""}
    overall_b = {m.name: m for m in runs.metrics(second.id) if m.slice == ""}
    return RunComparison(first, second, comparison, overall_a, overall_b)


@dataclass(frozen=True)
class StartedEvaluation:
    """A run created (or found) for a model version: the flow carries it out unless reused."""

    run: EvaluationRun
    organization_slug: str
    reused: bool
    """True when an identical run had completed already: nothing is left to do."""


def start_evaluation(
    session: Session,
    *,
    organization: str,
    model: str,
    dataset: str,
    actor: str,
    storage_dir: Path,
    force: bool = False,
    batch_size: int = EvaluationRequest.batch_size,
) -> StartedEvaluation:
    """Resolve `NAME@VERSION|NAME@ALIAS` in the registry and create (or reuse) its run.

    The run is left `running` for the flow started with its id (`run_id=`) to score.
    """
    owner = get_organization(session, organization)
    try:
        ref = registry.resolve(model)
        info = registry.model_version_info(ref.name, ref.version)
    except registry.InvalidModelReference as error:
        raise InvalidInput(str(error), field="model") from error
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"{error}; register it first", field="model") from error
    prepared = prepare_evaluation(
        session,
        organization_id=owner.id,
        actor=actor,
        request=EvaluationRequest(
            dataset=dataset,
            model_version=(ref.name, ref.version, ref.alias),
            agent_type=info.agent_type or None,
            batch_size=batch_size,
            force=force,
        ),
        storage_dir=storage_dir,
        flow_run_id=None,
    )
    run = get_run(session, organization_id=owner.id, run_id=prepared.run_id)
    return StartedEvaluation(run=run, organization_slug=owner.slug, reused=prepared.reused)


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands, for polling: the run and how many of its batches are stored."""

    run: EvaluationRun
    organization_slug: str
    batches_done: int


def run_progress(session: Session, *, organization: str, run_id: uuid.UUID | str) -> RunProgress:
    """The status and progress of a run of the organisation with slug `organization`."""
    owner = get_organization(session, organization)
    run = get_run(session, organization_id=owner.id, run_id=run_id)
    done = (
        run.batch_count
        if run.status == RunStatus.COMPLETED
        else len(EvaluationRepository(session).stored_batches(run.id))
    )
    return RunProgress(run=run, organization_slug=owner.slug, batches_done=done)
