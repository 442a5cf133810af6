"""`streamflow worker`: serve StreamFlow's deployments from this process."""

from __future__ import annotations

from contextlib import suppress

import typer

from flows.cli.output import console
from flows.cli.server import announce

app = typer.Typer()


@app.command("worker")
def worker() -> None:
    """Serve StreamFlow's deployments (evaluations on demand, schedules) until Ctrl-C."""
    from flows.deployments import EVALUATION_DEPLOYMENT, serve_forever
    from flows.orchestrator import orchestrated

    with orchestrated(announce=announce) as api_url:
        console.print(
            f"worker serving {EVALUATION_DEPLOYMENT} on {api_url.removesuffix('/api')} "
            "(Ctrl-C stops it)",
            highlight=False,
        )
        with suppress(KeyboardInterrupt):
            serve_forever()
