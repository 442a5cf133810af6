"""Organisations: the provider that runs the platform and the tenants it serves."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from models.db.repositories.audit import AuditRepository
from models.db.repositories.organizations import OrganizationRepository
from models.db.tables import Organization
from pipelines.errors import Conflict, InvalidInput, NotFound

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def ensure_organization(
    session: Session, *, slug: str, name: str, kind: str, actor: str
) -> tuple[Organization, bool]:
    """The organisation with `slug`, created (and audited) if it does not exist yet."""
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"organization slug {slug!r} must be lowercase letters, digits and dashes (max 63)"
        )
    if kind not in ("provider", "tenant"):
        raise InvalidInput(f"organization kind {kind!r} must be 'provider' or 'tenant'")
    organizations = OrganizationRepository(session)
    existing = organizations.get_by_slug(slug)
    if existing is not None:
        if existing.kind != kind:
            raise Conflict(f"organization {slug!r} exists as a {existing.kind}, not a {kind}")
        return existing, False
    if kind == "provider" and organizations.provider() is not None:
        raise Conflict("a provider organization exists already; there is one per installation")
    organization = organizations.add(slug=slug, name=name, kind=kind)
    AuditRepository(session).record(
        actor=actor,
        organization_id=organization.id,
        action="organization.created",
        target_type="organization",
        target_id=str(organization.id),
        details={"slug": slug, "kind": kind},
    )
    return organization, True


def get_organization(session: Session, slug: str) -> Organization:
    """The organisation with `slug`."""
    organization = OrganizationRepository(session).get_by_slug(slug)
    if organization is None:
        raise NotFound(
            f"organization {slug!r} not found; create it with `streamflow orgs create {slug}`"
        )
    return organization
