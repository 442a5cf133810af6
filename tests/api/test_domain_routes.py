# ruff: noqa: F811 - the session fixtures are imported by name
"""Domain and certificate routes end to end: tenants claim, verify (real DNS through
pebble-challtestsrv) and remove domains, read certificate status; the provider exports and
revokes certificates (real Pebble); the CA reads HTTP-01 answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.enums import CertificateStatus, DomainStatus
from models.db.tables import AuditLogEntry, Certificate, Domain
from models.domain_settings import DomainSettings
from pipelines.certificates.keys import SecretBox, new_secrets_key
from pipelines.certificates.service import (
    ChallTestSrvProvider,
    account_for,
    acme_client,
    acme_config_from,
    claim_certificate,
    put_http01,
    record_issued,
)
from tests.acme_servers import ChallTestSrv, Pebble, challtestsrv, pebble  # noqa: F401
from tests.api.conftest import World
from tests.api.test_route_coverage import covers

PROBLEM = "application/problem+json"


def domain_with_certificate(world: World, organization_id: uuid.UUID) -> tuple[str, str, str]:
    """A verified domain of the tenant and its (pending) certificate, made as the platform."""
    hostname = f"a{uuid.uuid4().hex[:8]}.example.com"
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        with transaction(make_sessionmaker(engine)) as session:
            domain = Domain(
                organization_id=organization_id,
                hostname=hostname,
                unicode_hostname=hostname,
                verification_token="streamflow-verification=a-token",
                status=DomainStatus.VERIFIED,
            )
            session.add(domain)
            session.flush()
            certificate = Certificate(
                organization_id=organization_id,
                domain_id=domain.id,
                hostnames=[hostname],
                status=CertificateStatus.PENDING,
            )
            session.add(certificate)
            session.flush()
            return str(domain.id), str(certificate.id), hostname
    finally:
        engine.dispose()


@pytest.fixture
def platform(world: World) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


@pytest.fixture
def domains(world: World, challtestsrv: ChallTestSrv, pebble: Pebble) -> DomainSettings:
    """The world's app checks DNS through challtestsrv and orders from Pebble."""
    settings = DomainSettings(
        home=world.state.storage.home,
        dns_resolvers=[challtestsrv.resolver],
        dns_timeout_seconds=2,
        platform_domains=["streamflow.dev"],
        acme_directory_url=pebble.directory_url,
        acme_ca_bundle=pebble.ca_bundle,
        secrets_key=new_secrets_key(),
    )
    world.state.domains = settings
    return settings


def _actions(platform: sessionmaker[Session], organization_id: uuid.UUID) -> list[str]:
    with platform() as session:
        return list(
            session.scalars(
                select(AuditLogEntry.action)
                .where(AuditLogEntry.organization_id == organization_id)
                .order_by(AuditLogEntry.id)
            )
        )


class TestDomains:
    @covers("POST /v1/domains", "POST /v1/domains/{domain_id}/verify", audit=True)
    @covers("DELETE /v1/domains/{domain_id}", audit=True)
    @covers("GET /v1/domains", "GET /v1/domains/{domain_id}", cross_tenant=True)
    def test_claim_verify_hand_over_and_remove(
        self,
        world: World,
        domains: DomainSettings,
        challtestsrv: ChallTestSrv,
        platform: sessionmaker[Session],
    ) -> None:
        a, b = world.tenant_a, world.tenant_b
        hostname = f"{uuid.uuid4().hex[:8]}.example.com"
        created = world.client.post("/v1/domains", json={"hostname": hostname}, headers=a.headers)
        assert created.status_code == 201, created.text
        claim = created.json()
        assert claim["status"] == "pending"
        assert claim["verification_record"] == f"_streamflow-verification.{hostname}"

        not_yet = world.client.post(f"/v1/domains/{claim['id']}/verify", headers=a.headers)
        assert not_yet.status_code == 200, not_yet.text
        assert not_yet.json()["status"] == "pending"
        assert not_yet.json()["ownership"]["outcome"] == "missing"

        record = claim["verification_record"]
        challtestsrv.set_txt(record, claim["verification_value"])
        try:
            verified = world.client.post(f"/v1/domains/{claim['id']}/verify", headers=a.headers)
            assert verified.json()["status"] == "verified", verified.text

            # Tenant B claims the same hostname and proves it with its own token.
            taken = world.client.post(
                "/v1/domains", json={"hostname": hostname}, headers=b.headers
            ).json()
            assert taken["id"] != claim["id"]
            challtestsrv.set_txt(record, taken["verification_value"])
            handed = world.client.post(f"/v1/domains/{taken['id']}/verify", headers=b.headers)
            assert handed.json()["status"] == "verified", handed.text
        finally:
            challtestsrv.clear_txt(record)

        mine = world.client.get(f"/v1/domains/{claim['id']}", headers=a.headers).json()
        assert mine["status"] == "released"
        notices = world.client.get("/v1/notices", headers=a.headers).json()["items"]
        assert [n["title"] for n in notices] == [f"{hostname} was claimed by another account"]
        assert world.client.get("/v1/notices", headers=b.headers).json()["items"] == []
        # Each tenant lists only its own claim; B cannot read A's.
        assert [
            d["id"] for d in world.client.get("/v1/domains", headers=b.headers).json()["items"]
        ] == [taken["id"]]
        assert world.client.get(f"/v1/domains/{claim['id']}", headers=b.headers).status_code == 404

        assert (
            world.client.delete(f"/v1/domains/{claim['id']}", headers=b.headers).status_code == 404
        )
        removed = world.client.delete(f"/v1/domains/{claim['id']}", headers=a.headers)
        assert removed.status_code == 204
        assert world.client.get(f"/v1/domains/{claim['id']}", headers=a.headers).status_code == 404
        actions_a = _actions(platform, a.organization_id)
        for action in (
            "domain.added",
            "domain.checked",
            "domain.verified",
            "domain.released",
            "domain.removed",
        ):
            assert action in actions_a, action
        assert "domain.verified" in _actions(platform, b.organization_id)

    @covers("POST /v1/domains", auth=True)
    def test_hostile_hostnames_are_refused_with_the_field(
        self, world: World, domains: DomainSettings
    ) -> None:
        for hostname, says in (
            ("192.0.2.1", "IP address"),
            ("shop.streamflow.dev", "belong to the platform"),
            ("a" * 64 + ".example.com", "longer than 63"),
            ("../../etc/passwd", "not a valid hostname"),
            ("shop\u0000.example.com", "NUL"),
        ):
            response = world.client.post(
                "/v1/domains", json={"hostname": hostname}, headers=world.tenant_a.headers
            )
            assert response.status_code == 422, (hostname, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
            assert says in response.text, (hostname, response.text)
        extra = world.client.post(
            "/v1/domains",
            json={"hostname": "x.example.com", "status": "verified"},
            headers=world.tenant_a.headers,
        )
        assert extra.status_code == 422
        # A key without the domains:write scope may read, not claim.
        from tests.api.test_tenant_routes import issue_key

        engine = make_engine(world.state.storage.resolved_database_url())
        try:
            _, headers = issue_key(make_sessionmaker(engine), world.tenant_a, ["results:read"])
        finally:
            engine.dispose()
        refused = world.client.post(
            "/v1/domains", json={"hostname": "x.example.com"}, headers=headers
        )
        assert refused.status_code == 403
        assert world.client.get("/v1/domains", headers=headers).status_code == 200


class TestCertificates:
    @covers("GET /v1/domains/{domain_id}/certificate", "GET /v1/certificates", cross_tenant=True)
    @covers("GET /v1/certificates/{certificate_id}/attempts", cross_tenant=True)
    @covers("POST /provider/v1/certificates/{certificate_id}/revocation", audit=True)
    @covers("GET /provider/v1/certificates/{certificate_id}/bundle", auth=True)
    def test_status_export_and_revocation(
        self,
        world: World,
        domains: DomainSettings,
        challtestsrv: ChallTestSrv,
        pebble: Pebble,
        platform: sessionmaker[Session],
    ) -> None:
        a, b = world.tenant_a, world.tenant_b
        domain_id, certificate_id, hostname = domain_with_certificate(world, a.organization_id)
        pending = world.client.get(f"/v1/domains/{domain_id}/certificate", headers=a.headers)
        assert pending.json()["status"] == "pending", pending.text

        config = acme_config_from(domains)
        assert config is not None
        box = SecretBox(domains.resolved_secrets_key())
        now = datetime.now(UTC)
        with transaction(platform) as session:
            claim = claim_certificate(
                session, domain_id=uuid.UUID(domain_id), claimed_by="test", now=now, config=config
            )
            assert claim is not None
            account = account_for(session, config=config, box=box, now=now)
            client = acme_client(account, config=config, box=box, clock=lambda: datetime.now(UTC))
            account_id = account.id
        obtained = client.obtain(
            [hostname], dns01=ChallTestSrvProvider(challtestsrv.url), http01=None
        )
        with transaction(platform) as session:
            record_issued(
                session,
                claim=claim,
                obtained=obtained,
                box=box,
                account_id=account_id,
                now=datetime.now(UTC),
                config=config,
            )

        shown = world.client.get(f"/v1/domains/{domain_id}/certificate", headers=a.headers).json()
        assert shown["status"] == "valid"
        assert "key" not in " ".join(shown)  # no private key in tenant reads
        listed = world.client.get("/v1/certificates", headers=a.headers).json()["items"]
        assert [c["id"] for c in listed] == [certificate_id]
        assert world.client.get("/v1/certificates", headers=b.headers).json()["items"] == []
        attempts = world.client.get(
            f"/v1/certificates/{certificate_id}/attempts", headers=a.headers
        ).json()["items"]
        assert [(x["kind"], x["status"]) for x in attempts] == [("issue", "succeeded")]
        for url in (
            f"/v1/certificates/{certificate_id}/attempts",
            f"/v1/domains/{domain_id}/certificate",
        ):
            assert world.client.get(url, headers=b.headers).status_code == 404

        auth = world.provider_auth()
        bundle = world.client.get(f"/provider/v1/certificates/{certificate_id}/bundle", auth=auth)
        assert bundle.status_code == 200, bundle.text
        assert bundle.json()["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
        assert (
            world.client.get(f"/provider/v1/certificates/{certificate_id}/bundle").status_code
            == 401
        )

        wrong = world.client.post(
            f"/provider/v1/certificates/{certificate_id}/revocation", json={"reason": 2}, auth=auth
        )
        assert wrong.status_code == 422, wrong.text
        revoked = world.client.post(
            f"/provider/v1/certificates/{certificate_id}/revocation", json={"reason": 4}, auth=auth
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        assert pebble.certificate_status(shown["serial"])["Status"] == "Revoked"
        actions = _actions(platform, a.organization_id)
        assert {"certificate.issued", "certificate.exported", "certificate.revoked"} <= set(actions)
        gone = world.client.get(f"/provider/v1/certificates/{uuid.uuid4()}/bundle", auth=auth)
        assert gone.status_code == 404


class TestHttp01:
    def test_only_stored_tokens_are_answered(
        self, world: World, platform: sessionmaker[Session]
    ) -> None:
        with transaction(platform) as session:
            put_http01(
                session,
                token="tok-123_A",
                key_authorization="tok-123_A.thumbprint",
                hostname="shop.example.com",
                expires_at=datetime.now(UTC) + timedelta(minutes=5),
            )
            put_http01(
                session,
                token="expired",
                key_authorization="expired.thumbprint",
                hostname="shop.example.com",
                expires_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        answer = world.client.get("/.well-known/acme-challenge/tok-123_A")
        assert (answer.status_code, answer.text) == (200, "tok-123_A.thumbprint")
        assert answer.headers["content-type"].startswith("text/plain")
        for token in ("expired", "unknown", "a.b"):
            response = world.client.get(f"/.well-known/acme-challenge/{token}")
            assert response.status_code in (404, 422), (token, response.text)
            assert response.headers["content-type"].startswith(PROBLEM)
