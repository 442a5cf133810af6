"""`streamflow models`: model versions in the MLflow registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.output import JsonOption, emit

app = typer.Typer(help="Model versions in the MLflow registry.", no_args_is_help=True)


@app.command("register")
def register(
    name: Annotated[str, typer.Option(help="Registered model name, e.g. intent-classifier.")],
    builtin: Annotated[
        str | None,
        typer.Option(
            help="Built-in agent to train: tfidf-logreg, char-naive-bayes, lead-sentence, "
            "scored-sentence."
        ),
    ] = None,
    train: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Training file for --builtin (CSV/JSONL with input, expected).",
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            help="module:callable returning an object with predict(list[str]) -> list[str]; "
            "the module must stay importable wherever evaluations run."
        ),
    ] = None,
    agent_type: Annotated[str | None, typer.Option(help="Agent type tag, e.g. summarizer.")] = None,
    task: Annotated[
        str | None, typer.Option(help="Task tag: classification or text_generation.")
    ] = None,
    description: str = "",
    alias: Annotated[
        str | None, typer.Option(help="Also point this alias (champion/challenger) at it.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Log an MLflow pyfunc model version with agent_type and task tags."""
    from flows.models import build_agent, register_agent

    built = build_agent(
        builtin=builtin, train=train, factory=agent, agent_type=agent_type, task=task
    )
    ref = register_agent(name, built, description=description, alias=alias)
    result = {
        "name": ref.name,
        "version": ref.version,
        "agent_type": built.agent_type,
        "task": built.task,
        "alias": alias,
    }
    emit(result, as_json=as_json, render=_registered)


def _registered(console: Console, r: dict[str, Any]) -> None:
    console.print(
        f"registered {r['name']}@{r['version']} ({r['agent_type']}, {r['task']})"
        + (f" as {r['alias']}" if r["alias"] else "")
    )


@app.command("list")
def list_(
    name: Annotated[str | None, typer.Option(help="Only this registered model.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List registered model versions with their tags and aliases."""
    from flows.runtime import runtime
    from models.registry.client import list_model_versions

    runtime()
    emit(list_model_versions(name), as_json=as_json, render=_table)


def _table(console: Console, versions: list[Any]) -> None:
    from rich.table import Table

    table = Table("name", "version", "agent_type", "task", "aliases", "description")
    for v in versions:
        table.add_row(
            v.name, v.version, v.agent_type, v.task, ", ".join(v.aliases), v.description[:50]
        )
    console.print(table)


@app.command("alias")
def alias(
    name: str,
    alias: Annotated[str, typer.Argument(help="champion or challenger")],
    version: str,
    as_json: JsonOption = False,
) -> None:
    """Point an alias of a registered model at a version."""
    from flows.models import move_alias

    move_alias(name, alias, version)
    result = {"name": name, "alias": alias, "version": version}
    emit(
        result,
        as_json=as_json,
        render=lambda console, r: console.print(
            f"{r['name']}@{r['alias']} → version {r['version']}"
        ),
    )


@app.command("rollback")
def rollback(
    agent: Annotated[str, typer.Argument(help="Agent type whose champion goes back.")],
    as_json: JsonOption = False,
) -> None:
    """Point the agent type's champion back at its previous version (audited)."""
    from flows.cli.context import session
    from flows.runtime import cli_actor, runtime
    from pipelines.promotion.service import rollback as roll_back

    runtime()
    with session() as opened:
        result = roll_back(opened, agent_type=agent, actor=cli_actor()).model_dump(mode="json")
    emit(
        result,
        as_json=as_json,
        render=lambda console, r: console.print(
            f"{r['model_name']}@champion → version {r['champion']} "
            f"(was {r['champion_before']}; previous is now {r['previous']})"
        ),
    )
