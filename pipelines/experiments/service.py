"""Use cases of experiments: create (with a planned sample size), start, pause, stop, read.

Experiments are platform-wide and changed by the provider (API or CLI). Each change writes an
audit row; the caller owns the transaction. Model versions are checked against the registry
through the `resolve` callable the caller hands in (`NAME@VERSION` → the same, or LookupError).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.db.enums import ExperimentKind, ExperimentStatus, SplitKey
from models.db.repositories.audit import record_audit
from models.db.repositories.experiments import ExperimentRepository, TrafficRepository
from models.db.tables import Experiment
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.experiments.planning import plan_sample_size
from pipelines.pagination import Paged, after_key, as_paged
from pipelines.serving.routing import LiveExperiment

TRANSITIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "start": {"from": (ExperimentStatus.DRAFT, ExperimentStatus.PAUSED)},
    "pause": {"from": (ExperimentStatus.RUNNING,)},
    "stop": {"from": (ExperimentStatus.DRAFT, ExperimentStatus.RUNNING, ExperimentStatus.PAUSED)},
}
TARGET = {
    "start": ExperimentStatus.RUNNING,
    "pause": ExperimentStatus.PAUSED,
    "stop": ExperimentStatus.STOPPED,
}


@dataclass(frozen=True)
class ExperimentRequest:
    """What the provider asks for when creating an experiment."""

    kind: ExperimentKind
    agent_type: str
    challenger: str
    """`NAME@VERSION` of the challenger."""
    mde: float
    sd: float = 0.5
    """Standard deviation of the primary metric per request (0.5 bounds a 0/1 metric)."""
    alpha: float = 0.05
    power: float = 0.8
    sample_rate: float = 1.0
    traffic_split: float = 0.5
    split_key: SplitKey = SplitKey.TENANT
    description: str = ""


@dataclass(frozen=True)
class ExperimentDetail:
    """An experiment as every reader gets it."""

    id: str
    agent_type: str
    kind: str
    status: str
    champion_version: str
    challenger_version: str
    sample_rate: float
    traffic_split: float
    split_key: str
    mde: float
    planned_sample_size: int
    plan: dict[str, Any]
    description: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    paused_at: datetime | None
    stopped_at: datetime | None


def detail(experiment: Experiment) -> ExperimentDetail:
    return ExperimentDetail(
        id=str(experiment.id),
        agent_type=experiment.agent_type,
        kind=experiment.kind,
        status=experiment.status,
        champion_version=experiment.champion_version,
        challenger_version=experiment.challenger_version,
        sample_rate=experiment.sample_rate,
        traffic_split=experiment.traffic_split,
        split_key=experiment.split_key,
        mde=experiment.mde,
        planned_sample_size=experiment.planned_sample_size,
        plan=dict(experiment.plan),
        description=experiment.description,
        created_by=experiment.created_by,
        created_at=experiment.created_at,
        updated_at=experiment.updated_at,
        started_at=experiment.started_at,
        paused_at=experiment.paused_at,
        stopped_at=experiment.stopped_at,
    )


def _check(request: ExperimentRequest) -> None:
    if not request.agent_type.strip():
        raise InvalidInput("name the agent type the experiment is on", field="agent_type")
    if not request.mde > 0:
        raise InvalidInput("the minimum detectable effect must be above 0", field="mde")
    if not request.sd > 0:
        raise InvalidInput("the standard deviation must be above 0", field="sd")
    if not 0 < request.alpha < 1:
        raise InvalidInput("alpha must be between 0 and 1", field="alpha")
    if not 0 < request.power < 1:
        raise InvalidInput("power must be between 0 and 1", field="power")
    if not 0 < request.sample_rate <= 1:
        raise InvalidInput("the shadow sample rate must be in (0, 1]", field="sample_rate")
    if not 0 < request.traffic_split < 1:
        raise InvalidInput(
            "the challenger's share of traffic must be between 0 and 1", field="traffic_split"
        )
    name, _, version = request.challenger.partition("@")
    if not name or not version.isdigit():
        raise InvalidInput(
            f"challenger {request.challenger!r} must be NAME@VERSION (a version number, "
            "e.g. intent-classifier@3)",
            field="challenger",
        )


def create_experiment(
    session: Session,
    request: ExperimentRequest,
    *,
    champion: str | None,
    resolve: Callable[[str], str],
    actor: str,
    now: datetime,
) -> ExperimentDetail:
    """A draft experiment with its planned sample size; audited as `experiment.created`.

    `champion` is the agent type's champion `NAME@VERSION` now (None: the type has none).
    """
    _check(request)
    if champion is None:
        raise NotFound(
            f"agent type {request.agent_type!r} has no champion to compare against; register a "
            "model version with that agent type and alias it champion",
            field="agent_type",
        )
    try:
        challenger = resolve(request.challenger)
    except LookupError as error:
        reason = str(error.args[0] if error.args else error)
        raise NotFound(f"{reason}; name a registered version", field="challenger") from None
    if challenger == champion:
        raise InvalidInput(
            f"{challenger} is already the champion; name another version", field="challenger"
        )
    paired = request.kind == ExperimentKind.SHADOW
    try:
        plan = plan_sample_size(
            mde=request.mde, sd=request.sd, alpha=request.alpha, power=request.power, paired=paired
        )
    except ValueError as error:
        raise InvalidInput(f"{error}; ask for a larger effect", field="mde") from None
    experiment = Experiment(
        id=uuid.uuid4(),
        agent_type=request.agent_type,
        kind=request.kind,
        status=ExperimentStatus.DRAFT,
        champion_version=champion,
        challenger_version=challenger,
        sample_rate=request.sample_rate,
        traffic_split=request.traffic_split,
        split_key=request.split_key,
        salt=secrets.token_hex(16),
        mde=request.mde,
        planned_sample_size=int(plan.sequential_n),
        plan={
            "method": "normal approximation; sequential n for always-valid monitoring",
            "paired": paired,
            "mde": plan.mde,
            "sd": plan.sd,
            "alpha": plan.alpha,
            "power": plan.power,
            "fixed_n": int(plan.fixed_n),
            "sequential_n": int(plan.sequential_n),
        },
        description=request.description,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    ExperimentRepository(session).add(experiment)
    record_audit(
        session,
        "experiment.created",
        experiment.id,
        actor=actor,
        details={
            "agent_type": experiment.agent_type,
            "kind": experiment.kind,
            "champion": champion,
            "challenger": challenger,
            "planned_sample_size": experiment.planned_sample_size,
        },
    )
    return detail(experiment)


def change_status(
    session: Session,
    experiment_id: uuid.UUID,
    action: str,
    *,
    actor: str,
    now: datetime,
    champion: str | None = None,
) -> ExperimentDetail:
    """Start, pause or stop an experiment; audited as `experiment.<action>ed`.

    Starting checks that no other experiment holds the agent type and records the champion
    serving now (`champion`), which the comparison pairs with.
    """
    if action not in TRANSITIONS:
        raise InvalidInput(f"action must be one of {', '.join(TRANSITIONS)}", field="action")
    repository = ExperimentRepository(session)
    experiment = repository.get_for_update(experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found", field="experiment_id")
    if experiment.status == TARGET[action]:
        return detail(experiment)
    if experiment.status not in TRANSITIONS[action]["from"]:
        raise Conflict(
            f"experiment {experiment_id} is {experiment.status}; it cannot {action}"
            + (
                " (a stopped experiment stays stopped; create another)" if action == "start" else ""
            ),
            field="status",
        )
    if action == "start":
        other = repository.active_for(experiment.agent_type)
        if other is not None and other.id != experiment.id:
            raise Conflict(
                f"experiment {other.id} is {other.status} on {experiment.agent_type}; stop it "
                "first",
                field="experiment_id",
            )
        if champion is not None and champion != experiment.champion_version:
            if champion == experiment.challenger_version:
                raise Conflict(
                    f"{champion} is the champion now; the experiment has nothing to compare",
                    field="experiment_id",
                )
            experiment.champion_version = champion
        experiment.started_at = experiment.started_at or now
        experiment.paused_at = None
    elif action == "pause":
        experiment.paused_at = now
    else:
        experiment.stopped_at = now
    before = experiment.status
    experiment.status = TARGET[action]
    experiment.updated_at = now
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(
            f"another experiment holds {experiment.agent_type}; stop it first",
            field="experiment_id",
        ) from error
    verb = {"start": "started", "pause": "paused", "stop": "stopped"}[action]
    record_audit(
        session,
        f"experiment.{verb}",
        experiment.id,
        actor=actor,
        details={"from": before, "to": experiment.status, "champion": experiment.champion_version},
    )
    return detail(experiment)


def get_experiment(session: Session, experiment_id: uuid.UUID) -> ExperimentDetail:
    experiment = ExperimentRepository(session).get(experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found", field="experiment_id")
    return detail(experiment)


def experiments_page(
    session: Session,
    *,
    agent_type: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Paged[ExperimentDetail]:
    if status is not None and status not in set(ExperimentStatus):
        raise InvalidInput(f"status must be one of {', '.join(ExperimentStatus)}", field="status")
    repository = ExperimentRepository(session)
    page = repository.page_matching(
        agent_type=agent_type,
        status=status,
        after=after_key(cursor, ExperimentRepository.ORDER),
        limit=limit,
    )
    return as_paged(page, detail)


def served_counts(session: Session, experiment_ids: list[str]) -> dict[str, int]:
    """Requests served so far under each experiment (its observed n), by experiment id."""
    counts = TrafficRepository(session).served_counts([uuid.UUID(i) for i in experiment_ids])
    return {str(key): value for key, value in counts.items()}


def live_experiments(session: Session) -> dict[str, LiveExperiment]:
    """Running experiments by agent type, as the serving path uses them."""
    return {
        e.agent_type: LiveExperiment(
            id=str(e.id),
            agent_type=e.agent_type,
            kind=ExperimentKind(e.kind),
            challenger=e.challenger_version,
            sample_rate=e.sample_rate,
            traffic_split=e.traffic_split,
            split_key=e.split_key,
            salt=e.salt,
        )
        for e in ExperimentRepository(session).running()
    }
