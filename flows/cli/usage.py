"""`streamflow usage`: import metered usage events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import session
from flows.cli.output import JsonOption, emit, progress_display

app = typer.Typer(help="Usage events: import.", no_args_is_help=True)


@app.callback()
def usage() -> None:
    """Usage events: import (idempotent by event id)."""


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, JSONL or Parquet.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Import usage events (idempotent by event_id; a bad row rejects the file, nothing is
    written). Columns: event_id, tenant, occurred_at, agent_type, model_version, tokens_in,
    tokens_out, requests, end_user_key, job_id."""
    from datetime import UTC, datetime

    from flows.runtime import cli_actor
    from pipelines.usage.service import file_format, ingest_usage, read_usage_file

    file_format(file)
    progress_display.enabled = not as_json
    try:
        with session() as opened:
            result = ingest_usage(
                opened,
                read_usage_file(file),
                actor=cli_actor(),
                now=datetime.now(UTC),
                source=file.name,
                progress=lambda rows: progress_display.update("checking rows", rows, max(rows, 1)),
            )
    finally:
        progress_display.pause()
        progress_display.enabled = False
    emit(result, as_json=as_json, render=_imported)


def _imported(console: Console, result: Any) -> None:
    console.print(
        f"{result.source}: {result.received} events read, {result.inserted} new, "
        f"{result.duplicates} already stored"
    )
