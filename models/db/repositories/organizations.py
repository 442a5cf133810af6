"""Organisations: the provider and its tenants."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.tables import Organization


class OrganizationRepository:
    """SQL for organisations."""

    def __init__(self, session: Session) -> None:
        self.session = session

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

    def page_tenants(self, *, after_slug: str | None, limit: int) -> list[Organization]:
        """Tenants by slug, a page at a time (keyset on slug)."""
        query = (
            select(Organization)
            .where(Organization.kind == "tenant")
            .order_by(Organization.slug)
            .limit(limit)
        )
        if after_slug is not None:
            query = query.where(Organization.slug > after_slug)
        return list(self.session.scalars(query))

    def list(self) -> list[Organization]:
        return list(self.session.scalars(select(Organization).order_by(Organization.slug)))
