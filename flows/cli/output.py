"""How every command answers: a result as JSON (`--json`) or as rich text, errors as one line.

Results go to stdout, progress and errors to stderr. A progress bar is taken off the screen
before anything is printed on stdout, so what follows it is never overwritten.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Organisation slug to act as (default: STREAMFLOW_EVAL_ORGANIZATION or 'provider').",
    ),
]


class _Progress:
    """The progress bars of long work on stderr, shown only while nothing else is printed."""

    def __init__(self) -> None:
        self.enabled = False
        self._display: Progress | None = None
        self._bars: dict[str, TaskID] = {}

    def update(self, stage: str, done: int, total: int) -> None:
        # Bars are for a person watching a terminal; a pipe or a log file gets none.
        if not self.enabled or not errors.is_terminal:
            return
        if self._display is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._display = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=errors,
                transient=True,
            )
            self._bars = {}
        if stage not in self._bars:
            self._bars[stage] = self._display.add_task(stage, total=total)
        self._display.update(self._bars[stage], completed=done, total=total)
        if not self._display.live.is_started:
            self._display.start()

    def pause(self) -> None:
        """Take the bars off the screen; the next update shows the unfinished ones again."""
        if self._display is not None:
            self._display.stop()
            self._display = None


progress_display = _Progress()


class ResultConsole(Console):
    """stdout, which stops the progress display before printing (rich cannot share a line)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        progress_display.pause()
        super().print(*objects, **kwargs)


console = ResultConsole()
errors = Console(stderr=True)


@contextmanager
def progress(enabled: bool) -> Iterator[None]:
    """Show flows' progress (stage, done, total) on stderr while the block runs."""
    if not enabled:
        yield
        return
    from flows.runtime import add_progress_listener, remove_progress_listener

    progress_display.enabled = True
    add_progress_listener(progress_display.update)
    try:
        yield
    finally:
        remove_progress_listener(progress_display.update)
        progress_display.pause()
        progress_display.enabled = False


def jsonable(value: Any) -> Any:
    """A result as JSON-ready data: pydantic models, dataclasses, mappings, lists, times."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit(result: T, *, as_json: bool, render: Callable[[Console, T], None]) -> None:
    """Print a result: the JSON document with `--json`, otherwise as `render` draws it."""
    if as_json:
        progress_display.pause()
        text = json.dumps(jsonable(result), indent=2, default=str, ensure_ascii=False)
        sys.stdout.write(text + "\n")
    else:
        render(console, result)


def fmt(value: float | None, digits: int = 4) -> str:
    """A metric value for tables; '–' when undefined."""
    return "–" if value is None else f"{value:.{digits}f}"


def short(moment: datetime | str | None) -> str:
    """A time for tables, to the second; '–' when unset."""
    if moment is None:
        return "–"
    text = moment.isoformat() if isinstance(moment, datetime) else moment
    return text[:19]


# --- errors at the CLI edge -------------------------------------------------------------------

FLAGS = {
    "organization": "--org",
    "scopes": "--scope",
    "key_id": "KEY_ID",
    "run_id": "RUN",
    "run_a": "RUN_A",
    "run_b": "RUN_B",
    "reference": "NAME[@VERSION]",
    "job_id": "JOB_ID",
    "hostname": "HOSTNAME",
    "domain": "DOMAIN",
    "domain_id": "DOMAIN",
    "certificate_id": "CERTIFICATE",
    "acme_directory_url": "STREAMFLOW_ACME_DIRECTORY_URL",
    "critical_slices": "--critical-slice",
}
"""Domain field → what the user typed, where it is not `--field-name`."""

HINTS = {
    "organization": "create it with `streamflow orgs create SLUG`",
    "dataset": "`streamflow datasets list` shows them",
    "run_id": "`streamflow eval list` shows runs",
    "model": "`streamflow models list` shows registered versions",
    "domain": "`streamflow domains list` shows them",
}
"""What to type next when a referenced thing is not found."""


def flag(field: str) -> str:
    """The option or argument a domain field comes from."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def error_line(error: BaseException) -> str | None:
    """One line naming the field and the fix for an error the user can act on; None otherwise."""
    from pipelines.errors import NotFound, StreamflowError
    from pipelines.golden_datasets.errors import GoldenDatasetInvalid

    registry = sys.modules.get("models.registry.client")
    registry_errors: tuple[type[Exception], ...] = (
        (registry.ModelVersionNotFound, registry.InvalidModelReference) if registry else ()
    )
    if isinstance(error, StreamflowError):
        if error.field is None:
            return str(error)
        if isinstance(error, NotFound):
            hint = HINTS.get(error.field)
            return f"{error}; {hint}" if hint else str(error)
        text = str(error)
        # Messages that already begin with the domain field name it once, as the flag.
        if text.startswith(f"{error.field}: "):
            text = text[len(error.field) + 2 :]
        return f"{flag(error.field)}: {text}"
    migrate = sys.modules.get("models.db.migrate")
    if migrate is not None and isinstance(error, migrate.SchemaNotMigrated):
        return str(error)
    if isinstance(error, (GoldenDatasetInvalid, *registry_errors)):
        return str(error)
    return None


def fail(text: str) -> None:
    """Print one error line on stderr (markup-free: user text may contain brackets)."""
    progress_display.pause()
    errors.print(f"[red]error:[/red] {_escape(text)}", highlight=False, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
