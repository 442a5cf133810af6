"""Organisations: the provider that runs the platform and the tenants it serves."""

from __future__ import annotations

import re
import uuid

from sqlalchemy.orm import Session

from models.db.enums import OrganizationKind
from models.db.repositories.audit import record_audit
from models.db.repositories.organizations import OrganizationRepository
from models.db.tables import Organization
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.pagination import Paged, after_key, as_paged

_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def ensure_organization(
    session: Session, *, slug: str, name: str, kind: str, actor: str
) -> tuple[Organization, bool]:
    """The organisation with `slug`, created (and audited) if it does not exist yet."""
    if not _SLUG.match(slug):
        raise InvalidInput(
            f"organization slug {slug!r} must be lowercase letters, digits and dashes (max 63)",
            field="slug",
        )
    if kind not in tuple(OrganizationKind):
        raise InvalidInput(
            f"organization kind {kind!r} must be 'provider' or 'tenant'", field="kind"
        )
    organizations = OrganizationRepository(session)
    existing = organizations.get_by_slug(slug)
    if existing is not None:
        if existing.kind != kind:
            raise Conflict(f"organization {slug!r} exists as a {existing.kind}, not a {kind}")
        return existing, False
    if kind == OrganizationKind.PROVIDER and organizations.provider() is not None:
        raise Conflict("a provider organization exists already; there is one per installation")
    organization = organizations.add(slug=slug, name=name, kind=kind)
    record_audit(
        session,
        "organization.created",
        organization.id,
        actor=actor,
        organization_id=organization.id,
        details={"slug": slug, "kind": kind},
    )
    return organization, True


def get_organization(session: Session, slug: str) -> Organization:
    """The organisation with `slug`."""
    organization = OrganizationRepository(session).get_by_slug(slug)
    if organization is None:
        raise NotFound(f"organization {slug!r} not found", field="organization")
    return organization


def get_tenant(session: Session, slug: str) -> Organization:
    """The tenant with `slug` (the provider organisation is not a tenant)."""
    organization = OrganizationRepository(session).get_by_slug(slug)
    if organization is None or organization.kind != OrganizationKind.TENANT:
        raise NotFound(f"tenant {slug!r} not found")
    return organization


def create_tenant(session: Session, *, slug: str, name: str, actor: str) -> Organization:
    """A new tenant; Conflict when the slug is taken."""
    if not name.strip():
        raise InvalidInput("name: give the tenant a display name, e.g. 'Acme Ltd'")
    if OrganizationRepository(session).get_by_slug(slug) is not None:
        raise Conflict(f"organization {slug!r} exists already; choose another slug")
    organization, _ = ensure_organization(
        session, slug=slug, name=name.strip(), kind=OrganizationKind.TENANT, actor=actor
    )
    return organization


def tenants_page(session: Session, *, cursor: str | None, limit: int) -> Paged[Organization]:
    """Tenants by slug, one page per opaque cursor."""
    after = after_key(cursor, OrganizationRepository.TENANT_ORDER)
    return as_paged(OrganizationRepository(session).page_tenants(after=after, limit=limit), _same)


def _same(organization: Organization) -> Organization:
    return organization


def ensure_provider(session: Session, *, slug: str, actor: str) -> Organization:
    """The installation's provider organisation, created as `slug` when there is none yet."""
    existing = OrganizationRepository(session).provider()
    if existing is not None:
        return existing
    organization, _ = ensure_organization(
        session, slug=slug, name=slug, kind=OrganizationKind.PROVIDER, actor=actor
    )
    return organization


def all_organizations(session: Session) -> list[Organization]:
    """Every organisation by slug: the provider's pickers (a few thousand at most)."""
    return OrganizationRepository(session).list()


def organization_slug(session: Session, organization_id: uuid.UUID) -> str:
    """The slug of the organisation with this id."""
    organization = OrganizationRepository(session).get(organization_id)
    if organization is None:
        raise NotFound(f"organization {organization_id} not found", field="organization")
    return organization.slug
