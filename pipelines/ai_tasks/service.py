"""Batch AI tasks: a tenant submits inputs for an agent type; the dispatcher runs the agent
type's champion over them in batches, stores the outputs and sends `ai_task.completed`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models.db.enums import JobAttemptOutcome, JobKind, JobStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.jobs import JobRepository
from models.db.tables import Job
from models.registry import client as registry
from pipelines.errors import InvalidInput, NotFound
from pipelines.jobs import service as jobs
from pipelines.organizations import organization_slug
from pipelines.pagination import Paged, decode_cursor, paged
from pipelines.usage.service import ingest_events
from pipelines.webhooks.service import emit_event

MAX_INPUTS = 1000
MAX_INPUT_CHARS = 20_000
OUTPUTS = "outputs.json"

Predict = Callable[[registry.ModelVersionRef, list[str]], list[str]]


@dataclass(frozen=True)
class AiTaskView:
    """A task as its tenant sees it."""

    id: uuid.UUID
    agent_type: str
    status: str
    input_count: int
    model: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    links: dict[str, str]


@dataclass(frozen=True)
class AiTaskOutput:
    """One input's output, by its position in the submitted batch."""

    index: int
    output: str


def _view(job: Job) -> AiTaskView:
    links = {"self": f"/v1/ai-tasks/{job.id}"}
    if job.status == JobStatus.SUCCEEDED:
        links["outputs"] = f"/v1/ai-tasks/{job.id}/outputs"
    return AiTaskView(
        id=job.id,
        agent_type=str(job.payload["agent_type"]),
        status=job.status,
        input_count=len(job.payload["inputs"]),
        model=job.result.get("model"),
        error=job.last_error if job.status in ("failed", "dead") else None,
        created_at=job.created_at,
        finished_at=job.finished_at,
        links=links,
    )


def submit_ai_task(
    session: Session,
    *,
    organization_id: uuid.UUID,
    agent_type: str,
    inputs: Sequence[str],
    idempotency_key: str | None,
    actor: str,
    now: datetime,
) -> AiTaskView:
    """Queue a batch of inputs for an agent type's champion (the same key returns the task)."""
    if not agent_type.strip() or len(agent_type) > 64:
        raise InvalidInput("agent_type: give an agent type, e.g. summarizer", field="agent_type")
    if not 1 <= len(inputs) <= MAX_INPUTS:
        raise InvalidInput(f"inputs: give 1 to {MAX_INPUTS} texts", field="inputs")
    if any(len(text) > MAX_INPUT_CHARS for text in inputs):
        raise InvalidInput(
            f"inputs: each text has at most {MAX_INPUT_CHARS} characters", field="inputs"
        )
    task_id = uuid.uuid4()
    job, added = jobs.enqueue(
        session,
        organization_id=organization_id,
        kind=JobKind.AI_TASK,
        payload={"agent_type": agent_type, "inputs": list(inputs)},
        idempotency_key=idempotency_key or f"task:{task_id}",
        now=now,
        job_id=task_id,
    )
    if added:
        record_audit(
            session,
            "ai_task.submitted",
            job.id,
            actor=actor,
            organization_id=organization_id,
            details={"agent_type": agent_type, "inputs": len(inputs)},
        )
    return _view(job)


def _task_job(session: Session, organization_id: uuid.UUID, task_id: uuid.UUID) -> Job:
    job = JobRepository(session).get(task_id, organization_id=organization_id)
    if job is None or job.kind != JobKind.AI_TASK:
        raise NotFound(f"AI task {task_id} not found", field="task_id")
    return job


def ai_task_view(session: Session, *, organization_id: uuid.UUID, task_id: uuid.UUID) -> AiTaskView:
    return _view(_task_job(session, organization_id, task_id))


def outputs_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    task_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> Paged[AiTaskOutput]:
    """A finished task's outputs in input order (empty until it succeeded)."""
    job = _task_job(session, organization_id, task_id)
    artifact = JobRepository(session).artifact(job.id, OUTPUTS)
    outputs: list[str] = json.loads(artifact.content) if artifact else []
    start = decode_cursor(cursor, int)[0] + 1 if cursor else 0
    rows = [AiTaskOutput(i, outputs[i]) for i in range(max(start, 0), len(outputs))][: limit + 1]
    return paged(rows, limit, lambda row: (row.index,))


def champion(agent_type: str) -> registry.ModelVersionRef:
    """The model version aliased `champion` among the agent type's registered versions."""
    found = [
        v
        for v in registry.list_model_versions()
        if v.agent_type == agent_type and "champion" in v.aliases
    ]
    if not found:
        raise NotFound(f"agent type {agent_type!r} has no champion model version")
    newest = max(found, key=lambda v: v.created_at_ms)
    return registry.ModelVersionRef(newest.name, newest.version, alias="champion")


def run_ai_task(
    payload: dict[str, object], *, batch_size: int, predict: Predict = registry.predict
) -> tuple[registry.ModelVersionRef, list[str]]:
    """The champion's outputs for every input, batch by batch (outside any transaction)."""
    ref = champion(str(payload["agent_type"]))
    inputs = [str(text) for text in payload["inputs"]]  # type: ignore[attr-defined]
    outputs: list[str] = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size]
        predicted = predict(ref, batch)
        if len(predicted) != len(batch):
            raise RuntimeError(f"{ref} returned {len(predicted)} outputs for {len(batch)} inputs")
        outputs.extend(predicted)
    return ref, outputs


def store_outputs(
    session: Session,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    model: registry.ModelVersionRef,
    outputs: list[str],
    now: datetime,
) -> jobs.Outcome:
    """Store a task's outputs and announce them, in the job's completing transaction."""
    repository = JobRepository(session)
    job = repository.get(job_id, organization_id=organization_id)
    if job is None:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error="job vanished", permanent=True)
    repository.put_artifact(job, OUTPUTS, "application/json", json.dumps(outputs))
    inputs = [str(text) for text in job.payload.get("inputs", [])]
    # One usage event per task, named by the job: a retried job records it once. Tokens are
    # counted as whitespace-separated words (the models here have no tokenizer of their own).
    ingest_events(
        session,
        [
            {
                "event_id": f"ai_task:{job.id}",
                "tenant": organization_slug(session, organization_id),
                "occurred_at": now,
                "agent_type": str(job.payload.get("agent_type", "")) or None,
                "model_version": f"{model.name}@{model.version}",
                "tokens_in": sum(len(text.split()) for text in inputs),
                "tokens_out": sum(len(text.split()) for text in outputs),
                "requests": len(inputs),
                "job_id": str(job.id),
            }
        ],
        actor=f"job:{job.id}",
        now=now,
    )
    emit_event(
        session,
        organization_id=organization_id,
        event_type="ai_task.completed",
        subject_id=str(job.id),
        data={
            "task_id": str(job.id),
            "outputs": len(outputs),
            "links": {
                "self": f"/v1/ai-tasks/{job.id}",
                "outputs": f"/v1/ai-tasks/{job.id}/outputs",
            },
        },
        now=now,
    )
    return jobs.Outcome(
        JobAttemptOutcome.SUCCEEDED,
        result={"model": f"{model.name}@{model.version}", "outputs": len(outputs)},
    )
