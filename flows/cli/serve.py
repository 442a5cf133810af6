"""`streamflow serve`: the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (production: >1).")] = 1,
) -> None:
    """Serve the tenant and provider APIs with uvicorn."""
    import uvicorn

    # By import string: the CLI never imports the API (dependencies point one way).
    uvicorn.run(
        "api.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=False
    )
