"""Evaluation reports: a tenant asks for one (a job in the same transaction), the dispatcher
renders it into HTML and CSV artifacts, tells the tenant (webhook, e-mail with the link)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models.db.enums import JobAttemptOutcome, JobKind, JobStatus, RunStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.evaluations import EvaluationRepository
from models.db.repositories.jobs import JobRepository
from models.db.tables import Job
from pipelines.email.service import queue_email
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.evaluation.runs import get_run, run_dataset
from pipelines.jobs import service as jobs
from pipelines.reports.render import MetricLine, ReportFacts, render_csv, render_html
from pipelines.webhooks.service import emit_event

FORMATS = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class ReportView:
    """A report as its tenant sees it: where it stands and where to fetch it."""

    id: uuid.UUID
    run_id: uuid.UUID
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    links: dict[str, str]


def _view(job: Job) -> ReportView:
    links = {"self": f"/v1/reports/{job.id}"}
    if job.status == JobStatus.SUCCEEDED:
        links |= {f: f"/v1/reports/{job.id}/content?format={f}" for f in FORMATS}
    return ReportView(
        id=job.id,
        run_id=uuid.UUID(str(job.payload["run_id"])),
        status=job.status,
        error=job.last_error if job.status in ("failed", "dead") else None,
        created_at=job.created_at,
        finished_at=job.finished_at,
        links=links,
    )


def request_report(
    session: Session,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID | str,
    actor: str,
    now: datetime,
) -> ReportView:
    """Queue the report of a completed run (once per run; asking again returns it)."""
    run = get_run(session, organization_id=organization_id, run_id=run_id)
    if run.status != RunStatus.COMPLETED:
        raise Conflict(
            f"run {run.id} is {run.status}; reports are made of completed runs", field="run_id"
        )
    job, added = jobs.enqueue(
        session,
        organization_id=organization_id,
        kind=JobKind.REPORT,
        payload={"run_id": str(run.id)},
        idempotency_key=f"evaluation:{run.id}",
        now=now,
    )
    if added:
        record_audit(
            session,
            "report.requested",
            job.id,
            actor=actor,
            organization_id=organization_id,
            details={"run_id": str(run.id)},
        )
    return _view(job)


def _report_job(session: Session, organization_id: uuid.UUID, report_id: uuid.UUID) -> Job:
    job = JobRepository(session).get(report_id, organization_id=organization_id)
    if job is None or job.kind != JobKind.REPORT:
        raise NotFound(f"report {report_id} not found", field="report_id")
    return job


def report_view(
    session: Session, *, organization_id: uuid.UUID, report_id: uuid.UUID
) -> ReportView:
    """A report's status and links."""
    return _view(_report_job(session, organization_id, report_id))


def report_content(
    session: Session, *, organization_id: uuid.UUID, report_id: uuid.UUID, format: str
) -> tuple[str, str]:
    """(media type, text) of a finished report in `format` (html or csv)."""
    if format not in FORMATS:
        raise InvalidInput(f"format: choose one of {', '.join(FORMATS)}", field="format")
    job = _report_job(session, organization_id, report_id)
    artifact = JobRepository(session).artifact(job.id, f"report.{format}")
    if job.status != JobStatus.SUCCEEDED or artifact is None:
        raise Conflict(f"report {job.id} is {job.status}; fetch it once it succeeded")
    return FORMATS[format], artifact.content


def generate_report(
    session: Session,
    *,
    organization_id: uuid.UUID,
    job_id: uuid.UUID,
    payload: dict[str, str],
    now: datetime,
) -> jobs.Outcome:
    """Render a run's report into the job's artifacts and announce it, in the caller's
    transaction (with the job's completion), so a rerun replaces rather than duplicates."""
    try:
        run = get_run(session, organization_id=organization_id, run_id=payload["run_id"])
    except NotFound as error:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error=str(error), permanent=True)
    dataset, version = run_dataset(session, organization_id=organization_id, run=run)
    metrics = [
        MetricLine(m.slice, m.name, m.value, m.ci_low, m.ci_high, m.n)
        for m in EvaluationRepository(session).metrics(run.id)
    ]
    subject = (
        f"{run.registered_model_name}@{run.model_version}"
        if run.registered_model_name
        else f"predictions:{run.predictions_filename}"
    )
    facts = ReportFacts(
        run_id=str(run.id),
        subject=subject,
        dataset=f"{dataset.name}@{version.version}",
        agent_type=run.agent_type,
        task=run.task,
        status=run.status,
        finished_at=run.finished_at.isoformat() if run.finished_at else "",
        generated_at=now.isoformat(),
    )
    repository = JobRepository(session)
    job = repository.get(job_id, organization_id=organization_id)
    if job is None:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error="job vanished", permanent=True)
    repository.put_artifact(job, "report.html", FORMATS["html"], render_html(facts, metrics))
    repository.put_artifact(job, "report.csv", FORMATS["csv"], render_csv(metrics))
    links = {
        "self": f"/v1/reports/{job.id}",
        "html": f"/v1/reports/{job.id}/content?format=html",
        "csv": f"/v1/reports/{job.id}/content?format=csv",
        "evaluation": f"/v1/evaluations/{run.id}",
    }
    emit_event(
        session,
        organization_id=organization_id,
        event_type="report.ready",
        subject_id=str(job.id),
        data={"report_id": str(job.id), "run_id": str(run.id), "links": links},
        now=now,
    )
    queue_email(
        session,
        organization_id=organization_id,
        subject=f"Evaluation report ready: {subject} on {facts.dataset}",
        text=f"The report of evaluation run {run.id} is ready.\n",
        links={"HTML": links["html"], "CSV": links["csv"]},
        idempotency_key=f"report:{job.id}",
        now=now,
    )
    return jobs.Outcome(
        JobAttemptOutcome.SUCCEEDED, result={"run_id": str(run.id), "metrics": len(metrics)}
    )
