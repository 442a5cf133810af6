"""`streamflow up`: orchestrator, worker and API together on a laptop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer

from flows.cli.output import console, fail
from flows.cli.server import announce

app = typer.Typer()


@app.command("up")
def up(
    host: Annotated[str, typer.Option(help="Address the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the API.")] = 8000,
) -> None:
    """Orchestrator, worker and API together for a laptop; Ctrl-C stops what this started."""
    from flows.orchestrator import LocalOrchestrator, external_api_url

    started_server = False
    external = external_api_url()
    if external:
        console.print(f"orchestrator  {external} (PREFECT_API_URL)", highlight=False)
    else:
        orchestrator = LocalOrchestrator()
        started_server = not orchestrator.status().running
        record = orchestrator.ensure(on_start=lambda: announce("starting the local orchestrator…"))
        console.print(f"orchestrator  {record.url}  (Prefect UI)", highlight=False)
    children = [
        subprocess.Popen([sys.executable, "-m", "flows.cli", *args], start_new_session=True)
        for args in (["worker"], ["serve", "--host", host, "--port", str(port)])
    ]
    console.print("worker        serving StreamFlow's deployments", highlight=False)
    console.print(f"api           http://{host}:{port}/docs", highlight=False)
    console.print(f"dashboards    http://{host}:{port}/dashboards", highlight=False)
    console.print("Ctrl-C stops them.", highlight=False)
    failed = False
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        failed = True
        fail("a component exited; the others are being stopped")
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
    if failed:
        raise typer.Exit(1)
