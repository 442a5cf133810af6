"""`streamflow jobs`: the background job queue and its dead-letter queue."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.output import JsonOption, console, emit, short
from models.db.enums import JobKind, JobStatus

app = typer.Typer(
    help="Background jobs: list, show, retry, cancel, dispatch.", no_args_is_help=True
)

JobId = Annotated[str, typer.Argument(help="Job id from `streamflow jobs list`.")]


def _job_id(text: str) -> Any:
    import uuid

    from pipelines.errors import InvalidInput

    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a job id; copy one from `streamflow jobs list`", field="job_id"
        ) from None


@app.command("list")
def list_(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    kind: Annotated[JobKind | None, typer.Option(help="Only jobs of this kind.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only jobs of this tenant (slug).")] = None,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Jobs per page.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List jobs, newest first (`--status dead` is the dead-letter queue)."""
    from dataclasses import asdict

    from flows.cli.context import session
    from pipelines.jobs.views import jobs_page

    with session() as opened:
        found = jobs_page(
            opened,
            organization=tenant,
            kind=kind,
            status=status,
            cursor=cursor,
            limit=limit,
        )
    result = {"items": [asdict(v) for v in found.items], "next_cursor": found.next_cursor}
    emit(result, as_json=as_json, render=_table)


def _table(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("id", "tenant", "kind", "status", "attempts", "next attempt", "last error")
    for job in result["items"]:
        table.add_row(
            str(job["id"]),
            job["organization"],
            job["kind"],
            job["status"],
            f"{job['attempts']}/{job['max_attempts']}",
            short(job["next_attempt_at"]) if job["status"] == "queued" else "",
            (job["last_error"] or "")[:60],
        )
    console.print(table)
    if result["next_cursor"]:
        console.print(f"more: --cursor {result['next_cursor']}", highlight=False)


@app.command("show")
def show(job_id: JobId, as_json: JsonOption = False) -> None:
    """Show a job with every attempt."""
    from dataclasses import asdict

    from flows.cli.context import session
    from pipelines.jobs.views import job_detail

    with session() as opened:
        view, attempts = job_detail(opened, job_id=_job_id(job_id))
    result = {"job": asdict(view), "attempts": [asdict(a) for a in attempts]}
    emit(result, as_json=as_json, render=_detail)


def _detail(console: Console, result: dict[str, Any]) -> None:
    job = result["job"]
    console.print(
        f"{job['id']}  {job['kind']}  {job['status']}  tenant {job['organization']}  "
        f"attempts {job['attempts']}/{job['max_attempts']}",
        highlight=False,
    )
    if job["last_error"]:
        console.print(f"last error: {job['last_error']}", highlight=False, markup=False)
    for attempt in result["attempts"]:
        code = attempt["status_code"] or ""
        console.print(
            f"  #{attempt['number']} {short(attempt['started_at'])} {attempt['outcome']} {code} "
            f"{attempt['error'] or ''}",
            highlight=False,
            markup=False,
        )


@app.command("retry")
def retry(
    job_id: Annotated[str | None, typer.Argument(help="The job to retry.")] = None,
    dead: Annotated[
        JobKind | None, typer.Option(help="Instead: retry every dead job of this kind.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Queue a dead, failed or cancelled job again, or every dead job of a kind."""
    from datetime import UTC, datetime

    from flows.cli.context import session
    from flows.runtime import cli_actor
    from pipelines.errors import InvalidInput
    from pipelines.jobs import service

    if (job_id is None) == (dead is None):
        raise InvalidInput("give a job id, or a kind of dead jobs to retry", field="job_id")
    with session() as opened:
        now = datetime.now(UTC)
        if dead is not None:
            jobs = service.retry_dead(opened, kind=dead, actor=cli_actor(), now=now)
        else:
            jobs = [
                service.retry_job(opened, job_id=_job_id(job_id or ""), actor=cli_actor(), now=now)
            ]
        result = {"retried": [str(job.id) for job in jobs]}
    emit(result, as_json=as_json, render=lambda c, r: c.print(f"queued again: {len(r['retried'])}"))


@app.command("cancel")
def cancel(job_id: JobId, as_json: JsonOption = False) -> None:
    """Cancel a queued or running job."""
    from datetime import UTC, datetime

    from flows.cli.context import session
    from flows.runtime import cli_actor
    from pipelines.jobs import service

    with session() as opened:
        job = service.cancel_job(
            opened, job_id=_job_id(job_id), actor=cli_actor(), now=datetime.now(UTC)
        )
        result = {"id": str(job.id), "status": job.status}
    emit(result, as_json=as_json, render=lambda c, r: c.print(f"{r['id']} {r['status']}"))


@app.command("dispatch")
def dispatch(
    forever: Annotated[
        bool, typer.Option("--forever", help="Keep dispatching until Ctrl-C.")
    ] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Jobs run at once.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run due jobs once (or continuously), without Prefect; the worker does it on schedule."""
    from contextlib import suppress

    from flows.dispatcher import Dispatcher, dispatch_forever, dispatch_once
    from flows.runtime import runtime

    dispatcher = Dispatcher.from_environment(runtime().sessions)
    if workers is not None:
        dispatcher.settings = dispatcher.settings.model_copy(update={"workers": workers})
    if forever:
        if not as_json:
            console.print("dispatching jobs (Ctrl-C stops)", highlight=False)
        done = 0
        with suppress(KeyboardInterrupt):
            done = dispatch_forever(dispatcher)
        emit(
            {"claimed": done},
            as_json=as_json,
            render=lambda c, r: c.print(f"ran {r['claimed']} jobs"),
        )
        return
    outcome = dispatch_once(dispatcher)
    result = {
        "reclaimed": outcome.reclaimed,
        "claimed": outcome.claimed,
        "statuses": outcome.statuses,
    }
    emit(result, as_json=as_json, render=_dispatched)


def _dispatched(console: Console, result: dict[str, Any]) -> None:
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(result["statuses"].items()))
    console.print(
        f"ran {result['claimed']} jobs"
        + (f" ({statuses})" if statuses else "")
        + (f"; {result['reclaimed']} expired leases returned" if result["reclaimed"] else ""),
        highlight=False,
    )


@app.command("email-to")
def email_to(
    tenant: Annotated[str, typer.Argument(help="Tenant slug.")],
    address: Annotated[
        str | None, typer.Argument(help="Where notices and report links go; omit to stop.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Set where a tenant's notices and report links are e-mailed."""
    from flows.cli.context import session
    from flows.runtime import cli_actor
    from pipelines.email.service import set_notification_email

    with session() as opened:
        stored = set_notification_email(opened, slug=tenant, address=address, actor=cli_actor())
    result = {"tenant": tenant, "notification_email": stored}
    emit(
        result,
        as_json=as_json,
        render=lambda c, r: c.print(f"{r['tenant']}: {r['notification_email'] or 'no e-mail'}"),
    )
