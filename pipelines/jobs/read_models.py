"""The documents jobs and their attempts are read as (API, CLI)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class JobView:
    """A job as operators see it."""

    id: uuid.UUID
    organization: str
    kind: str
    status: str
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


@dataclass(frozen=True)
class AttemptView:
    """One attempt at a job."""

    number: int
    started_at: datetime
    finished_at: datetime
    outcome: str
    status_code: int | None
    error: str | None


@dataclass(frozen=True)
class QueueGauges:
    """The queue's state for Prometheus: depth by kind, oldest due job, dead-letter size,
    webhook attempts by outcome."""

    queued_by_kind: dict[str, int]
    oldest_queued_age_seconds: float
    dead: int
    delivery_attempts_by_outcome: dict[str, int]
