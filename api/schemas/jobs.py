"""Request and response bodies of background jobs: webhooks, reports, AI tasks (tenants) and
the job queue (provider)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import InputModel
from models.db.enums import JobAttemptOutcome, JobKind, JobStatus, WebhookEndpointStatus
from pipelines.webhooks.events import EventType


class WebhookEndpointCreate(InputModel):
    """A URL to receive webhooks."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1, max_length=2000, examples=["https://hooks.example.com/streamflow"]
    )
    event_types: list[EventType] = Field(
        default_factory=list,
        max_length=20,
        description="Events to receive; empty for every event.",
        examples=[["evaluation.completed"]],
    )
    description: str = Field(default="", max_length=200)


class WebhookEndpoint(BaseModel):
    """A webhook endpoint; `secret` (`whsec_…`) only in the response that created or rotated
    it: verify every delivery's `webhook-signature` with it (Standard Webhooks)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    status: WebhookEndpointStatus
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = Field(default=None, description="Shown once; null in listings.")


class WebhookDelivery(BaseModel):
    """One message to one endpoint; `message_id` is its `webhook-id` header."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID | None
    event_type: str
    message_id: str
    status: JobStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class JobAttempt(BaseModel):
    """One attempt at a job or delivery."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    started_at: datetime
    finished_at: datetime
    outcome: JobAttemptOutcome
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None


class Report(BaseModel):
    """An evaluation report; `links` has its HTML and CSV once it succeeded."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    run_id: uuid.UUID
    status: JobStatus
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    links: dict[str, str]


class AiTaskCreate(InputModel):
    """Inputs for an agent type's champion model, run in the background."""

    model_config = ConfigDict(extra="forbid")

    agent_type: str = Field(min_length=1, max_length=64, examples=["summarizer"])
    inputs: list[str] = Field(min_length=1, max_length=1000, examples=[["a ticket to summarise"]])


class AiTask(BaseModel):
    """A batch AI task; `links.outputs` lists its outputs once it succeeded."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agent_type: str
    status: JobStatus
    input_count: int
    model: str | None = Field(description="The champion that answered, `name@version`.")
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    links: dict[str, str]


class AiTaskOutput(BaseModel):
    """The output for the input at `index`."""

    model_config = ConfigDict(from_attributes=True)

    index: int
    output: str


class Job(BaseModel):
    """A background job as operators see it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organization: str
    kind: JobKind
    status: JobStatus
    idempotency_key: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    lease_expires_at: datetime | None
    last_error: str | None
    flow_run_id: str | None
    webhook_endpoint_id: uuid.UUID | None
    payload: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


class JobDetail(BaseModel):
    """A job with every attempt."""

    job: Job
    attempts: list[JobAttempt]


class JobsRetry(InputModel):
    """Which dead jobs to queue again."""

    model_config = ConfigDict(extra="forbid")

    kind: JobKind


class JobsRetried(BaseModel):
    """The jobs queued again."""

    retried: list[uuid.UUID]
