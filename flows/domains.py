"""Scheduled domain work: re-verify ownership, order and renew certificates.

The functions here open transactions around the services (claim → order → record, each step
committed on its own so no transaction waits on the network) and bound how many orders run at
once; the Prefect flows at the bottom call them on the schedules in `flows/deployments.py`.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from prefect import flow
from sqlalchemy.orm import Session, sessionmaker

from models.db.engine import transaction
from models.domain_settings import DomainSettings
from pipelines.certificates.keys import SecretBox
from pipelines.certificates.service import (
    AcmeClient,
    AcmeConfig,
    ChallTestSrvProvider,
    Dns01Provider,
    IssuanceFailed,
    Rfc2136Provider,
    account_for,
    acme_client,
    acme_config_from,
    announce_expiring,
    certificates_due,
    claim_certificate,
    drop_http01,
    put_http01,
    record_failure,
    record_issued,
    remember_account_url,
)
from pipelines.domains.service import DnsConfig, check_domain, dns_config_from, domains_due

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def dns_config(settings: DomainSettings) -> DnsConfig:
    """The ownership-check configuration of `settings`."""
    return dns_config_from(settings)


def acme_config(settings: DomainSettings) -> AcmeConfig | None:
    """The ACME configuration of `settings`, or None when no directory is configured."""
    return acme_config_from(settings)


def dns01_provider(settings: DomainSettings) -> Dns01Provider | None:
    """The configured DNS-01 provider, if any."""
    if settings.dns01_provider == "challtestsrv" and settings.challtestsrv_url:
        return ChallTestSrvProvider(settings.challtestsrv_url)
    if settings.dns01_provider == "rfc2136":
        missing = [
            name
            for name in ("rfc2136_server", "rfc2136_zone", "rfc2136_key_name", "rfc2136_key_secret")
            if not getattr(settings, name)
        ]
        if missing:
            raise ValueError(f"RFC 2136 needs STREAMFLOW_{', STREAMFLOW_'.join(missing).upper()}")
        return Rfc2136Provider(
            server=settings.rfc2136_server or "",
            zone=settings.rfc2136_zone or "",
            key_name=settings.rfc2136_key_name or "",
            key_secret=settings.rfc2136_key_secret or "",
            algorithm=settings.rfc2136_key_algorithm,
        )
    return None


class DatabaseHttp01Store:
    """HTTP-01 answers kept in the database, where the API's challenge route reads them."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, ttl: timedelta) -> None:
        self.sessions, self.clock, self.ttl = sessions, clock, ttl

    def present(self, token: str, key_authorization: str, hostname: str) -> None:
        with transaction(self.sessions) as session:
            put_http01(
                session,
                token=token,
                key_authorization=key_authorization,
                hostname=hostname,
                expires_at=self.clock() + self.ttl,
            )

    def cleanup(self, token: str) -> None:
        with transaction(self.sessions) as session:
            drop_http01(session, token=token)


# --- ownership ------------------------------------------------------------------------------


def recheck_due_domains(
    sessions: sessionmaker[Session], *, config: DnsConfig, clock: Clock = utc_now, limit: int = 500
) -> dict[str, int]:
    """Check every domain whose check is due, each in its own transaction; counts by status."""
    with transaction(sessions) as session:
        due = domains_due(session, now=clock(), limit=limit)
    counts: dict[str, int] = {}
    for domain_id in due:
        with transaction(sessions) as session:
            detail = check_domain(
                session, domain_id=domain_id, config=config, now=clock(), actor="system:domains"
            )
        counts[detail.status] = counts.get(detail.status, 0) + 1
    return counts


# --- certificates ---------------------------------------------------------------------------


@dataclass
class CertificateWork:
    """What one run of the certificate work needs."""

    sessions: sessionmaker[Session]
    config: AcmeConfig
    box: SecretBox
    dns01: Dns01Provider | None
    http01: DatabaseHttp01Store | None = None
    clock: Clock = utc_now
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    client_options: dict[str, object] = field(default_factory=dict)


@dataclass
class CertificateOutcome:
    domain_id: uuid.UUID
    result: str
    """issued, renewed, failed or skipped (not due, or claimed by another run)."""
    error: str | None = None
    retries: int = 0


def process_certificate(
    work: CertificateWork, domain_id: uuid.UUID, *, force: bool = False
) -> CertificateOutcome:
    """Claim, order and record one domain's certificate (three transactions)."""
    with transaction(work.sessions) as session:
        claim = claim_certificate(
            session,
            domain_id=domain_id,
            claimed_by=work.worker,
            now=work.clock(),
            config=work.config,
            force=force,
        )
        if claim is None:
            return CertificateOutcome(domain_id, "skipped")
        account = account_for(session, config=work.config, box=work.box, now=work.clock())
        client = acme_client(
            account, config=work.config, box=work.box, clock=work.clock, **work.client_options
        )
        account_id = account.id
    try:
        obtained = client.obtain(
            claim.hostnames, dns01=work.dns01, http01=work.http01, replaces=claim.replaces
        )
    except IssuanceFailed as error:
        with transaction(work.sessions) as session:
            record_failure(
                session,
                claim=claim,
                error=str(error),
                retries=error.retries,
                now=work.clock(),
                config=work.config,
            )
            remember_account_url(
                session, account_id=account_id, account_url=client.account_url, now=work.clock()
            )
        log.warning("certificate.failed", domain_id=str(domain_id), error=str(error)[:300])
        return CertificateOutcome(domain_id, "failed", str(error), error.retries)
    with transaction(work.sessions) as session:
        record_issued(
            session,
            claim=claim,
            obtained=obtained,
            box=work.box,
            account_id=account_id,
            now=work.clock(),
            config=work.config,
        )
        remember_account_url(
            session, account_id=account_id, account_url=client.account_url, now=work.clock()
        )
    result = "renewed" if claim.kind == "renew" else "issued"
    return CertificateOutcome(domain_id, result, None, obtained.retries)


def ensure_account(work: CertificateWork) -> None:
    """Create and register the ACME account once, before orders run in parallel."""
    with transaction(work.sessions) as session:
        account = account_for(session, config=work.config, box=work.box, now=work.clock())
        account_id, known = account.id, account.account_url
        client: AcmeClient = acme_client(
            account, config=work.config, box=work.box, clock=work.clock
        )
    if known is None:
        client.acme()
        with transaction(work.sessions) as session:
            remember_account_url(
                session, account_id=account_id, account_url=client.account_url, now=work.clock()
            )


def process_certificates(
    work: CertificateWork,
    domain_ids: Sequence[uuid.UUID] | None = None,
    *,
    concurrency: int = 4,
    limit: int = 500,
) -> list[CertificateOutcome]:
    """Order every due certificate (or those of `domain_ids`), `concurrency` at a time."""
    if domain_ids is None:
        with transaction(work.sessions) as session:
            domain_ids = certificates_due(session, now=work.clock(), limit=limit)
    if not domain_ids:
        return []
    ensure_account(work)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="acme") as pool:
        return list(pool.map(lambda d: process_certificate(work, d), domain_ids))


def certificate_work(
    sessions: sessionmaker[Session], settings: DomainSettings
) -> CertificateWork | None:
    """The certificate work `settings` configure, or None without an ACME directory."""
    config = acme_config(settings)
    if config is None:
        return None
    http01 = DatabaseHttp01Store(sessions, utc_now, config.order_deadline + timedelta(minutes=5))
    return CertificateWork(
        sessions=sessions,
        config=config,
        box=SecretBox(settings.resolved_secrets_key()),
        dns01=dns01_provider(settings),
        http01=http01,
    )


# --- flows ----------------------------------------------------------------------------------


@flow(name="recheck-domains", log_prints=False)
def recheck_domains() -> dict[str, int]:
    """Re-verify the ownership of every domain whose check is due."""
    from flows.runtime import runtime

    settings = DomainSettings(home=runtime().storage.home)
    return recheck_due_domains(runtime().sessions, config=dns_config(settings))


@flow(name="renew-certificates", log_prints=False)
def renew_certificates() -> dict[str, int]:
    """Order certificates for verified domains that have none, and renew those that are due."""
    from flows.runtime import runtime

    settings = DomainSettings(home=runtime().storage.home)
    with transaction(runtime().sessions) as session:
        announce_expiring(session, now=utc_now())
    work = certificate_work(runtime().sessions, settings)
    if work is None:
        log.info("certificates.not_configured", reason="STREAMFLOW_ACME_DIRECTORY_URL is unset")
        return {}
    outcomes = process_certificates(work, concurrency=settings.acme_concurrency)
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    return counts
