"""`streamflow users`: provider users who sign in to the dashboards."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import session
from flows.cli.output import JsonOption, emit
from models.db.enums import ProviderRole

app = typer.Typer(
    help="Provider users of the dashboards: create, list, disable.", no_args_is_help=True
)

Email = Annotated[str, typer.Argument(help="The person's e-mail address (their sign-in name).")]


@app.command("create")
def create(
    email: Email,
    name: Annotated[str, typer.Option(help="The person's name, shown in the dashboards.")],
    role: Annotated[
        ProviderRole, typer.Option(help="admin changes things; analyst reads.")
    ] = ProviderRole.ANALYST,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a provider user; the password is asked for (or read from stdin) and stored hashed."""
    from flows.runtime import cli_actor
    from pipelines.provider_users.service import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with session() as opened:
        user = create_user(
            opened, email=email, name=name, role=role, password=password, actor=cli_actor()
        )
        result = user.model_dump(mode="json")
    emit(result, as_json=as_json, render=_created)


def _created(console: Console, result: dict[str, Any]) -> None:
    console.print(f"{result['email']} ({result['role']}) may sign in at /dashboards/sign-in")


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List provider users (never their password hashes)."""
    from pipelines.provider_users.service import users_page

    with session() as opened:
        rows = [u.model_dump(mode="json") for u in users_page(opened, cursor=None, limit=500).items]
    emit(rows, as_json=as_json, render=_table)


def _table(console: Console, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("e-mail", "name", "role", "created", "disabled")
    for row in rows:
        table.add_row(
            row["email"], row["name"], row["role"], row["created_at"], row["disabled_at"] or ""
        )
    console.print(table)


@app.command("disable")
def disable(email: Email, as_json: JsonOption = False) -> None:
    """Stop a provider user from signing in and end their sessions."""
    from datetime import UTC, datetime

    from flows.runtime import cli_actor
    from pipelines.provider_users.service import disable_user

    with session() as opened:
        user = disable_user(opened, email=email, actor=cli_actor(), now=datetime.now(UTC))
        result = user.model_dump(mode="json")
    emit(result, as_json=as_json, render=lambda console, r: console.print(f"{r['email']} disabled"))
