"""Promotion use cases: the gate per agent type, comparisons that decide, alias moves and
rollbacks, drift reports. Services take a session and never commit; every change is audited."""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import structlog
from sqlalchemy.orm import Session

from models.db.enums import ExperimentKind, PromotionOutcome, RunStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.experiments import ExperimentRepository, TrafficRepository
from models.db.repositories.notices import NoticeRepository
from models.db.repositories.organizations import OrganizationRepository
from models.db.repositories.promotion import PromotionRepository
from models.db.repositories.webhooks import WebhookRepository
from models.db.tables import (
    DriftReport,
    EvaluationRun,
    Experiment,
    PromotionDecision,
    PromotionGate,
    SystemNotice,
)
from models.registry import client as registry
from models.registry import promotion as aliases
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.evaluation.runs import get_run
from pipelines.evaluation.scoring import ScoringOptions, compare
from pipelines.evaluation.service import load_scores, run_labels
from pipelines.experiments.gate import GateEvidence, MetricEvidence, decide
from pipelines.experiments.service import change_status
from pipelines.golden_datasets.service import load_version_frame, resolve_version
from pipelines.pagination import Paged, after_key, as_paged
from pipelines.profitability.service import cost_rates
from pipelines.promotion.comparison import (
    Reference,
    TrafficComparison,
    TrafficRow,
    compare_ab,
    compare_shadow,
)
from pipelines.promotion.drift import DriftSummary, descriptors, vocabulary
from pipelines.promotion.evidence import (
    critical_slice_evidence,
    decision_document,
    jsonable,
    live_evidence,
)
from pipelines.promotion.gates import DEFAULT_GATE, gate_config, normalise_gate
from pipelines.promotion.read_models import (
    AliasMoveView,
    DecisionDetail,
    DecisionSummary,
    DriftReportView,
    GateView,
)
from pipelines.serving.routing import count_tokens
from pipelines.webhooks.events import EventType
from pipelines.webhooks.service import emit_event

log = structlog.get_logger()

Clock = Callable[[], datetime]


def _agent_type(agent_type: str) -> str:
    cleaned = (agent_type or "").strip()
    if not cleaned or len(cleaned) > 64:
        raise InvalidInput("agent_type: give the agent type, e.g. summarizer", field="agent_type")
    return cleaned


# Gates


def gate_view(session: Session, agent_type: str) -> GateView:
    """The gate in force for an agent type (the default when none was set)."""
    agent_type = _agent_type(agent_type)
    gate = PromotionRepository(session).current_gate(agent_type)
    if gate is None:
        return GateView(
            agent_type=agent_type,
            version=0,
            config=normalise_gate(DEFAULT_GATE),
            created_by=None,
            created_at=None,
        )
    return GateView.model_validate(gate)


def set_gate(
    session: Session, *, agent_type: str, config: Mapping[str, Any], actor: str, now: datetime
) -> GateView:
    """Pre-register a new version of an agent type's gate (given fields over the defaults)."""
    agent_type = _agent_type(agent_type)
    checked = normalise_gate(config)
    _check_critical_slices(session, checked)
    gate = PromotionRepository(session).add_gate(
        PromotionGate(agent_type=agent_type, config=checked, created_by=actor, created_at=now)
    )
    record_audit(
        session,
        "promotion_gate.set",
        f"{agent_type}@{gate.version}",
        actor=actor,
        details={"agent_type": agent_type, "version": gate.version, "config": checked},
    )
    return GateView.model_validate(gate)


def _check_critical_slices(session: Session, gate: Mapping[str, Any]) -> None:
    """Critical slices the pinned golden dataset version does not have are refused when the
    gate is set. A version not imported yet cannot be checked here; the comparison checks it."""
    critical = gate["critical_slices"]
    provider = OrganizationRepository(session).provider()
    if not critical or provider is None:
        return
    try:
        _, version = resolve_version(
            session, organization_id=provider.id, reference=gate["golden_dataset"]
        )
    except NotFound:
        return
    missing = sorted(set(critical) - set(version.slice_counts))
    if missing:
        raise InvalidInput(
            f"critical_slices: {', '.join(missing)} is not a slice of golden dataset "
            f"{gate['golden_dataset']} (its slices: "
            f"{', '.join(sorted(version.slice_counts)) or 'none'}); name slices of the pinned "
            "version, or pin a version that has them",
            field="critical_slices",
        )


# Decisions and drift reports (read)


def decisions_page(
    session: Session, *, agent_type: str | None, cursor: str | None, limit: int
) -> Paged[DecisionSummary]:
    """Promotion decisions newest first, optionally of one agent type."""
    repository = PromotionRepository(session)
    page = repository.page_decisions(
        agent_type=agent_type,
        after=after_key(cursor, PromotionRepository.DECISION_ORDER),
        limit=limit,
    )
    return as_paged(page, DecisionSummary.model_validate)


def experiment_decisions_page(
    session: Session, *, experiment_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[DecisionDetail]:
    """An experiment's decisions (its looks) newest first, each with its evidence."""
    page = PromotionRepository(session).page_decisions(
        agent_type=None,
        experiment_id=experiment_id,
        after=after_key(cursor, PromotionRepository.DECISION_ORDER),
        limit=limit,
    )
    return as_paged(page, DecisionDetail.model_validate)


def decision_detail(session: Session, decision_id: uuid.UUID | str) -> DecisionDetail:
    """One decision with its evidence."""
    try:
        key = decision_id if isinstance(decision_id, uuid.UUID) else uuid.UUID(str(decision_id))
    except ValueError as error:
        raise NotFound(f"promotion decision {decision_id!r} not found", field="id") from error
    decision = PromotionRepository(session).get_decision(key)
    if decision is None:
        raise NotFound(f"promotion decision {decision_id} not found", field="id")
    return DecisionDetail.model_validate(decision)


def drift_reports_page(
    session: Session, *, agent_type: str | None, cursor: str | None, limit: int
) -> Paged[DriftReportView]:
    """Drift reports newest first, optionally of one agent type."""
    page = PromotionRepository(session).page_drift_reports(
        agent_type=agent_type,
        after=after_key(cursor, PromotionRepository.DRIFT_ORDER),
        limit=limit,
    )
    return as_paged(page, DriftReportView.model_validate)


def drift_report_view(session: Session, report_id: uuid.UUID) -> DriftReportView:
    report = PromotionRepository(session).get_drift_report(report_id)
    if report is None:
        raise NotFound(f"drift report {report_id} not found", field="id")
    return DriftReportView.model_validate(report)


def drift_report_file(session: Session, report_id: uuid.UUID) -> tuple[str, str]:
    """(stored path relative to the StreamFlow home, sha256) of a drift report's HTML."""
    report = PromotionRepository(session).get_drift_report(report_id)
    if report is None or report.html_path is None or report.html_sha256 is None:
        raise NotFound(f"drift report {report_id} has no HTML", field="id")
    return report.html_path, report.html_sha256


# Alias moves


def _model_name(agent_type: str) -> str:
    try:
        return aliases.model_name_for(agent_type)
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"agent_type: {error}", field="agent_type") from error
    except registry.InvalidModelReference as error:
        raise InvalidInput(f"agent_type: {error}", field="agent_type") from error


def promote_version(
    session: Session, *, agent_type: str, name: str, version: str, actor: str, reason: str
) -> AliasMoveView:
    """`champion` → `version` of `name`, the old champion kept as `previous`; audited."""
    try:
        move = aliases.promote(name, version)
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"version: {error}", field="version") from error
    record_audit(
        session,
        "model_alias.promoted",
        f"{name}@champion",
        actor=actor,
        details={
            "agent_type": agent_type,
            "from_version": move.champion_before,
            "to_version": move.champion_after,
            "previous": move.previous_after,
            "reason": reason,
        },
    )
    return AliasMoveView(
        agent_type=agent_type,
        model_name=name,
        champion_before=move.champion_before,
        champion=move.champion_after,
        previous=move.previous_after,
    )


def rollback(session: Session, *, agent_type: str, actor: str) -> AliasMoveView:
    """The agent type's champion returns to its previous version; audited."""
    agent_type = _agent_type(agent_type)
    name = _model_name(agent_type)
    try:
        move = aliases.rollback(name)
    except registry.ModelVersionNotFound as error:
        raise NotFound(
            f"agent_type: {error}; only a promoted champion can be rolled back",
            field="agent_type",
        ) from error
    record_audit(
        session,
        "model_alias.rolled_back",
        f"{name}@champion",
        actor=actor,
        details={
            "agent_type": agent_type,
            "from_version": move.champion_before,
            "to_version": move.champion_after,
        },
    )
    log.info("promotion.rolled_back", agent_type=agent_type, model=name, to=move.champion_after)
    return AliasMoveView(
        agent_type=agent_type,
        model_name=name,
        champion_before=move.champion_before,
        champion=move.champion_after,
        previous=move.previous_after,
    )


# Notices to the provider


def notify_provider(
    session: Session, *, title: str, body: str, severity: str, actor: str, now: datetime
) -> SystemNotice | None:
    """A system notice addressed to the provider's organisation only (no tenant sees it)."""
    provider = OrganizationRepository(session).provider()
    if provider is None:
        return None
    notice = NoticeRepository(session).add(
        SystemNotice(
            title=title[:200],
            body=body,
            severity=severity,
            audience="listed",
            starts_at=now,
            ends_at=None,
            created_at=now,
            updated_at=now,
        ),
        [provider.id],
    )
    record_audit(
        session,
        "system_notice.created",
        notice.id,
        actor=actor,
        details={"severity": severity, "audience": "provider", "tenants": 0},
    )
    return notice


# Drift reports (write)

DRIFT_FOLDER = "drift_reports"
"""Where drift reports' HTML files live under the StreamFlow home."""


def store_drift_report(
    session: Session,
    *,
    agent_type: str,
    summary: DriftSummary,
    window: tuple[datetime, datetime],
    n_current: int,
    n_reference: int,
    dataset_version_id: uuid.UUID | None,
    dataset_digest: str | None,
    html: str | None,
    home: Path,
    actor: str,
    now: datetime,
) -> DriftReportView:
    """Keep a drift report (its HTML as a file under `home`, its SHA-256 in the row), audited;
    drift beyond the threshold tells the provider."""
    report_id = uuid.uuid4()
    html_path = sha256 = None
    if html is not None:
        data = html.encode()
        sha256 = hashlib.sha256(data).hexdigest()
        relative = Path(DRIFT_FOLDER) / f"{report_id}.html"
        target = home / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(data)
        temporary.replace(target)
        html_path = relative.as_posix()
    report = PromotionRepository(session).add_drift_report(
        DriftReport(
            id=report_id,
            agent_type=agent_type,
            window_start=window[0],
            window_end=window[1],
            dataset_version_id=dataset_version_id,
            dataset_digest=dataset_digest,
            n_current=n_current,
            n_reference=n_reference,
            drift_share=summary.drift_share,
            threshold=summary.threshold,
            drifted=summary.drifted,
            drifted_columns=summary.drifted_columns,
            html_path=html_path,
            html_sha256=sha256,
            created_at=now,
        )
    )
    record_audit(
        session,
        "drift_report.created",
        report.id,
        actor=actor,
        details={
            "agent_type": agent_type,
            "drift_share": summary.drift_share,
            "drifted": summary.drifted,
        },
    )
    if summary.drifted:
        notify_provider(
            session,
            title=f"Input drift on {agent_type}",
            body=(
                f"{len(summary.drifted_columns)} of {len(summary.columns)} descriptors of recent "
                f"{agent_type} traffic drifted from the golden dataset "
                f"({', '.join(summary.drifted_columns)}; share {summary.drift_share:.2f}, "
                f"threshold {summary.threshold:.2f}). A re-evaluation was started; the report is "
                f"drift report {report.id}."
            ),
            severity="warning",
            actor=actor,
            now=now,
        )
    return DriftReportView.model_validate(report)


# Comparison and decision


def _load_window(
    session: Session, experiment: Experiment, since: datetime, until: datetime
) -> list[TrafficRow]:
    traffic = TrafficRepository(session)
    rows: list[TrafficRow] = []
    after = None
    while True:
        page = traffic.window(experiment_id=experiment.id, since=since, until=until, after=after)
        rows += [
            TrafficRow(
                request_id=entry.request_id,
                role=entry.role,
                variant=entry.variant,
                output=entry.output_text,
                latency_ms=float(entry.latency_ms),
                error=entry.error is not None,
                created_at=entry.created_at,
                model_version=entry.model_version,
                tokens_in=count_tokens(entry.input_text),
                tokens_out=count_tokens(entry.output_text or ""),
            )
            for entry in page.items
        ]
        if page.next_key is None:
            return rows
        after = page.next_key


def _references(
    session: Session, agent_type: str, since: datetime, wanted: set[str]
) -> dict[str, Reference]:
    """Labels and corrections given for the window's requests (a label wins over a text)."""
    traffic = TrafficRepository(session)
    found: dict[str, Reference] = {}
    after = None
    while True:
        page = traffic.feedback_page(
            organization_id=None, agent_type=agent_type, since=since, after=after
        )
        for feedback in page.items:
            if feedback.request_id not in wanted or feedback.kind not in ("label", "correction"):
                continue
            if feedback.request_id not in found or feedback.kind == "label":
                found[feedback.request_id] = Reference(feedback.kind, feedback.value)
        if page.next_key is None:
            return found
        after = page.next_key


def _reference_of(text: str) -> registry.ModelVersionRef:
    name, version = registry.parse_reference(text)
    return registry.ModelVersionRef(name=name, version=version)


@dataclass(frozen=True)
class GoldenPlan:
    """Evaluations on the golden set that come before a decision: model versions on the gate's
    pinned dataset version, as evaluation runs of the provider organisation."""

    organization: str
    """The provider organisation's slug (the golden dataset is its own)."""
    dataset: str
    """NAME@VERSION, as pinned by the gate."""
    versions: tuple[str, ...]
    """NAME@VERSION of each model version to evaluate (champion first)."""


def _pinned(session: Session, agent_type: str) -> tuple[str, str] | None:
    """(provider slug, pinned NAME@VERSION) of an agent type's gate; None when none is pinned.
    The dataset version must exist."""
    reference = normalise_gate(gate_view(session, agent_type).config)["golden_dataset"]
    if not reference:
        return None
    provider = OrganizationRepository(session).provider()
    if provider is None:
        raise NotFound("the provider organisation does not exist yet", field="golden_dataset")
    resolve_version(session, organization_id=provider.id, reference=reference)
    return provider.slug, str(reference)


def golden_plan(session: Session, *, experiment_id: uuid.UUID) -> GoldenPlan | None:
    """The golden-set evaluations an experiment's comparison needs: its champion and its
    challenger (None: the gate of its agent type pins no golden dataset)."""
    experiment = ExperimentRepository(session).get(experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found", field="experiment_id")
    pinned = _pinned(session, experiment.agent_type)
    if pinned is None:
        return None
    versions = (experiment.champion_version, experiment.challenger_version)
    return GoldenPlan(organization=pinned[0], dataset=pinned[1], versions=versions)


def champion_plan(session: Session, *, agent_type: str) -> GoldenPlan | None:
    """The re-evaluation drift asks for when no experiment runs: the champion on the pinned
    golden dataset version (None: nothing pinned)."""
    pinned = _pinned(session, _agent_type(agent_type))
    if pinned is None:
        return None
    try:
        champion = registry.resolve(f"{_model_name(agent_type)}@champion")
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"agent_type: {error}", field="agent_type") from error
    return GoldenPlan(
        organization=pinned[0], dataset=pinned[1], versions=(f"{champion.name}@{champion.version}",)
    )


def _golden_run(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
    version_id: uuid.UUID,
    subject: registry.ModelVersionRef,
) -> EvaluationRun:
    """A completed evaluation run of `subject` on the pinned dataset version, or a Conflict."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    evaluated = (run.registered_model_name, str(run.model_version))
    if (
        run.status != RunStatus.COMPLETED
        or run.golden_dataset_version_id != version_id
        or evaluated != (subject.name, subject.version)
    ):
        raise Conflict(
            f"evaluation run {run.id} is not a completed evaluation of {subject} on the pinned "
            "golden dataset version; evaluate both versions on it, then compare again",
            field="golden_runs",
        )
    return run


def golden_evidence(
    session: Session,
    *,
    reference: str,
    runs: tuple[uuid.UUID, uuid.UUID],
    champion: registry.ModelVersionRef,
    challenger: registry.ModelVersionRef,
    metric: str,
    seed: int,
    resamples: int,
    alpha: float,
    critical_slices: tuple[str, ...] = (),
    slice_margin: float = 0.0,
    higher_is_better: bool = True,
) -> tuple[list[MetricEvidence], dict[str, Any]]:
    """Both versions' stored evaluation runs on the pinned golden dataset version (`runs`:
    champion's, challenger's), compared example by example with the evaluation spine's paired
    bootstrap over the examples' slices, seeded and sized by the gate; then the primary metric
    on each critical slice against `slice_margin` (see `critical_slice_evidence`)."""
    provider = OrganizationRepository(session).provider()
    if provider is None:
        raise NotFound("the provider organisation does not exist yet", field="golden_dataset")
    dataset, version = resolve_version(session, organization_id=provider.id, reference=reference)
    run_a, run_b = (
        _golden_run(
            session,
            organization_id=provider.id,
            run_id=run_id,
            version_id=version.id,
            subject=subject,
        )
        for run_id, subject in zip(runs, (champion, challenger), strict=True)
    )
    scores_a, slices, ids_a = load_scores(session, run_a.id)
    scores_b, _, ids_b = load_scores(session, run_b.id)
    if ids_a != ids_b:
        raise Conflict("the two golden evaluation runs do not cover the same examples")
    missing = sorted(set(critical_slices) - set(slices))
    if missing:
        raise Conflict(
            f"critical_slices: {', '.join(missing)} is not a slice of golden dataset "
            f"{reference} (its slices: {', '.join(sorted(set(slices) - {''})) or 'none'}); "
            "set the gate's critical_slices to slices of the pinned version, or pin a version "
            "that has them",
            field="critical_slices",
        )
    task = dataset.task
    stored = ScoringOptions.from_config(run_a.config["options"])
    options = replace(stored, n_resamples=resamples, seed=seed, confidence=1.0 - alpha)
    primary = "accuracy" if task == "classification" else "rougeL_f"
    result = compare(
        task,
        scores_a,
        scores_b,
        slices=slices,
        options=options,
        quality=None,
        primary=primary,
        labels=run_labels(run_b, scores_b),
    )
    row = next(d for d in result.overall if d.name == primary and d.slice == "")
    column = "correct" if task == "classification" else primary
    slice_rows, critical = critical_slice_evidence(
        scores_b[column].to_numpy(dtype=float) - scores_a[column].to_numpy(dtype=float),
        slices,
        critical_slices,
        metric=metric,
        margin=slice_margin,
        higher_is_better=higher_is_better,
        alpha=alpha,
        seed=seed,
        resamples=resamples,
    )
    evidence = MetricEvidence(
        metric=metric,
        source="golden",
        estimate=float(row.difference if row.difference is not None else math.nan),
        ci_low=float(row.ci_low if row.ci_low is not None else -math.inf),
        ci_high=float(row.ci_high if row.ci_high is not None else math.inf),
        p_value=row.p_value,
        n=result.n,
        method=f"paired bootstrap of {primary} ({resamples} resamples, seed {seed})",
    )
    document = {
        "dataset": f"{dataset.name}@{version.version}",
        "dataset_version_id": str(version.id),
        "dataset_digest": version.content_hash,
        "evaluation_runs": {"champion": str(run_a.id), "challenger": str(run_b.id)},
        "metric": primary,
        "champion": row.a,
        "challenger": row.b,
        "difference": row.model_dump(mode="json"),
        "verdict": result.verdict.model_dump(mode="json"),
        "mcnemar": [test.model_dump(mode="json") for test in result.mcnemar],
        "slices": [d.model_dump(mode="json") for d in result.slices if d.name == primary],
        "critical_slices": critical,
        "seed": seed,
        "resamples": resamples,
    }
    return [evidence, *slice_rows], document


def compare_experiment(
    session: Session,
    *,
    experiment_id: uuid.UUID,
    now: datetime,
    actor: str,
    golden_runs: tuple[uuid.UUID, uuid.UUID] | None = None,
    since: datetime | None = None,
    resamples: int = 1000,
) -> DecisionDetail:
    """Compare an experiment's challenger with its champion over [start, now) on live traffic
    and on the gate's pinned golden dataset version (`golden_runs`: the completed evaluation
    runs of champion and challenger on it, see `golden_plan`); the gate decides, and the
    decision is kept as immutable evidence with an audit row. A promotion flips the aliases,
    tells the provider and queues a `challenger.promoted` webhook, all in the caller's
    transaction; promote and reject stop the experiment."""
    experiments = ExperimentRepository(session)
    experiment = experiments.get(experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found", field="experiment_id")
    repository = PromotionRepository(session)
    gate = repository.current_gate(experiment.agent_type)
    document = normalise_gate(gate.config if gate is not None else DEFAULT_GATE)
    config = gate_config(document)
    started = experiment.started_at or experiment.created_at
    window_start = since or started
    if window_start >= now:
        raise InvalidInput("since: the window must start before now", field="since")
    seed = int(document["sample_seed"])
    rows = _load_window(session, experiment, window_start, now)
    references = _references(
        session, experiment.agent_type, window_start, {row.request_id for row in rows}
    )
    shadow = experiment.kind == ExperimentKind.SHADOW
    traffic: TrafficComparison = (compare_shadow if shadow else compare_ab)(
        rows, references, rates=cost_rates(session)
    )
    last = repository.latest_decision(experiment.agent_type)
    carried = (
        last.evidence.get("live", {}).get("sequential")
        if last is not None and last.experiment_id == experiment.id and since is None
        else None
    )
    live = live_evidence(
        traffic,
        alpha=config.alpha,
        seed=seed,
        resamples=max(resamples, 100),
        previous=carried,
        challenger_share=None if shadow else experiment.traffic_split,
        tau=experiment.mde if experiment.mde > 0 else None,
    )
    champion = _reference_of(experiment.champion_version)
    challenger = _reference_of(experiment.challenger_version)
    metrics = list(live.metrics)
    golden: dict[str, Any] | None = None
    if document["golden_dataset"]:
        if golden_runs is None:
            raise Conflict(
                f"the gate of {experiment.agent_type} pins golden dataset "
                f"{document['golden_dataset']}: evaluate both versions on it first",
                field="golden_runs",
            )
        golden_rows, golden = golden_evidence(
            session,
            reference=document["golden_dataset"],
            runs=golden_runs,
            champion=champion,
            challenger=challenger,
            metric=config.primary_metric,
            seed=seed,
            resamples=resamples,
            alpha=config.alpha,
            critical_slices=tuple(document["critical_slices"]),
            slice_margin=float(document["slice_margin"] or 0.0),
            higher_is_better=config.higher_is_better,
        )
        metrics += golden_rows
    evidence = GateEvidence(
        metrics=tuple(metrics),
        n=traffic.n,
        duration=now - started,
        srm=live.srm,
        unavailable=live.unavailable,
    )
    decision = decide(config, evidence)
    stored = repository.add_decision(
        PromotionDecision(
            agent_type=experiment.agent_type,
            experiment_id=experiment.id,
            outcome=decision.outcome,
            reason=decision.reason,
            model_name=challenger.name,
            champion_version=str(champion),
            challenger_version=str(challenger),
            dataset_version_id=uuid.UUID(golden["dataset_version_id"]) if golden else None,
            dataset_digest=golden["dataset_digest"] if golden else None,
            window_start=window_start,
            window_end=now,
            n=traffic.n,
            gate_version=gate.version if gate is not None else None,
            gate_config=document,
            evidence=jsonable(
                {
                    "gate": decision_document(decision),
                    "metrics": [asdict(m) for m in metrics],
                    "live": {
                        "kind": experiment.kind,
                        "n_champion": traffic.n_champion,
                        "n_challenger": traffic.n_challenger,
                        "unpaired": traffic.unpaired,
                        "with_reference": traffic.with_reference,
                        "agreement_rate": traffic.agreement_rate,
                        "output_rouge_l": traffic.output_rouge_l,
                        "error_rate_champion": _mean(traffic.champion.errors),
                        "error_rate_challenger": _mean(traffic.challenger.errors),
                        "cost_micros_per_request_champion": _mean(traffic.champion.cost_micros),
                        "cost_micros_per_request_challenger": _mean(traffic.challenger.cost_micros),
                        "unpriced_versions": list(traffic.unpriced),
                        "unavailable": live.unavailable,
                        "sequential": live.sequential,
                        "tests": live.tests,
                        "srm": asdict(live.srm) if live.srm is not None else None,
                        "duration_seconds": evidence.duration.total_seconds(),
                    },
                    "golden": golden,
                    "seeds": {"bootstrap": seed},
                }
            ),
            actor=actor,
            created_at=now,
        )
    )
    record_audit(
        session,
        "promotion_decision.recorded",
        stored.id,
        actor=actor,
        details={
            "agent_type": experiment.agent_type,
            "outcome": decision.outcome,
            "experiment_id": str(experiment.id),
            "challenger": str(challenger),
        },
    )
    if decision.outcome != str(PromotionOutcome.WAIT):
        _finish(session, experiment, stored, champion, challenger, actor=actor, now=now)
    log.info(
        "promotion.decided",
        agent_type=experiment.agent_type,
        outcome=decision.outcome,
        n=traffic.n,
        decision_id=str(stored.id),
    )
    return DecisionDetail.model_validate(stored)


def _mean(values: Any) -> float | None:
    return float(values.mean()) if len(values) else None


def _finish(
    session: Session,
    experiment: Experiment,
    decision: PromotionDecision,
    champion: registry.ModelVersionRef,
    challenger: registry.ModelVersionRef,
    *,
    actor: str,
    now: datetime,
) -> None:
    """Act on a final decision: stop the experiment; on promote, flip the aliases, queue the
    webhook; tell the provider either way."""
    change_status(session, experiment.id, "stop", actor=actor, now=now)
    promoted = decision.outcome == str(PromotionOutcome.PROMOTE)
    if promoted:
        promote_version(
            session,
            agent_type=experiment.agent_type,
            name=challenger.name,
            version=challenger.version,
            actor=actor,
            reason=f"promotion decision {decision.id}",
        )
        provider = OrganizationRepository(session).provider()
        for organization_id in WebhookRepository(session).subscriber_ids(
            EventType.CHALLENGER_PROMOTED
        ):
            # Tenants learn which version now answers their calls; only the provider gets the
            # evidence, which lives in the provider API.
            is_provider = provider is not None and organization_id == provider.id
            links = (
                {"decision": f"/provider/v1/promotion/decisions/{decision.id}"}
                if is_provider
                else {"agents": "/v1/agents"}
            )
            emit_event(
                session,
                organization_id=organization_id,
                event_type=EventType.CHALLENGER_PROMOTED,
                subject_id=str(decision.id),
                data={
                    "decision_id": str(decision.id),
                    "agent_type": experiment.agent_type,
                    "champion": str(challenger),
                    "previous": str(champion),
                    "links": links,
                },
                now=now,
            )
    verb = "promoted to champion" if promoted else "rejected"
    notify_provider(
        session,
        title=f"{experiment.agent_type}: challenger {challenger} {verb}",
        body=f"{decision.reason} Evidence: promotion decision {decision.id}.",
        severity="info" if promoted else "warning",
        actor=actor,
        now=now,
    )


# Drift inputs


def drift_inputs(
    session: Session,
    *,
    agent_type: str,
    since: datetime,
    until: datetime,
    storage_dir: Path,
    limit: int = 5000,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]] | None:
    """Descriptors of recent served traffic (current) and of the gate's pinned golden dataset
    version (reference), or None when the agent type pins no golden dataset or saw no traffic."""
    document = normalise_gate(gate_view(session, agent_type).config)
    if not document["golden_dataset"]:
        return None
    served = PromotionRepository(session).recent_served(
        agent_type, since=since, until=until, limit=limit
    )
    if not served:
        return None
    provider = OrganizationRepository(session).provider()
    if provider is None:
        return None
    dataset, version = resolve_version(
        session, organization_id=provider.id, reference=document["golden_dataset"]
    )
    frame = load_version_frame(storage_dir, version)
    golden_inputs = frame["input"].astype(str).tolist()
    known = vocabulary(golden_inputs)
    classifier = dataset.task == "classification"
    reference = descriptors(
        golden_inputs, known, frame["expected"].astype(str).tolist() if classifier else None
    )
    current = descriptors(
        [text for text, _ in served],
        known,
        [str(output or "") for _, output in served] if classifier else None,
    )
    return (
        reference,
        current,
        {
            "dataset_version_id": version.id,
            "dataset_digest": version.content_hash,
            "dataset": f"{dataset.name}@{version.version}",
        },
    )
