"""`streamflow demo`: the main job on the embedded default."""

from __future__ import annotations

import time

import typer

from flows.cli.output import JsonOption, console, emit, progress

app = typer.Typer()


@app.command("demo")
def demo(as_json: JsonOption = False) -> None:
    """Run the whole main job on the embedded default: data, models, evaluations, comparison."""
    started = time.perf_counter()
    from flows.cli.server import announce
    from flows.demo import run_demo
    from flows.orchestrator import orchestrated

    with orchestrated(announce=announce) as api_url, progress(not as_json):
        report = run_demo(console=None if as_json else console, started=started)
    ui_url = api_url.removesuffix("/").removesuffix("/api")
    if as_json:
        emit(report | {"orchestrator_ui": ui_url}, as_json=True, render=lambda _c, _r: None)
    else:
        console.print(f"  flow runs      {ui_url}  (Prefect UI)", highlight=False)
