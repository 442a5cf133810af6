"""Response bodies of the tenant API (`/v1`).

Evaluation results are the services' read models themselves (`pipelines.evaluation.
read_models`): the API serves exactly what the CLI prints with `--json`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import InputModel
from models.db.enums import ApiKeyScope, NoticeSeverity
from pipelines.evaluation.read_models import (
    DatasetRef,
    EvaluationDetail,
    EvaluationSummary,
    ExampleScore,
    McNemarTest,
    Metric,
    MetricDifference,
    ModelRef,
    Progress,
    QualityScorePoint,
    RunComparison,
    RunRef,
    SliceMetrics,
)

__all__ = [
    "ApiKey",
    "DatasetRef",
    "EvaluationDetail",
    "EvaluationSummary",
    "ExampleScore",
    "McNemarTest",
    "Metric",
    "MetricDifference",
    "ModelRef",
    "ModelVersion",
    "Notice",
    "NoticeAcknowledgement",
    "Progress",
    "QualityScorePoint",
    "RunComparison",
    "RunRef",
    "SliceMetrics",
]


class ModelVersion(BaseModel):
    """A registered model version of an agent."""

    name: str = Field(examples=["intent-classifier"])
    version: str = Field(examples=["3"])
    agent_type: str = Field(examples=["intent_classifier"])
    task: str = Field(examples=["classification"])
    aliases: list[str] = Field(examples=[["champion"]])
    description: str
    created_at: datetime


class Notice(BaseModel):
    """An active system notice addressed to this tenant."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    body: str
    severity: NoticeSeverity
    starts_at: datetime
    ends_at: datetime | None
    acknowledged_at: datetime | None = Field(description="Null until this tenant acknowledges.")


class NoticeAcknowledgement(BaseModel):
    """This tenant's acknowledgement of a notice."""

    model_config = ConfigDict(from_attributes=True)

    notice_id: uuid.UUID
    acknowledged_at: datetime


class ApiKey(BaseModel):
    """One of this tenant's API keys; the secret is never shown again after issue."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str = Field(examples=["ci pipeline"])
    prefix: str = Field(description="Public part of the key: `sf_<prefix>_…`.")
    scopes: list[ApiKeyScope] = Field(examples=[["results:read"]])
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class DomainCreate(InputModel):
    """A hostname to claim."""

    model_config = ConfigDict(extra="forbid")

    hostname: str = Field(
        min_length=1,
        max_length=300,
        examples=["shop.example.com"],
        description="Unicode or ASCII; `*.` first for a wildcard.",
    )
