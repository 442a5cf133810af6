"""Certificates as readers get them (API, CLI): status, validity, attempts; never keys."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.db.enums import CertificateStatus
from models.db.repositories.certificates import CertificateRepository
from models.db.repositories.domains import DomainRepository
from models.db.tables import Certificate
from pipelines.certificates.read_models import CertificateAttemptView, CertificateDetail
from pipelines.errors import NotFound
from pipelines.pagination import Paged, after_key, as_paged


def certificate_detail_of(session: Session, certificate: Certificate) -> CertificateDetail:
    domain = DomainRepository(session).get_any(certificate.domain_id)
    return certificate_detail(certificate, domain.hostname if domain else certificate.hostnames[0])


def certificate_detail(certificate: Certificate, hostname: str) -> CertificateDetail:
    """The read model of a certificate whose domain's hostname the caller has at hand."""
    return CertificateDetail(
        id=certificate.id,
        domain_id=certificate.domain_id,
        hostname=hostname,
        hostnames=list(certificate.hostnames),
        status=CertificateStatus(certificate.status),
        serial=certificate.serial,
        not_before=certificate.not_before,
        not_after=certificate.not_after,
        renew_at=certificate.renew_at,
        issued_at=certificate.issued_at,
        revoked_at=certificate.revoked_at,
        failures=certificate.failures,
        next_attempt_at=certificate.next_attempt_at,
        last_error=certificate.last_error,
    )


def get_certificate(
    session: Session, *, organization_id: uuid.UUID, certificate_id: uuid.UUID
) -> CertificateDetail:
    certificate = CertificateRepository(session).get(organization_id, certificate_id)
    if certificate is None:
        raise NotFound(f"certificate {certificate_id} not found", field="certificate_id")
    return certificate_detail_of(session, certificate)


def certificate_of_domain(
    session: Session, *, organization_id: uuid.UUID, domain_id: uuid.UUID
) -> CertificateDetail:
    domain = DomainRepository(session).get(organization_id, domain_id)
    certificate = CertificateRepository(session).for_domain(domain_id) if domain else None
    if certificate is None:
        raise NotFound(f"domain {domain_id} has no certificate yet", field="domain_id")
    return certificate_detail_of(session, certificate)


def certificates_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[CertificateDetail]:
    page = CertificateRepository(session).page_for(
        organization_id, after=after_key(cursor, CertificateRepository.ORDER), limit=limit
    )
    return as_paged(page, lambda row: certificate_detail_of(session, row[0]))


def attempts_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    certificate_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> Paged[CertificateAttemptView]:
    certificates = CertificateRepository(session)
    if certificates.get(organization_id, certificate_id) is None:
        raise NotFound(f"certificate {certificate_id} not found", field="certificate_id")
    page = certificates.page_attempts(
        organization_id,
        certificate_id,
        after=after_key(cursor, CertificateRepository.ATTEMPT_ORDER),
        limit=limit,
    )
    return as_paged(page, CertificateAttemptView.model_validate)
