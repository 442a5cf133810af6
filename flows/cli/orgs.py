"""`streamflow orgs`: the provider and its tenants."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import session
from flows.cli.output import JsonOption, emit
from models.db.enums import OrganizationKind

app = typer.Typer(help="The provider and its tenants.", no_args_is_help=True)


@app.command("create")
def create(
    slug: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    kind: Annotated[OrganizationKind, typer.Option(help="Who it is.")] = OrganizationKind.TENANT,
    as_json: JsonOption = False,
) -> None:
    """Create an organisation (the provider once, then tenants)."""
    from flows.runtime import cli_actor
    from pipelines.organizations import ensure_organization

    with session() as opened:
        org, created = ensure_organization(
            opened, slug=slug, name=name or slug, kind=kind, actor=cli_actor()
        )
        result = {"id": str(org.id), "slug": org.slug, "kind": org.kind, "created": created}
    emit(
        result,
        as_json=as_json,
        render=lambda console, r: console.print(
            f"{'created' if r['created'] else 'exists'}: {r['slug']} ({r['kind']})"
        ),
    )


@app.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List organisations."""
    from models.db.repositories.organizations import OrganizationRepository

    with session() as opened:
        rows = [
            {"slug": o.slug, "name": o.name, "kind": o.kind, "status": o.status}
            for o in OrganizationRepository(opened).list()
        ]
    emit(rows, as_json=as_json, render=_table)


def _table(console: Console, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("slug", "name", "kind", "status")
    for row in rows:
        table.add_row(row["slug"], row["name"], row["kind"], row["status"])
    console.print(table)
