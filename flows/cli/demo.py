"""`streamflow demo`: the main job on the embedded default."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import typer

from flows.cli.output import JsonOption, console, emit, progress

app = typer.Typer()


@app.command("demo")
def demo(as_json: JsonOption = False) -> None:
    """Run the whole main job on the embedded default: data, models, evaluations, comparison."""
    started = time.perf_counter()
    from flows.cli.server import announce
    from flows.orchestrator import orchestrator_api_url

    # The orchestrator starts (and on a fresh home migrates its database) in its own process
    # while this one imports, loads the datasets and trains the models; the flows wait for it.
    with ThreadPoolExecutor(max_workers=1) as background:
        starting = background.submit(orchestrator_api_url, announce)
        from flows.demo import run_demo

        with progress(not as_json):
            report = run_demo(
                console=None if as_json else console,
                started=started,
                orchestrator_ready=starting.result,
            )
        api_url = starting.result()
    ui_url = api_url.removesuffix("/").removesuffix("/api")
    if as_json:
        emit(report | {"orchestrator_ui": ui_url}, as_json=True, render=lambda _c, _r: None)
    else:
        console.print(f"  flow runs      {ui_url}  (Prefect UI)", highlight=False)
