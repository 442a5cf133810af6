"""Request and response bodies of usage metering and profitability (provider and tenants).

Money is integer micro-units (1,000,000 = one unit of `currency`); rates in basis points
(10,000 = 100 %); adoption in parts per million.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import InputModel, Instant
from api.schemas.provider import Slug
from models.db.enums import AdoptionBasis

Micros = Annotated[int, Field(ge=0, le=10**15, description="Micro-units of the currency.")]
Count = Annotated[int, Field(ge=0, le=10**12)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["USD"])]


class UsageEventIn(InputModel):
    """One usage event; `event_id` makes it idempotent."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=100, examples=["evt_01HV…"])
    tenant: Slug
    occurred_at: Instant
    agent_type: str | None = Field(
        default=None, max_length=64, description="None: activity that used no AI agent."
    )
    model_version: str | None = Field(default=None, max_length=200, examples=["summarizer@3"])
    tokens_in: Count = 0
    tokens_out: Count = 0
    requests: Count = 0
    end_user_key: str | None = Field(default=None, max_length=200)
    job_id: str | None = Field(default=None, max_length=200)


class UsageBatch(InputModel):
    """Up to 10,000 events, accepted whole or refused whole (the first bad row is named)."""

    model_config = ConfigDict(extra="forbid")

    events: list[UsageEventIn] = Field(min_length=1, max_length=10_000)


class UsageIngested(BaseModel):
    """What a batch did."""

    received: int
    inserted: int = Field(description="Events new to the platform.")
    duplicates: int = Field(description="Events whose event_id was stored already.")


class PlanCreate(InputModel):
    """A tenant's plan version from `effective_from` (a UTC day)."""

    model_config = ConfigDict(extra="forbid")

    tenant: Slug
    effective_from: date
    currency: Currency = "USD"
    monthly_fee_micros: Micros
    included_tokens: Micros
    overage_micros_per_1k_tokens: Micros


class AiCostCreate(InputModel):
    """What a model version costs from `effective_from`."""

    model_config = ConfigDict(extra="forbid")

    model_version: str = Field(min_length=1, max_length=200)
    effective_from: date
    currency: Currency = "USD"
    micros_per_1k_tokens_in: Micros
    micros_per_1k_tokens_out: Micros
    micros_per_request: Micros = 0


class InfrastructureCreate(InputModel):
    """The infrastructure cost allocation rule from `effective_from`."""

    model_config = ConfigDict(extra="forbid")

    effective_from: date
    currency: Currency = "USD"
    micros_per_request: Micros = 0
    micros_per_1k_tokens: Micros = 0
    micros_per_tenant_month: Micros = 0


class TierIn(InputModel):
    """One adoption tier."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    min_rate_bps: int = Field(ge=0, le=10_000)
    discount_bps: int = Field(ge=0, le=10_000)


class TiersCreate(InputModel):
    """Adoption discount tiers from `effective_from`."""

    model_config = ConfigDict(extra="forbid")

    effective_from: date
    basis: AdoptionBasis = AdoptionBasis.JOBS
    tiers: list[TierIn] = Field(min_length=1, max_length=50)


class PriceVersion(BaseModel):
    """A stored price version and whether this request created it."""

    kind: str
    id: Any
    effective_from: date
    values: dict[str, Any]
    created: bool
    periods_marked: int = Field(description="Tenant-months marked for the next rollup.")


class Profitability(BaseModel):
    """A tenant's figures for one day or month (provider only)."""

    model_config = ConfigDict(from_attributes=True)

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
    margin_bps: int | None = Field(description="Margin / revenue; null when revenue is 0.")
    adoption_basis: str | None
    adoption_ppm: int | None
    tier: str | None
    discount_bps: int
    unpriced_events: int
    ai_cost_breakdown: list[dict[str, Any]]


class Usage(BaseModel):
    """The calling tenant's own usage in one day or month."""

    model_config = ConfigDict(from_attributes=True)

    period_kind: str
    period_start: date
    events: int
    tokens_in: int
    tokens_out: int
    requests: int


class Discount(BaseModel):
    """The calling tenant's adoption discount in a month, explained."""

    model_config = ConfigDict(from_attributes=True)

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
