"""Promotion gates (versioned), promotion decisions (append-only evidence), drift reports."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import DriftReport, PromotionDecision, PromotionGate, TrafficLogEntry


class PromotionRepository(Repository):
    """SQL for gates, decisions and drift reports."""

    DECISION_ORDER = Keyset.of(PromotionDecision.created_at, PromotionDecision.id, descending=True)
    """Newest decision first."""
    DRIFT_ORDER = Keyset.of(DriftReport.created_at, DriftReport.id, descending=True)
    """Newest drift report first."""

    # Gates

    def current_gate(self, agent_type: str) -> PromotionGate | None:
        """The gate in force for an agent type: its newest version."""
        return self.session.scalars(
            select(PromotionGate)
            .where(PromotionGate.agent_type == agent_type)
            .order_by(PromotionGate.version.desc())
            .limit(1)
        ).first()

    def add_gate(self, gate: PromotionGate) -> PromotionGate:
        """Add the next version of an agent type's gate (the caller sets the fields but version)."""
        newest = self.session.scalar(
            select(func.max(PromotionGate.version)).where(
                PromotionGate.agent_type == gate.agent_type
            )
        )
        gate.version = int(newest or 0) + 1
        self.session.add(gate)
        self.session.flush()
        return gate

    # Decisions

    def add_decision(self, decision: PromotionDecision) -> PromotionDecision:
        self.session.add(decision)
        self.session.flush()
        return decision

    def get_decision(self, decision_id: uuid.UUID) -> PromotionDecision | None:
        return self.session.get(PromotionDecision, decision_id)

    def page_decisions(
        self,
        *,
        agent_type: str | None,
        after: Key | None,
        limit: int,
        experiment_id: uuid.UUID | None = None,
    ) -> KeysetPage[PromotionDecision]:
        query = select(PromotionDecision)
        if agent_type is not None:
            query = query.where(PromotionDecision.agent_type == agent_type)
        if experiment_id is not None:
            query = query.where(PromotionDecision.experiment_id == experiment_id)
        return self.page(query, self.DECISION_ORDER, after=after, limit=limit)

    def latest_decision(self, agent_type: str) -> PromotionDecision | None:
        return self.session.scalars(
            select(PromotionDecision)
            .where(PromotionDecision.agent_type == agent_type)
            .order_by(*self.DECISION_ORDER.order_by())
            .limit(1)
        ).first()

    # Drift reports

    def add_drift_report(self, report: DriftReport) -> DriftReport:
        self.session.add(report)
        self.session.flush()
        return report

    def get_drift_report(self, report_id: uuid.UUID) -> DriftReport | None:
        return self.session.get(DriftReport, report_id)

    def page_drift_reports(
        self, *, agent_type: str | None, after: Key | None, limit: int
    ) -> KeysetPage[DriftReport]:
        query = select(DriftReport)
        if agent_type is not None:
            query = query.where(DriftReport.agent_type == agent_type)
        return self.page(query, self.DRIFT_ORDER, after=after, limit=limit)

    # Traffic for drift

    def recent_served(
        self, agent_type: str, *, since: datetime, until: datetime, limit: int
    ) -> list[tuple[str, str | None]]:
        """(input, output) of the newest `limit` served predictions of an agent type in
        [since, until)."""
        rows = self.session.execute(
            select(TrafficLogEntry.input_text, TrafficLogEntry.output_text)
            .where(
                TrafficLogEntry.agent_type == agent_type,
                TrafficLogEntry.role == "served",
                TrafficLogEntry.created_at >= since,
                TrafficLogEntry.created_at < until,
            )
            .order_by(TrafficLogEntry.created_at.desc())
            .limit(limit)
        )
        return [(row[0], row[1]) for row in rows]

    def gated_agent_types(self) -> list[str]:
        """Agent types with a gate set."""
        return list(self.session.scalars(select(PromotionGate.agent_type).distinct()))
