"""The evaluation flow: prepare a run, score it batch by batch, aggregate, log to MLflow."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import structlog
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.runtime import report_progress, runtime
from models.cache.settings import CacheSettings
from models.db.engine import transaction
from models.db.tables import GoldenDatasetVersion
from models.registry import client as registry
from models.registry.tracking import TrackedMetric, log_evaluation
from pipelines.errors import InvalidInput, StreamflowError
from pipelines.evaluation import service
from pipelines.evaluation.scoring import ALL_EXAMPLES, ScoringOptions
from pipelines.evaluation.views import warm_run_detail
from pipelines.golden_datasets.service import load_version_frame
from pipelines.organizations import get_organization

log = structlog.get_logger()


@dataclass(frozen=True)
class EvaluationOutcome:
    """What a finished evaluation flow returns: the run, whether it was reused, and timings."""

    run_id: str
    reused: bool
    resumed: bool
    batches_scored: int
    seconds_in_our_code: float
    """Time spent in StreamFlow's own code (task bodies and flow body), for overhead figures."""


def _retry_unless_domain_error(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry I/O failures; a user's mistake (bad input, not found) fails the same way again."""
    try:
        state.result()
    except StreamflowError:
        return False
    except Exception:  # any other failure may be transient
        return True
    return False


RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [1, 5],
    "retry_condition_fn": _retry_unless_domain_error,
    "cache_policy": NO_CACHE,
}


def _flow_run_id() -> str | None:
    """The flow run this code runs in, from a flow or any of its tasks."""
    from prefect.runtime import flow_run

    run_id: str | None = flow_run.get_id()
    return run_id


@task(name="prepare-evaluation", **RETRIES)
def prepare_evaluation(
    organization: str,
    actor: str,
    request: service.EvaluationRequest,
    predictions_path: str | None,
) -> tuple[service.PreparedEvaluation, float]:
    started = time.perf_counter()
    rt = runtime()
    if predictions_path is not None:
        request = replace(request, predictions=_predictions_file(predictions_path))
    with transaction(rt.sessions) as session:
        org = get_organization(session, organization)
        prepared = service.prepare_evaluation(
            session,
            organization_id=org.id,
            actor=actor,
            request=request,
            storage_dir=rt.storage.golden_dataset_dir,
            flow_run_id=_flow_run_id(),
        )
    return prepared, time.perf_counter() - started


@task(name="resume-evaluation", **RETRIES)
def resume_evaluation(organization: str, run_id: str) -> tuple[service.PreparedEvaluation, float]:
    started = time.perf_counter()
    rt = runtime()
    with transaction(rt.sessions) as session:
        org = get_organization(session, organization)
        prepared = service.resume_evaluation(
            session,
            organization_id=org.id,
            run_id=uuid.UUID(run_id),
            storage_dir=rt.storage.golden_dataset_dir,
            flow_run_id=_flow_run_id(),
        )
    return prepared, time.perf_counter() - started


@lru_cache(maxsize=4)
def _golden_rows(storage_dir: Path, storage_path: str, row_count: int) -> pd.DataFrame:
    """A stored golden dataset version ordered by id, read once per process."""
    version = GoldenDatasetVersion(storage_path=storage_path, row_count=row_count)
    return load_version_frame(storage_dir, version).sort_values("id", ignore_index=True)


def _predictions_file(path: str) -> service.PredictionsFile:
    """A predictions file, read once per process while it stays unchanged on disk."""
    stat = Path(path).stat()
    return _read_predictions_file(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _read_predictions_file(path: str, _mtime_ns: int, _size: int) -> service.PredictionsFile:
    return service.PredictionsFile.read(Path(path).read_bytes(), filename=Path(path).name)


def _predictions(path: str, digest: str) -> dict[str, str]:
    """The predictions of a run's file, refused if the file changed since the run began."""
    file = _predictions_file(path)
    if file.digest != digest:
        raise InvalidInput(
            f"predictions file {path} changed since this run started; rerun with --force"
        )
    return file.predictions


# Batch inputs are read inside the task, never passed in: Prefect walks every task parameter
# (about 50 ms for a 5,000-row batch), and a worker on another machine could not receive them.
@task(name="evaluate-batch", **RETRIES)
def evaluate_batch(
    organization: str, run_id: str, batch_index: int, predictions_path: str | None
) -> float:
    """Predict (if a model is evaluated), score and store one batch; returns seconds spent."""
    started = time.perf_counter()
    rt = runtime()
    with rt.sessions() as session:
        org = get_organization(session, organization)
        run = service.get_run(session, organization_id=org.id, run_id=uuid.UUID(run_id))
        _, version = service.run_dataset(session, organization_id=org.id, run=run)
    examples = service.batch_rows(
        _golden_rows(rt.storage.golden_dataset_dir, version.storage_path, version.row_count),
        batch_index,
        run.batch_size,
    )
    if run.predictions_digest is not None:
        if predictions_path is None:
            raise InvalidInput(f"run {run.id} evaluates a predictions file; pass --predictions")
        by_id = _predictions(predictions_path, run.predictions_digest)
        predictions = [by_id[example_id] for example_id in examples["id"]]
    else:
        model = registry.ModelVersionRef(str(run.registered_model_name), str(run.model_version))
        predictions = registry.predict(model, examples["input"].astype(str).tolist())
    processes = rt.evaluation.processes if len(examples) >= 2000 else 1
    scores = service.score_batch(
        task=run.task,
        examples=examples,
        predictions=predictions,
        options=ScoringOptions(**run.config["options"]),
        processes=processes,
    )
    with transaction(rt.sessions) as session:
        service.store_batch(
            session,
            run_id=run.id,
            batch_index=batch_index,
            examples=examples,
            predictions=predictions,
            scores=scores,
        )
    log.info("evaluation.batch_stored", run_id=run_id, batch=batch_index, examples=len(examples))
    return time.perf_counter() - started


@task(name="aggregate-evaluation", **RETRIES)
def aggregate_evaluation(organization: str, actor: str, run_id: uuid.UUID) -> float:
    """Aggregate with bootstrap CIs, log the MLflow run, store metrics; returns seconds spent."""
    started = time.perf_counter()
    rt = runtime()
    with rt.sessions() as session:
        org = get_organization(session, organization)
        run = service.get_run(session, organization_id=org.id, run_id=run_id)
        dataset, version = service.run_dataset(session, organization_id=org.id, run=run)
        metrics = service.aggregate_run(session, organization_id=org.id, run_id=run_id)
    subject = (
        f"{run.registered_model_name}@{run.model_version}"
        if run.registered_model_name
        else f"predictions:{run.predictions_filename}"
    )
    mlflow_run_id = log_evaluation(
        experiment_id=registry.experiment_id(rt.registry),
        run_name=f"eval {subject} on {dataset.name}@{version.version}",
        params={
            "golden_dataset": f"{dataset.name}@{version.version}",
            "task": run.task,
            "agent_type": run.agent_type,
            **{f"option.{k}": str(v) for k, v in run.config["options"].items()},
        },
        tags={
            "streamflow.evaluation_run_id": str(run.id),
            "streamflow.subject": subject,
            **(
                {"registered_model_name": run.registered_model_name}
                if run.registered_model_name
                else {}
            ),
            **({"model_version": run.model_version} if run.model_version else {}),
        },
        metrics=[
            TrackedMetric(m.name, m.value, m.ci_low, m.ci_high)
            for m in metrics
            if m.slice == ALL_EXAMPLES
        ],
        dataset_name=f"{dataset.name}@{version.version}",
        dataset_digest=version.content_hash,
        dataset_uri=f"streamflow://golden-datasets/{dataset.name}/{version.version}",
    )
    with transaction(rt.sessions) as session:
        service.complete_run(
            session,
            organization_id=org.id,
            run_id=run_id,
            actor=actor,
            metrics=metrics,
            mlflow_run_id=mlflow_run_id,
        )
    _warm_cache(org.id, run_id)
    log.info("evaluation.completed", run_id=str(run_id), mlflow_run_id=mlflow_run_id)
    return time.perf_counter() - started


def _warm_cache(organization_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """Put the finished run's detail into the shared cache before anyone asks for it."""
    with runtime().sessions() as session:
        warm_run_detail(session, CacheSettings(), organization_id=organization_id, run_id=run_id)


class _Stopwatch:
    """Splits a flow's time into StreamFlow's own code and Prefect's task machinery."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.in_task_calls = 0.0
        self.in_task_bodies = 0.0

    def call(self, task_fn: Any, *args: Any) -> Any:
        """Call a task whose result is (value, seconds in its body) or seconds."""
        started = time.perf_counter()
        result = task_fn(*args)
        self.in_task_calls += time.perf_counter() - started
        if isinstance(result, tuple):
            value, seconds = result
            self.in_task_bodies += seconds
            return value
        self.in_task_bodies += result
        return None

    def our_code(self) -> float:
        flow_body = time.perf_counter() - self.started - self.in_task_calls
        return flow_body + self.in_task_bodies


@flow(name="evaluate-model-version", log_prints=False)
def evaluate_model_version(
    organization: str,
    actor: str,
    dataset: str | None = None,
    model: str | None = None,
    predictions_path: str | None = None,
    agent_type: str | None = None,
    force: bool = False,
    batch_size: int | None = None,
    use_stemmer: bool = True,
    quality_weights: str | None = None,
    run_id: str | None = None,
) -> EvaluationOutcome:
    """Evaluate a model version (or a predictions file) on a golden dataset version.

    With `run_id`, carry out a run created earlier (the API creates runs, then starts this).
    """
    watch = _Stopwatch()
    rt = runtime()
    structlog.contextvars.bind_contextvars(flow_run_id=_flow_run_id())
    if run_id is not None:
        prepared = watch.call(resume_evaluation, organization, run_id)
    else:
        if dataset is None:
            raise InvalidInput("give --dataset NAME[@VERSION]")
        model_ref = registry.resolve(model) if model else None
        if model_ref is not None and agent_type is None:
            info = registry.model_version_info(model_ref.name, model_ref.version)
            agent_type = info.agent_type or None
        request = service.EvaluationRequest(
            dataset=dataset,
            model_version=(model_ref.name, model_ref.version, model_ref.alias)
            if model_ref
            else None,
            agent_type=agent_type,
            options=ScoringOptions(
                use_stemmer=use_stemmer,
                n_resamples=rt.evaluation.bootstrap_resamples,
                confidence=rt.evaluation.confidence,
                seed=rt.evaluation.seed,
            ),
            quality_weights=quality_weights,
            batch_size=batch_size or rt.evaluation.batch_size,
            force=force,
        )
        # The predictions file is read inside the task: Prefect walks every task parameter.
        prepared = watch.call(prepare_evaluation, organization, actor, request, predictions_path)
    structlog.contextvars.bind_contextvars(evaluation_run_id=str(prepared.run_id))
    if prepared.reused:
        log.info("evaluation.reused", run_id=str(prepared.run_id))
        return EvaluationOutcome(str(prepared.run_id), True, False, 0, watch.our_code())
    with rt.sessions() as session:
        org = get_organization(session, organization)
        run = service.get_run(session, organization_id=org.id, run_id=prepared.run_id)
    total = prepared.batch_count
    done = total - len(prepared.pending_batches)
    report_progress("scoring", done, total)
    try:
        for batch_index in prepared.pending_batches:
            watch.call(evaluate_batch, organization, str(run.id), batch_index, predictions_path)
            done += 1
            report_progress("scoring", done, total)
        report_progress("aggregating", 0, 1)
        watch.call(aggregate_evaluation, organization, actor, run.id)
        report_progress("aggregating", 1, 1)
    except Exception as error:
        with transaction(rt.sessions) as session:
            org = get_organization(session, organization)
            service.fail_run(
                session, organization_id=org.id, run_id=run.id, actor=actor, error=str(error)
            )
        raise
    return EvaluationOutcome(
        str(run.id), False, prepared.resumed, len(prepared.pending_batches), watch.our_code()
    )
