"""Domains as every reader sees them (API, CLI `--json`): one shape from service to client."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.db.enums import DomainStatus, OwnershipOutcome, RoutingOutcome
from pipelines.certificates.read_models import CertificateDetail


class DomainReadModel(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class OwnershipCheck(DomainReadModel):
    """The last ownership check: what was found, and a sentence about it."""

    outcome: OwnershipOutcome | None = Field(
        description="verified, wrong_value, missing, nxdomain, or unavailable (could not check)"
    )
    found: list[str] = Field(description="TXT values found at the record, if any")
    detail: str | None
    checked_at: datetime | None
    checks: int


class RoutingCheck(DomainReadModel):
    """Whether the hostname points at the platform (CNAME, A or AAAA), apart from ownership."""

    outcome: RoutingOutcome | None
    found: list[str]


class DomainDetail(DomainReadModel):
    """A tenant's domain: the record to publish, its ownership status and the last checks."""

    id: uuid.UUID
    hostname: str = Field(examples=["shop.example.com"])
    unicode_hostname: str = Field(examples=["bücher.example.com"])
    status: DomainStatus
    verification_record: str = Field(examples=["_streamflow-verification.shop.example.com"])
    verification_value: str = Field(description="The TXT value to publish at the record")
    ownership: OwnershipCheck
    routing: RoutingCheck
    verified_at: datetime | None
    failing_since: datetime | None = Field(
        description="First failed check since last verified; the domain lapses after the grace"
    )
    next_check_at: datetime | None
    certificate_status: str | None = Field(
        description="Status of the domain's certificate (see the certificates resource)"
    )
    created_at: datetime


class DomainOverview(DomainReadModel):
    """A domain beside its certificate and its tenant, as the dashboards list them."""

    organization_slug: str
    domain: DomainDetail
    certificate: CertificateDetail | None
