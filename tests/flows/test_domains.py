# ruff: noqa: F811 - the session fixtures are imported by name
"""Certificates end to end against the real Pebble and pebble-challtestsrv (and Knot DNS for
RFC 2136): claim → ACME order → record, through the functions the scheduled flows call."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.resolver
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker, undefer

from flows.domains import CertificateWork, ensure_account, process_certificate, process_certificates
from flows.runtime import Runtime
from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.enums import DomainStatus
from models.db.tables import AuditLogEntry, Certificate, CertificateAttempt, Domain
from pipelines.certificates.keys import SecretBox, describe_certificate, new_secrets_key
from pipelines.certificates.service import (
    AcmeConfig,
    ChallTestSrvProvider,
    IssuanceFailed,
    Rfc2136Provider,
    account_for,
    acme_client,
    export_bundle,
    revoke_certificate,
)
from tests.acme_servers import ChallTestSrv, Knot, Pebble, challtestsrv, knot, pebble  # noqa: F401 - session fixtures
from tests.conftest import TemplateCache
from tests.factories import create_organization


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(
    request: pytest.FixtureRequest, migrated_templates: TemplateCache, tmp_path: Path
) -> Iterator[sessionmaker[Session]]:
    with migrated_templates.get(request.param).copy(tmp_path) as url:
        engine = make_engine(url)
        try:
            yield make_sessionmaker(engine)
        finally:
            engine.dispose()


def _work(
    sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv, **config: object
) -> CertificateWork:
    return CertificateWork(
        sessions=sessions,
        config=AcmeConfig(
            pebble.directory_url, ca_bundle=pebble.ca_bundle, backoff_base_seconds=0.05, **config
        ),  # type: ignore[arg-type]
        box=SecretBox(new_secrets_key()),
        dns01=ChallTestSrvProvider(challtestsrv.url),
    )


def _verified_domain(sessions: sessionmaker[Session], hostname: str) -> uuid.UUID:
    """A domain whose ownership was proven (the DNS check is tested in tests/pipelines)."""
    with transaction(sessions) as session:
        tenant = create_organization(session)
        domain = Domain(
            organization_id=tenant.id,
            hostname=hostname,
            unicode_hostname=hostname,
            verification_token="tok",
            status=DomainStatus.VERIFIED,
            verified_at=datetime.now(UTC),
        )
        session.add(domain)
        session.flush()
        return domain.id


def _host() -> str:
    return f"h{uuid.uuid4().hex[:10]}.example.com"


def _certificate(sessions: sessionmaker[Session], domain_id: uuid.UUID) -> Certificate:
    with sessions() as session:
        found = session.scalars(
            select(Certificate)
            .where(Certificate.domain_id == domain_id)
            .options(undefer(Certificate.key_encrypted))  # read after the session closes
        ).one()
        session.expunge(found)
        return found


def _attempts(sessions: sessionmaker[Session], domain_id: uuid.UUID) -> list[CertificateAttempt]:
    with sessions() as session:
        rows = list(
            session.scalars(
                select(CertificateAttempt)
                .join(Certificate, Certificate.id == CertificateAttempt.certificate_id)
                .where(Certificate.domain_id == domain_id)
                .order_by(CertificateAttempt.started_at)
            )
        )
        session.expunge_all()
        return rows


class TestIssuance:
    def test_a_hostname_and_a_wildcard_are_issued_exported_and_revoked(
        self, sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv
    ) -> None:
        work = _work(sessions, pebble, challtestsrv)
        host = _host()
        plain, wildcard = _verified_domain(sessions, host), _verified_domain(sessions, f"*.{host}")
        outcomes = process_certificates(work, [plain, wildcard], concurrency=2)
        assert [o.result for o in outcomes] == ["issued", "issued"], outcomes

        for domain_id, name in ((plain, host), (wildcard, f"*.{host}")):
            certificate = _certificate(sessions, domain_id)
            assert certificate.status == "valid"
            assert describe_certificate(certificate.chain_pem or "").hostnames == (name,)
            assert certificate.key_encrypted is not None
            assert "PRIVATE KEY" not in certificate.key_encrypted  # sealed at rest
            lifetime = certificate.not_after - certificate.not_before  # type: ignore[operator]
            assert certificate.renew_at == certificate.not_after - lifetime / 3
            assert [a.status for a in _attempts(sessions, domain_id)] == ["succeeded"]

        certificate = _certificate(sessions, plain)
        with transaction(sessions) as session:
            bundle = export_bundle(session, certificate_id=certificate.id, box=work.box, actor="p")
            assert bundle.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
            account = account_for(session, config=work.config, box=work.box, now=datetime.now(UTC))
            client = acme_client(account, config=work.config, box=work.box, clock=work.clock)
            detail = revoke_certificate(
                session,
                certificate_id=certificate.id,
                reason=4,
                actor="provider:test",
                now=datetime.now(UTC),
                revoke=client.revoke,
            )
        assert detail.status == "revoked"
        assert pebble.certificate_status(certificate.serial or "")["Status"] == "Revoked"
        with sessions() as session:
            actions = set(session.scalars(select(AuditLogEntry.action)))
        assert {"certificate.issued", "certificate.exported", "certificate.revoked"} <= actions
        # A revoked certificate is not ordered again by the renewal flow.
        assert process_certificate(work, plain).result == "skipped"

    def test_an_unverified_domain_gets_no_order(
        self, sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv
    ) -> None:
        work = _work(sessions, pebble, challtestsrv)
        domain_id = _verified_domain(sessions, _host())
        with transaction(sessions) as session:
            session.get(Domain, domain_id).status = DomainStatus.PENDING  # type: ignore[union-attr]
        assert process_certificate(work, domain_id).result == "skipped"
        assert _attempts(sessions, domain_id) == []


@pytest.mark.parametrize("sessions", ["sqlite"], indirect=True)
class TestRobustness:
    def test_caa_forbidding_issuance_fails_and_spends_the_budget(
        self, sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv
    ) -> None:
        host = _host()
        challtestsrv.post(
            "/add-caa", {"host": host, "policies": [{"tag": "issue", "value": "ca.invalid"}]}
        )
        try:
            work = _work(
                sessions,
                pebble,
                challtestsrv,
                caa_identities=("pebble.letsencrypt.org",),
                dns_resolvers=(challtestsrv.resolver,),
            )
            domain_id = _verified_domain(sessions, host)
            outcome = process_certificate(work, domain_id)
        finally:
            challtestsrv.post("/clear-caa", {"host": host})
        assert outcome.result == "failed"
        assert "caa" in (outcome.error or "").lower()
        certificate = _certificate(sessions, domain_id)
        assert (certificate.status, certificate.failures) == ("failed", 1)
        assert certificate.next_attempt_at is not None
        # Backed off: a second run right away places no order.
        assert process_certificate(work, domain_id).result == "skipped"
        assert [a.status for a in _attempts(sessions, domain_id)] == ["failed"]

    def test_a_wrong_challenge_record_fails_validation(
        self, sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv
    ) -> None:
        class WrongValue(ChallTestSrvProvider):
            def present(self, name: str, value: str) -> None:
                super().present(name, "not-the-digest")

        work = _work(sessions, pebble, challtestsrv)
        work.dns01 = WrongValue(challtestsrv.url)
        outcome = process_certificate(work, _verified_domain(sessions, _host()))
        assert outcome.result == "failed"
        assert "validation failed" in (outcome.error or "")

    def test_bad_nonces_are_survived(
        self,
        sessions: sessionmaker[Session],
        challtestsrv: ChallTestSrv,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        """PEBBLE_WFE_NONCEREJECT=30 rejects 30% of nonces; our retries carry the orders.

        The acme library absorbs one bad nonce per request itself, so our retries engage only
        on a second one in a row (about 9% of requests): batches of orders are placed until one
        needed them (a handful at most; every order must be issued either way)."""
        rejecting = Pebble(
            tmp_path_factory.mktemp("pebble-nonces"),
            challtestsrv.resolver,
            env={"PEBBLE_WFE_NONCEREJECT": "30"},
        ).start()
        retried = 0
        try:
            work = _work(sessions, rejecting, challtestsrv)
            for _ in range(6):
                domains = [_verified_domain(sessions, _host()) for _ in range(3)]
                outcomes = process_certificates(work, domains, concurrency=3)
                assert [o.result for o in outcomes] == ["issued"] * 3, outcomes
                retried += sum(o.retries for o in outcomes)
                if retried:
                    break
        finally:
            rejecting.stop()
        assert retried > 0

    def test_pebble_restarted_mid_order(
        self,
        sessions: sessionmaker[Session],
        challtestsrv: ChallTestSrv,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        """The CA forgets the account and the order: the account is registered again, the
        order placed again, and the certificate issued."""
        server = Pebble(tmp_path_factory.mktemp("pebble-restart"), challtestsrv.resolver).start()
        restarted = threading.Event()

        class RestartingProvider(ChallTestSrvProvider):
            def present(self, name: str, value: str) -> None:
                if not restarted.is_set():
                    restarted.set()
                    server.restart()
                super().present(name, value)

        try:
            work = _work(sessions, server, challtestsrv)
            ensure_account(work)
            work.dns01 = RestartingProvider(challtestsrv.url)
            domain_id = _verified_domain(sessions, _host())
            outcome = process_certificate(work, domain_id)
        finally:
            server.stop()
        assert restarted.is_set()
        assert outcome.result == "issued", outcome

    def test_two_runs_at_once_issue_once(
        self, sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv
    ) -> None:
        work = _work(sessions, pebble, challtestsrv)
        domain_id = _verified_domain(sessions, _host())
        ensure_account(work)
        barrier = threading.Barrier(2)
        results: list[str] = []

        def run() -> None:
            barrier.wait()
            results.append(process_certificate(work, domain_id).result)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == ["issued", "skipped"]
        assert [a.status for a in _attempts(sessions, domain_id)] == ["succeeded"]

    def test_renewal_is_due_by_the_injected_clock(
        self, sessions: sessionmaker[Session], pebble: Pebble, challtestsrv: ChallTestSrv
    ) -> None:
        """Pebble 2.4 issues 5-year certificates: a clock moved past 2/3 of it renews."""
        work = _work(sessions, pebble, challtestsrv)
        domain_id = _verified_domain(sessions, _host())
        assert process_certificate(work, domain_id).result == "issued"
        first = _certificate(sessions, domain_id)
        assert process_certificate(work, domain_id).result == "skipped"
        assert first.renew_at is not None
        work.clock = lambda: first.renew_at + timedelta(seconds=1)  # type: ignore[operator]
        assert process_certificate(work, domain_id).result == "renewed"
        second = _certificate(sessions, domain_id)
        assert second.serial != first.serial
        assert [a.kind for a in _attempts(sessions, domain_id)] == ["issue", "renew"]


@pytest.mark.parametrize("sessions", ["sqlite"], indirect=True)
def test_http01_answered_by_the_api(
    sessions: sessionmaker[Session],
    challtestsrv: ChallTestSrv,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Pebble validates HTTP-01 against the real API (uvicorn on a loopback port), which answers
    from the tokens the issuing flow stored in the database."""
    import uvicorn

    from api.app import build_state, create_app
    from api.settings import ApiSettings
    from flows.domains import DatabaseHttp01Store
    from flows.orchestrator import free_port
    from models.settings import StorageSettings

    port = free_port()
    home = tmp_path_factory.mktemp("http01-home")
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    state = build_state(
        api=ApiSettings(rate_limit_per_address_per_minute=10_000),
        storage=StorageSettings(home=home, database_url=url),
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ca = Pebble(tmp_path_factory.mktemp("pebble-http01"), challtestsrv.resolver, http_port=port)
    try:
        while not server.started:
            threading.Event().wait(0.05)
        ca.start()
        work = _work(sessions, ca, challtestsrv, challenge="http-01")
        work.dns01 = None
        work.http01 = DatabaseHttp01Store(sessions, work.clock, timedelta(minutes=5))
        outcome = process_certificate(work, _verified_domain(sessions, _host()))
    finally:
        ca.stop()
        server.should_exit = True
        thread.join(timeout=10)
        state.engine.dispose()
    assert outcome.result == "issued", outcome
    with sessions() as session:
        from models.db.tables import Http01Challenge

        assert list(session.scalars(select(Http01Challenge))) == []  # withdrawn after the order


@pytest.mark.parametrize("sessions", ["sqlite"], indirect=True)
def test_the_recheck_flow_checks_due_domains(
    sessions: sessionmaker[Session], challtestsrv: ChallTestSrv
) -> None:
    from flows.domains import recheck_due_domains
    from pipelines.domains.service import DnsConfig, add_domain

    config = DnsConfig(resolvers=(challtestsrv.resolver,), timeout_seconds=2)
    now = datetime.now(UTC)
    with transaction(sessions) as session:
        tenant = create_organization(session)
        published, silent = (
            add_domain(
                session,
                organization_id=tenant.id,
                hostname=_host(),
                actor="t",
                now=now,
                config=config,
            )
            for _ in range(2)
        )
    challtestsrv.set_txt(published.verification_record, published.verification_value)
    try:
        counts = recheck_due_domains(sessions, config=config)
    finally:
        challtestsrv.clear_txt(published.verification_record)
    assert counts == {"verified": 1, "pending": 1}
    assert silent.hostname != published.hostname
    # Nothing is due again until the next check time.
    assert recheck_due_domains(sessions, config=config) == {}


@pytest.mark.parametrize("streamflow", ["sqlite"], indirect=True)
def test_the_scheduled_flows_run_on_the_orchestrator(
    streamflow: Runtime,
    pebble: Pebble,
    challtestsrv: ChallTestSrv,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`recheck-domains` verifies a domain whose TXT record is published, then
    `renew-certificates` orders its certificate: both as Prefect flow runs, configured by the
    environment as the worker would be."""
    import json

    from flows.domains import recheck_domains, renew_certificates
    from pipelines.domains.service import DnsConfig, add_domain

    for name, value in {
        "STREAMFLOW_DNS_RESOLVERS": json.dumps([challtestsrv.resolver]),
        "STREAMFLOW_ACME_DIRECTORY_URL": pebble.directory_url,
        "STREAMFLOW_ACME_CA_BUNDLE": pebble.ca_bundle,
        "STREAMFLOW_DNS01_PROVIDER": "challtestsrv",
        "STREAMFLOW_CHALLTESTSRV_URL": challtestsrv.url,
    }.items():
        monkeypatch.setenv(name, value)
    with transaction(streamflow.sessions) as session:
        tenant = create_organization(session)
        domain = add_domain(
            session,
            organization_id=tenant.id,
            hostname=_host(),
            actor="t",
            now=datetime.now(UTC),
            config=DnsConfig(),
        )
    challtestsrv.set_txt(domain.verification_record, domain.verification_value)
    try:
        assert recheck_domains() == {"verified": 1}
    finally:
        challtestsrv.clear_txt(domain.verification_record)
    assert renew_certificates() == {"issued": 1}
    assert renew_certificates() == {}
    assert _certificate(streamflow.sessions, domain.id).status == "valid"


def test_rfc2136_updates_a_real_dns_server(knot: Knot) -> None:
    """TSIG-signed dynamic updates add and remove the challenge TXT record in Knot's zone."""
    provider = Rfc2136Provider(
        server=knot.server, zone=knot.zone, key_name=knot.key_name, key_secret=knot.key_secret
    )
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = knot.port
    name = f"_acme-challenge.shop.{knot.zone}"
    provider.present(name, "digest-1")
    answer = resolver.resolve(name, "TXT")
    assert [b"".join(r.strings).decode() for r in answer] == ["digest-1"]
    provider.cleanup(name, "digest-1")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve(name, "TXT")
    wrong = Rfc2136Provider(
        server=knot.server, zone=knot.zone, key_name=knot.key_name, key_secret="AAAA" * 11
    )
    with pytest.raises(IssuanceFailed, match="refused the update"):
        wrong.present(name, "digest-2")
