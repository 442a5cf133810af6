"""`streamflow demo`: the main job on the embedded default."""

from __future__ import annotations

import typer

from flows.cli.output import JsonOption, console, emit, progress

app = typer.Typer()


@app.command("demo")
def demo(as_json: JsonOption = False) -> None:
    """Run the whole main job on the embedded default: data, models, evaluations, comparison."""
    from flows.demo import run_demo

    with progress(not as_json):
        report = run_demo(console=None if as_json else console)
    if as_json:
        emit(report, as_json=True, render=lambda _console, _report: None)
