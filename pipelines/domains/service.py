"""Domain use cases: add, remove, and check ownership through DNS (dnspython).

Ownership is a per-tenant, per-hostname token published as TXT at
`_streamflow-verification.<hostname>`. Checks ask the configured resolvers (address or
address:port) and, when configured, the authoritative servers first. A hostname is held
verified by one tenant at a time; another takes it over only by proving ownership with its own
token, and the first is then told (a system notice addressed to it, and an audit row).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from sqlalchemy.orm import Session

from models.db.enums import DomainStatus, OwnershipOutcome
from models.db.repositories.audit import record_audit
from models.db.repositories.domains import DomainRepository
from models.db.repositories.organizations import OrganizationRepository
from models.db.tables import Domain
from models.domain_settings import DomainSettings
from pipelines.domains.hostnames import normalize_hostname, verification_record_name
from pipelines.domains.ownership import (
    CheckPolicy,
    DomainState,
    Judgement,
    Lookup,
    LookupKind,
    apply_check,
    judge_ownership,
    judge_routing,
)
from pipelines.domains.read_models import DomainDetail
from pipelines.domains.views import domain_detail_of
from pipelines.errors import InvalidInput, NotFound
from pipelines.notices.service import NoticeDraft, create_notice

TOKEN_PREFIX = "streamflow-verification="


@dataclass(frozen=True)
class DnsConfig:
    """Where ownership and routing are looked up."""

    resolvers: tuple[str, ...] = ()
    """`address` or `address:port` (`[v6]:port`); empty: the system's resolvers."""
    authoritative: tuple[str, ...] = ()
    """Asked first when given; their definite answer wins over the resolvers'."""
    timeout_seconds: float = 3.0
    routing_targets: tuple[str, ...] = ()
    """CNAME targets that mean "points at the platform"."""
    routing_addresses: tuple[str, ...] = ()
    """A/AAAA addresses that mean "points at the platform"."""
    platform_suffixes: tuple[str, ...] = ()
    """Names the platform owns; tenants may not claim them or names under them."""
    policy: CheckPolicy = field(default_factory=CheckPolicy)


def dns_config_from(settings: DomainSettings) -> DnsConfig:
    """The ownership-check configuration of settings the caller read."""
    return DnsConfig(
        resolvers=tuple(settings.dns_resolvers),
        authoritative=tuple(settings.dns_authoritative),
        timeout_seconds=settings.dns_timeout_seconds,
        routing_targets=tuple(settings.domain_cname_targets),
        routing_addresses=tuple(settings.domain_addresses),
        platform_suffixes=tuple(settings.platform_domains),
        policy=CheckPolicy(
            interval=timedelta(minutes=settings.domain_check_interval_minutes),
            grace=timedelta(hours=settings.domain_grace_hours),
        ),
    )


def parse_server(text: str) -> tuple[str, int]:
    """(address, port) of `address`, `address:port` or `[v6]:port` (port 53 by default)."""
    value = text.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if value.count(":") == 1:
        host, _, port = value.partition(":")
        if not port.isdigit():
            raise InvalidInput(f"DNS server {text!r}: the port must be a number", field="dns")
        return host, int(port)
    return value, 53


def _resolver(servers: Sequence[str], timeout: float) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=not servers)
    if servers:
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(*parse_server(server)) for server in servers
        ]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None
    return resolver


def lookup(name: str, rdtype: str, *, servers: Sequence[str], timeout: float) -> Lookup:
    """One DNS query through `servers`, its end classified (no exception escapes)."""
    resolver = _resolver(servers, timeout)
    try:
        answer = resolver.resolve(name, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN:
        return Lookup(LookupKind.NXDOMAIN)
    except dns.resolver.NoNameservers as error:
        return Lookup(LookupKind.SERVFAIL, detail=str(error)[:300])
    except dns.exception.Timeout:
        return Lookup(LookupKind.TIMEOUT, detail=f"no answer within {timeout:g} s")
    except dns.exception.DNSException as error:
        return Lookup(LookupKind.SERVFAIL, detail=str(error)[:300])
    if answer.rrset is None:
        return Lookup(LookupKind.NODATA)
    values: list[str] = []
    for rdata in answer.rrset:
        if rdata.rdtype == dns.rdatatype.TXT:
            values.append(b"".join(rdata.strings).decode("utf-8", "replace"))
        else:
            values.append(rdata.to_text())
    return Lookup(LookupKind.ANSWER, tuple(sorted(values)))


def check_ownership(hostname: str, token: str, config: DnsConfig) -> Judgement:
    """Look up the verification record and judge it (authoritative servers first)."""
    record = verification_record_name(hostname)
    judgement: Judgement | None = None
    for servers in (config.authoritative, config.resolvers):
        if servers is config.authoritative and not servers:
            continue
        found = lookup(record, "TXT", servers=servers, timeout=config.timeout_seconds)
        judgement = judge_ownership(found, record=record, token=token)
        if judgement.outcome is not OwnershipOutcome.UNAVAILABLE:
            return judgement
    assert judgement is not None
    return judgement


def check_routing(hostname: str, config: DnsConfig) -> tuple[str, tuple[str, ...]]:
    """Whether `hostname` points at the platform, as (outcome, what was found)."""
    name = hostname[2:] if hostname.startswith("*.") else hostname
    if not config.routing_targets and not config.routing_addresses:
        outcome, found = judge_routing(
            Lookup(LookupKind.NODATA), Lookup(LookupKind.NODATA), targets=(), platform_addresses=()
        )
        return outcome, found
    timeout = config.timeout_seconds
    cname = lookup(name, "CNAME", servers=config.resolvers, timeout=timeout)
    addresses = lookup(name, "A", servers=config.resolvers, timeout=timeout)
    if addresses.kind is not LookupKind.ANSWER:
        addresses = lookup(name, "AAAA", servers=config.resolvers, timeout=timeout)
    outcome, found = judge_routing(
        cname,
        addresses,
        targets=config.routing_targets,
        platform_addresses=config.routing_addresses,
    )
    return outcome, found


# --- use cases ------------------------------------------------------------------------------


def new_token() -> str:
    """A fresh ownership token (the TXT value a tenant publishes)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def add_domain(
    session: Session,
    *,
    organization_id: uuid.UUID,
    hostname: str,
    actor: str,
    now: datetime,
    config: DnsConfig,
) -> DomainDetail:
    """Claim `hostname` for a tenant: pending until its TXT token is seen (idempotent).

    The hostname may be held by another tenant; this claim then takes it over only once the
    ownership check passes. Nothing says which tenant holds it.
    """
    name = normalize_hostname(hostname, platform_suffixes=config.platform_suffixes)
    domains = DomainRepository(session)
    existing = domains.by_hostname(organization_id, name.ascii)
    if existing is not None:
        return domain_detail_of(session, existing)
    domain = domains.add(
        Domain(
            organization_id=organization_id,
            hostname=name.ascii,
            unicode_hostname=name.unicode,
            verification_token=new_token(),
            status=DomainStatus.PENDING,
            next_check_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    record_audit(
        session,
        "domain.added",
        domain.id,
        actor=actor,
        organization_id=organization_id,
        details={"hostname": name.ascii},
    )
    return domain_detail_of(session, domain)


def remove_domain(
    session: Session, *, organization_id: uuid.UUID, domain_id: uuid.UUID, actor: str
) -> None:
    """Remove a tenant's claim and its certificate (the certificate is not revoked)."""
    domains = DomainRepository(session)
    domain = domains.get(organization_id, domain_id)
    if domain is None:
        raise NotFound(f"domain {domain_id} not found", field="domain_id")
    hostname = domain.hostname
    domains.delete(domain)
    record_audit(
        session,
        "domain.removed",
        domain_id,
        actor=actor,
        organization_id=organization_id,
        details={"hostname": hostname},
    )


def _notify(
    session: Session, organization_id: uuid.UUID, title: str, body: str, now: datetime
) -> None:
    organization = OrganizationRepository(session).get(organization_id)
    if organization is None:
        return
    create_notice(
        session,
        draft=NoticeDraft(
            title=title, body=body, severity="warning", audience=[organization.slug], starts_at=now
        ),
        actor="system:domains",
        now=now,
    )


def check_domain(
    session: Session,
    *,
    domain_id: uuid.UUID,
    config: DnsConfig,
    now: datetime,
    actor: str,
    organization_id: uuid.UUID | None = None,
    judgement: Judgement | None = None,
) -> DomainDetail:
    """Check a domain's ownership (and routing) now and apply what was found.

    `organization_id` limits the check to that tenant's domain (the tenant API); flows pass
    None. The transfer of a hostname from another tenant, and the notices, need the platform
    scope. `judgement` replaces the DNS lookup (tests of the state machine).
    """
    domains = DomainRepository(session)
    domain = (
        domains.get(organization_id, domain_id)
        if organization_id is not None
        else domains.get_any(domain_id)
    )
    if domain is None:
        raise NotFound(f"domain {domain_id} not found", field="domain_id")
    if domain.status == DomainStatus.RELEASED and organization_id is None:
        return domain_detail_of(session, domain)
    found = judgement or check_ownership(domain.hostname, domain.verification_token, config)
    routing, routed = check_routing(domain.hostname, config)
    state = DomainState(
        DomainStatus(domain.status)
        if domain.status != DomainStatus.RELEASED
        else DomainStatus.PENDING,
        domain.verified_at,
        domain.failing_since,
        domain.unavailable_streak,
    )
    transition = apply_check(state, found, now=now, policy=config.policy)
    if transition.became_verified:
        holder = domains.verified_holder(domain.hostname)
        if holder is not None and holder.id != domain.id:
            holder.status = DomainStatus.RELEASED
            holder.updated_at = now
            session.flush()
            record_audit(
                session,
                "domain.released",
                holder.id,
                actor=actor,
                organization_id=holder.organization_id,
                details={"hostname": holder.hostname, "reason": "another tenant proved ownership"},
            )
            _notify(
                session,
                holder.organization_id,
                f"{holder.hostname} was claimed by another account",
                f"Another account proved ownership of {holder.hostname} through DNS; it no longer "
                "belongs to you. If this is a mistake, publish your verification record again "
                "and contact support.",
                now,
            )
    previous = domain.status
    domain.status = transition.state.status
    domain.verified_at = transition.state.verified_at
    domain.failing_since = transition.state.failing_since
    domain.unavailable_streak = transition.state.unavailable_streak
    domain.ownership_outcome = found.outcome
    domain.ownership_found = list(found.found)
    domain.ownership_detail = found.detail
    domain.routing_outcome = routing
    domain.routing_found = list(routed)
    domain.checks += 1
    domain.last_checked_at = now
    domain.next_check_at = transition.next_check_at
    domain.updated_at = now
    session.flush()
    if domain.status != previous:
        record_audit(
            session,
            f"domain.{domain.status}",
            domain.id,
            actor=actor,
            organization_id=domain.organization_id,
            details={"hostname": domain.hostname, "outcome": found.outcome, "was": previous},
        )
    if transition.lapsed:
        _notify(
            session,
            domain.organization_id,
            f"{domain.hostname} is no longer verified",
            f"The TXT record {verification_record_name(domain.hostname)} has been missing or "
            f"wrong since {domain.failing_since:%Y-%m-%d %H:%M} UTC ({found.detail}). Publish "
            "it again to keep the domain and its certificate.",
            now,
        )
    return domain_detail_of(session, domain)


def verify_domain_now(
    session: Session,
    *,
    organization_id: uuid.UUID,
    domain_id: uuid.UUID,
    config: DnsConfig,
    now: datetime,
    actor: str,
) -> DomainDetail:
    """A tenant asks for a check now (audited, whatever it finds)."""
    detail = check_domain(
        session,
        domain_id=domain_id,
        organization_id=organization_id,
        config=config,
        now=now,
        actor=actor,
    )
    record_audit(
        session,
        "domain.checked",
        domain_id,
        actor=actor,
        organization_id=organization_id,
        details={"outcome": detail.ownership.outcome, "status": detail.status},
    )
    return detail


def domains_due(session: Session, *, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Domains whose scheduled ownership check is due (platform scope)."""
    return DomainRepository(session).due_for_check(now, limit=limit)
