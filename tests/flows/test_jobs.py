"""The `dispatch-jobs` flow against the local orchestrator, and `streamflow jobs` as users run
it, on PostgreSQL and SQLite."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from flows.cli import app
from flows.deployments import deployments
from flows.jobs import dispatch_jobs
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.tables import Job
from pipelines.organizations import ensure_organization
from pipelines.webhooks.service import emit_event, register_endpoint

runner = CliRunner()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _queued_delivery(rt: Runtime) -> str:
    """A webhook delivery of tenant acme to a port nothing listens on."""
    now = datetime.now(UTC)
    with transaction(rt.sessions) as session:
        tenant, _ = ensure_organization(
            session, slug="acme", name="Acme", kind="tenant", actor="test"
        )
        register_endpoint(
            session,
            organization_id=tenant.id,
            url=f"http://127.0.0.1:{_closed_port()}/hook",
            event_types=None,
            description="",
            actor="test",
            now=now,
        )
        (job,) = emit_event(
            session,
            organization_id=tenant.id,
            event_type="evaluation.completed",
            subject_id="run-1",
            data={},
            now=now,
        )
        return str(job.id)


def _json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_the_worker_serves_the_dispatcher_on_a_schedule() -> None:
    served = {d.name: d for d in deployments()}
    assert served["every-15-seconds"].entrypoint == "flows.jobs.dispatch_jobs"


def test_the_flow_runs_due_jobs_and_records_its_flow_run(
    streamflow: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = _queued_delivery(streamflow)
    monkeypatch.setenv("STREAMFLOW_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "true")
    outcome = dispatch_jobs()
    assert outcome == {"reclaimed": 0, "claimed": 1, "queued": 1}
    with transaction(streamflow.sessions) as session:
        job = session.scalars(select(Job)).one()
        assert str(job.id) == job_id
        assert job.flow_run_id is not None
        assert "ConnectError" in (job.last_error or "")


def test_the_jobs_command_lists_shows_cancels_and_retries(streamflow: Runtime) -> None:
    job_id = _queued_delivery(streamflow)
    listed = _json("jobs", "list", "--status", "queued", "--kind", "webhook", "--tenant", "acme")
    assert [item["id"] for item in listed["items"]] == [job_id]  # type: ignore[index,union-attr]
    assert _json("jobs", "cancel", job_id) == {"id": job_id, "status": "cancelled"}
    shown = _json("jobs", "show", job_id)
    assert shown["job"]["status"] == "cancelled"  # type: ignore[index,call-overload]
    assert _json("jobs", "retry", job_id) == {"retried": [job_id]}
    assert _json("jobs", "retry", "--dead", "webhook") == {"retried": []}
    refused = runner.invoke(app, ["jobs", "retry", job_id])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: JOB_ID: job ")
    assert "only dead, failed or cancelled" in refused.stderr
    unknown = runner.invoke(app, ["jobs", "list", "--tenant", "nobody"])
    assert unknown.exit_code == 1
    assert "nobody" in unknown.stderr
