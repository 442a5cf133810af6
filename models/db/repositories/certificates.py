"""Certificates of domains, their ACME attempts, the ACME accounts and HTTP-01 answers."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, delete, or_, select, update

from models.db.enums import CertificateAttemptStatus, CertificateStatus, DomainStatus
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import (
    AcmeAccount,
    Certificate,
    CertificateAttempt,
    Domain,
    Http01Challenge,
)


class CertificateRepository(Repository):
    """SQL for certificates and their attempts."""

    ORDER = Keyset.of(Certificate.created_at, Certificate.id)
    """A tenant's listing: oldest first."""
    ATTEMPT_ORDER = Keyset.of(CertificateAttempt.started_at, CertificateAttempt.id, descending=True)
    """Attempts: newest first."""

    def get(self, organization_id: uuid.UUID, certificate_id: uuid.UUID) -> Certificate | None:
        return self.session.scalars(
            select(Certificate).where(
                Certificate.id == certificate_id, Certificate.organization_id == organization_id
            )
        ).first()

    def get_any(self, certificate_id: uuid.UUID) -> Certificate | None:
        return self.session.get(Certificate, certificate_id)

    def for_domain(self, domain_id: uuid.UUID) -> Certificate | None:
        return self.session.scalars(
            select(Certificate).where(Certificate.domain_id == domain_id)
        ).first()

    def add(self, certificate: Certificate) -> Certificate:
        self.session.add(certificate)
        self.session.flush()
        return certificate

    def page_for(
        self, organization_id: uuid.UUID, *, after: Key | None, limit: int
    ) -> KeysetPage[tuple[Certificate, Domain]]:
        query = (
            select(Certificate, Domain)
            .join(Domain, Domain.id == Certificate.domain_id)
            .where(Certificate.organization_id == organization_id)
        )
        return self.page(query, self.ORDER, after=after, limit=limit)

    def expiring(self, before: datetime, *, limit: int) -> list[Certificate]:
        """Valid certificates whose term ends before `before` (platform scope)."""
        query = (
            select(Certificate)
            .where(
                Certificate.status == CertificateStatus.VALID,
                Certificate.not_after.is_not(None),
                Certificate.not_after < before,
            )
            .order_by(Certificate.not_after)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def due_domains(self, now: datetime, *, limit: int) -> list[uuid.UUID]:
        """Verified domains needing an order: no certificate yet, a retry due, or renewal due."""
        query = (
            select(Domain.id)
            .outerjoin(Certificate, Certificate.domain_id == Domain.id)
            .where(
                Domain.status == DomainStatus.VERIFIED,
                or_(
                    Certificate.id.is_(None),
                    and_(
                        Certificate.status.in_(
                            [CertificateStatus.PENDING, CertificateStatus.FAILED]
                        ),
                        or_(
                            Certificate.next_attempt_at.is_(None),
                            Certificate.next_attempt_at <= now,
                        ),
                    ),
                    and_(
                        Certificate.status == CertificateStatus.VALID,
                        Certificate.renew_at <= now,
                        or_(
                            Certificate.next_attempt_at.is_(None),
                            Certificate.next_attempt_at <= now,
                        ),
                    ),
                ),
            )
            .order_by(Domain.created_at, Domain.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def valid_certificates(self, *, limit: int) -> list[Certificate]:
        return list(
            self.session.scalars(
                select(Certificate)
                .where(Certificate.status == CertificateStatus.VALID)
                .order_by(Certificate.renew_at, Certificate.id)
                .limit(limit)
            )
        )

    def running_attempt(self, certificate_id: uuid.UUID) -> CertificateAttempt | None:
        return self.session.scalars(
            select(CertificateAttempt).where(
                CertificateAttempt.certificate_id == certificate_id,
                CertificateAttempt.status == CertificateAttemptStatus.RUNNING,
            )
        ).first()

    def abandon_attempt(self, attempt_id: uuid.UUID, *, now: datetime) -> bool:
        """End a running attempt whose lease expired; False if it ended meanwhile."""
        result = self.session.execute(
            update(CertificateAttempt)
            .where(
                CertificateAttempt.id == attempt_id,
                CertificateAttempt.status == CertificateAttemptStatus.RUNNING,
            )
            .values(
                status=CertificateAttemptStatus.ABANDONED,
                finished_at=now,
                error="the lease expired before the attempt finished",
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def add_attempt(self, attempt: CertificateAttempt) -> CertificateAttempt:
        self.session.add(attempt)
        self.session.flush()
        return attempt

    def get_attempt(self, attempt_id: uuid.UUID) -> CertificateAttempt | None:
        return self.session.get(CertificateAttempt, attempt_id)

    def page_attempts(
        self,
        organization_id: uuid.UUID,
        certificate_id: uuid.UUID,
        *,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[CertificateAttempt]:
        query = select(CertificateAttempt).where(
            CertificateAttempt.organization_id == organization_id,
            CertificateAttempt.certificate_id == certificate_id,
        )
        return self.page(query, self.ATTEMPT_ORDER, after=after, limit=limit)


class AcmeAccountRepository(Repository):
    """SQL for the platform's ACME accounts (one per directory URL)."""

    def by_directory(self, directory_url: str) -> AcmeAccount | None:
        return self.session.scalars(
            select(AcmeAccount).where(AcmeAccount.directory_url == directory_url)
        ).first()

    def get(self, account_id: uuid.UUID) -> AcmeAccount | None:
        return self.session.get(AcmeAccount, account_id)

    def add(self, account: AcmeAccount) -> AcmeAccount:
        self.session.add(account)
        self.session.flush()
        return account


class Http01Repository(Repository):
    """SQL for pending HTTP-01 answers."""

    def put(self, challenge: Http01Challenge) -> None:
        self.session.merge(challenge)
        self.session.flush()

    def answer(self, token: str, *, now: datetime) -> Http01Challenge | None:
        return self.session.scalars(
            select(Http01Challenge).where(
                Http01Challenge.token == token, Http01Challenge.expires_at > now
            )
        ).first()

    def drop(self, token: str) -> None:
        self.session.execute(delete(Http01Challenge).where(Http01Challenge.token == token))

    def drop_expired(self, now: datetime) -> None:
        self.session.execute(delete(Http01Challenge).where(Http01Challenge.expires_at <= now))
