"""`streamflow profitability`: prices, the rollup, and what each tenant earns and costs."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import session
from flows.cli.output import JsonOption, emit, progress

app = typer.Typer(
    help="Prices, rollups and profitability per tenant (money in currency units).",
    no_args_is_help=True,
)
price = typer.Typer(help="Price versions by effective date (audited).", no_args_is_help=True)
app.add_typer(price, name="price")

Day = Annotated[str, typer.Option(help="YYYY-MM-DD (UTC).")]
Amount = Annotated[str, typer.Option(help="An amount in currency units, e.g. 49.99.")]
Period = Annotated[str, typer.Option(help="day or month.")]
Cursor = Annotated[str | None, typer.Option(help="`next_cursor` of the previous page.")]
Limit = Annotated[int, typer.Option(min=1, max=500)]


def _day(value: str | None, field: str) -> date | None:
    from pipelines.errors import InvalidInput

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date; give YYYY-MM-DD", field=field) from None


def _micros(value: str, field: str) -> int:
    from decimal import InvalidOperation

    from pipelines.errors import InvalidInput
    from pipelines.profitability.pricing import micros

    try:
        return micros(value)
    except (ValueError, InvalidOperation):
        raise InvalidInput(
            f"{value!r} is not an amount with at most 6 decimals, e.g. 49.99", field=field
        ) from None


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _changed(console: Console, change: Any) -> None:
    verb = "created" if change.created else "unchanged"
    console.print(
        f"{verb}: {change.kind} from {change.effective_from} "
        f"({change.periods_marked} tenant-months to recompute)"
    )


@price.command("plan")
def plan(
    tenant: str,
    effective_from: Day,
    monthly_fee: Amount,
    included_tokens: Annotated[int, typer.Option(min=0, help="Tokens per month in the fee.")],
    overage_per_1k: Amount,
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "USD",
    as_json: JsonOption = False,
) -> None:
    """Set a tenant's plan from a date: monthly fee, included tokens, overage per 1,000 tokens."""
    from flows.runtime import cli_actor
    from pipelines.profitability.service import set_tenant_plan

    with session() as opened:
        change = set_tenant_plan(
            opened,
            tenant=tenant,
            effective_from=_day(effective_from, "effective_from") or date.min,
            currency=currency,
            monthly_fee_micros=_micros(monthly_fee, "monthly_fee"),
            included_tokens=included_tokens,
            overage_micros_per_1k_tokens=_micros(overage_per_1k, "overage_per_1k"),
            actor=cli_actor(),
            now=_now(),
        )
    emit(change, as_json=as_json, render=_changed)


@price.command("ai-cost")
def ai_cost(
    model_version: str,
    effective_from: Day,
    per_1k_in: Amount,
    per_1k_out: Amount,
    per_request: Amount = "0",
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "USD",
    as_json: JsonOption = False,
) -> None:
    """Set what a model version costs from a date: per 1,000 tokens in and out, per request."""
    from flows.runtime import cli_actor
    from pipelines.profitability.service import set_ai_cost_rate

    with session() as opened:
        change = set_ai_cost_rate(
            opened,
            model_version=model_version,
            effective_from=_day(effective_from, "effective_from") or date.min,
            currency=currency,
            micros_per_1k_tokens_in=_micros(per_1k_in, "per_1k_in"),
            micros_per_1k_tokens_out=_micros(per_1k_out, "per_1k_out"),
            micros_per_request=_micros(per_request, "per_request"),
            actor=cli_actor(),
            now=_now(),
        )
    emit(change, as_json=as_json, render=_changed)


@price.command("infrastructure")
def infrastructure(
    effective_from: Day,
    per_request: Amount = "0",
    per_1k_tokens: Amount = "0",
    per_tenant_month: Amount = "0",
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "USD",
    as_json: JsonOption = False,
) -> None:
    """Set the infrastructure cost allocation rule from a date."""
    from flows.runtime import cli_actor
    from pipelines.profitability.service import set_infrastructure_rule

    with session() as opened:
        change = set_infrastructure_rule(
            opened,
            effective_from=_day(effective_from, "effective_from") or date.min,
            currency=currency,
            micros_per_request=_micros(per_request, "per_request"),
            micros_per_1k_tokens=_micros(per_1k_tokens, "per_1k_tokens"),
            micros_per_tenant_month=_micros(per_tenant_month, "per_tenant_month"),
            actor=cli_actor(),
            now=_now(),
        )
    emit(change, as_json=as_json, render=_changed)


@price.command("tiers")
def tiers(
    effective_from: Day,
    tier: Annotated[
        list[str],
        typer.Option(help="NAME:MIN_ADOPTION_%:DISCOUNT_%, e.g. silver:50:10 (repeat)."),
    ],
    basis: Annotated[str, typer.Option(help="jobs or users.")] = "jobs",
    as_json: JsonOption = False,
) -> None:
    """Set the adoption discount tiers from a date."""
    from decimal import Decimal, InvalidOperation

    from flows.runtime import cli_actor
    from pipelines.errors import InvalidInput
    from pipelines.profitability.pricing import Tier
    from pipelines.profitability.service import set_adoption_tiers

    parsed = []
    for text in tier:
        try:
            name, minimum, discount = text.split(":")
            parsed.append(Tier(name, int(Decimal(minimum) * 100), int(Decimal(discount) * 100)))
        except (ValueError, InvalidOperation):
            raise InvalidInput(
                f"{text!r} is not NAME:MIN_ADOPTION_%:DISCOUNT_%, e.g. silver:50:10", field="tier"
            ) from None
    with session() as opened:
        change = set_adoption_tiers(
            opened,
            effective_from=_day(effective_from, "effective_from") or date.min,
            basis=basis,
            tiers=parsed,
            actor=cli_actor(),
            now=_now(),
        )
    emit(change, as_json=as_json, render=_changed)


@app.command("rollup")
def rollup(
    since: Annotated[str | None, typer.Option(help="First month, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Month after the last, YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute profitability (a Prefect flow): changed periods, or every period of a range."""
    from flows.cli.server import announce
    from flows.profitability import run_rollup

    with progress(not as_json):
        result = run_rollup(
            since=_day(since, "since"), until=_day(until, "until"), announce=announce
        )
    emit(
        result,
        as_json=as_json,
        render=lambda console, r: console.print(
            f"{r.tenant_months} tenant-months from {r.events} events: {r.inserted} rows new, "
            f"{r.updated} changed, {r.unchanged} unchanged, {r.deleted} removed"
        ),
    )


def _money(value: int | None) -> str:
    from pipelines.profitability.pricing import as_units

    return "–" if value is None else f"{as_units(value):,.2f}"


def _percent(bps: int | None) -> str:
    return "–" if bps is None else f"{bps / 100:.2f}%"


def _periods(console: Console, page: Any) -> None:
    from rich.table import Table

    table = Table(
        "tenant",
        "period",
        "revenue",
        "discount",
        "AI cost",
        "infra",
        "margin",
        "margin %",
        "adoption",
        "tier",
    )
    for p in page.items:
        table.add_row(
            p.tenant,
            f"{p.period_kind} {p.period_start}",
            _money(p.revenue_micros),
            _money(p.discount_micros),
            _money(p.ai_cost_micros),
            _money(p.infra_cost_micros),
            _money(p.margin_micros),
            _percent(p.margin_bps),
            "–" if p.adoption_ppm is None else f"{p.adoption_ppm / 10_000:.1f}%",
            p.tier or "–",
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}")


@app.command("list")
def list_(
    period: Period = "month",
    since: Annotated[str | None, typer.Option(help="From this day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this day, YYYY-MM-DD.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    as_json: JsonOption = False,
) -> None:
    """Profitability by tenant and period, latest first."""
    from pipelines.profitability.views import periods_page

    with session() as opened:
        page = periods_page(
            opened,
            period_kind=period,
            since=_day(since, "since"),
            until=_day(until, "until"),
            tenant=tenant,
            cursor=cursor,
            limit=limit,
        )
    emit(page, as_json=as_json, render=_periods)


@app.command("rank")
def rank(
    month: Annotated[str, typer.Option(help="Any day of the month, YYYY-MM-DD.")],
    cursor: Cursor = None,
    limit: Limit = 50,
    as_json: JsonOption = False,
) -> None:
    """Tenants ranked by margin in a month, highest first."""
    from pipelines.profitability.views import ranking_page

    with session() as opened:
        page = ranking_page(
            opened, month=_day(month, "month") or date.min, cursor=cursor, limit=limit
        )
    emit(page, as_json=as_json, render=_periods)


@app.command("trend")
def trend(
    tenant: str,
    period: Period = "month",
    cursor: Cursor = None,
    limit: Limit = 50,
    as_json: JsonOption = False,
) -> None:
    """A tenant's figures over time, oldest first."""
    from pipelines.profitability.views import trend_page

    with session() as opened:
        page = trend_page(opened, tenant=tenant, period_kind=period, cursor=cursor, limit=limit)
    emit(page, as_json=as_json, render=_periods)


@app.command("export")
def export(
    file: Annotated[
        Path, typer.Argument(dir_okay=False, help="Where to write (.csv or .parquet).")
    ],
    period: Period = "month",
    since: Annotated[str | None, typer.Option(help="From this day, YYYY-MM-DD.")] = None,
    until: Annotated[str | None, typer.Option(help="Before this day, YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Export profitability by tenant and period as CSV or Parquet (by the file's suffix)."""
    from pipelines.profitability.views import export_periods

    with session() as opened:
        data = export_periods(
            opened,
            file_format=file.suffix.lower().lstrip("."),
            period_kind=period,
            since=_day(since, "since"),
            until=_day(until, "until"),
        )
    file.write_bytes(data)
    emit(
        {"file": str(file), "bytes": len(data)},
        as_json=as_json,
        render=lambda console, r: console.print(f"wrote {r['file']} ({r['bytes']} bytes)"),
    )
