"""Use cases of serving: record what was served (a traffic row and a usage event), record the
shadow challenger's predictions in batches, prune old traffic.

The platform records these (they are its metering and evidence, not the tenant's writes): the
caller hands in a platform session and owns the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from models.db.enums import TrafficRole, Variant
from models.db.repositories.audit import record_audit
from models.db.repositories.experiments import TrafficRepository, record_usage_event
from pipelines.serving.routing import clip, count_tokens, input_hash


@dataclass(frozen=True)
class Prediction:
    """One model version's answer to one request (or its error), with its latency."""

    request_id: str
    organization_id: uuid.UUID
    agent_type: str
    model_version: str
    input_text: str
    output_text: str | None
    latency_ms: float
    error: str | None = None
    experiment_id: str | None = None
    variant: Variant | None = None
    role: TrafficRole = TrafficRole.SERVED
    end_user_key: str | None = None


def traffic_row(prediction: Prediction, *, now: datetime, text_limit: int) -> dict[str, Any]:
    """The traffic-log row of a prediction, its texts cut to `text_limit` characters."""
    output = prediction.output_text
    return {
        "request_id": prediction.request_id,
        "organization_id": prediction.organization_id,
        "agent_type": prediction.agent_type,
        "experiment_id": uuid.UUID(prediction.experiment_id) if prediction.experiment_id else None,
        "variant": str(prediction.variant) if prediction.variant else None,
        "role": str(prediction.role),
        "model_version": prediction.model_version,
        "end_user_key": prediction.end_user_key,
        "input_hash": input_hash(prediction.input_text),
        "input_text": clip(prediction.input_text, text_limit),
        "output_text": None if output is None else clip(output, text_limit),
        "input_chars": len(prediction.input_text),
        "output_chars": 0 if output is None else len(output),
        "latency_ms": round(prediction.latency_ms, 3),
        "error": None if prediction.error is None else clip(prediction.error, 2000),
        "created_at": now,
    }


def record_served(
    session: Session, prediction: Prediction, *, now: datetime, text_limit: int
) -> None:
    """The served prediction's traffic row and its usage event (event id `predict:<request>`;
    a failed prediction is logged but not metered)."""
    TrafficRepository(session).add_entries(
        [traffic_row(prediction, now=now, text_limit=text_limit)]
    )
    if prediction.error is not None or prediction.output_text is None:
        return
    record_usage_event(
        session,
        {
            "event_id": f"predict:{prediction.request_id}",
            "organization_id": prediction.organization_id,
            "occurred_at": now,
            "agent_type": prediction.agent_type,
            "model_version": prediction.model_version,
            "tokens_in": count_tokens(prediction.input_text),
            "tokens_out": count_tokens(prediction.output_text),
            "requests": 1,
            "end_user_key": prediction.end_user_key,
        },
    )


def record_shadow_batch(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Shadow rows (built by `traffic_row`) in one insert; a retried batch adds nothing."""
    TrafficRepository(session).add_entries(rows)


def prune_traffic(
    session: Session, *, now: datetime, retention_days: int, actor: str, batch: int = 10_000
) -> int:
    """Delete traffic rows older than the retention (a batch at a time; the caller commits
    between calls), audited when any went. The number deleted."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    before = now - timedelta(days=retention_days)
    deleted = TrafficRepository(session).prune(before=before, batch=batch)
    if deleted:
        record_audit(
            session,
            "traffic_log.pruned",
            before.isoformat(),
            actor=actor,
            details={"deleted": deleted, "retention_days": retention_days},
        )
    return deleted
