"""`streamflow domains`: a tenant's custom domains and their certificates."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import org_id, session
from flows.cli.output import JsonOption, emit, short

app = typer.Typer(
    help="Custom domains: add, list, show, verify, remove; certificates.", no_args_is_help=True
)

Org = Annotated[str | None, typer.Option("--org", help="Tenant slug to act for.")]
Reference = Annotated[str, typer.Argument(help="Domain id or hostname.")]


def _settings() -> Any:
    from flows.runtime import runtime
    from models.domain_settings import DomainSettings

    return DomainSettings(home=runtime().storage.home)


@app.command("add")
def add(hostname: str, org: Org = None, as_json: JsonOption = False) -> None:
    """Claim a hostname; publish the TXT record it prints to prove ownership."""
    from datetime import UTC, datetime

    from flows.domains import dns_config
    from flows.runtime import cli_actor
    from pipelines.domains.service import add_domain

    with session() as opened:
        detail = add_domain(
            opened,
            organization_id=org_id(opened, org),
            hostname=hostname,
            actor=cli_actor(),
            now=datetime.now(UTC),
            config=dns_config(_settings()),
        )
    emit(detail, as_json=as_json, render=_detail)


@app.command("list")
def list_(org: Org = None, cursor: str | None = None, as_json: JsonOption = False) -> None:
    """List the tenant's domains with their ownership and certificate status."""
    from pipelines.domains.views import domains_page

    with session() as opened:
        page = domains_page(opened, organization_id=org_id(opened, org), cursor=cursor, limit=100)
    emit(page, as_json=as_json, render=_table)


@app.command("show")
def show(reference: Reference, org: Org = None, as_json: JsonOption = False) -> None:
    """Show a domain: the record to publish and what the last checks found."""
    from pipelines.domains.views import domain_detail_of, find_domain

    with session() as opened:
        domain = find_domain(opened, organization_id=org_id(opened, org), reference=reference)
        detail = domain_detail_of(opened, domain)
    emit(detail, as_json=as_json, render=_detail)


@app.command("verify")
def verify(reference: Reference, org: Org = None, as_json: JsonOption = False) -> None:
    """Check ownership now (DNS)."""
    from datetime import UTC, datetime

    from flows.domains import dns_config
    from flows.runtime import cli_actor
    from pipelines.domains.service import verify_domain_now
    from pipelines.domains.views import find_domain

    with session() as opened:
        organization_id = org_id(opened, org)
        domain = find_domain(opened, organization_id=organization_id, reference=reference)
        detail = verify_domain_now(
            opened,
            organization_id=organization_id,
            domain_id=domain.id,
            config=dns_config(_settings()),
            now=datetime.now(UTC),
            actor=cli_actor(),
        )
    emit(detail, as_json=as_json, render=_detail)


@app.command("remove")
def remove(reference: Reference, org: Org = None) -> None:
    """Remove a domain and its certificate."""
    from flows.runtime import cli_actor
    from pipelines.domains.service import remove_domain
    from pipelines.domains.views import find_domain

    with session() as opened:
        organization_id = org_id(opened, org)
        domain = find_domain(opened, organization_id=organization_id, reference=reference)
        remove_domain(
            opened, organization_id=organization_id, domain_id=domain.id, actor=cli_actor()
        )


@app.command("certificate")
def certificate(reference: Reference, org: Org = None, as_json: JsonOption = False) -> None:
    """Show the certificate status of a domain (apart from the domain's own status)."""
    from pipelines.certificates.views import certificate_of_domain
    from pipelines.domains.views import find_domain

    with session() as opened:
        organization_id = org_id(opened, org)
        domain = find_domain(opened, organization_id=organization_id, reference=reference)
        detail = certificate_of_domain(opened, organization_id=organization_id, domain_id=domain.id)
    emit(detail, as_json=as_json, render=_certificate)


@app.command("renew")
def renew(as_json: JsonOption = False) -> None:
    """Order due certificates now (what the scheduled renewal flow does)."""
    from flows.domains import certificate_work, process_certificates
    from flows.runtime import runtime

    settings = _settings()
    work = certificate_work(runtime().sessions, settings)
    if work is None:
        from pipelines.errors import InvalidInput

        raise InvalidInput(
            "no ACME directory is configured; set STREAMFLOW_ACME_DIRECTORY_URL",
            field="acme_directory_url",
        )
    outcomes = process_certificates(work, concurrency=settings.acme_concurrency)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    emit(counts, as_json=as_json, render=lambda console, c: console.print(c or "nothing due"))


def _detail(console: Console, detail: Any) -> None:
    console.print(f"{detail.hostname}  [bold]{detail.status}[/bold]  (id {detail.id})")
    console.print(f'publish TXT {detail.verification_record}  "{detail.verification_value}"')
    own = detail.ownership
    console.print(f"ownership: {own.outcome or 'not checked yet'}  {own.detail or ''}")
    console.print(f"routing: {detail.routing.outcome or '–'}  {', '.join(detail.routing.found)}")
    console.print(f"certificate: {detail.certificate_status or '–'}")


def _table(console: Console, page: Any) -> None:
    from rich.table import Table

    table = Table("hostname", "status", "ownership", "certificate", "checked")
    for item in page.items:
        table.add_row(
            item.hostname,
            item.status,
            item.ownership.outcome or "–",
            item.certificate_status or "–",
            short(item.ownership.checked_at),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


def _certificate(console: Console, detail: Any) -> None:
    console.print(f"{detail.hostname}  [bold]{detail.status}[/bold]  serial {detail.serial or '–'}")
    console.print(f"valid {short(detail.not_before)} → {short(detail.not_after)}")
    console.print(f"renews {short(detail.renew_at)}; failures {detail.failures}")
    if detail.last_error:
        console.print(f"last error: {detail.last_error}", markup=False)
