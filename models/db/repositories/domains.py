"""Tenants' domains: claims on hostnames and their ownership checks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, or_, select

from models.db.enums import DomainStatus
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import Certificate, Domain, Organization


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

    def overview(
        self, organization_id: uuid.UUID, domain_id: uuid.UUID
    ) -> tuple[Domain, Certificate | None, str] | None:
        """One of a tenant's domains beside its certificate (if any) and the tenant's slug."""
        row = self.session.execute(
            self._overview_query().where(
                Domain.id == domain_id, Domain.organization_id == organization_id
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    def page_overview(
        self, organization_id: uuid.UUID | None, *, after: Key | None, limit: int
    ) -> KeysetPage[tuple[Domain, Certificate | None, str]]:
        """Domains beside their certificate (if any) and their tenant's slug, oldest first:
        one tenant's, or every tenant's for None (platform scope)."""
        query = self._overview_query()
        if organization_id is not None:
            query = query.where(Domain.organization_id == organization_id)
        return self.page(query, self.ORDER, after=after, limit=limit)

    @staticmethod
    def _overview_query() -> Select[Domain, Certificate, str]:
        return (
            select(Domain, Certificate, Organization.slug)
            .join(Organization, Organization.id == Domain.organization_id)
            .outerjoin(Certificate, Certificate.domain_id == Domain.id)
        )

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
