"""What readers get of gates, decisions, drift reports and alias moves (API, CLI alike)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ReadModel(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class GateView(ReadModel):
    """The promotion gate in force for an agent type (version 0: the default, never set)."""

    agent_type: str
    version: int
    config: dict[str, Any]
    created_by: str | None
    created_at: datetime | None


class DecisionSummary(ReadModel):
    """One promotion decision as listed."""

    id: uuid.UUID
    agent_type: str
    outcome: str = Field(description="promote, reject or wait")
    reason: str
    model_name: str
    champion_version: str
    challenger_version: str
    experiment_id: uuid.UUID | None
    n: int
    window_start: datetime
    window_end: datetime
    actor: str
    created_at: datetime


class DecisionDetail(DecisionSummary):
    """A promotion decision with all of its evidence (immutable)."""

    dataset_version_id: uuid.UUID | None
    dataset_digest: str | None
    gate_version: int | None
    gate_config: dict[str, Any]
    evidence: dict[str, Any] = Field(
        description="Metrics with intervals, tests with p-values or e-values, seeds, checks."
    )


class DriftReportView(ReadModel):
    """A data-drift report of recent traffic against the pinned golden dataset version."""

    id: uuid.UUID
    agent_type: str
    window_start: datetime
    window_end: datetime
    dataset_version_id: uuid.UUID | None
    dataset_digest: str | None
    n_current: int
    n_reference: int
    drift_share: float
    threshold: float
    drifted: bool
    drifted_columns: list[str]
    html_sha256: str | None
    created_at: datetime


class AliasMoveView(ReadModel):
    """Where `champion` and `previous` of an agent type's registered model point now."""

    agent_type: str
    model_name: str
    champion_before: str | None
    champion: str
    previous: str | None
