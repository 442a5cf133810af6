"""Domains as readers get them (API, CLI): read models of a tenant's domains."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.db.enums import DomainStatus, OwnershipOutcome
from models.db.repositories.certificates import CertificateRepository
from models.db.repositories.domains import DomainRepository
from models.db.tables import Certificate, Domain
from pipelines.certificates.views import certificate_detail
from pipelines.domains.hostnames import normalize_hostname, verification_record_name
from pipelines.domains.read_models import (
    DomainDetail,
    DomainOverview,
    OwnershipCheck,
    RoutingCheck,
)
from pipelines.errors import NotFound
from pipelines.pagination import Paged, after_key, as_paged


def domain_detail_of(session: Session, domain: Domain) -> DomainDetail:
    return domain_detail(domain, CertificateRepository(session).for_domain(domain.id))


def domain_detail(domain: Domain, certificate: Certificate | None) -> DomainDetail:
    """The read model of a domain whose certificate (or None) the caller has at hand."""
    return DomainDetail(
        id=domain.id,
        hostname=domain.hostname,
        unicode_hostname=domain.unicode_hostname,
        status=DomainStatus(domain.status),
        verification_record=verification_record_name(domain.hostname),
        verification_value=domain.verification_token,
        ownership=OwnershipCheck(
            outcome=OwnershipOutcome(domain.ownership_outcome)
            if domain.ownership_outcome
            else None,
            found=list(domain.ownership_found),
            detail=domain.ownership_detail,
            checked_at=domain.last_checked_at,
            checks=domain.checks,
        ),
        routing=RoutingCheck.model_validate(
            {"outcome": domain.routing_outcome, "found": list(domain.routing_found)}
        ),
        verified_at=domain.verified_at,
        failing_since=domain.failing_since,
        next_check_at=domain.next_check_at,
        certificate_status=certificate.status if certificate else None,
        created_at=domain.created_at,
    )


def get_domain(
    session: Session, *, organization_id: uuid.UUID, domain_id: uuid.UUID
) -> DomainDetail:
    domain = DomainRepository(session).get(organization_id, domain_id)
    if domain is None:
        raise NotFound(f"domain {domain_id} not found", field="domain_id")
    return domain_detail_of(session, domain)


def domains_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[DomainDetail]:
    """A tenant's domains, oldest first."""
    page = DomainRepository(session).page_for(
        organization_id, after=after_key(cursor, DomainRepository.ORDER), limit=limit
    )
    return as_paged(page, lambda domain: domain_detail_of(session, domain))


def domain_overviews_page(
    session: Session, *, organization_id: uuid.UUID | None, cursor: str | None, limit: int
) -> Paged[DomainOverview]:
    """Domains with their certificates, oldest first: one tenant's (its dashboard), or every
    tenant's for None (the provider's, in platform scope)."""
    page = DomainRepository(session).page_overview(
        organization_id, after=after_key(cursor, DomainRepository.ORDER), limit=limit
    )
    return as_paged(page, _overview)


def domain_overview(
    session: Session, *, organization_id: uuid.UUID, domain_id: uuid.UUID
) -> DomainOverview:
    """One of a tenant's domains with its certificate, or NotFound (another tenant's too)."""
    row = DomainRepository(session).overview(organization_id, domain_id)
    if row is None:
        raise NotFound(f"domain {domain_id} not found", field="domain_id")
    return _overview(row)


def _overview(row: tuple[Domain, Certificate | None, str]) -> DomainOverview:
    domain, certificate, slug = row
    return DomainOverview(
        organization_slug=slug,
        domain=domain_detail(domain, certificate),
        certificate=certificate_detail(certificate, domain.hostname) if certificate else None,
    )


def find_domain(session: Session, *, organization_id: uuid.UUID, reference: str) -> Domain:
    """A tenant's domain named by id or hostname (the CLI)."""
    domains = DomainRepository(session)
    try:
        found = domains.get(organization_id, uuid.UUID(reference))
    except ValueError:
        name = normalize_hostname(reference)
        found = domains.by_hostname(organization_id, name.ascii)
    if found is None:
        raise NotFound(f"domain {reference!r} not found", field="domain")
    return found
