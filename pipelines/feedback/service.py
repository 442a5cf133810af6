"""Use cases of feedback: a tenant rates a served prediction, gives the correct label or the
corrected text (idempotent per request and kind); corrections become a golden dataset version.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from models.db.enums import FeedbackKind, Task
from models.db.repositories.audit import record_audit
from models.db.repositories.experiments import TrafficRepository
from models.db.tables import Feedback
from pipelines.errors import InvalidInput, NotFound
from pipelines.golden_datasets.service import ImportResult, import_golden_dataset

MAX_VALUE_CHARS = 20_000
RATING_RANGE = (-1_000.0, 1_000.0)


@dataclass(frozen=True)
class FeedbackDetail:
    """Feedback as the tenant reads it back; `created` is False for a repeat."""

    id: str
    request_id: str
    kind: str
    value: str
    rating: float | None
    agent_type: str
    created_at: datetime
    updated_at: datetime
    created: bool


def _detail(row: Feedback, *, created: bool) -> FeedbackDetail:
    return FeedbackDetail(
        id=str(row.id),
        request_id=row.request_id,
        kind=row.kind,
        value=row.value,
        rating=row.rating,
        agent_type=row.agent_type,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created=created,
    )


def _checked(kind: FeedbackKind, value: str) -> tuple[str, float | None]:
    text = value.strip() if kind != FeedbackKind.CORRECTION else value
    if not text.strip():
        raise InvalidInput(
            "give a value: a rating, the correct label or the corrected text", field="value"
        )
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidInput(f"a value holds at most {MAX_VALUE_CHARS} characters", field="value")
    if kind != FeedbackKind.RATING:
        return text, None
    try:
        rating = float(text)
    except ValueError:
        raise InvalidInput(f"a rating is a number, not {text[:40]!r}", field="value") from None
    if not math.isfinite(rating) or not RATING_RANGE[0] <= rating <= RATING_RANGE[1]:
        raise InvalidInput(
            f"a rating is a number between {RATING_RANGE[0]:g} and {RATING_RANGE[1]:g}",
            field="value",
        )
    return text, rating


def record_feedback(
    session: Session,
    *,
    organization_id: uuid.UUID,
    request_id: str,
    kind: FeedbackKind,
    value: str,
    actor: str,
    now: datetime,
) -> FeedbackDetail:
    """Feedback on one of the tenant's served requests (another tenant's is not found).

    The first feedback of a kind is recorded (`feedback.recorded`); sending the same again
    changes nothing; a different value replaces it (`feedback.updated`).
    """
    text, rating = _checked(kind, value)
    traffic = TrafficRepository(session)
    served = traffic.served(organization_id, request_id)
    if served is None:
        raise NotFound(f"request {request_id} not found", field="request_id")
    row = {
        "id": uuid.uuid4(),
        "request_id": request_id,
        "organization_id": organization_id,
        "agent_type": served.agent_type,
        "kind": str(kind),
        "value": text,
        "rating": rating,
        "created_by": actor,
        "created_at": now,
        "updated_at": now,
    }
    traffic.add_feedback(row)
    stored = traffic.feedback(request_id, str(kind))
    if stored is None or stored.organization_id != organization_id:
        raise NotFound(f"request {request_id} not found", field="request_id")
    created = stored.id == row["id"]
    if created:
        record_audit(
            session,
            "feedback.recorded",
            stored.id,
            actor=actor,
            organization_id=organization_id,
            details={"request_id": request_id, "kind": str(kind)},
        )
    elif stored.value != text:
        stored.value, stored.rating, stored.updated_at = text, rating, now
        session.flush()
        record_audit(
            session,
            "feedback.updated",
            stored.id,
            actor=actor,
            organization_id=organization_id,
            details={"request_id": request_id, "kind": str(kind)},
        )
    return _detail(stored, created=created)


def export_feedback_dataset(
    session: Session,
    *,
    organization_id: uuid.UUID,
    agent_type: str,
    task: Task,
    name: str,
    storage_dir: Path,
    actor: str,
    tenant: uuid.UUID | None = None,
) -> ImportResult:
    """Corrected outputs (text generation) or correct labels (classification) with the inputs
    they were given for, as the next version of golden dataset `name` of `organization_id`.

    Example ids are the request ids, so re-exporting the same feedback returns the same
    version. `tenant` limits the feedback to one tenant's (default: every tenant's).
    """
    kind = FeedbackKind.LABEL if task == Task.CLASSIFICATION else FeedbackKind.CORRECTION
    pairs = TrafficRepository(session).corrections_with_inputs(
        agent_type=agent_type, kinds=[str(kind)], organization_id=tenant
    )
    if not pairs:
        raise NotFound(
            f"no {kind} feedback on {agent_type} to export; tenants send it with POST /v1/feedback",
            field="agent_type",
        )
    clipped = [t.request_id for _, t in pairs if len(t.input_text) < t.input_chars]
    if clipped:
        raise InvalidInput(
            f"{len(clipped)} request(s) were logged with a clipped input (e.g. {clipped[0]}); "
            "raise the traffic log's text limit to export them",
            field="agent_type",
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "input", "expected", "slice"])
    for feedback, entry in pairs:
        writer.writerow([feedback.request_id, entry.input_text, feedback.value, "feedback"])
    return import_golden_dataset(
        session,
        organization_id=organization_id,
        actor=actor,
        name=name,
        task=str(task),
        data=buffer.getvalue().encode(),
        filename=f"feedback-{agent_type}.csv",
        storage_dir=storage_dir,
    )
