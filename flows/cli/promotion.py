"""`streamflow promotion`: compare experiments, read decisions, set and show gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.output import JsonOption, emit, fmt, short

app = typer.Typer(
    help="Promotion: compare experiments, decisions and their evidence, gates.",
    no_args_is_help=True,
)
gate_app = typer.Typer(help="The pre-registered promotion gate of an agent type.")
app.add_typer(gate_app, name="gate")


@app.command("compare")
def compare(
    experiment: Annotated[
        str | None, typer.Option(help="Only this experiment (id); default every running one.")
    ] = None,
    local: Annotated[
        bool, typer.Option("--local", help="Run here, without the orchestrator.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare challengers with champions now; the gate decides (hourly on the worker)."""
    import uuid

    from pipelines.errors import InvalidInput

    try:
        experiment_id = uuid.UUID(experiment) if experiment else None
    except ValueError:
        raise InvalidInput(
            f"{experiment!r} is not an experiment id; `streamflow experiments list` shows them",
            field="experiment",
        ) from None
    if local:
        from flows.experiments import compare_experiments_now
        from flows.runtime import runtime

        rt = runtime()
        decisions = compare_experiments_now(
            rt.sessions,
            experiment_id=experiment_id,
            resamples=rt.evaluation.bootstrap_resamples,
        )
        result: dict[str, Any] = {
            "decisions": [
                d.model_dump(mode="json", include={"id", "agent_type", "outcome", "n"})
                for d in decisions
            ],
            "drift_reports": [],
        }
    else:
        from flows.experiments import run_comparison

        result = run_comparison(experiment_id=str(experiment_id) if experiment_id else None)
    emit(result, as_json=as_json, render=_compared)


def _compared(console: Console, result: dict[str, Any]) -> None:
    if not result["decisions"]:
        console.print("no running experiment")
    for d in result["decisions"]:
        console.print(f"{d['id']}  {d['agent_type']}  {d['outcome']}  n={d['n']}", highlight=False)
    for r in result.get("drift_reports", []):
        console.print(f"drift report {r['id']}: {'drifted' if r['drifted'] else 'no drift'}")


@app.command("decisions")
def decisions(
    agent: Annotated[str | None, typer.Option(help="Only this agent type.")] = None,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Decisions per page.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List promotion decisions, newest first."""
    from flows.cli.context import session
    from pipelines.promotion.service import decisions_page

    with session() as opened:
        page = decisions_page(opened, agent_type=agent, cursor=cursor, limit=limit)
    result = {
        "items": [item.model_dump(mode="json") for item in page.items],
        "next_cursor": page.next_cursor,
    }
    emit(result, as_json=as_json, render=_decisions)


def _decisions(console: Console, result: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("id", "when", "agent", "outcome", "champion", "challenger", "n")
    for d in result["items"]:
        table.add_row(
            d["id"],
            short(d["created_at"]),
            d["agent_type"],
            d["outcome"],
            d["champion_version"],
            d["challenger_version"],
            str(d["n"]),
        )
    console.print(table)
    if result["next_cursor"]:
        console.print(f"more: --cursor {result['next_cursor']}", highlight=False)


@app.command("decision")
def decision(
    decision_id: Annotated[str, typer.Argument(help="Id from `streamflow promotion decisions`.")],
    as_json: JsonOption = False,
) -> None:
    """Show one decision with its evidence: checks, metrics with intervals, tests, seeds."""
    from flows.cli.context import session
    from pipelines.promotion.service import decision_detail

    with session() as opened:
        result = decision_detail(opened, decision_id).model_dump(mode="json")
    emit(result, as_json=as_json, render=_decision)


def _decision(console: Console, d: dict[str, Any]) -> None:
    console.print(
        f"{d['id']}  {d['agent_type']}  {d['outcome'].upper()}  "
        f"{d['champion_version']} vs {d['challenger_version']}  n={d['n']}",
        highlight=False,
    )
    console.print(d["reason"], highlight=False, markup=False)
    for check in d["evidence"].get("gate", {}).get("checks", []):
        mark = {True: "pass", False: "FAIL", None: "wait"}[check["passed"]]
        console.print(f"  [{mark}] {check['name']}: {check['reason']}", markup=False)
    for m in d["evidence"].get("metrics", []):
        console.print(
            f"  {m['metric']} ({m['source']}): {fmt(m['estimate'])} "
            f"[{fmt(m['ci_low'])}, {fmt(m['ci_high'])}] p={fmt(m['p_value'])} n={m['n']}",
            highlight=False,
        )


@gate_app.command("show")
def gate_show(
    agent: Annotated[str, typer.Argument(help="Agent type, e.g. intent_classifier.")],
    as_json: JsonOption = False,
) -> None:
    """Show the gate in force for an agent type (the default until one is set)."""
    from flows.cli.context import session
    from pipelines.promotion.service import gate_view

    with session() as opened:
        result = gate_view(opened, agent).model_dump(mode="json")
    emit(result, as_json=as_json, render=_gate)


@gate_app.command("set")
def gate_set(
    agent: Annotated[str, typer.Argument(help="Agent type, e.g. intent_classifier.")],
    config: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="JSON file with the gate's fields."),
    ] = None,
    golden_dataset: Annotated[
        str | None, typer.Option(help="Pinned golden dataset version, NAME@VERSION.")
    ] = None,
    min_n: Annotated[int | None, typer.Option(help="Minimum requests before deciding.")] = None,
    min_duration_hours: Annotated[
        float | None, typer.Option(help="Minimum hours before deciding.")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level.")] = None,
    critical_slice: Annotated[
        list[str] | None,
        typer.Option(help="A golden-set slice the primary metric must hold on (repeatable)."),
    ] = None,
    slice_margin: Annotated[
        float | None,
        typer.Option(help="Worst allowed drop of the primary metric on a critical slice."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Pre-register a new version of an agent type's gate (fields over the current ones)."""
    from datetime import UTC, datetime

    from flows.cli.context import session
    from flows.runtime import cli_actor
    from pipelines.errors import InvalidInput
    from pipelines.promotion.service import gate_view, set_gate

    with session() as opened:
        document = dict(gate_view(opened, agent).config)
        if config is not None:
            try:
                document.update(json.loads(config.read_text()))
            except (ValueError, TypeError) as error:
                raise InvalidInput(f"config: not a JSON object ({error})", field="config") from None
        given = {
            "golden_dataset": golden_dataset,
            "min_n": min_n,
            "min_duration_seconds": None
            if min_duration_hours is None
            else int(min_duration_hours * 3600),
            "alpha": alpha,
            "critical_slices": critical_slice or None,
            "slice_margin": slice_margin,
        }
        document.update({k: v for k, v in given.items() if v is not None})
        result = set_gate(
            opened, agent_type=agent, config=document, actor=cli_actor(), now=datetime.now(UTC)
        ).model_dump(mode="json")
    emit(result, as_json=as_json, render=_gate)


def _gate(console: Console, g: dict[str, Any]) -> None:
    console.print(
        f"{g['agent_type']} gate v{g['version']}" + (" (default)" if g["version"] == 0 else ""),
        highlight=False,
    )
    console.print(json.dumps(g["config"], indent=2), highlight=False, markup=False)
