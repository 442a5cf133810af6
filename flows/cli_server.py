"""`streamflow server|worker|up`: the local orchestrator, the worker, and a laptop stack."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Annotated

import typer
from rich.console import Console

server_app = typer.Typer(
    help="The local orchestrator (a Prefect server StreamFlow starts and reuses).",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _fail(message: str) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@server_app.command("start")
def server_start(as_json: JsonOption = False) -> None:
    """Start the local orchestrator (or report the one already running)."""
    from flows.orchestrator import LocalOrchestrator, OrchestratorUnavailable, external_api_url

    if external_api_url():
        _fail("PREFECT_API_URL is set: StreamFlow uses that server and starts none; unset it")
    orchestrator = LocalOrchestrator()
    try:
        record = orchestrator.ensure(
            on_start=lambda: errors.print("starting the local orchestrator…", highlight=False)
        )
    except OrchestratorUnavailable as error:
        _fail(str(error))
        return
    if as_json:
        sys.stdout.write(json.dumps(asdict(orchestrator.status()), indent=2) + "\n")
    else:
        console.print(f"orchestrator running at {record.url} (pid {record.pid})", highlight=False)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local orchestrator this home started."""
    from flows.orchestrator import LocalOrchestrator

    stopped = LocalOrchestrator().stop()
    console.print("orchestrator stopped" if stopped else "no orchestrator was running")


@server_app.command("status")
def server_status(as_json: JsonOption = False) -> None:
    """Whether the orchestrator runs, where, and its log file; exit 1 when it does not run."""
    from flows.orchestrator import LocalOrchestrator

    status = LocalOrchestrator().status()
    if as_json:
        sys.stdout.write(json.dumps(asdict(status), indent=2) + "\n")
    elif status.running:
        where = status.ui_url or status.api_url
        managed = f"pid {status.pid}, Prefect {status.prefect_version}" if status.managed else ""
        console.print(f"running at {where} {managed}".rstrip(), highlight=False)
        console.print(f"log: {status.log_file}", highlight=False)
    else:
        console.print(f"{status.detail}; start it with `streamflow server start`", highlight=False)
    if not status.running:
        raise typer.Exit(1)


@server_app.command("logs")
def server_logs(
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


def worker() -> None:
    """Serve StreamFlow's deployments (evaluations on demand, schedules) until Ctrl-C."""
    from flows.deployments import EVALUATION_DEPLOYMENT, serve_forever
    from flows.orchestrator import OrchestratorUnavailable, orchestrated

    try:
        with orchestrated(announce=lambda m: errors.print(m, highlight=False)) as api_url:
            console.print(
                f"worker serving {EVALUATION_DEPLOYMENT} on {api_url.removesuffix('/api')} "
                "(Ctrl-C stops it)",
                highlight=False,
            )
            serve_forever()
    except OrchestratorUnavailable as error:
        _fail(str(error))
    except KeyboardInterrupt:
        pass


def up(
    host: Annotated[str, typer.Option(help="Address the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
) -> None:
    """Orchestrator, worker and API together for a laptop; Ctrl-C stops what this started."""
    from flows.orchestrator import LocalOrchestrator, OrchestratorUnavailable, external_api_url

    started_server = False
    if external_api_url():
        console.print(f"orchestrator  {external_api_url()} (PREFECT_API_URL)", highlight=False)
    else:
        orchestrator = LocalOrchestrator()
        was_running = orchestrator.status().running

        def announce() -> None:
            errors.print("starting the local orchestrator…", highlight=False)

        try:
            record = orchestrator.ensure(on_start=announce)
        except OrchestratorUnavailable as error:
            _fail(str(error))
            return
        started_server = not was_running
        console.print(f"orchestrator  {record.url}  (Prefect UI)", highlight=False)
    children = [
        subprocess.Popen([sys.executable, "-m", "flows.cli", "worker"], start_new_session=True),
        subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve", "--host", host, "--port", str(port)],
            start_new_session=True,
        ),
    ]
    console.print("worker        serving StreamFlow's deployments", highlight=False)
    console.print(f"api           http://{host}:{port}/docs", highlight=False)
    console.print("Ctrl-C stops them.", highlight=False)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = [child.args for child in children if child.poll() not in (None, 0)]
        if failed:
            errors.print(f"[red]error:[/red] a component exited: {failed}", highlight=False)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGINT)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        if started_server:
            LocalOrchestrator().stop()
            console.print("orchestrator stopped", highlight=False)
