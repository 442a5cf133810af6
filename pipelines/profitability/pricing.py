"""Prices as versions in force from an effective date (a UTC day) until the next version, and
the exact money arithmetic of the rollup.

Money is integer micro-units (1 = 0.000001 of the currency). Figures are computed exactly (as
integer numerators over one denominator per tenant-month) and rounded once, half to even, to a
micro-unit at the end of each period; figures derived from rounded ones (gross revenue, net
revenue, margin) are integer sums and differences, never rounded again.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Protocol, TypeVar

from models.db.enums import AdoptionBasis

MICROS = 1_000_000
"""Micro-units per currency unit."""
DEFAULT_CURRENCY = "USD"
"""The currency of figures while no price names one."""


class Versioned(Protocol):
    @property
    def effective_from(self) -> date: ...


V = TypeVar("V", bound=Versioned)


def in_effect(versions: Sequence[V], day: date) -> V | None:
    """The version in force on `day`: the latest effective on or before it (sorted input)."""
    position = bisect.bisect_right([v.effective_from for v in versions], day)
    return versions[position - 1] if position else None


def day_by_day(versions: Sequence[V], days: Sequence[date]) -> list[V | None]:
    """The version in force on each of these ascending days (one pass, no search per day)."""
    found: list[V | None] = []
    position = 0
    current: V | None = None
    for day in days:
        while position < len(versions) and versions[position].effective_from <= day:
            current = versions[position]
            position += 1
        found.append(current)
    return found


def round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even (denominator > 0)."""
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def micros(amount: str | Decimal) -> int:
    """An amount in currency units (e.g. '49.99') as micro-units (at most 6 decimals)."""
    value = Decimal(amount)
    scaled = value * MICROS
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than 6 decimal places")
    return int(scaled)


def as_units(amount_micros: int) -> Decimal:
    """Micro-units as an exact Decimal amount in currency units."""
    return Decimal(amount_micros).scaleb(-6)


@dataclass(frozen=True)
class PlanVersion:
    """A tenant's plan from `effective_from`: monthly fee, included tokens, overage price."""

    effective_from: date
    currency: str
    monthly_fee_micros: int
    included_tokens: int
    overage_micros_per_1k_tokens: int


@dataclass(frozen=True)
class CostRate:
    """What a model version costs from `effective_from`: per 1,000 tokens in/out, per request."""

    model_version: str
    effective_from: date
    micros_per_1k_tokens_in: int
    micros_per_1k_tokens_out: int
    micros_per_request: int


@dataclass(frozen=True)
class InfrastructureRule:
    """Infrastructure cost allocated to a tenant from `effective_from`: per request, per 1,000
    tokens, and a fixed amount per active tenant-month spread evenly over the month's days."""

    effective_from: date
    micros_per_request: int
    micros_per_1k_tokens: int
    micros_per_tenant_month: int


@dataclass(frozen=True)
class Tier:
    """An adoption tier: reached at `min_rate_bps` (basis points of adoption), it discounts the
    AI add-on revenue by `discount_bps` basis points."""

    name: str
    min_rate_bps: int
    discount_bps: int


@dataclass(frozen=True)
class TierSchedule:
    """The adoption tiers from `effective_from`, measured on `basis`, lowest threshold first."""

    effective_from: date
    basis: AdoptionBasis
    tiers: tuple[Tier, ...]

    def reached(self, numerator: int, denominator: int) -> Tier | None:
        """The highest tier whose threshold the rate numerator/denominator reaches (exactly)."""
        if denominator <= 0:
            return None
        found = None
        for tier in self.tiers:
            if numerator * 10_000 >= tier.min_rate_bps * denominator:
                found = tier
        return found

    def next_after(self, tier: Tier | None) -> Tier | None:
        """The tier above `tier` (the lowest one when none is reached)."""
        if tier is None:
            return self.tiers[0] if self.tiers else None
        higher = [t for t in self.tiers if t.min_rate_bps > tier.min_rate_bps]
        return higher[0] if higher else None


def check_tiers(tiers: Sequence[Tier]) -> tuple[Tier, ...]:
    """Tiers sorted by threshold; ValueError naming the problem when they do not make a ladder."""
    if not tiers:
        raise ValueError("give at least one tier")
    ordered = tuple(sorted(tiers, key=lambda tier: tier.min_rate_bps))
    names = [tier.name for tier in ordered]
    if len(set(names)) != len(names):
        raise ValueError("tier names must differ")
    for tier in ordered:
        if not 0 <= tier.min_rate_bps <= 10_000 or not 0 <= tier.discount_bps <= 10_000:
            raise ValueError(f"tier {tier.name!r}: rates are basis points between 0 and 10000")
    thresholds = [tier.min_rate_bps for tier in ordered]
    if len(set(thresholds)) != len(thresholds):
        raise ValueError("two tiers have the same minimum adoption rate")
    return ordered


@dataclass(frozen=True)
class PriceBook:
    """Every price version the rollup needs, each sequence sorted by effective date."""

    currency: str = DEFAULT_CURRENCY
    plans: Mapping[str, tuple[PlanVersion, ...]] = field(default_factory=dict)
    """Organisation id (canonical UUID text) → its plan versions."""
    cost_rates: Mapping[str, tuple[CostRate, ...]] = field(default_factory=dict)
    """Model version → its cost rate versions."""
    infrastructure: tuple[InfrastructureRule, ...] = ()
    tiers: tuple[TierSchedule, ...] = ()
