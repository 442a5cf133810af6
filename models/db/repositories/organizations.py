"""Organisations: the provider and its tenants."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import Organization


class OrganizationRepository(Repository):
    """SQL for organisations."""

    TENANT_ORDER = Keyset.of(Organization.slug)
    """Tenants list by slug."""

    def get_by_slug(self, slug: str) -> Organization | None:
        return self.session.scalars(select(Organization).where(Organization.slug == slug)).first()

    def get(self, organization_id: uuid.UUID) -> Organization | None:
        return self.session.get(Organization, organization_id)

    def provider(self) -> Organization | None:
        return self.session.scalars(
            select(Organization)
            .where(Organization.kind == "provider")
            .order_by(Organization.created_at)
        ).first()

    def add(self, *, slug: str, name: str, kind: str) -> Organization:
        organization = Organization(slug=slug, name=name, kind=kind, status="active")
        self.session.add(organization)
        self.session.flush()
        return organization

    def page_tenants(self, *, after: Key | None, limit: int) -> KeysetPage[Organization]:
        """Tenants in `TENANT_ORDER`."""
        query = select(Organization).where(Organization.kind == "tenant")
        return self.page(query, self.TENANT_ORDER, after=after, limit=limit)

    def list(self) -> list[Organization]:
        return list(self.session.scalars(select(Organization).order_by(Organization.slug)))
