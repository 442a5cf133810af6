"""Promotion gates version, decisions are immutable evidence on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import Session

from models.db.repositories.promotion import PromotionRepository
from models.db.tables import PromotionDecision, PromotionGate

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _decision(offset: int) -> PromotionDecision:
    return PromotionDecision(
        agent_type="summarizer",
        outcome="wait",
        reason="too little data",
        model_name="m",
        champion_version="1",
        challenger_version="2",
        window_start=NOW - timedelta(hours=1),
        window_end=NOW,
        n=offset,
        gate_config={"alpha": 0.05},
        evidence={"checks": []},
        actor="test",
        created_at=NOW + timedelta(minutes=offset),
    )


def test_gates_version_per_agent_type(session: Session) -> None:
    repository = PromotionRepository(session)
    for minimum in (10, 20):
        repository.add_gate(
            PromotionGate(agent_type="summarizer", config={"min_n": minimum}, created_by="t")
        )
    repository.add_gate(PromotionGate(agent_type="other", config={}, created_by="t"))
    gate = repository.current_gate("summarizer")
    assert gate is not None
    assert (gate.version, gate.config) == (2, {"min_n": 20})


def test_decisions_page_newest_first_and_refuse_change(session: Session) -> None:
    repository = PromotionRepository(session)
    for offset in range(3):
        repository.add_decision(_decision(offset))
    first = repository.page_decisions(agent_type="summarizer", after=None, limit=2)
    assert [d.n for d in first.items] == [2, 1]
    rest = repository.page_decisions(agent_type="summarizer", after=first.next_key, limit=2)
    assert [d.n for d in rest.items] == [0]
    decision_id = first.items[0].id
    for statement in (
        update(PromotionDecision)
        .where(PromotionDecision.id == decision_id)
        .values(outcome="promote"),
        delete(PromotionDecision).where(PromotionDecision.id == decision_id),
    ):
        with pytest.raises(DatabaseError, match="immutable"), session.begin_nested():
            session.execute(statement)
    assert session.scalar(text("SELECT count(*) FROM promotion_decisions")) == 3
