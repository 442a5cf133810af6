"""`streamflow db`: the database schema."""

from __future__ import annotations

import typer

from flows.cli.output import JsonOption, emit

app = typer.Typer(help="The StreamFlow database.", no_args_is_help=True)


@app.callback()
def db() -> None:
    """The StreamFlow database (a group, so `streamflow db upgrade` keeps its verb)."""


@app.command("upgrade")
def upgrade(as_json: JsonOption = False) -> None:
    """Create or migrate the database schema (and the local orchestrator's) to the newest
    revision."""
    from concurrent.futures import ThreadPoolExecutor

    from flows.orchestrator import migrate_orchestrator_database
    from flows.runtime import runtime
    from models.db.migrate import current_revision
    from models.registry import client as registry

    # The local orchestrator's and MLflow's own databases too, so the first flow waits for
    # neither. The orchestrator's migrates in a process of its own (seconds on a fresh home),
    # meanwhile this one migrates StreamFlow's and MLflow's.
    with ThreadPoolExecutor(max_workers=1) as background:
        orchestrator = background.submit(migrate_orchestrator_database)
        rt = runtime()
        registry.configure(rt.registry)
        registry.experiment_id(rt.registry)
        orchestrator.result()
    result = {
        "revision": current_revision(rt.engine),
        "database": rt.engine.url.render_as_string(hide_password=True),
    }
    emit(
        result,
        as_json=as_json,
        render=lambda console, r: console.print(
            f"database at revision [bold]{r['revision']}[/bold] ({r['database']}); "
            "orchestrator and MLflow stores ready"
        ),
    )
