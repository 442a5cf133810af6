"""Promotion use cases: the gate per agent type, comparisons that decide, alias moves and
rollbacks, drift reports. Services take a session and never commit; every change is audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.orm import Session

from models.db.repositories.audit import record_audit
from models.db.repositories.promotion import PromotionRepository
from models.db.tables import PromotionGate
from models.registry import client as registry
from models.registry import promotion as aliases
from pipelines.errors import InvalidInput, NotFound
from pipelines.pagination import Paged, after_key, as_paged
from pipelines.promotion.gates import DEFAULT_GATE, normalise_gate
from pipelines.promotion.read_models import (
    AliasMoveView,
    DecisionDetail,
    DecisionSummary,
    DriftReportView,
    GateView,
)

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
