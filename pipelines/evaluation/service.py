"""Evaluation use cases: prepare (or reuse, or resume) a run, score a batch, aggregate, compare."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models.db.base import utcnow
from models.db.enums import RunStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.evaluations import EvaluationRepository
from models.db.repositories.golden_datasets import GoldenDatasetRepository
from models.db.tables import (
    EvaluationMetric,
    EvaluationRun,
    GoldenDataset,
    GoldenDatasetVersion,
)
from models.registry import client as registry
from models.registry.tracking import TrackedEvaluation, TrackedMetric, log_evaluation
from pipelines.errors import Conflict, InvalidInput, NotFound, StreamflowError
from pipelines.evaluation import artifacts
from pipelines.evaluation.quality import (
    DEFAULT_QUALITY_WEIGHTS,
    QualityWeights,
    parse_quality_weights,
)
from pipelines.evaluation.runs import get_run as get_run  # re-exported for service callers
from pipelines.evaluation.runs import run_dataset as run_dataset
from pipelines.evaluation.scoring import (
    ALL_EXAMPLES,
    CLASSIFICATION,
    LEGACY_NORMALIZATION,
    SCORING_FIELDS,
    Comparison,
    MetricRow,
    ScoringOptions,
    compare,
    score_examples,
    summarize,
)
from pipelines.evaluation.signatures import scoring_signatures
from pipelines.golden_datasets.service import (
    load_version_frame,
    resolve_version,
    version_labels,
)
from pipelines.organizations import get_organization

log = structlog.get_logger()

PENDING = RunStatus.PENDING
"""Created (e.g. by the API); no flow has claimed it yet."""
RUNNING = RunStatus.RUNNING
COMPLETED = RunStatus.COMPLETED
FAILED = RunStatus.FAILED

DEFAULT_PENDING_TIMEOUT = timedelta(minutes=10)
"""How long a run may stay `pending` before it counts as stuck (its flow never started)."""

# The quality weighting an agent type without one of its own borrows, by task. Never used to
# decide the agent type itself: that is given, read from the model's tags, or inferred.
_QUALITY_FALLBACK_BY_TASK = {CLASSIFICATION: "intent_classifier", "text_generation": "summarizer"}

Clock = Callable[[], datetime]


utc_now: Clock = utcnow
"""The default clock: the one stored rows take their timestamps from (aware UTC)."""


class AgentUnavailable(StreamflowError):
    """A registered model version whose agent cannot be loaded where the evaluation runs."""


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


@dataclass(frozen=True)
class CheckedEvaluation:
    """A request whose references exist and fit together: ready to become a run."""

    request: EvaluationRequest
    """The request with its agent type decided."""
    dataset: GoldenDataset
    version: GoldenDatasetVersion
    examples: pd.DataFrame
    """The version's rows, ordered by id."""
    quality: QualityWeights | None


def resolve_model(reference: str) -> tuple[registry.ModelVersionRef, registry.ModelVersionInfo]:
    """The model version a `NAME@VERSION|NAME@ALIAS` reference names, with its tags."""
    try:
        ref = registry.resolve(reference)
        info = registry.model_version_info(ref.name, ref.version)
    except registry.InvalidModelReference as error:
        raise InvalidInput(str(error), field="model") from error
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"{error}; register it first", field="model") from error
    return ref, info


def check_evaluation(
    session: Session,
    *,
    organization_id: uuid.UUID,
    request: EvaluationRequest,
    storage_dir: Path,
) -> CheckedEvaluation:
    """Check a request before anything runs or is written; raise a domain error naming the field.

    The dataset version must exist; a model version must exist, have the dataset's task and an
    agent module importable here; a predictions file must cover the dataset exactly; the agent
    type must be given or inferable; quality weights must parse.
    """
    if (request.model_version is None) == (request.predictions is None):
        raise InvalidInput(
            "give exactly one of a model version (NAME@VERSION or NAME@ALIAS) or a predictions "
            "file",
            field="model",
        )
    if request.batch_size < 1:
        raise InvalidInput("must be at least 1", field="batch_size")
    dataset, version = resolve_version(
        session, organization_id=organization_id, reference=request.dataset
    )
    agent_type = request.agent_type
    if request.model_version is not None:
        name, number, _ = request.model_version
        info = _model_info(name, number)
        if info.task and info.task != dataset.task:
            raise InvalidInput(
                f"{name}@{number} is a {info.task} model but golden dataset "
                f"{dataset.name!r} is a {dataset.task} dataset; evaluate it on a {info.task} "
                f"dataset, or pick a {dataset.task} model",
                field="model",
            )
        _check_agent_module(info)
        agent_type = agent_type or info.agent_type or None
    examples = load_version_frame(storage_dir, version).sort_values("id", ignore_index=True)
    if request.predictions is not None:
        _check_predictions_cover(request.predictions, examples)
    if agent_type is None:
        agent_type = _infer_agent_type(session, organization_id, dataset)
    quality = quality_weights_for(agent_type, dataset.task, request.quality_weights)
    return CheckedEvaluation(
        replace(request, agent_type=agent_type), dataset, version, examples, quality
    )


def _model_info(name: str, version: str) -> registry.ModelVersionInfo:
    try:
        return registry.model_version_info(name, version)
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"{error}; register it first", field="model") from error


def _check_agent_module(info: registry.ModelVersionInfo) -> None:
    """Refuse a model version whose agent's module cannot be imported in this process."""
    module = info.agent_module
    if not module or module == "__main__":
        return
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise AgentUnavailable(
            f"model: {info.name}@{info.version}'s agent module {module!r} cannot be imported "
            "here; install it or add its folder to PYTHONPATH (the module must stay importable "
            "wherever evaluations run)"
        )


def _infer_agent_type(session: Session, organization_id: uuid.UUID, dataset: GoldenDataset) -> str:
    """The one agent type earlier runs on this dataset had; else the caller must say."""
    known = EvaluationRepository(session).agent_types_of_dataset(organization_id, dataset.id)
    if len(known) == 1:
        return next(iter(known))
    hint = (
        f"earlier runs on it used {', '.join(sorted(known))}"
        if known
        else "it has no earlier runs to infer it from"
    )
    raise InvalidInput(
        f"a predictions file does not say which agent made it, and golden dataset "
        f"{dataset.name!r} does not decide it ({hint}); give the agent type, "
        f"e.g. {', '.join(sorted(DEFAULT_QUALITY_WEIGHTS))}",
        field="agent_type",
    )


def prepare_evaluation(
    session: Session,
    *,
    organization_id: uuid.UUID,
    actor: str,
    request: EvaluationRequest,
    storage_dir: Path,
    flow_run_id: str | None,
    claim: bool = True,
    clock: Clock = utc_now,
) -> PreparedEvaluation:
    """Reuse a finished run of the same inputs, resume an unfinished one, or start a new one.

    With `claim` (a flow calling), the run is `running`; without, it stays `pending` until the
    flow started for it claims it with `resume_evaluation`.
    """
    checked = check_evaluation(
        session, organization_id=organization_id, request=request, storage_dir=storage_dir
    )
    request, dataset, version = checked.request, checked.dataset, checked.version
    examples, quality = checked.examples, checked.quality
    assert request.agent_type is not None
    if request.predictions is not None:
        subject_key = f"predictions:{request.predictions.digest}"
    else:
        assert request.model_version is not None
        subject_key = f"model:{request.model_version[0]}@{request.model_version[1]}"
    config: dict[str, Any] = {
        "task": dataset.task,
        "agent_type": request.agent_type,
        "options": asdict(request.options),
        "quality_weights": None if quality is None else dict(quality.weights),
    }
    if dataset.task == CLASSIFICATION:
        config["labels"] = list(version_labels(version, examples["expected"].astype(str).tolist()))
    config_hash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
    runs = EvaluationRepository(session)
    now = clock()
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
        reused = existing.status == COMPLETED
        if not reused:
            _hand_over(existing, claim=claim, flow_run_id=flow_run_id, now=now)
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
            agent_type=request.agent_type,
            registered_model_name=name,
            model_version=number,
            model_alias=alias,
            predictions_digest=request.predictions.digest if request.predictions else None,
            predictions_filename=request.predictions.filename if request.predictions else None,
            subject_key=subject_key,
            config=config,
            config_hash=config_hash,
            status=RUNNING if claim else PENDING,
            batch_size=request.batch_size,
            batch_count=batch_count,
            example_count=len(examples),
            flow_run_id=flow_run_id,
            scoring_signatures=scoring_signatures(
                dataset.task,
                request.options.text_metrics(),
                use_stemmer=request.options.use_stemmer,
            ),
            created_at=now,
            started_at=now if claim else None,
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


def _hand_over(run: EvaluationRun, *, claim: bool, flow_run_id: str | None, now: datetime) -> None:
    """Claim an unfinished run for the calling flow, or set it back to wait for one."""
    run.error = None
    run.finished_at = None
    run.flow_run_id = flow_run_id
    if claim:
        run.status = RUNNING
        run.started_at = now
    else:
        run.status = PENDING
        run.started_at = None


def resume_evaluation(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    storage_dir: Path,
    flow_run_id: str | None,
    clock: Clock = utc_now,
) -> PreparedEvaluation:
    """Claim a run created earlier (e.g. by the API): it becomes `running` for this flow."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    found = GoldenDatasetRepository(session).get_version_by_id(
        organization_id, run.golden_dataset_version_id
    )
    if found is None:
        raise NotFound(f"golden dataset version of run {run.id} not found")
    examples = load_version_frame(storage_dir, found[1]).sort_values("id", ignore_index=True)
    if run.status == COMPLETED:
        return PreparedEvaluation(run.id, True, False, run.batch_count, (), examples)
    if run.registered_model_name is None:
        raise InvalidInput(
            f"run {run.id} evaluates a predictions file; evaluate the file again to finish it",
            field="run_id",
        )
    _check_agent_module(_model_info(run.registered_model_name, str(run.model_version)))
    done = EvaluationRepository(session).stored_batches(run.id)
    pending = tuple(i for i in range(run.batch_count) if i not in done)
    _hand_over(run, claim=True, flow_run_id=flow_run_id, now=clock())
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
    fallback = _QUALITY_FALLBACK_BY_TASK[task]
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
    """Per-example scores of one batch (pure; no storage).

    Predictions and references are normalised alike first (as import normalises `expected`),
    unless the run's options say it was started before that (`text_normalization` "none").
    """
    return score_examples(
        task,
        predictions=predictions,
        expected=examples["expected"].astype(str).tolist(),
        use_stemmer=options.use_stemmer,
        processes=processes,
        text_options=options.text_metrics(),
        normalise=options.text_normalization != LEGACY_NORMALIZATION,
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
    return aggregate_scores(run, scores, slices, ids)


def aggregate_scores(
    run: EvaluationRun, scores: pd.DataFrame, slices: Sequence[str], ids: Sequence[str]
) -> list[MetricRow]:
    """Every aggregate of a run from its loaded per-example scores (see `load_scores`)."""
    if len(ids) != run.example_count:
        raise Conflict(
            f"run {run.id} has {len(ids)} of {run.example_count} example scores; "
            "rerun the evaluation to finish the missing batches"
        )
    options = ScoringOptions.from_config(run.config["options"])
    quality = _stored_quality(run)
    return summarize(
        run.task,
        scores,
        slices=slices,
        options=options,
        quality=quality,
        labels=run_labels(run, scores),
    )


def run_labels(run: EvaluationRun, scores: pd.DataFrame) -> tuple[str, ...] | None:
    """The label set a classification run is scored against (None for text generation): the
    one stored with the run, else (runs stored before label sets) its `expected` values."""
    if run.task != CLASSIFICATION:
        return None
    stored = run.config.get("labels")
    if stored:
        return tuple(str(label) for label in stored)
    return tuple(sorted(set(scores["label"].astype(str)))) if len(scores) else None


def predict_batch(run: EvaluationRun, examples: pd.DataFrame) -> list[str]:
    """The predictions of a run's model version for one batch of examples."""
    ref = registry.ModelVersionRef(str(run.registered_model_name), str(run.model_version))
    try:
        return registry.predict(ref, examples["input"].astype(str).tolist())
    except registry.ModelLoadFailed as error:
        raise AgentUnavailable(f"model: {error}") from error


def complete_run(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    actor: str,
    metrics: Sequence[MetricRow],
    mlflow_run_id: str | None,
    clock: Clock = utc_now,
    confusion: Mapping[str, Any] | None = None,
) -> EvaluationRun:
    """Store the aggregates (and a classification run's confusion matrix) and mark the run
    completed (one transaction)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    EvaluationRepository(session).replace_metrics(run.id, [asdict(m) for m in metrics])
    if confusion is None and run.task == CLASSIFICATION:
        scores, _, _ = load_scores(session, run.id)
        labels = run_labels(run, scores)
        confusion = artifacts.confusion_document(scores, labels) if labels else None
    run.confusion_matrix = None if confusion is None else dict(confusion)
    run.status = COMPLETED
    run.error = None
    run.mlflow_run_id = mlflow_run_id
    run.finished_at = clock()
    record_audit(
        session,
        "evaluation_run.completed",
        run.id,
        actor=actor,
        organization_id=organization_id,
        details={"metrics": len(metrics), "mlflow_run_id": mlflow_run_id},
    )
    return run


def failure_reason(error: BaseException | str) -> str:
    """What a failed run tells its users: one line, never SQL or a traceback."""
    if isinstance(error, str):
        text = error
    elif isinstance(error, StreamflowError):
        text = str(error)
    elif isinstance(error, SQLAlchemyError):
        # Their text carries the statement and its parameters; the flow run's log has them.
        text = (
            f"the database failed ({type(error).__name__}); the flow run's log has the details; "
            "start the evaluation again once the database is reachable"
        )
    else:
        first = next((line for line in str(error).splitlines() if line.strip()), "")
        text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    line = " ".join(text.split())
    return line if len(line) <= 1000 else line[:999] + "…"


def fail_run(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    actor: str,
    error: BaseException | str,
    clock: Clock = utc_now,
) -> EvaluationRun:
    """Mark a run failed with a reason users can read (see `failure_reason`)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    reason = failure_reason(error)
    run.status = FAILED
    run.error = reason
    run.finished_at = clock()
    record_audit(
        session,
        "evaluation_run.failed",
        run.id,
        actor=actor,
        organization_id=organization_id,
        details={"error": reason[:500]},
    )
    return run


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
    labels: tuple[str, ...] | None = None
    """Classification: the dataset version's label set both runs were scored against."""
    scoring_options: dict[str, Any] = field(default_factory=dict)
    """The scoring options both runs share."""
    quality: QualityWeights | None = None
    """The one weighting both quality scores are computed with."""
    quality_source: str | None = None
    """`runs` (both runs stored these weights) or `declared` (run B's agent type's weights)."""


def comparable(run_a: EvaluationRun, run_b: EvaluationRun) -> dict[str, Any]:
    """The scoring options two runs share; Conflict naming every difference otherwise.

    Runs compare only when their per-example scores mean the same thing: the same
    normalisation, ROUGE stemming, BLEU and chrF options, and (classification) label set.
    """
    options_a = ScoringOptions.from_config(run_a.config["options"]).scoring()
    options_b = ScoringOptions.from_config(run_b.config["options"]).scoring()
    reasons = [
        f"{name} is {options_a[name]!r} in run A but {options_b[name]!r} in run B"
        for name in SCORING_FIELDS
        if options_a[name] != options_b[name]
    ]
    if run_a.task == CLASSIFICATION:
        labels_a, labels_b = run_a.config.get("labels"), run_b.config.get("labels")
        if labels_a and labels_b and list(labels_a) != list(labels_b):
            only_a = sorted(set(labels_a) - set(labels_b))
            only_b = sorted(set(labels_b) - set(labels_a))
            reasons.append(
                f"the label sets differ (only in run A: {', '.join(only_a) or 'none'}; "
                f"only in run B: {', '.join(only_b) or 'none'})"
            )
    if reasons:
        raise Conflict(
            f"runs {str(run_a.id)[:8]} and {str(run_b.id)[:8]} were scored differently, so "
            f"their scores are not comparable: {'; '.join(reasons)}; evaluate both with the "
            "same scoring options"
        )
    return options_a


def comparison_weights(
    run_a: EvaluationRun, run_b: EvaluationRun
) -> tuple[QualityWeights | None, str | None]:
    """The one quality weighting for both sides of a comparison, and where it comes from.

    The weights both runs were evaluated with when they agree (`runs`); otherwise the current
    declared weighting of run B's agent type (`declared`), the same for both sides.
    """
    stored_a, stored_b = _stored_quality(run_a), _stored_quality(run_b)
    if (
        stored_a is not None
        and stored_b is not None
        and dict(stored_a.weights) == dict(stored_b.weights)
    ):
        return stored_b, "runs"
    declared = quality_weights_for(run_b.agent_type, run_b.task, None)
    return declared, None if declared is None else "declared"


def compare_runs(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID | str,
    run_b: uuid.UUID | str,
) -> RunComparison:
    """Paired comparison of run b against run a.

    Refused (Conflict) unless both are completed, on the same dataset version and examples,
    and scored with the same options and label set. Classification metrics of both are over
    the version's label set; both quality scores use one weighting (`comparison_weights`).
    """
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
    shared = comparable(first, second)
    scores_a, slices, ids_a = load_scores(session, first.id)
    scores_b, _, ids_b = load_scores(session, second.id)
    if ids_a != ids_b:
        raise Conflict("the runs do not cover the same examples")
    labels = run_labels(second, scores_b)
    options = ScoringOptions.from_config(first.config["options"])
    quality, source = comparison_weights(first, second)
    comparison = compare(
        first.task,
        scores_a,
        scores_b,
        slices=slices,
        options=options,
        quality=quality,
        labels=labels,
    )
    runs = EvaluationRepository(session)
    overall_a = _overall(runs, first, quality)
    overall_b = _overall(runs, second, quality)
    return RunComparison(
        first, second, comparison, overall_a, overall_b, labels, shared, quality, source
    )


def _overall(
    runs: EvaluationRepository, run: EvaluationRun, quality: QualityWeights | None
) -> dict[str, EvaluationMetric]:
    """A run's stored overall metrics; its quality score only if it used `quality`'s weights
    (the comparison's A and B values are then the ones to read)."""
    stored = _stored_quality(run)
    same = (
        stored is not None and quality is not None and dict(stored.weights) == dict(quality.weights)
    )
    return {
        m.name: m
        for m in runs.metrics(run.id)
        if m.slice == "" and (same or m.name != "quality_score")
    }


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
    clock: Clock = utc_now,
) -> StartedEvaluation:
    """Check the request, then create (or reuse) its run, `pending` until its flow claims it.

    Everything is checked before the run is written: a refused request leaves no run behind.
    The caller launches the flow with the run's id (`run_id=`) after committing.
    """
    owner = get_organization(session, organization)
    ref, info = resolve_model(model)
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
        claim=False,
        clock=clock,
    )
    run = get_run(session, organization_id=owner.id, run_id=prepared.run_id)
    return StartedEvaluation(run=run, organization_slug=owner.slug, reused=prepared.reused)


def launch_failed(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    actor: str,
    error: BaseException,
    clock: Clock = utc_now,
) -> EvaluationRun:
    """Mark a run failed because its flow could not be launched."""
    return fail_run(
        session,
        organization_id=organization_id,
        run_id=run_id,
        actor=actor,
        error=f"the flow could not be started: {failure_reason(error)}; check that the "
        "orchestrator is reachable, then start the evaluation again",
        clock=clock,
    )


@dataclass(frozen=True)
class RunProgress:
    """Where a run stands, for polling: the run and how many of its batches are stored."""

    run: EvaluationRun
    organization_slug: str
    batches_done: int
    stuck: bool = False
    """`pending` for longer than the pending timeout: its flow never started."""


def run_progress(
    session: Session,
    *,
    organization: str,
    run_id: uuid.UUID | str,
    clock: Clock = utc_now,
    pending_timeout: timedelta = DEFAULT_PENDING_TIMEOUT,
) -> RunProgress:
    """The status and progress of a run of the organisation with slug `organization`."""
    owner = get_organization(session, organization)
    run = get_run(session, organization_id=owner.id, run_id=run_id)
    done = (
        run.batch_count
        if run.status == RunStatus.COMPLETED
        else len(EvaluationRepository(session).stored_batches(run.id))
    )
    return RunProgress(
        run=run,
        organization_slug=owner.slug,
        batches_done=done,
        stuck=is_stuck(run, now=clock(), pending_timeout=pending_timeout),
    )


def is_stuck(run: EvaluationRun, *, now: datetime, pending_timeout: timedelta) -> bool:
    """True when a run has waited `pending` for its flow longer than `pending_timeout`."""
    return run.status == PENDING and _aware(run.created_at) < now - pending_timeout


def _aware(moment: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were stored as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


STUCK_REASON = (
    "the flow never started; check that the orchestrator and a worker are running, "
    "then start the evaluation again"
)


def fail_stuck_runs(
    session: Session,
    *,
    actor: str,
    clock: Clock = utc_now,
    pending_timeout: timedelta = DEFAULT_PENDING_TIMEOUT,
) -> list[EvaluationRun]:
    """Mark every run `pending` for longer than `pending_timeout` failed: its flow never started."""
    now = clock()
    stuck = EvaluationRepository(session).pending_created_before(now - pending_timeout)
    for run in stuck:
        fail_run(
            session,
            organization_id=run.organization_id,
            run_id=run.id,
            actor=actor,
            error=STUCK_REASON,
            clock=lambda: now,
        )
        log.warning("evaluation.stuck_run_failed", run_id=str(run.id))
    return stuck


def finish_run(
    session: Session,
    *,
    organization: str,
    run_id: uuid.UUID,
    actor: str,
    experiment_id: str,
    storage_dir: Path,
    clock: Clock = utc_now,
) -> EvaluationRun:
    """Aggregate a fully scored run, log it to MLflow and store it completed.

    The MLflow run carries the organisation, the model version (alias, `models:/` URI, and its
    logged model linked to the metrics), the dataset digest, every overall metric with its CI,
    and the artifacts of `pipelines.evaluation.artifacts`.
    """
    owner = get_organization(session, organization)
    run = get_run(session, organization_id=owner.id, run_id=run_id)
    dataset, version = run_dataset(session, organization_id=owner.id, run=run)
    rows = EvaluationRepository(session).score_rows(run.id)
    ids, slices = [row[0] for row in rows], [row[1] for row in rows]
    scores = pd.DataFrame.from_records([row[3] for row in rows])
    metrics = aggregate_scores(run, scores, slices, ids)
    golden = load_version_frame(storage_dir, version).set_index("id")
    options = asdict(ScoringOptions.from_config(run.config["options"]))
    labels = run_labels(run, scores)
    confusion = artifacts.confusion_document(scores, labels) if labels and len(scores) else None
    signatures = run.scoring_signatures or {}
    mlflow_run_id = log_evaluation(
        TrackedEvaluation(
            experiment_id=experiment_id,
            run_name=f"eval {_subject(run)} on {dataset.name}@{version.version}",
            params={
                "golden_dataset": f"{dataset.name}@{version.version}",
                "task": run.task,
                "agent_type": run.agent_type,
                **{f"option.{k}": str(v) for k, v in options.items()},
                **{f"signature.{k}": str(v) for k, v in signatures.items()},
                **({"labels": ",".join(labels)[:6000]} if labels else {}),
            },
            tags=_tracking_tags(run, owner.slug),
            metrics=[
                TrackedMetric(m.name, m.value, m.ci_low, m.ci_high)
                for m in metrics
                if m.slice == ALL_EXAMPLES
            ],
            dataset_name=f"{dataset.name}@{version.version}",
            dataset_digest=version.content_hash,
            dataset_uri=f"streamflow://golden-datasets/{dataset.name}/{version.version}",
            model_id=_logged_model_id(run),
            documents=artifacts.documents(run.task, options, metrics, confusion),
            tables={
                artifacts.SLICES: artifacts.slice_table(metrics),
                artifacts.EXAMPLES: artifacts.example_table(
                    scores, slices, ids, [row[2] for row in rows], golden
                ),
            },
        )
    )
    return complete_run(
        session,
        organization_id=owner.id,
        run_id=run.id,
        actor=actor,
        metrics=metrics,
        mlflow_run_id=mlflow_run_id,
        clock=clock,
        confusion=confusion,
    )


def _subject(run: EvaluationRun) -> str:
    if run.registered_model_name:
        return f"{run.registered_model_name}@{run.model_version}"
    return f"predictions:{run.predictions_filename}"


def _tracking_tags(run: EvaluationRun, organization: str) -> dict[str, str]:
    tags = {
        "streamflow.evaluation_run_id": str(run.id),
        "streamflow.organization": organization,
        "streamflow.subject": _subject(run),
        "streamflow.agent_type": run.agent_type,
    }
    if run.registered_model_name:
        ref = registry.ModelVersionRef(run.registered_model_name, str(run.model_version))
        tags |= {
            "registered_model_name": ref.name,
            "model_version": ref.version,
            "streamflow.model_uri": ref.uri,
        }
        if run.model_alias:
            tags["streamflow.model_alias"] = run.model_alias
    else:
        tags |= {
            "streamflow.predictions_file": str(run.predictions_filename),
            "streamflow.predictions_sha256": str(run.predictions_digest),
        }
    return tags


def _logged_model_id(run: EvaluationRun) -> str | None:
    """The MLflow logged model of the evaluated version, so its page lists these metrics."""
    if not run.registered_model_name:
        return None
    try:
        info = registry.model_version_info(run.registered_model_name, str(run.model_version))
    except registry.ModelVersionNotFound:
        return None
    return info.model_id or None
