"""Tenants hear of a certificate about to expire: one webhook per certificate term and endpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.tables import Certificate, Domain, Job
from pipelines.certificates.service import announce_expiring
from pipelines.organizations import ensure_organization
from pipelines.webhooks.service import register_endpoint

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _certificate(session: Session, organization_id: object, host: str, ends: datetime) -> None:
    domain = Domain(
        organization_id=organization_id,
        hostname=host,
        unicode_hostname=host,
        verification_token=host,
        status="verified",
    )
    session.add(domain)
    session.flush()
    session.add(
        Certificate(
            organization_id=organization_id,
            domain_id=domain.id,
            hostnames=[host],
            status="valid",
            not_before=ends - timedelta(days=90),
            not_after=ends,
        )
    )
    session.flush()


def test_an_expiring_certificate_is_announced_once_per_term(session: Session) -> None:
    tenant, _ = ensure_organization(session, slug="acme", name="Acme", kind="tenant", actor="t")
    register_endpoint(
        session,
        organization_id=tenant.id,
        url="https://hooks.example.com/certificates",
        event_types=["certificate.expiring"],
        description="",
        actor="t",
        now=NOW,
    )
    _certificate(session, tenant.id, "soon.acme.example", NOW + timedelta(days=5))
    _certificate(session, tenant.id, "later.acme.example", NOW + timedelta(days=60))

    assert announce_expiring(session, now=NOW) == 1
    assert announce_expiring(session, now=NOW + timedelta(hours=1)) == 1
    [job] = session.scalars(select(Job)).all()
    assert job.payload["type"] == "certificate.expiring"
    assert job.payload["data"]["hostnames"] == ["soon.acme.example"]
    assert job.payload["data"]["links"]["self"].startswith("/v1/domains/")
