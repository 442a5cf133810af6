"""The evaluation flow: claim or create a run, score it batch by batch, finish it.

`run_evaluation` checks a request first (milliseconds, no orchestrator), then runs the flow.
With `STREAMFLOW_DASK_ADDRESS` set (a scheduler address, or `local`), batch tasks run on a
Dask cluster through prefect-dask; otherwise one after another in this process.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import structlog
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.orchestrator import orchestrated
from flows.runtime import report_progress, runtime
from models.cache.settings import CacheSettings
from models.db.engine import transaction
from models.db.tables import GoldenDatasetVersion
from models.registry import client as registry
from pipelines.errors import InvalidInput, NotFound, StreamflowError
from pipelines.evaluation import service, views
from pipelines.evaluation.scoring import ScoringOptions
from pipelines.evaluation.views import warm_run_detail
from pipelines.golden_datasets.service import load_version_frame
from pipelines.organizations import get_organization

log = structlog.get_logger()

DASK_ADDRESS_VARIABLE = "STREAMFLOW_DASK_ADDRESS"
WAIT_POLL_SECONDS = 1.0
"""How often a flow waiting for another one's run looks at it."""


@dataclass(frozen=True)
class EvaluationOutcome:
    """What a finished evaluation flow returns: the run, and whether it was reused or resumed."""

    run_id: str
    reused: bool
    resumed: bool
    batches_scored: int


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


def _request(
    *,
    dataset: str | None,
    model: str | None,
    agent_type: str | None,
    force: bool,
    batch_size: int | None,
    use_stemmer: bool,
    quality_weights: str | None,
    bleu_tokenize: str = "13a",
    bleu_lowercase: bool = False,
    chrf_char_order: int = 6,
    chrf_word_order: int = 0,
) -> service.EvaluationRequest:
    """An evaluation request from the flow's parameters, its model reference resolved."""
    if dataset is None:
        raise InvalidInput("dataset: give a golden dataset NAME or NAME@VERSION")
    model_version = None
    if model is not None:
        ref, info = service.resolve_model(model)
        model_version = (ref.name, ref.version, ref.alias)
        agent_type = agent_type or info.agent_type or None
    settings = runtime().evaluation
    options = ScoringOptions(
        use_stemmer=use_stemmer,
        n_resamples=settings.bootstrap_resamples,
        confidence=settings.confidence,
        seed=settings.seed,
        min_n=settings.min_n,
        bleu_tokenize=bleu_tokenize,
        bleu_lowercase=bleu_lowercase,
        chrf_char_order=chrf_char_order,
        chrf_word_order=chrf_word_order,
    )
    return service.EvaluationRequest(
        dataset=dataset,
        model_version=model_version,
        agent_type=agent_type,
        options=options,
        quality_weights=quality_weights,
        batch_size=batch_size or settings.batch_size,
        force=force,
    )


def check_evaluation(
    organization: str,
    *,
    dataset: str | None = None,
    model: str | None = None,
    predictions_path: str | None = None,
    agent_type: str | None = None,
    force: bool = False,
    batch_size: int | None = None,
    use_stemmer: bool = True,
    bleu_tokenize: str = "13a",
    bleu_lowercase: bool = False,
    chrf_char_order: int = 6,
    chrf_word_order: int = 0,
    quality_weights: str | None = None,
) -> None:
    """Refuse a request whose references, task or files are wrong, before any flow starts.

    Reads only (the database, the registry, the predictions file): a refused request leaves
    no run behind. Raises a domain error naming the field and the fix.
    """
    if (model is None) == (predictions_path is None):
        raise InvalidInput(
            "give exactly one of a model version (NAME@VERSION or NAME@ALIAS) or a predictions "
            "file",
            field="model",
        )
    request = _request(
        dataset=dataset,
        model=model,
        agent_type=agent_type,
        force=force,
        batch_size=batch_size,
        use_stemmer=use_stemmer,
        quality_weights=quality_weights,
        bleu_tokenize=bleu_tokenize,
        bleu_lowercase=bleu_lowercase,
        chrf_char_order=chrf_char_order,
        chrf_word_order=chrf_word_order,
    )
    if predictions_path is not None:
        request = replace(request, predictions=_predictions_file(predictions_path))
    rt = runtime()
    with rt.sessions() as session:
        org = get_organization(session, organization)
        service.check_evaluation(
            session,
            organization_id=org.id,
            request=request,
            storage_dir=rt.storage.golden_dataset_dir,
        )


def run_evaluation(
    organization: str,
    actor: str,
    *,
    dataset: str | None = None,
    model: str | None = None,
    predictions_path: str | None = None,
    agent_type: str | None = None,
    force: bool = False,
    batch_size: int | None = None,
    use_stemmer: bool = True,
    bleu_tokenize: str = "13a",
    bleu_lowercase: bool = False,
    chrf_char_order: int = 6,
    chrf_word_order: int = 0,
    quality_weights: str | None = None,
    announce: Callable[[str], None] | None = None,
) -> EvaluationOutcome:
    """Check the request, then run the evaluation flow on the orchestrator (started if needed,
    with `announce` told so); what the CLI and the demo call."""
    parameters: dict[str, Any] = {
        "dataset": dataset,
        "model": model,
        "predictions_path": predictions_path,
        "agent_type": agent_type,
        "force": force,
        "batch_size": batch_size,
        "use_stemmer": use_stemmer,
        "bleu_tokenize": bleu_tokenize,
        "bleu_lowercase": bleu_lowercase,
        "chrf_char_order": chrf_char_order,
        "chrf_word_order": chrf_word_order,
        "quality_weights": quality_weights,
    }
    # Checked in milliseconds before the orchestrator starts: a refused request leaves no run.
    check_evaluation(organization, **parameters)
    with orchestrated(announce):
        outcome: EvaluationOutcome = evaluate_model_version(
            organization=organization, actor=actor, **parameters
        )
    return outcome


@task(name="prepare-evaluation", **RETRIES)
def prepare_evaluation(
    organization: str,
    actor: str,
    request: service.EvaluationRequest,
    predictions_path: str | None,
    holder: str | None = None,
) -> service.PreparedEvaluation:
    rt = runtime()
    if predictions_path is not None:
        request = replace(request, predictions=_predictions_file(predictions_path))
    with transaction(rt.sessions) as session:
        org = get_organization(session, organization)
        return service.prepare_evaluation(
            session,
            organization_id=org.id,
            actor=actor,
            request=request,
            storage_dir=rt.storage.golden_dataset_dir,
            flow_run_id=_flow_run_id(),
            holder=holder,
            lease=_lease(),
        )


@task(name="resume-evaluation", **RETRIES)
def resume_evaluation(organization: str, run_id: str, holder: str) -> service.PreparedEvaluation:
    rt = runtime()
    with transaction(rt.sessions) as session:
        org = get_organization(session, organization)
        return service.resume_evaluation(
            session,
            organization_id=org.id,
            run_id=uuid.UUID(run_id),
            storage_dir=rt.storage.golden_dataset_dir,
            flow_run_id=_flow_run_id(),
            holder=holder,
            lease=_lease(),
        )


def _lease() -> timedelta:
    return timedelta(seconds=runtime().evaluation.claim_lease_seconds)


def _wait_for_other_flow(
    organization: str, run_id: str, prepare_again: Callable[[], service.PreparedEvaluation]
) -> service.PreparedEvaluation:
    """Wait while another live flow carries the run out: reuse its result once it completed,
    or take the run over (prepare again) once that flow went silent for a lease."""
    rt = runtime()
    log.info("evaluation.waiting_for_other_flow", run_id=run_id)
    while True:
        with rt.sessions() as session:
            org = get_organization(session, organization)
            holding, done, total = service.holding(
                session, organization_id=org.id, run_id=uuid.UUID(run_id), lease=_lease()
            )
        report_progress("waiting for the flow scoring this run", done, total)
        if holding is service.Holding.COMPLETED:
            return service.PreparedEvaluation(
                uuid.UUID(run_id), True, False, total, (), pd.DataFrame()
            )
        if holding is service.Holding.CLAIMABLE:
            prepared = prepare_again()
            if not prepared.waiting:
                return prepared
        time.sleep(WAIT_POLL_SECONDS)


@contextmanager
def _keeping_claim(run_id: str, claim: str) -> Iterator[None]:
    """Show, every third of the lease, that this flow still carries the run out."""
    rt = runtime()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(rt.evaluation.claim_lease_seconds / 3):
            try:
                with transaction(rt.sessions) as session:
                    service.renew_claim(session, run_id=uuid.UUID(run_id), claim=claim)
            except service.RunTakenOver:
                # The run just completed here, or was taken over: the flow's next write says
                # so (a one-line error), the heartbeat simply stops.
                log.info("evaluation.claim_ended", run_id=run_id)
                return
            except Exception:  # the next beat or the next batch tries again
                log.exception("evaluation.heartbeat_failed", run_id=run_id)

    beating = threading.Thread(target=beat, name=f"claim-{run_id[:8]}", daemon=True)
    beating.start()
    try:
        yield
    finally:
        stop.set()
        beating.join()


@lru_cache(maxsize=4)
def _golden_rows(storage_dir: Path, storage_path: str, row_count: int) -> pd.DataFrame:
    """A stored golden dataset version ordered by id, read once per process."""
    version = GoldenDatasetVersion(storage_path=storage_path, row_count=row_count)
    return load_version_frame(storage_dir, version).sort_values("id", ignore_index=True)


def _predictions_file(path: str) -> service.PredictionsFile:
    """A predictions file, read once per process while it stays unchanged on disk."""
    try:
        stat = Path(path).stat()
    except OSError as error:
        raise InvalidInput(f"predictions: cannot read {path}: {error.strerror}") from error
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
    organization: str,
    run_id: str,
    batch_index: int,
    predictions_path: str | None,
    claim: str | None = None,
) -> int:
    """Predict (if a model is evaluated), score and store one batch; returns its example count."""
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
        predictions = service.predict_batch(run, examples)
    processes = rt.evaluation.processes if len(examples) >= 2000 else 1
    scores = service.score_batch(
        task=run.task,
        examples=examples,
        predictions=predictions,
        options=ScoringOptions.from_config(run.config["options"]),
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
            claim=claim,
        )
    log.info("evaluation.batch_stored", run_id=run_id, batch=batch_index, examples=len(examples))
    return len(examples)


@task(name="finish-evaluation", **RETRIES)
def finish_evaluation(organization: str, actor: str, run_id: str, claim: str | None = None) -> None:
    """Aggregate with bootstrap CIs, log the MLflow run, mark the run completed."""
    rt = runtime()
    with transaction(rt.sessions) as session:
        run = service.finish_run(
            session,
            organization=organization,
            run_id=uuid.UUID(run_id),
            actor=actor,
            experiment_id=registry.experiment_id(rt.registry),
            storage_dir=rt.storage.golden_dataset_dir,
            claim=claim,
        )
        organization_id, mlflow_run_id = run.organization_id, run.mlflow_run_id
    _warm_cache(organization_id, uuid.UUID(run_id))
    log.info("evaluation.completed", run_id=run_id, mlflow_run_id=mlflow_run_id)


@task(name="compare-with-champion", **RETRIES)
def compare_with_champion(organization: str, actor: str, run_id: str) -> str:
    """Compare a completed run with its agent type's champion run on the same dataset version
    and store the comparison (what the compare page and /v1/comparisons then read)."""
    from pipelines.ai_tasks.service import champion

    rt = runtime()
    with rt.sessions() as session:
        org = get_organization(session, organization)
        run = service.get_run(session, organization_id=org.id, run_id=uuid.UUID(run_id))
        organization_id, agent_type = org.id, run.agent_type
    try:
        ref = champion(agent_type)
        found: tuple[str, str] | None = (ref.name, ref.version)
    except NotFound:
        found = None
    try:
        with transaction(rt.sessions) as session:
            outcome = views.compare_with_champion(
                session,
                organization_id=organization_id,
                run_id=uuid.UUID(run_id),
                champion=found,
                actor=actor,
            )
    except StreamflowError as error:  # e.g. scored with other options: not comparable
        log.info("evaluation.not_compared_with_champion", run_id=run_id, reason=str(error))
        return f"not compared: {error}"
    log.info("evaluation.compared_with_champion", run_id=run_id, outcome=outcome.reason)
    return outcome.reason


def _compare_with_champion(
    organization: str, actor: str, run_id: str, *, inline: bool = False
) -> None:
    """The comparison is a convenience for readers: a failure is logged, never the run's."""
    if not runtime().evaluation.compare_with_champion:
        return
    try:
        (compare_with_champion.fn if inline else compare_with_champion)(organization, actor, run_id)
    except Exception:
        log.exception("evaluation.comparison_failed", run_id=run_id)


def _warm_cache(organization_id: uuid.UUID, run_id: uuid.UUID) -> None:
    """Put the finished run's detail into the shared cache before anyone asks for it."""
    with runtime().sessions() as session:
        warm_run_detail(session, CacheSettings(), organization_id=organization_id, run_id=run_id)


def _fail(
    organization: str, actor: str, run_id: str, error: BaseException, claim: str | None
) -> None:
    """Mark a run failed with the reason users will read: the run this flow holds (`claim`),
    or, holding none, a run still waiting `pending` for a flow. Any other is left alone."""
    rt = runtime()
    with transaction(rt.sessions) as session:
        org = get_organization(session, organization)
        service.fail_run(
            session,
            organization_id=org.id,
            run_id=uuid.UUID(run_id),
            actor=actor,
            error=error,
            claim=claim,
            statuses=(service.RUNNING,) if claim else (service.PENDING,),
        )


def dask_address() -> str | None:
    """The Dask scheduler batch tasks run on (`local` starts a local cluster), if any."""
    return os.environ.get(DASK_ADDRESS_VARIABLE) or None


def _score_batches(
    organization: str,
    run_id: str,
    prepared: service.PreparedEvaluation,
    predictions_path: str | None,
    *,
    inline: bool = False,
) -> None:
    """Run the batch tasks: on Dask when configured, else one after another here (`inline`:
    the tasks' functions, without Prefect)."""
    claim = prepared.claim
    batches, total = prepared.pending_batches, prepared.batch_count
    done = total - len(batches)
    report_progress("scoring", done, total)
    address = None if inline else dask_address()
    if address is None:
        score = evaluate_batch.fn if inline else evaluate_batch
        for batch_index in batches:
            score(organization, run_id, batch_index, predictions_path, claim)
            done += 1
            report_progress("scoring", done, total)
        return
    from prefect.futures import PrefectFuture, as_completed

    from flows import dask

    with dask.task_runner(address) as runner:
        if address != "local":
            dask.forward_settings(runner)
        futures: list[PrefectFuture[int]] = [
            runner.submit(
                evaluate_batch,
                parameters={
                    "organization": organization,
                    "run_id": run_id,
                    "batch_index": batch_index,
                    "predictions_path": predictions_path,
                    "claim": claim,
                },
            )
            for batch_index in batches
        ]
        for future in as_completed(futures):
            future.result()
            done += 1
            report_progress("scoring", done, total)


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
    bleu_tokenize: str = "13a",
    bleu_lowercase: bool = False,
    chrf_char_order: int = 6,
    chrf_word_order: int = 0,
    quality_weights: str | None = None,
    run_id: str | None = None,
) -> EvaluationOutcome:
    """Evaluate a model version (or a predictions file) on a golden dataset version.

    With `run_id`, claim and carry out a run created earlier (the API creates runs `pending`,
    then starts this). Call `run_evaluation` to check the request before the flow starts.
    """
    structlog.contextvars.bind_contextvars(flow_run_id=_flow_run_id())
    holder = uuid.uuid4().hex  # this flow's claim on its run, once it holds it
    again: Callable[[], service.PreparedEvaluation]
    if run_id is not None:
        resumed_id = run_id
        try:
            prepared = resume_evaluation(organization, resumed_id, holder)
        except Exception as error:
            _fail(organization, actor, resumed_id, error, claim=None)
            raise

        def again() -> service.PreparedEvaluation:
            return resume_evaluation(organization, resumed_id, holder)
    else:
        request = _request(
            dataset=dataset,
            model=model,
            agent_type=agent_type,
            force=force,
            batch_size=batch_size,
            use_stemmer=use_stemmer,
            quality_weights=quality_weights,
            bleu_tokenize=bleu_tokenize,
            bleu_lowercase=bleu_lowercase,
            chrf_char_order=chrf_char_order,
            chrf_word_order=chrf_word_order,
        )
        # The predictions file is read inside the task: Prefect walks every task parameter.
        prepared = prepare_evaluation(organization, actor, request, predictions_path, holder)

        def again() -> service.PreparedEvaluation:
            return prepare_evaluation(organization, actor, request, predictions_path, holder)

    return _carry_out(organization, actor, prepared, again, predictions_path)


def _carry_out(
    organization: str,
    actor: str,
    prepared: service.PreparedEvaluation,
    again: Callable[[], service.PreparedEvaluation],
    predictions_path: str | None,
    *,
    inline: bool = False,
) -> EvaluationOutcome:
    """Score a prepared run's pending batches, finish it and compare it with the champion's
    run; a run completed already is reused. `inline` calls the tasks' functions in this
    process (no Prefect task runs), the same steps in the same order."""
    run = str(prepared.run_id)
    if not inline:
        structlog.contextvars.bind_contextvars(evaluation_run_id=run)
    if prepared.waiting:
        # Another flow carries this run out: one flow at a time scores a run.
        prepared = _wait_for_other_flow(organization, run, again)
    if prepared.reused:
        log.info("evaluation.reused", run_id=run)
        return EvaluationOutcome(run, True, False, 0)
    claim = prepared.claim
    finish = finish_evaluation.fn if inline else finish_evaluation
    try:
        with _keeping_claim(run, str(claim)):
            _score_batches(organization, run, prepared, predictions_path, inline=inline)
            report_progress("aggregating", 0, 1)
            finish(organization, actor, run, claim)
            report_progress("aggregating", 1, 1)
    except Exception as error:
        _fail(organization, actor, run, error, claim=claim)
        raise
    report_progress("comparing with the champion", 0, 1)
    _compare_with_champion(organization, actor, run, inline=inline)
    report_progress("comparing with the champion", 1, 1)
    return EvaluationOutcome(run, False, prepared.resumed, len(prepared.pending_batches))


def evaluate_now(organization: str, actor: str, *, dataset: str, model: str) -> EvaluationOutcome:
    """The evaluation flow's steps for a model version, in this process and without Prefect
    (what `streamflow promotion compare --local` and tests use): the same service calls, the
    same stored run, reused when a run of the same inputs (model version, dataset version,
    scoring configuration) completed before."""
    request = _request(
        dataset=dataset,
        model=model,
        agent_type=None,
        force=False,
        batch_size=None,
        use_stemmer=True,
        quality_weights=None,
    )
    holder = uuid.uuid4().hex

    def again() -> service.PreparedEvaluation:
        return prepare_evaluation.fn(organization, actor, request, None, holder)

    return _carry_out(organization, actor, again(), again, None, inline=True)


@flow(name="fail-stuck-evaluations", log_prints=False)
def fail_stuck_evaluations(actor: str = "system", pending_minutes: int = 10) -> list[str]:
    """Mark runs whose flow never started (`pending` longer than `pending_minutes`) failed."""
    from datetime import timedelta

    rt = runtime()
    with transaction(rt.sessions) as session:
        failed = service.fail_stuck_runs(
            session, actor=actor, pending_timeout=timedelta(minutes=pending_minutes)
        )
        return [str(run.id) for run in failed]
