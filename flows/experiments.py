"""Comparing running experiments and checking input drift: hourly (served by `streamflow
worker`) or on demand.

`compare_experiments_now` and `check_drift_now` do the work without Prefect (tests, bench, the
CLI's `--local`); the flow runs one task per experiment and per agent type, each in its own
transaction. Golden-set evidence comes from evaluation runs like any other (the evaluation flow
as a subflow, or its steps in process without Prefect), reused when a run of the same model
version, dataset version and scoring configuration completed before. Evidently is imported
inside the drift task only: its import takes seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session, sessionmaker

from flows.evaluation import evaluate_model_version, evaluate_now
from flows.orchestrator import orchestrated
from flows.runtime import runtime
from models.db.engine import transaction
from models.db.repositories.experiments import ExperimentRepository
from models.db.repositories.promotion import PromotionRepository
from pipelines.errors import StreamflowError
from pipelines.promotion import service
from pipelines.promotion.drift import DriftSummary, comparable_columns, summarize_drift
from pipelines.promotion.read_models import DecisionDetail, DriftReportView
from pipelines.promotion.service import GoldenPlan

log = structlog.get_logger()

Clock = Callable[[], datetime]
FLOW_ACTOR = "flow:compare-experiments"
DRIFT_WINDOW = timedelta(days=1)
DRIFT_THRESHOLD = 0.5
"""Share of descriptor columns that must drift before the inputs count as drifted."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


Evaluate = Callable[[str, str, str, str], str]
"""(organization slug, actor, dataset NAME@VERSION, model NAME@VERSION) → a completed
evaluation run's id."""


def evaluate_inline(organization: str, actor: str, dataset: str, model: str) -> str:
    """The evaluation flow's steps in this process (a completed run of the same inputs is
    reused)."""
    return evaluate_now(organization, actor, dataset=dataset, model=model).run_id


def evaluate_subflow(organization: str, actor: str, dataset: str, model: str) -> str:
    """The evaluation flow itself (a subflow run of the calling flow)."""
    outcome = evaluate_model_version(
        organization=organization, actor=actor, dataset=dataset, model=model
    )
    return outcome.run_id


def golden_runs_now(
    plan: GoldenPlan | None, *, actor: str, evaluate: Evaluate
) -> tuple[uuid.UUID, ...] | None:
    """The completed evaluation runs of a plan's versions on its golden dataset version."""
    if plan is None:
        return None
    return tuple(
        uuid.UUID(evaluate(plan.organization, actor, plan.dataset, version))
        for version in plan.versions
    )


def compare_one_now(
    sessions: sessionmaker[Session],
    experiment_id: uuid.UUID,
    *,
    golden_runs: tuple[uuid.UUID, ...] | None,
    clock: Clock = _utcnow,
    actor: str = FLOW_ACTOR,
    resamples: int = 1000,
    since: datetime | None = None,
) -> DecisionDetail:
    """Compare one experiment, given its golden evaluation runs, in one transaction."""
    runs = None if golden_runs is None else (golden_runs[0], golden_runs[1])
    with transaction(sessions) as session:
        return service.compare_experiment(
            session,
            experiment_id=experiment_id,
            now=clock(),
            actor=actor,
            golden_runs=runs,
            resamples=resamples,
            since=since,
        )


def compare_experiments_now(
    sessions: sessionmaker[Session],
    *,
    experiment_id: uuid.UUID | None = None,
    clock: Clock = _utcnow,
    actor: str = FLOW_ACTOR,
    resamples: int = 1000,
    since: datetime | None = None,
    evaluate: Evaluate = evaluate_inline,
) -> list[DecisionDetail]:
    """Compare one experiment, or every running one: evaluate both versions on the pinned
    golden dataset version (reusing completed runs), then decide in one transaction each."""
    if experiment_id is not None:
        ids = [experiment_id]
    else:
        with transaction(sessions) as session:
            ids = [e.id for e in ExperimentRepository(session).running()]
    decisions = []
    for found in ids:
        with transaction(sessions) as session:
            plan = service.golden_plan(session, experiment_id=found)
        runs = golden_runs_now(plan, actor=actor, evaluate=evaluate)
        decisions.append(
            compare_one_now(
                sessions,
                found,
                golden_runs=runs,
                clock=clock,
                actor=actor,
                resamples=resamples,
                since=since,
            )
        )
    return decisions


def drift_report(reference: Any, current: Any, *, threshold: float) -> tuple[DriftSummary, str]:
    """Evidently's data-drift preset over the descriptor columns: (summary, HTML)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from pipelines.promotion.drift import NUMERICAL

    columns = comparable_columns(reference, current)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c in NUMERICAL],
        categorical_columns=[c for c in columns if c not in NUMERICAL],
    )
    snapshot = Report([DataDriftPreset(columns=columns)]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )
    summary = summarize_drift(snapshot.dict()["metrics"], threshold=threshold)
    return summary, snapshot.get_html_str(as_iframe=False)


def check_drift_now(
    sessions: sessionmaker[Session],
    *,
    agent_type: str,
    storage_dir: Path,
    home: Path,
    clock: Clock = _utcnow,
    window: timedelta = DRIFT_WINDOW,
    threshold: float = DRIFT_THRESHOLD,
    actor: str = FLOW_ACTOR,
    resamples: int = 1000,
    evaluate: Evaluate = evaluate_inline,
) -> DriftReportView | None:
    """A drift report of the agent type's recent traffic against its pinned golden dataset;
    drift beyond the threshold re-evaluates: it compares the agent type's running experiment
    again (live traffic and the golden set), or, with none running, evaluates the champion on
    the golden set (a completed run of the same inputs is reused)."""
    now = clock()
    with transaction(sessions) as session:
        inputs = service.drift_inputs(
            session, agent_type=agent_type, since=now - window, until=now, storage_dir=storage_dir
        )
    if inputs is None:
        return None
    reference, current, dataset = inputs
    summary, html = drift_report(reference, current, threshold=threshold)
    with transaction(sessions) as session:
        report = service.store_drift_report(
            session,
            agent_type=agent_type,
            summary=summary,
            window=(now - window, now),
            n_current=len(current),
            n_reference=len(reference),
            dataset_version_id=dataset["dataset_version_id"],
            dataset_digest=dataset["dataset_digest"],
            html=html,
            home=home,
            actor=actor,
            now=now,
        )
        running = ExperimentRepository(session).active_for(agent_type)
    if summary.drifted:
        if running is not None and running.status == "running":
            compare_experiments_now(
                sessions,
                experiment_id=running.id,
                clock=clock,
                actor=actor,
                resamples=resamples,
                evaluate=evaluate,
            )
        else:
            with transaction(sessions) as session:
                plan = service.champion_plan(session, agent_type=agent_type)
            golden_runs_now(plan, actor=actor, evaluate=evaluate)
    return report


@task(name="plan-golden-evaluations", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def golden_plan_task(experiment_id: str) -> GoldenPlan | None:
    with transaction(runtime().sessions) as session:
        return service.golden_plan(session, experiment_id=uuid.UUID(experiment_id))


@task(name="compare-experiment", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def compare_experiment_task(experiment_id: str, golden_runs: list[str] | None) -> dict[str, Any]:
    rt = runtime()
    decision = compare_one_now(
        rt.sessions,
        uuid.UUID(experiment_id),
        golden_runs=None if golden_runs is None else tuple(uuid.UUID(r) for r in golden_runs),
        resamples=rt.evaluation.bootstrap_resamples,
    )
    return decision.model_dump(mode="json", include={"id", "agent_type", "outcome", "n"})


@task(name="check-drift", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def check_drift_task(agent_type: str) -> dict[str, Any] | None:
    rt = runtime()
    report = check_drift_now(
        rt.sessions,
        agent_type=agent_type,
        storage_dir=rt.storage.golden_dataset_dir,
        home=rt.storage.home,
        resamples=rt.evaluation.bootstrap_resamples,
    )
    return None if report is None else report.model_dump(mode="json", include={"id", "drifted"})


@flow(name="compare-experiments", log_prints=False)
def compare_experiments(
    experiment_id: str | None = None, drift: bool = True
) -> dict[str, list[Any]]:
    """Compare every running experiment (or one) and check each gated agent type for drift.

    Both versions of an experiment are evaluated on the gate's pinned golden dataset version
    by the evaluation flow (subflow runs; a completed run of the same inputs is reused), and
    the paired bootstrap reads those runs' stored per-example scores."""
    with transaction(runtime().sessions) as session:
        ids = (
            [experiment_id]
            if experiment_id
            else [str(e.id) for e in ExperimentRepository(session).running()]
        )
        agent_types = PromotionRepository(session).gated_agent_types() if drift else []
    decisions, reports = [], []
    for found in ids:
        try:
            runs = golden_runs_now(
                golden_plan_task(found), actor=FLOW_ACTOR, evaluate=evaluate_subflow
            )
            decisions.append(
                compare_experiment_task(found, None if runs is None else [str(r) for r in runs])
            )
        except StreamflowError as error:
            log.warning("promotion.compare_failed", experiment_id=found, error=str(error))
    for agent_type in agent_types:
        reports.append(check_drift_task(agent_type))
    return {"decisions": decisions, "drift_reports": [r for r in reports if r is not None]}


def run_comparison(
    *, experiment_id: str | None = None, announce: Callable[[str], None] | None = None
) -> dict[str, list[Any]]:
    """Run the flow on the orchestrator (started if needed); what the CLI calls."""
    with orchestrated(announce):
        return compare_experiments(experiment_id=experiment_id)
