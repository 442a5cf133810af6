"""`streamflow serve`: the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


def uvicorn_options(forwarded_allow_ips: str | None) -> dict[str, object]:
    """How uvicorn treats `X-Forwarded-For`: trusted only from the listed proxies.

    uvicorn trusts the header from 127.0.0.1 unless told otherwise, so anyone on the host (or a
    proxy that passes the header through) could pick the client address rate limits count.
    Without trusted proxies the header is ignored altogether.
    """
    trusted = (forwarded_allow_ips or "").strip()
    if not trusted:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (production: >1).")] = 1,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            envvar="STREAMFLOW_FORWARDED_ALLOW_IPS",
            help=(
                "Comma-separated addresses of the reverse proxies whose X-Forwarded-For is "
                "trusted for the client address; none by default (the header is ignored)."
            ),
        ),
    ] = None,
) -> None:
    """Serve the tenant and provider APIs with uvicorn."""
    import uvicorn

    # By import string: the CLI never imports the API (dependencies point one way).
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        **uvicorn_options(forwarded_allow_ips),  # type: ignore[arg-type]
    )
