"""Domain use cases on PostgreSQL and SQLite: claims, checks through challtestsrv's DNS, the
hand-over of a hostname to a tenant that proves ownership, and lapsing past the grace period."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.enums import OwnershipOutcome
from models.db.tables import AuditLogEntry, SystemNotice, SystemNoticeAudience
from pipelines.domains.ownership import CheckPolicy, Judgement
from pipelines.domains.service import (
    DnsConfig,
    add_domain,
    check_domain,
    domains_due,
    remove_domain,
)
from pipelines.domains.views import domains_page, get_domain
from pipelines.errors import InvalidInput, NotFound
from tests.acme_servers import ChallTestSrv
from tests.factories import create_organization

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _config(challtestsrv: ChallTestSrv) -> DnsConfig:
    return DnsConfig(
        resolvers=(challtestsrv.resolver,),
        timeout_seconds=2,
        platform_suffixes=("streamflow.dev",),
        policy=CheckPolicy(grace=timedelta(hours=72)),
    )


def _actions(session: Session, organization_id: uuid.UUID) -> list[str]:
    return list(
        session.scalars(
            select(AuditLogEntry.action)
            .where(AuditLogEntry.organization_id == organization_id)
            .order_by(AuditLogEntry.id)
        )
    )


def _notices_for(session: Session, organization_id: uuid.UUID) -> list[str]:
    return list(
        session.scalars(
            select(SystemNotice.title)
            .join(SystemNoticeAudience, SystemNoticeAudience.notice_id == SystemNotice.id)
            .where(SystemNoticeAudience.organization_id == organization_id)
        )
    )


def test_adding_is_validated_idempotent_and_audited(
    session: Session, challtestsrv: ChallTestSrv
) -> None:
    tenant = create_organization(session)
    config = _config(challtestsrv)
    first = add_domain(
        session,
        organization_id=tenant.id,
        hostname="Shop.Example.com",
        actor="t",
        now=NOW,
        config=config,
    )
    again = add_domain(
        session,
        organization_id=tenant.id,
        hostname="shop.example.com.",
        actor="t",
        now=NOW,
        config=config,
    )
    assert first.id == again.id
    assert (first.status, first.verification_record) == (
        "pending",
        "_streamflow-verification.shop.example.com",
    )
    assert _actions(session, tenant.id).count("domain.added") == 1
    with pytest.raises(InvalidInput, match="belong to the platform"):
        add_domain(
            session,
            organization_id=tenant.id,
            hostname="x.streamflow.dev",
            actor="t",
            now=NOW,
            config=config,
        )
    page = domains_page(session, organization_id=tenant.id, cursor=None, limit=10)
    assert [d.hostname for d in page.items] == ["shop.example.com"]


def test_a_second_tenant_takes_a_hostname_over_only_by_proving_ownership(
    session: Session, challtestsrv: ChallTestSrv
) -> None:
    first, second = create_organization(session), create_organization(session)
    hostname = f"{uuid.uuid4().hex[:8]}.example.com"
    config = _config(challtestsrv)
    held = add_domain(
        session, organization_id=first.id, hostname=hostname, actor="a", now=NOW, config=config
    )
    record = held.verification_record
    challtestsrv.set_txt(record, held.verification_value)
    try:
        verified = check_domain(session, domain_id=held.id, config=config, now=NOW, actor="system")
        assert (verified.status, verified.ownership.outcome) == ("verified", "verified")

        claim = add_domain(
            session, organization_id=second.id, hostname=hostname, actor="b", now=NOW, config=config
        )
        assert claim.verification_value != held.verification_value
        # The second tenant's token is not published: its claim stays pending, with what was found.
        pending = check_domain(session, domain_id=claim.id, config=config, now=NOW, actor="system")
        assert (pending.status, pending.ownership.outcome) == ("pending", "wrong_value")
        assert pending.ownership.found == [held.verification_value]

        challtestsrv.set_txt(record, claim.verification_value)
        taken = check_domain(session, domain_id=claim.id, config=config, now=NOW, actor="system")
    finally:
        challtestsrv.clear_txt(record)
    assert taken.status == "verified"
    assert get_domain(session, organization_id=first.id, domain_id=held.id).status == "released"
    assert "domain.released" in _actions(session, first.id)
    assert _notices_for(session, first.id) == [f"{hostname} was claimed by another account"]
    assert _notices_for(session, second.id) == []


def test_a_lost_record_lapses_only_after_the_grace_period_and_the_tenant_is_told(
    session: Session, challtestsrv: ChallTestSrv
) -> None:
    tenant = create_organization(session)
    config = _config(challtestsrv)
    domain = add_domain(
        session,
        organization_id=tenant.id,
        hostname=f"{uuid.uuid4().hex[:8]}.example.com",
        actor="t",
        now=NOW,
        config=config,
    )
    seen = Judgement(OwnershipOutcome.VERIFIED, (domain.verification_value,), "ok")
    gone = Judgement(OwnershipOutcome.NXDOMAIN, (), "gone")
    servfail = Judgement(OwnershipOutcome.UNAVAILABLE, (), "could not check")

    def check(judgement: Judgement, at: datetime) -> str:
        return check_domain(
            session,
            domain_id=domain.id,
            config=config,
            now=at,
            actor="system",
            judgement=judgement,
        ).status

    assert check(seen, NOW) == "verified"
    assert check(gone, NOW + timedelta(hours=1)) == "verified"
    assert check(servfail, NOW + timedelta(hours=200)) == "verified"  # could not check
    assert check(gone, NOW + timedelta(hours=72)) == "verified"
    assert _notices_for(session, tenant.id) == []
    assert check(gone, NOW + timedelta(hours=73)) == "unverified"
    assert _notices_for(session, tenant.id) == [f"{domain.hostname} is no longer verified"]
    assert "domain.unverified" in _actions(session, tenant.id)
    assert domains_due(session, now=NOW + timedelta(days=30)) == [domain.id]


def test_another_tenants_domain_is_not_found(session: Session, challtestsrv: ChallTestSrv) -> None:
    owner, other = create_organization(session), create_organization(session)
    domain = add_domain(
        session,
        organization_id=owner.id,
        hostname="mine.example.com",
        actor="o",
        now=NOW,
        config=_config(challtestsrv),
    )
    with pytest.raises(NotFound):
        get_domain(session, organization_id=other.id, domain_id=domain.id)
    with pytest.raises(NotFound):
        remove_domain(session, organization_id=other.id, domain_id=domain.id, actor="x")
    remove_domain(session, organization_id=owner.id, domain_id=domain.id, actor="o")
    assert _actions(session, owner.id)[-1] == "domain.removed"
