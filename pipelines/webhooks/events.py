"""The webhook event catalogue: what tenants can subscribe to.

Adding an event type is one line here; registration (`event_types` of an endpoint, checked by
the service and by the API's schema) and `emit_event` take it from this enumeration. A cause
queues it in its own transaction with `pipelines.webhooks.service.emit_event(session,
organization_id=…, event_type=EventType.X, subject_id=…, data={ids…, "links": {name: API
path}}, now=…)`; the links become absolute under `STREAMFLOW_PUBLIC_URL` when sent.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """A webhook event type (`<noun>.<past participle>`)."""

    EVALUATION_COMPLETED = "evaluation.completed"
    EVALUATION_FAILED = "evaluation.failed"
    NOTICE_PUBLISHED = "notice.published"
    REPORT_READY = "report.ready"
    AI_TASK_COMPLETED = "ai_task.completed"
    CERTIFICATE_EXPIRING = "certificate.expiring"
    CHALLENGER_PROMOTED = "challenger.promoted"
