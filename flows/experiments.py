"""Comparing running experiments and checking input drift: hourly (served by `streamflow
worker`) or on demand.

`compare_experiments_now` and `check_drift_now` do the work without Prefect (tests, bench, the
CLI's `--local`); the flow runs one task per experiment and per agent type, each in its own
transaction. Evidently is imported inside the drift task only: its import takes seconds.
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

from flows.orchestrator import orchestrated
from flows.runtime import runtime
from models.db.engine import transaction
from models.db.repositories.experiments import ExperimentRepository
from models.db.repositories.promotion import PromotionRepository
from pipelines.errors import StreamflowError
from pipelines.promotion import service
from pipelines.promotion.drift import DriftSummary, comparable_columns, summarize_drift
from pipelines.promotion.read_models import DecisionDetail, DriftReportView

log = structlog.get_logger()

Clock = Callable[[], datetime]
FLOW_ACTOR = "flow:compare-experiments"
DRIFT_WINDOW = timedelta(days=1)
DRIFT_THRESHOLD = 0.5
"""Share of descriptor columns that must drift before the inputs count as drifted."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def compare_experiments_now(
    sessions: sessionmaker[Session],
    *,
    storage_dir: Path,
    experiment_id: uuid.UUID | None = None,
    clock: Clock = _utcnow,
    actor: str = FLOW_ACTOR,
    resamples: int = 1000,
    since: datetime | None = None,
) -> list[DecisionDetail]:
    """Compare one experiment, or every running one; one transaction each."""
    if experiment_id is not None:
        ids = [experiment_id]
    else:
        with transaction(sessions) as session:
            ids = [e.id for e in ExperimentRepository(session).running()]
    decisions = []
    for found in ids:
        with transaction(sessions) as session:
            decisions.append(
                service.compare_experiment(
                    session,
                    experiment_id=found,
                    now=clock(),
                    actor=actor,
                    storage_dir=storage_dir,
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
) -> DriftReportView | None:
    """A drift report of the agent type's recent traffic against its pinned golden dataset;
    drift beyond the threshold re-compares its running experiment on the golden set."""
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
    if summary.drifted and running is not None and running.status == "running":
        compare_experiments_now(
            sessions, storage_dir=storage_dir, experiment_id=running.id, clock=clock, actor=actor
        )
    return report


@task(name="compare-experiment", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def compare_experiment_task(experiment_id: str) -> dict[str, Any]:
    rt = runtime()
    decisions = compare_experiments_now(
        rt.sessions,
        storage_dir=rt.storage.golden_dataset_dir,
        experiment_id=uuid.UUID(experiment_id),
        resamples=rt.evaluation.bootstrap_resamples,
    )
    return decisions[0].model_dump(mode="json", include={"id", "agent_type", "outcome", "n"})


@task(name="check-drift", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def check_drift_task(agent_type: str) -> dict[str, Any] | None:
    rt = runtime()
    report = check_drift_now(
        rt.sessions,
        agent_type=agent_type,
        storage_dir=rt.storage.golden_dataset_dir,
        home=rt.storage.home,
    )
    return None if report is None else report.model_dump(mode="json", include={"id", "drifted"})


@flow(name="compare-experiments", log_prints=False)
def compare_experiments(
    experiment_id: str | None = None, drift: bool = True
) -> dict[str, list[Any]]:
    """Compare every running experiment (or one) and check each gated agent type for drift."""
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
            decisions.append(compare_experiment_task(found))
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
