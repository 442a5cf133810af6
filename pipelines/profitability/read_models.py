"""The documents readers get about profitability: analysts' period figures, tenants' own usage
and discount explanations. Money is integer micro-units of `currency`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True)
class PeriodProfitability:
    """A tenant's figures for one day or month (provider analysts only)."""

    tenant: str
    period_kind: str
    period_start: date
    currency: str
    events: int
    tokens_in: int
    tokens_out: int
    requests: int
    subscription_micros: int
    overage_micros: int
    gross_revenue_micros: int
    discount_micros: int
    revenue_micros: int
    ai_cost_micros: int
    infra_cost_micros: int
    margin_micros: int
    margin_bps: int | None
    adoption_basis: str | None
    adoption_ppm: int | None
    tier: str | None
    discount_bps: int
    unpriced_events: int
    ai_cost_breakdown: list[dict[str, Any]]


@dataclass(frozen=True)
class TenantUsage:
    """A tenant's own usage in one day or month."""

    period_kind: str
    period_start: date
    events: int
    tokens_in: int
    tokens_out: int
    requests: int


@dataclass(frozen=True)
class DiscountExplanation:
    """Why a tenant got the adoption discount it got in a month."""

    period_start: date
    currency: str
    adoption_basis: str | None
    adoption_numerator: int
    adoption_denominator: int
    adoption_ppm: int | None
    tier: str | None
    discount_bps: int
    ai_addon_revenue_micros: int
    discount_micros: int
    next_tier: str | None
    next_tier_min_rate_bps: int | None
    tiers: list[dict[str, Any]]
