"""Tenants' domains: claims on hostnames and their ownership checks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select

from models.db.enums import DomainStatus
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import Domain


class DomainRepository(Repository):
    """SQL for domains. Tenant reads always name the organisation."""

    ORDER = Keyset.of(Domain.created_at, Domain.id)
    """A tenant's listing: oldest first."""

    def add(self, domain: Domain) -> Domain:
        self.session.add(domain)
        self.session.flush()
        return domain

    def get(self, organization_id: uuid.UUID, domain_id: uuid.UUID) -> Domain | None:
        return self.session.scalars(
            select(Domain).where(Domain.id == domain_id, Domain.organization_id == organization_id)
        ).first()

    def get_any(self, domain_id: uuid.UUID) -> Domain | None:
        """A domain whatever its tenant (flows, the provider)."""
        return self.session.get(Domain, domain_id)

    def by_hostname(self, organization_id: uuid.UUID, hostname: str) -> Domain | None:
        return self.session.scalars(
            select(Domain).where(
                Domain.organization_id == organization_id, Domain.hostname == hostname
            )
        ).first()

    def verified_holder(self, hostname: str) -> Domain | None:
        """The claim holding `hostname` verified, of whichever tenant (platform scope)."""
        return self.session.scalars(
            select(Domain).where(
                Domain.hostname == hostname, Domain.status == DomainStatus.VERIFIED
            )
        ).first()

    def page_for(
        self, organization_id: uuid.UUID, *, after: Key | None, limit: int
    ) -> KeysetPage[Domain]:
        query = select(Domain).where(Domain.organization_id == organization_id)
        return self.page(query, self.ORDER, after=after, limit=limit)

    def due_for_check(self, now: datetime, *, limit: int) -> list[uuid.UUID]:
        """Claims whose next ownership check is due (released ones are not checked)."""
        query = (
            select(Domain.id)
            .where(
                Domain.status != DomainStatus.RELEASED,
                or_(Domain.next_check_at.is_(None), Domain.next_check_at <= now),
            )
            .order_by(Domain.next_check_at.asc().nulls_first(), Domain.id)
            .limit(limit)
        )
        return list(self.session.scalars(query))

    def lock(self, domain_id: uuid.UUID) -> Domain | None:
        """The domain, locked for update where the database can (PostgreSQL)."""
        return self.session.scalars(
            select(Domain).where(Domain.id == domain_id).with_for_update()
        ).first()

    def delete(self, domain: Domain) -> None:
        self.session.delete(domain)
        self.session.flush()
