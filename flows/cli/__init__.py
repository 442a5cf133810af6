"""The `streamflow` command: one module per noun, loaded only when its command runs.

How it is built:

- Each noun is a module here exposing `app`, a `typer.Typer` (`datasets.py` →
  `streamflow datasets ...`). A noun with a single command (`serve.py`) is a Typer with one
  command and no callback, so it runs as `streamflow serve`.
- `COMMANDS` registers them: adding a noun is writing its module and one line
  `"noun": ("flows.cli.noun", "help line"),`. The module is imported only when that noun runs
  (or its help is shown), so `streamflow --help` imports none of them.
- Module tops import only typer, rich, `flows.cli.output` and `models.db.enums`; mlflow,
  pandas, scipy, prefect and the services are imported inside the command functions.
- A command prints its result with `output.emit(result, as_json=..., render=...)` and raises
  domain errors (`pipelines.errors`) instead of printing them: `StreamflowGroup.main` turns
  those, and click's usage errors, into one line on stderr with exit code 1.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer
from typer._click.core import Command, Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperCommand, TyperGroup
from typer.exceptions import Abort

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("flows.cli.demo", "Run the whole main job on the embedded default."),
    "db": ("flows.cli.db", "The StreamFlow database."),
    "orgs": ("flows.cli.orgs", "The provider and its tenants."),
    "datasets": ("flows.cli.datasets", "Golden datasets: import, from-feedback, list, show, diff."),
    "models": ("flows.cli.models", "Model versions in the MLflow registry."),
    "experiments": (
        "flows.cli.experiments",
        "Shadow and A/B experiments: create, list, show, start, pause, stop.",
    ),
    "eval": ("flows.cli.evaluations", "Evaluations of model versions on golden datasets."),
    "keys": ("flows.cli.keys", "Tenants' API keys: issue, list, revoke."),
    "jobs": ("flows.cli.jobs", "Background jobs: list, show, retry, cancel, dispatch."),
    "domains": ("flows.cli.domains", "Custom domains and their certificates."),
    "usage": ("flows.cli.usage", "Usage events: import (idempotent by event id)."),
    "profitability": (
        "flows.cli.profitability",
        "Prices, rollups and profitability per tenant.",
    ),
    "promotion": ("flows.cli.promotion", "Promotion: comparisons, decisions, gates."),
    "users": ("flows.cli.users", "Provider users of the dashboards: create, list, disable."),
    "serve": ("flows.cli.serve", "Serve the tenant and provider APIs with uvicorn."),
    "server": ("flows.cli.server", "The local orchestrator: start, stop, status, logs."),
    "worker": ("flows.cli.worker", "Serve StreamFlow's deployments (schedules run here)."),
    "up": ("flows.cli.up", "Orchestrator, worker and API together on a laptop."),
}
"""Noun → (module exposing a Typer `app`, one-line help shown by `streamflow --help`)."""


class _Listed(TyperCommand):
    """A registered noun as `streamflow --help` lists it, without importing its module."""


class StreamflowGroup(TyperGroup):
    """The root group: nouns loaded on first use, and one error mapping at the edge.

    (Typer vendors click as `typer._click`; its exceptions are the ones raised here.)
    """

    _listing = False

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        # Listing the nouns needs only their help lines: import none of them.
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, help_line = COMMANDS[cmd_name]
        if self._listing:
            return _Listed(cmd_name, help=help_line)
        module = importlib.import_module(module_name)
        command = typer.main.get_command(module.app)
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run a command; every user-facing error is one line on stderr and exit code 1."""
        from flows.cli.output import error_line, fail

        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except NoArgsIsHelpError as shown:
            typer.echo(shown.format_message())
            sys.exit(0)
        except UsageError as error:
            words = error.ctx.command_path.split()[1:] if error.ctx else []
            command = " ".join(["streamflow", *words])
            message = error.format_message().rstrip(".")
            fail(f"{message}. See `{command} --help`.")
            sys.exit(1)
        except ClickException as error:
            fail(error.format_message())
            sys.exit(1)
        except Abort:
            fail("aborted")
            sys.exit(1)
        except Exception as error:
            line = error_line(error)
            if line is None:
                raise
            fail(line)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


app = typer.Typer(
    cls=StreamflowGroup,
    help="StreamFlow: evaluate, roll out and pay for AI features in a multi-tenant SaaS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    log_level: Annotated[
        str, typer.Option(help="Log level of the JSON logs on stderr.")
    ] = "WARNING",
) -> None:
    """StreamFlow's command line."""
    import os
    from pathlib import Path

    from pipelines.logging import configure_logging

    configure_logging(level=log_level.upper())
    # Prefect creates its home without parents when imported; a fresh STREAMFLOW_HOME has none.
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
