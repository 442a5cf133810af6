"""`streamflow keys`: tenants' API keys."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import session
from flows.cli.output import JsonOption, emit, short
from models.db.enums import ApiKeyScope

app = typer.Typer(help="Tenants' API keys: issue, list, revoke.", no_args_is_help=True)

Tenant = Annotated[str, typer.Argument(help="Tenant slug.")]


@app.command("create")
def create(
    tenant: Tenant,
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'reporting job'.")],
    scope: Annotated[
        list[ApiKeyScope], typer.Option(help="Scope to grant (repeat the option for several).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Issue an API key to a tenant; the key is printed once and only its hash is stored."""
    from datetime import UTC, datetime

    from flows.runtime import cli_actor
    from pipelines.access.service import issue_tenant_api_key

    with session() as opened:
        issued = issue_tenant_api_key(
            opened,
            slug=tenant,
            name=name,
            scopes=[str(s) for s in scope],
            actor=cli_actor(),
            now=datetime.now(UTC),
        )
        result = {
            "id": str(issued.key.id),
            "tenant": tenant,
            "prefix": issued.key.prefix,
            "api_key": issued.plaintext,
        }
    emit(result, as_json=as_json, render=_issued)


def _issued(console: Console, result: dict[str, Any]) -> None:
    console.print(f"API key {result['id']} for {result['tenant']} (shown once, store it now):")
    console.print(result["api_key"], highlight=False, markup=False)


@app.command("list")
def list_(tenant: Tenant, as_json: JsonOption = False) -> None:
    """List a tenant's API keys (never the secrets)."""
    from pipelines.access.service import list_api_keys
    from pipelines.organizations import get_organization

    with session() as opened:
        organization = get_organization(opened, tenant)
        rows: list[dict[str, Any]] = [
            {
                "id": str(k.id),
                "name": k.name,
                "prefix": k.prefix,
                "scopes": k.scopes,
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in list_api_keys(opened, organization_id=organization.id, limit=500)
        ]
    emit(rows, as_json=as_json, render=_table)


def _table(console: Console, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("id", "name", "prefix", "scopes", "last used", "revoked")
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["prefix"],
            ", ".join(row["scopes"]),
            short(row["last_used_at"]),
            short(row["revoked_at"]),
        )
    console.print(table)


@app.command("revoke")
def revoke(
    tenant: Tenant,
    key_id: Annotated[str, typer.Argument(help="Key id from `streamflow keys list`.")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a tenant's API key (API processes stop accepting it within seconds)."""
    import uuid
    from datetime import UTC, datetime

    from flows.runtime import cli_actor
    from pipelines.access.service import revoke_api_key
    from pipelines.errors import InvalidInput
    from pipelines.organizations import get_organization

    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        raise InvalidInput(
            f"{key_id!r} is not a key id; copy one from `streamflow keys list {tenant}`",
            field="key_id",
        ) from None
    with session() as opened:
        organization = get_organization(opened, tenant)
        key = revoke_api_key(
            opened,
            organization_id=organization.id,
            key_id=parsed,
            actor=cli_actor(),
            now=datetime.now(UTC),
        )
        result = {"id": str(key.id), "revoked_at": key.revoked_at}
    emit(result, as_json=as_json, render=lambda console, r: console.print(f"revoked {r['id']}"))
