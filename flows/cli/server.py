"""`streamflow server`: the local orchestrator (a Prefect server StreamFlow starts and reuses)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from flows.cli.output import JsonOption, console, emit, errors

app = typer.Typer(
    help="The local orchestrator (a Prefect server StreamFlow starts and reuses).",
    no_args_is_help=True,
)


def announce(message: str) -> None:
    """Tell the user, on stderr, that something slow is starting."""
    errors.print(message, highlight=False)


@app.command("start")
def start(as_json: JsonOption = False) -> None:
    """Start the local orchestrator (or report the one already running)."""
    from flows.orchestrator import LocalOrchestrator, OrchestratorUnavailable, external_api_url

    if external_api_url():
        raise OrchestratorUnavailable(
            "PREFECT_API_URL is set: StreamFlow uses that server and starts none; unset it"
        )
    orchestrator = LocalOrchestrator()
    orchestrator.ensure(on_start=lambda: announce("starting the local orchestrator…"))
    emit(
        orchestrator.status(),
        as_json=as_json,
        render=lambda out, s: out.print(
            f"orchestrator running at {s.ui_url} (pid {s.pid})", highlight=False
        ),
    )


@app.command("stop")
def stop() -> None:
    """Stop the local orchestrator this home started."""
    from flows.orchestrator import LocalOrchestrator

    stopped = LocalOrchestrator().stop()
    console.print("orchestrator stopped" if stopped else "no orchestrator was running")


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Whether the orchestrator runs, where, and its log file; exit 1 when it does not run."""
    from flows.orchestrator import LocalOrchestrator, ServerStatus

    found = LocalOrchestrator().status()

    def render(out: Console, s: ServerStatus) -> None:
        if s.running:
            where = s.ui_url or s.api_url
            managed = f" (pid {s.pid}, Prefect {s.prefect_version})" if s.managed else ""
            out.print(f"running at {where}{managed}", highlight=False)
            out.print(f"log: {s.log_file}", highlight=False)
        else:
            out.print(f"{s.detail}; start it with `streamflow server start`", highlight=False)

    emit(found, as_json=as_json, render=render)
    if not found.running:
        raise typer.Exit(1)


@app.command("logs")
def logs(
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines.")] = 50,
) -> None:
    """The last lines of the orchestrator's log."""
    from flows.orchestrator import LocalOrchestrator

    orchestrator = LocalOrchestrator()
    tail = orchestrator.log_tail(lines)
    if not tail:
        console.print(f"no log yet at {orchestrator.log_file}", highlight=False)
    for line in tail:
        console.print(line, highlight=False, markup=False)
