"""Use cases of profitability: price versions (audited, marking the periods they change) and
the incremental rollup into `tenant_profitability`.

The rollup works in two stages. Stage 1 aggregates the events of marked tenant-days (new or
late events mark their tenant-day; price changes, predictions served and on-demand ranges whole
tenant-months) into each day's exact usage, and keeps each tenant-month's usage as the sum of
its days (by difference: the stored month minus the days' old usage plus their new) and its
distinct job ids and end-user keys. Stage 2 computes a tenant-month's figures from its stored
usage and the price book alone, no events: the month row and the day rows from the first
marked day on (the days before it are unchanged; overage counts the tokens of every day before
in order). It compares the figures with the stored rows and writes only what changed (one bulk
upsert), so a rerun of the same range changes nothing. The caller commits each chunk of
tenant-months in one transaction, with its marks cleared: each period is fully old or fully
new. A mark carries a version raised at every mark; a rollup clears only marks still at the
version it read before extracting, so events committed after its extract keep their mark.
Chunks hold a lock (PostgreSQL) so two never apply their differences to one month at once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from models.db.enums import AdoptionBasis, OrganizationKind
from models.db.repositories.audit import record_audit
from models.db.repositories.profitability import ProfitabilityRepository
from models.db.repositories.profitability_usage import ProfitabilityUsageRepository
from models.db.repositories.usage import UsageRepository
from models.db.tables import (
    AdoptionTierSchedule,
    AiCostRate,
    InfrastructureCostRule,
    TenantPlan,
)
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.organizations import get_tenant
from pipelines.profitability.pricing import (
    DEFAULT_CURRENCY,
    CostRate,
    InfrastructureRule,
    PlanVersion,
    PriceBook,
    Tier,
    TierSchedule,
    check_tiers,
)
from pipelines.profitability.rollup import (
    DAY_USAGE,
    Workspace,
    add_counts,
    aggregate_days,
    combine_days,
    combo_changes,
    count_keys,
    figures_table,
    merge_months,
    month_of,
)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
COMPLETION_DAYS = 3
"""Days into a month during which scheduled rollups still complete the previous month."""
MAX_AMOUNT = 10**15
"""Largest amount or count a price may carry (micro-units or tokens)."""
EARLIEST_EFFECTIVE_DATE = date(2000, 1, 1)
"""No price takes effect before this day: a version from year 1 would mark, and roll up,
every month since then for every tenant it touches."""


# --- prices -----------------------------------------------------------------------------------


def _check_currency(session: Session, currency: str) -> None:
    if not _CURRENCY.match(currency):
        raise InvalidInput(
            f"currency {currency!r} must be an ISO 4217 code such as USD", field="currency"
        )
    other = ProfitabilityRepository(session).currencies() - {currency}
    if other:
        raise InvalidInput(
            f"prices here are in {', '.join(sorted(other))}; give every price in that currency",
            field="currency",
        )


def _check_effective_from(effective_from: date) -> None:
    if effective_from < EARLIEST_EFFECTIVE_DATE:
        raise InvalidInput(
            f"effective_from {effective_from} is before {EARLIEST_EFFECTIVE_DATE}; give the day "
            "the price takes effect, on or after that",
            field="effective_from",
        )


def _check_amounts(**amounts: int) -> None:
    for name, value in amounts.items():
        if not 0 <= value <= MAX_AMOUNT:
            raise InvalidInput(f"{name} must be between 0 and {MAX_AMOUNT}", field=name)


def _months_from(start: date, now: datetime) -> list[date]:
    """First days of the months from `start`'s through `now`'s."""
    months, month, last = [], month_of(start), month_of(now.date())
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _at_midnight(day: date) -> datetime:
    return datetime.combine(month_of(day), time(), tzinfo=UTC)


def _mark(
    session: Session, tenants: Sequence[uuid.UUID], effective_from: date, *, now: datetime
) -> int:
    months = _months_from(effective_from, now)
    return ProfitabilityRepository(session).mark_dirty(
        ((org, month) for org in tenants for month in months), now=now
    )


def _same(row: Any, values: dict[str, Any]) -> bool:
    return all(getattr(row, name) == value for name, value in values.items())


@dataclass(frozen=True)
class PriceChange:
    """A price version as stored, whether this call created it, and periods marked."""

    kind: str
    id: uuid.UUID
    effective_from: date
    values: dict[str, Any]
    created: bool
    periods_marked: int


def set_tenant_plan(
    session: Session,
    *,
    tenant: str,
    effective_from: date,
    currency: str,
    monthly_fee_micros: int,
    included_tokens: int,
    overage_micros_per_1k_tokens: int,
    actor: str,
    now: datetime,
) -> PriceChange:
    """A tenant's plan version from `effective_from` (the same one again: unchanged)."""
    _check_effective_from(effective_from)
    organization = get_tenant(session, tenant)
    _check_amounts(
        monthly_fee_micros=monthly_fee_micros,
        included_tokens=included_tokens,
        overage_micros_per_1k_tokens=overage_micros_per_1k_tokens,
    )
    values = {
        "currency": currency,
        "monthly_fee_micros": monthly_fee_micros,
        "included_tokens": included_tokens,
        "overage_micros_per_1k_tokens": overage_micros_per_1k_tokens,
    }
    prices = ProfitabilityRepository(session)
    existing = prices.plan_on(organization.id, effective_from)
    if existing is not None:
        if _same(existing, values):
            return PriceChange("plan", existing.id, effective_from, values, False, 0)
        raise Conflict(
            f"{tenant} has another plan from {effective_from}; plans are versions, so give "
            "the change its own effective date",
            field="effective_from",
        )
    _check_currency(session, currency)
    plan = prices.add(
        TenantPlan(
            organization_id=organization.id,
            effective_from=effective_from,
            created_by=actor,
            created_at=now,
            **values,
        )
    )
    marked = _mark(session, [organization.id], effective_from, now=now)
    record_audit(
        session,
        "tenant_plan.created",
        plan.id,
        actor=actor,
        organization_id=organization.id,
        details={"effective_from": effective_from.isoformat(), **values},
    )
    return PriceChange("plan", plan.id, effective_from, values, True, marked)


def set_ai_cost_rate(
    session: Session,
    *,
    model_version: str,
    effective_from: date,
    currency: str,
    micros_per_1k_tokens_in: int,
    micros_per_1k_tokens_out: int,
    micros_per_request: int,
    actor: str,
    now: datetime,
) -> PriceChange:
    """What a model version costs from `effective_from` (the same one again: unchanged)."""
    _check_effective_from(effective_from)
    if not model_version.strip() or len(model_version) > 200:
        raise InvalidInput("name the model version (at most 200 characters)", field="model_version")
    _check_amounts(
        micros_per_1k_tokens_in=micros_per_1k_tokens_in,
        micros_per_1k_tokens_out=micros_per_1k_tokens_out,
        micros_per_request=micros_per_request,
    )
    values = {
        "currency": currency,
        "micros_per_1k_tokens_in": micros_per_1k_tokens_in,
        "micros_per_1k_tokens_out": micros_per_1k_tokens_out,
        "micros_per_request": micros_per_request,
    }
    prices = ProfitabilityRepository(session)
    existing = prices.cost_rate_on(model_version, effective_from)
    if existing is not None:
        if _same(existing, values):
            return PriceChange("ai_cost_rate", existing.id, effective_from, values, False, 0)
        raise Conflict(
            f"{model_version} has another cost rate from {effective_from}; give the change "
            "its own effective date",
            field="effective_from",
        )
    _check_currency(session, currency)
    rate = prices.add(
        AiCostRate(
            model_version=model_version,
            effective_from=effective_from,
            created_by=actor,
            created_at=now,
            **values,
        )
    )
    tenants = prices.tenants_with_events_since(_at_midnight(effective_from), model_version)
    marked = _mark(session, tenants, effective_from, now=now)
    record_audit(
        session,
        "ai_cost_rate.created",
        rate.id,
        actor=actor,
        details={
            "model_version": model_version,
            "effective_from": effective_from.isoformat(),
            **values,
        },
    )
    return PriceChange("ai_cost_rate", rate.id, effective_from, values, True, marked)


def _everyone(session: Session, effective_from: date) -> list[uuid.UUID]:
    prices = ProfitabilityRepository(session)
    tenants = set(prices.tenants_with_plans())
    tenants.update(prices.tenants_with_events_since(_at_midnight(effective_from)))
    return sorted(tenants)


def set_infrastructure_rule(
    session: Session,
    *,
    effective_from: date,
    currency: str,
    micros_per_request: int,
    micros_per_1k_tokens: int,
    micros_per_tenant_month: int,
    actor: str,
    now: datetime,
) -> PriceChange:
    """The infrastructure cost allocation rule from `effective_from`."""
    _check_effective_from(effective_from)
    _check_amounts(
        micros_per_request=micros_per_request,
        micros_per_1k_tokens=micros_per_1k_tokens,
        micros_per_tenant_month=micros_per_tenant_month,
    )
    values = {
        "currency": currency,
        "micros_per_request": micros_per_request,
        "micros_per_1k_tokens": micros_per_1k_tokens,
        "micros_per_tenant_month": micros_per_tenant_month,
    }
    prices = ProfitabilityRepository(session)
    existing = prices.infrastructure_rule_on(effective_from)
    if existing is not None:
        if _same(existing, values):
            return PriceChange("infrastructure_rule", existing.id, effective_from, values, False, 0)
        raise Conflict(
            f"another infrastructure rule starts on {effective_from}; give the change its own "
            "effective date",
            field="effective_from",
        )
    _check_currency(session, currency)
    rule = prices.add(
        InfrastructureCostRule(
            effective_from=effective_from, created_by=actor, created_at=now, **values
        )
    )
    marked = _mark(session, _everyone(session, effective_from), effective_from, now=now)
    record_audit(
        session,
        "infrastructure_rule.created",
        rule.id,
        actor=actor,
        details={"effective_from": effective_from.isoformat(), **values},
    )
    return PriceChange("infrastructure_rule", rule.id, effective_from, values, True, marked)


def set_adoption_tiers(
    session: Session,
    *,
    effective_from: date,
    basis: str,
    tiers: Sequence[Tier],
    actor: str,
    now: datetime,
) -> PriceChange:
    """The adoption discount tiers from `effective_from`."""
    _check_effective_from(effective_from)
    if basis not in tuple(AdoptionBasis):
        raise InvalidInput(f"basis {basis!r} must be 'jobs' or 'users'", field="basis")
    try:
        ordered = check_tiers(tiers)
    except ValueError as error:
        raise InvalidInput(str(error), field="tiers") from None
    values: dict[str, Any] = {"basis": basis, "tiers": [asdict(tier) for tier in ordered]}
    prices = ProfitabilityRepository(session)
    existing = prices.tier_schedule_on(effective_from)
    if existing is not None:
        if _same(existing, values):
            return PriceChange("adoption_tiers", existing.id, effective_from, values, False, 0)
        raise Conflict(
            f"other adoption tiers start on {effective_from}; give the change its own "
            "effective date",
            field="effective_from",
        )
    schedule = prices.add(
        AdoptionTierSchedule(
            effective_from=effective_from, created_by=actor, created_at=now, **values
        )
    )
    marked = _mark(session, _everyone(session, effective_from), effective_from, now=now)
    record_audit(
        session,
        "adoption_tiers.created",
        schedule.id,
        actor=actor,
        details={"effective_from": effective_from.isoformat(), **values},
    )
    return PriceChange("adoption_tiers", schedule.id, effective_from, values, True, marked)


def cost_rates(session: Session) -> dict[str, tuple[CostRate, ...]]:
    """Every model version's AI cost rate versions, by effective date."""
    rates: dict[str, list[CostRate]] = {}
    for rate in ProfitabilityRepository(session).cost_rates():
        rates.setdefault(rate.model_version, []).append(
            CostRate(
                rate.model_version,
                rate.effective_from,
                rate.micros_per_1k_tokens_in,
                rate.micros_per_1k_tokens_out,
                rate.micros_per_request,
            )
        )
    return {model: tuple(versions) for model, versions in rates.items()}


def price_book(session: Session, organization_ids: Sequence[uuid.UUID] | None = None) -> PriceBook:
    """Every price version (plans of these tenants only, when given)."""
    prices = ProfitabilityRepository(session)
    plans: dict[str, list[PlanVersion]] = {}
    for plan in prices.plans(organization_ids):
        plans.setdefault(str(plan.organization_id), []).append(
            PlanVersion(
                plan.effective_from,
                plan.currency,
                plan.monthly_fee_micros,
                plan.included_tokens,
                plan.overage_micros_per_1k_tokens,
            )
        )
    rates = cost_rates(session)
    currencies = prices.currencies()
    return PriceBook(
        currency=min(currencies) if currencies else DEFAULT_CURRENCY,
        plans={org: tuple(versions) for org, versions in plans.items()},
        cost_rates=rates,
        infrastructure=tuple(
            InfrastructureRule(
                rule.effective_from,
                rule.micros_per_request,
                rule.micros_per_1k_tokens,
                rule.micros_per_tenant_month,
            )
            for rule in prices.infrastructure_rules()
        ),
        tiers=tuple(
            TierSchedule(
                schedule.effective_from,
                AdoptionBasis(schedule.basis),
                tuple(Tier(**tier) for tier in schedule.tiers),
            )
            for schedule in prices.tier_schedules()
        ),
    )


# --- the rollup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollupPlan:
    """The tenant-months a rollup computes, in order."""

    targets: list[tuple[uuid.UUID, date]]
    started_at: datetime
    through: date
    rebuild: bool = False
    """Aggregate every target tenant-month's events again (a range asked for), not only its
    marked days."""


def plan_rollup(
    session: Session,
    *,
    now: datetime,
    since: date | None = None,
    until: date | None = None,
) -> RollupPlan:
    """What to compute: the marked tenant-months; with a range [since, until) of months, every
    tenant-month in it with events or a plan as well. Without a range, the current month of
    every tenant with a plan is computed too (fees accrue by the day), and in the first
    `COMPLETION_DAYS` days of a month the previous one."""
    prices = ProfitabilityRepository(session)
    through = now.date()
    if since is not None and until is not None and until <= since:
        raise InvalidInput("the range is empty: until must come after since", field="until")
    start = month_of(since) if since else None
    end = month_of(until) if until else None
    targets = set(prices.dirty(since=start, until=end))
    targets.update(prices.dirty_day_months(since=start, until=end))
    if since is not None or until is not None:
        first = start or date(2000, 1, 1)
        last = end or date(month_of(through).year + 1, 1, 1)
        months = [m for m in _months_from(first, now) if m < last]
        planned = prices.tenants_with_plans()
        for month in months:
            following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
            active = prices.tenants_with_events_between(
                _at_midnight(month), _at_midnight(following)
            )
            targets.update((org, month) for org in {*planned, *active})
    else:
        # The current month accrues by the day; in its first days the previous month is
        # recomputed too, so its last day is complete even if a run was missed at its end.
        current = month_of(through)
        months = [current]
        if through.day <= COMPLETION_DAYS:
            months.append(month_of(current - timedelta(days=1)))
        for org in prices.tenants_with_plans():
            targets.update((org, month) for month in months)
    future = month_of(through)
    return RollupPlan(
        sorted(t for t in targets if t[1] <= future),
        now,
        through,
        rebuild=since is not None or until is not None,
    )


@dataclass(frozen=True)
class RollupResult:
    """What one rollup (or chunk of it) wrote."""

    tenant_months: int
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    events: int

    def __add__(self, other: RollupResult) -> RollupResult:
        return RollupResult(
            *(getattr(self, name) + getattr(other, name) for name in self.__dataclass_fields__)
        )


EMPTY = RollupResult(0, 0, 0, 0, 0, 0)


def _spans(days: Sequence[tuple[uuid.UUID, date]]) -> list[tuple[uuid.UUID, date, date]]:
    """Days as spans (organisation, first day, day after the last) of consecutive days."""
    spans: list[tuple[uuid.UUID, date, date]] = []
    for org, day in sorted(set(days)):
        if spans and spans[-1][0] == org and spans[-1][2] == day:
            spans[-1] = (org, spans[-1][1], day + timedelta(days=1))
        else:
            spans.append((org, day, day + timedelta(days=1)))
    return spans


def _following(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def rollup_chunk(
    session: Session,
    targets: Sequence[tuple[uuid.UUID, date]],
    *,
    through: date,
    now: datetime,
    rebuild: bool = False,
    threads: int | None = None,
    extracted: Callable[[], None] | None = None,
    step: Callable[[str], None] | None = None,
) -> RollupResult:
    """Compute these tenant-months and write what changed; clears the marks it read before
    extracting (see `store_figures`). One call is one unit of work for the caller to commit.

    Marked days (and whole tenant-months marked, or all with `rebuild`) are aggregated again
    from their events; the figures are then computed from the stored usage. `extracted`, when
    given, is called once the events are extracted (a test commits a concurrent ingest
    there); `step`, when given, with the name of each step done (the bench times them)."""
    if not targets:
        return EMPTY
    done = step or (lambda _: None)
    stored = ProfitabilityUsageRepository(session)
    stored.lock()
    prices = ProfitabilityRepository(session)
    # The marks are read before the extract: an ingest whose mark is seen here committed
    # before the extract started (each statement sees what was committed before it), so its
    # events are computed; a later one raises its mark's version and the mark stays.
    seen = prices.dirty_versions(targets)
    seen_days = prices.dirty_day_versions(targets)
    whole = set(targets) if rebuild else {target for target in targets if target in seen}
    marked_days: dict[tuple[uuid.UUID, date], list[date]] = {}
    for org, day in seen_days:
        if (org, month_of(day)) not in whole:
            marked_days.setdefault((org, month_of(day)), []).append(day)
    stored.open_months((org, month, month) for org, month in targets)
    last_rows = stored.last_day_rows()
    from_days: dict[tuple[uuid.UUID, date], date] = {}
    for target in targets:
        if target in whole:
            from_days[target] = target[1]
            continue
        last = last_rows.get(target)
        # A day after the last one written accrues its fee even without events.
        start = last + timedelta(days=1) if last is not None else target[1]
        from_days[target] = min([start, *marked_days.get(target, [])])
    # A tenant-month with nothing marked whose rows reach `through` (or its last day) has
    # figures that cannot change (new events mark their day, prices their months): an hourly
    # run with nothing new computes and compares nothing. Its month row counts as unchanged.
    idle = {
        target
        for target in targets
        if target not in whole
        and target not in marked_days
        and last_rows.get(target) == min(through, _following(target[1]) - timedelta(days=1))
    }
    if idle:
        targets = [target for target in targets if target not in idle]
        if not targets:
            done("marks")
            return RollupResult(len(idle), 0, 0, len(idle), 0, 0)
    spans = [(org, month, _following(month)) for org, month in sorted(whole)]
    spans += _spans([(org, day) for (org, _), days in marked_days.items() for day in days])
    done("marks")
    events = UsageRepository(session).extract_spans(spans)
    if extracted is not None:
        extracted()
    done("extract")
    book = price_book(session, sorted({org for org, _ in targets}))
    with Workspace(threads) as workspace:
        new_days, keys = aggregate_days(events, book, workspace=workspace)
        done("aggregate")
        stored.open_months((org, month, from_days[(org, month)]) for org, month in targets)
        # Every day of a month rebuilt is aggregated again: none of its stored days is read.
        rebuilt_all = whole == set(targets)
        days, old_days = combine_days(
            DAY_USAGE.empty_table() if rebuilt_all else stored.day_usage(),
            new_days,
            [(str(org), a, b) for org, a, b in spans],
            workspace=workspace,
        )
        stored.replace_days(spans, new_days)
        changed = whole | set(marked_days)
        if changed == whole:
            # Every month rebuilt: its keys are all new, counted here, not looked up.
            stored.add_keys(keys, rebuilt=sorted(whole), gained=False)
            gained = count_keys(keys, workspace=workspace)
        else:
            gained = stored.add_keys(keys, rebuilt=sorted(whole))
        months = stored.month_usage()
        differed = changed - whole
        redone = old_days.filter(pa.array(_in(old_days, differed, "day"), pa.bool_()))
        # Usage by agent type and model version: months of marked days change by the days'
        # new usage minus their old; whole months are their days' new usage alone.
        combos = combo_changes(redone, new_days, workspace=workspace)
        stored.add_combos(combos, rebuilt=sorted(whole), only=changed == whole)
        if not rebuilt_all:
            combos = stored.month_combos()
        if changed:
            # Months of marked days: the stored month minus the days' old usage plus their
            # new, their distinct counts plus the keys gained; whole months: their days' new
            # usage alone.
            old_months = months.filter(pa.array(_in(months, differed, "month"), pa.bool_()))
            merged = merge_months(
                old_months,
                redone,
                new_days,
                add_counts(old_months, gained, workspace=workspace),
                combos,
                workspace=workspace,
            )
            stored.replace_months(sorted(changed), merged)
            unchanged = [not inside for inside in _in(months, changed, "month")]
            months = pa.concat_tables([months.filter(pa.array(unchanged, pa.bool_())), merged])
        done("usage")
        figures = figures_table(
            days,
            months,
            combos,
            [(str(org), month, from_days[(org, month)]) for org, month in targets],
            book,
            through=through,
            workspace=workspace,
        )
    done("figures")
    result = store_figures(
        session,
        targets,
        figures,
        seen=seen,
        now=now,
        events=events.num_rows,
        from_days=from_days,
    ) + RollupResult(len(idle), 0, 0, len(idle), 0, 0)
    # A day after `through` was aggregated but has no figures yet: its mark stays.
    prices.clear_dirty_days({key: v for key, v in seen_days.items() if key[1] <= through})
    done("store")
    return result


def _in(table: pa.Table, months: set[tuple[uuid.UUID, date]], column: str) -> list[bool]:
    """Whether each row (organisation id, day or month) falls in one of these tenant-months."""
    return [
        (uuid.UUID(org), period.replace(day=1)) in months
        for org, period in zip(
            table.column("organization_id").to_pylist(),
            table.column(column).to_pylist(),
            strict=True,
        )
    ]


def store_figures(
    session: Session,
    targets: Sequence[tuple[uuid.UUID, date]],
    figures: pa.Table,
    *,
    seen: Mapping[tuple[uuid.UUID, date], int],
    now: datetime,
    events: int = 0,
    from_days: Mapping[tuple[uuid.UUID, date], date] | None = None,
) -> RollupResult:
    """Write the figures (`rollup_table`'s rows) of these tenant-months in bulk: insert new
    rows, update changed ones, delete rows that no longer have figures; unchanged rows are not
    touched. Then clear the marks `seen` (versions read before the events were extracted)."""
    repository = ProfitabilityRepository(session)
    inserted, updated, unchanged, deleted = repository.upsert_figures(
        targets, figures, now=now, from_days=from_days
    )
    repository.clear_dirty(seen)
    return RollupResult(len(targets), inserted, updated, unchanged, deleted, events)


def tenant_id(session: Session, slug: str) -> uuid.UUID:
    """The id of the tenant `slug` (NotFound otherwise)."""
    organization = get_tenant(session, slug)
    if organization.kind != OrganizationKind.TENANT:
        raise NotFound(f"tenant {slug!r} not found", field="tenant")
    return organization.id
