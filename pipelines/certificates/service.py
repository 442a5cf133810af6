"""Certificate use cases: the ACME account, orders (RFC 8555) with retries, claims, renewal,
revocation and bundle export; DNS-01 providers (RFC 2136, pebble-challtestsrv); HTTP-01 answers.

Issuing takes three steps so that no database transaction is held across the network: `claim`
(an attempt row in `running` status: at most one per certificate, so two renewal runs never
issue twice), `obtain` (the ACME order, no session), then `record_issued` or
`record_failure`. The caller commits after each step.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import dns.exception
import dns.name
import dns.query
import dns.rcode
import dns.tsig
import dns.tsigkeyring
import dns.update
import httpx
import josepy as jose
import requests
import structlog
from acme import challenges, client, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.db.enums import (
    CertificateAttemptKind,
    CertificateAttemptStatus,
    CertificateStatus,
    DomainStatus,
)
from models.db.repositories.audit import record_audit
from models.db.repositories.certificates import (
    AcmeAccountRepository,
    CertificateRepository,
    Http01Repository,
)
from models.db.repositories.domains import DomainRepository
from models.db.tables import AcmeAccount, Certificate, CertificateAttempt, Domain, Http01Challenge
from models.domain_settings import DomainSettings
from pipelines.certificates.budget import (
    BudgetState,
    FailureBudget,
    after_failure,
    backoff_seconds,
    budget_allows,
    retry_after_seconds,
)
from pipelines.certificates.caa import caa_names, caa_permits
from pipelines.certificates.keys import (
    SecretBox,
    describe_certificate,
    leaf_pem,
    make_csr_pem,
    new_private_key_pem,
)
from pipelines.certificates.read_models import (
    CertificateBundle,
    CertificateDetail,
)
from pipelines.certificates.renewal import RenewalPolicy, decide_renewal
from pipelines.certificates.views import certificate_detail_of
from pipelines.domains.ownership import LookupKind
from pipelines.domains.service import lookup, parse_server
from pipelines.errors import Conflict, InvalidInput, NotFound, StreamflowError
from pipelines.webhooks.service import emit_event

log = structlog.get_logger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]

REVOCATION_REASONS = {0, 1, 3, 4, 5}
"""RFC 5280 reasons a subscriber may give: unspecified, keyCompromise, affiliationChanged,
superseded, cessationOfOperation."""
DEFINITE_PROBLEMS = {
    "unauthorized",
    "caa",
    "rejectedIdentifier",
    "badCSR",
    "dns",
    "connection",
    "incorrectResponse",
    "tls",
    "unsupportedIdentifier",
    "malformed",
}
"""Problems a retry cannot fix: the order fails and counts against the failure budget."""


class IssuanceFailed(StreamflowError):
    """An order could not produce a certificate; `retries` requests were retried on the way."""

    def __init__(self, message: str, *, retries: int = 0, definite: bool = True) -> None:
        super().__init__(message)
        self.retries = retries
        self.definite = definite


@dataclass(frozen=True)
class AcmeConfig:
    """How to reach the CA and how hard to try."""

    directory_url: str
    ca_bundle: str | None = None
    """A CA bundle file to trust for the directory's TLS (e.g. Pebble's test CA)."""
    contact: str | None = None
    challenge: str = "dns-01"
    """`dns-01` or `http-01` (wildcards always use DNS-01)."""
    request_retries: int = 8
    backoff_base_seconds: float = 0.25
    backoff_cap_seconds: float = 30.0
    jitter: float = 0.25
    order_attempts: int = 3
    """Orders started afresh when one vanishes (a CA restart) within the deadline."""
    order_deadline: timedelta = timedelta(minutes=5)
    timeout_seconds: float = 30.0
    lease: timedelta = timedelta(minutes=15)
    renewal: RenewalPolicy = field(default_factory=RenewalPolicy)
    budget: FailureBudget = field(default_factory=FailureBudget)
    user_agent: str = "streamflow-acme"
    caa_identities: tuple[str, ...] = ()
    """Issuer domains of our CA in CAA records (`letsencrypt.org`); empty: no CAA check."""
    dns_resolvers: tuple[str, ...] = ()
    """Resolvers for the CAA check (`address:port`); empty: the system's."""


def acme_config_from(settings: DomainSettings) -> AcmeConfig | None:
    """The ACME configuration of settings the caller read; None without a directory."""
    if not settings.acme_directory_url:
        return None
    return AcmeConfig(
        directory_url=settings.acme_directory_url,
        ca_bundle=settings.acme_ca_bundle,
        contact=settings.acme_contact,
        challenge=settings.acme_challenge,
        order_deadline=timedelta(seconds=settings.acme_order_deadline_seconds),
        renewal=RenewalPolicy(remaining_ratio=settings.acme_renew_remaining_ratio),
        budget=FailureBudget(
            max_failures=settings.acme_failure_budget,
            window=timedelta(minutes=settings.acme_failure_window_minutes),
        ),
        caa_identities=tuple(settings.acme_caa_identities),
        dns_resolvers=tuple(settings.dns_resolvers),
    )


# --- DNS-01 providers -----------------------------------------------------------------------


class Dns01Provider(Protocol):
    """Publishes and withdraws `_acme-challenge` TXT records."""

    def present(self, name: str, value: str) -> None: ...

    def cleanup(self, name: str, value: str) -> None: ...


class ChallTestSrvProvider:
    """DNS-01 through pebble-challtestsrv's management API (tests and local runs)."""

    def __init__(self, management_url: str, *, timeout: float = 10.0) -> None:
        self.url = management_url.rstrip("/")
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any]) -> None:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=self.timeout)
        response.raise_for_status()

    def present(self, name: str, value: str) -> None:
        self._post("/set-txt", {"host": name.rstrip(".") + ".", "value": value})

    def cleanup(self, name: str, value: str) -> None:  # noqa: ARG002 - clears the name
        self._post("/clear-txt", {"host": name.rstrip(".") + "."})


class Rfc2136Provider:
    """DNS-01 through RFC 2136 dynamic updates signed with TSIG (BIND, Knot, PowerDNS…)."""

    def __init__(
        self,
        *,
        server: str,
        zone: str,
        key_name: str,
        key_secret: str,
        algorithm: str = "hmac-sha256",
        ttl: int = 60,
        timeout: float = 10.0,
    ) -> None:
        self.address, self.port = parse_server(server)
        self.zone = dns.name.from_text(zone)
        self.keyring = dns.tsigkeyring.from_text({key_name: key_secret})
        self.key_name = dns.name.from_text(key_name)
        self.algorithm = dns.name.from_text(algorithm)
        self.ttl = ttl
        self.timeout = timeout

    def _send(
        self, change: Callable[[dns.update.UpdateMessage, dns.name.Name], None], name: str
    ) -> None:
        record = dns.name.from_text(name)
        if not record.is_subdomain(self.zone):
            raise InvalidInput(f"{name} is not inside the zone {self.zone}", field="zone")
        update = dns.update.UpdateMessage(
            self.zone, keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.algorithm
        )
        change(update, record.relativize(self.zone))
        try:
            response = dns.query.tcp(update, self.address, port=self.port, timeout=self.timeout)
        except (dns.exception.DNSException, OSError) as error:
            raise IssuanceFailed(
                f"the DNS server refused the update of {name}: {error}", definite=False
            ) from error
        if response.rcode() != dns.rcode.NOERROR:
            raise IssuanceFailed(
                f"the DNS server refused the update of {name}: "
                f"{dns.rcode.to_text(response.rcode())}",
                definite=False,
            )

    def present(self, name: str, value: str) -> None:
        self._send(lambda u, n: u.add(n, self.ttl, "TXT", f'"{value}"'), name)

    def cleanup(self, name: str, value: str) -> None:
        self._send(lambda u, n: u.delete(n, "TXT", f'"{value}"'), name)


class Http01Store(Protocol):
    """Where HTTP-01 answers are kept for the API's `/.well-known/acme-challenge/{token}`."""

    def present(self, token: str, key_authorization: str, hostname: str) -> None: ...

    def cleanup(self, token: str) -> None: ...


# --- the ACME client --------------------------------------------------------------------------


class _Network(client.ClientNetwork):
    """The `acme` network client, remembering the last `Retry-After` it was sent."""

    last_retry_after: str | None = None

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        self.last_retry_after = None
        response: requests.Response = super()._send_request(method, url, *args, **kwargs)
        self.last_retry_after = response.headers.get("Retry-After")
        return response


class _NewOrder(messages.NewOrder):
    """A new order that may name the certificate it replaces (RFC 9773 `replaces`)."""

    replaces: str | None = jose.field("replaces", omitempty=True)  # type: ignore[attr-defined]


@dataclass
class Obtained:
    """A certificate an order produced."""

    chain_pem: str
    key_pem: bytes
    order_url: str | None
    retries: int
    ari_time: datetime | None


class AcmeClient:
    """One ACME account at one directory, with retries the `acme` library lacks.

    Network errors, `badNonce`, rate limits and server errors are retried with exponential
    backoff and jitter, honouring `Retry-After`; an order the CA lost (a restart) is placed
    again; an account the CA forgot is registered again with the same key.
    """

    def __init__(
        self,
        config: AcmeConfig,
        account_key_pem: bytes,
        account_url: str | None,
        *,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        key = serialization.load_pem_private_key(account_key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidInput("the ACME account key must be ECDSA P-256", field="account_key")
        self.key = jose.JWKEC(key=key)  # type: ignore[attr-defined]
        self.account_url = account_url
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.retries = 0
        self.net = _Network(
            self.key,
            alg=jose.ES256,  # type: ignore[attr-defined]
            # `requests` takes a CA bundle path where the library's annotation says bool.
            verify_ssl=config.ca_bundle or True,  # type: ignore[arg-type]
            user_agent=config.user_agent,
            timeout=int(config.timeout_seconds),
        )
        self._acme: client.ClientV2 | None = None
        if account_url:
            self.net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=account_url
            )

    # retries ---------------------------------------------------------------------------------

    def call(self, what: str, action: Callable[[], T], *, deadline: datetime | None = None) -> T:
        """`action`, retried on transient failures until the retries or the deadline run out."""
        attempt = 0
        while True:
            try:
                return action()
            except messages.Error as error:
                if error.code not in {"badNonce", "rateLimited", "serverInternal"}:
                    raise
                reason = error.code
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
                reason = type(error).__name__
            except errors.ConflictError:
                raise  # an answer (e.g. "this key has an account"), not a failure
            except errors.ClientError as error:
                reason = f"unexpected response: {str(error)[:100]}"
            attempt += 1
            if attempt > self.config.request_retries:
                raise IssuanceFailed(
                    f"{what}: gave up after {attempt} tries ({reason})",
                    retries=self.retries,
                    definite=False,
                )
            delay = backoff_seconds(
                attempt,
                base=self.config.backoff_base_seconds,
                cap=self.config.backoff_cap_seconds,
                jitter=self.config.jitter,
                random_fraction=self.rng.random(),
            )
            asked = retry_after_seconds(self.net.last_retry_after, now=self.clock())
            if asked is not None:
                delay = max(delay, asked)
            if deadline is not None:
                left = (deadline - self.clock()).total_seconds()
                if left <= 0:
                    raise IssuanceFailed(
                        f"{what}: the order's deadline passed ({reason})",
                        retries=self.retries,
                        definite=False,
                    )
                delay = min(delay, left)
            self.retries += 1
            log.info("acme.retry", what=what, reason=reason, attempt=attempt, delay=round(delay, 3))
            self.sleep(delay)

    def acme(self) -> client.ClientV2:
        """The directory client, with the account registered (again, if the CA forgot it)."""
        if self._acme is None:
            directory = self.call(
                "directory",
                lambda: client.ClientV2.get_directory(self.config.directory_url, self.net),
            )
            self._acme = client.ClientV2(directory, self.net)
        if self.net.account is None:
            self._register()
        return self._acme

    def _register(self) -> None:
        assert self._acme is not None
        acme = self._acme
        registration = messages.NewRegistration.from_data(
            email=self.config.contact, terms_of_service_agreed=True
        )
        try:
            account = self.call("new account", lambda: acme.new_account(registration))
        except errors.ConflictError as existing:
            # The key is registered already: the server answers 409 with the account's URL.
            account = messages.RegistrationResource(
                body=messages.Registration(), uri=str(existing.location)
            )
        self.net.account = account
        self.account_url = account.uri

    def forget_session(self) -> None:
        """Start over with the directory (after the CA restarted or lost our account)."""
        self._acme = None
        self.net.account = None

    @property
    def offers_renewal_info(self) -> bool:
        acme = self.acme()
        try:
            acme.directory["renewalInfo"]
        except KeyError:
            return False
        return True

    def renewal_time(self, chain_pem: str) -> datetime | None:
        """The CA's suggested renewal time (ARI), or None if it offers none."""
        acme = self.acme()
        try:
            suggested, _ = self.call(
                "renewal info", lambda: acme.renewal_time(leaf_pem(chain_pem).encode())
            )
        except errors.ARIError:
            return None
        if suggested is None:
            return None
        return suggested if suggested.tzinfo else suggested.replace(tzinfo=UTC)

    # orders ----------------------------------------------------------------------------------

    def obtain(
        self,
        hostnames: Sequence[str],
        *,
        dns01: Dns01Provider | None,
        http01: Http01Store | None,
        replaces: str | None = None,
    ) -> Obtained:
        """A certificate for `hostnames` on a fresh ECDSA P-256 key, within the order deadline."""
        deadline = self.clock() + self.config.order_deadline
        for hostname in hostnames:
            refused = caa_refusal(hostname, self.config)
            if refused:
                raise IssuanceFailed(refused, retries=self.retries)
        key_pem = new_private_key_pem()
        csr = make_csr_pem(key_pem, list(hostnames))
        last: Exception | None = None
        for _ in range(self.config.order_attempts):
            if self.clock() >= deadline:
                break
            try:
                chain, order_url = self._order_once(csr, dns01, http01, replaces, deadline)
                ari_time = self._ari(chain)
            except messages.Error as error:
                if error.code in DEFINITE_PROBLEMS:
                    raise IssuanceFailed(
                        f"the CA refused the order: {error.detail or error.code}",
                        retries=self.retries,
                    ) from error
                last = error
            except errors.ValidationError as error:
                raise IssuanceFailed(_validation_problem(error), retries=self.retries) from error
            except errors.TimeoutError as error:
                last = error
            except IssuanceFailed as error:
                last = error
            else:
                return Obtained(chain, key_pem, order_url, self.retries, ari_time)
            log.info("acme.order_restarted", hostnames=list(hostnames), reason=str(last)[:200])
            self.forget_session()
        raise IssuanceFailed(
            "no certificate before the order's deadline: "
            + (str(last)[:300] if last else "deadline passed"),
            retries=self.retries,
            definite=False,
        )

    def _ari(self, chain: str) -> datetime | None:
        try:
            return self.renewal_time(chain) if self.offers_renewal_info else None
        except IssuanceFailed:
            return None

    def _new_order(self, csr_pem: bytes, replaces: str | None) -> messages.OrderResource:
        acme = self.acme()
        if replaces is None or not self.offers_renewal_info:
            return acme.new_order(csr_pem)
        csr = x509.load_pem_x509_csr(csr_pem)
        names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        order = _NewOrder(
            identifiers=[
                messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)
                for name in names.value.get_values_for_type(x509.DNSName)
            ],
            replaces=replaces,
        )
        response = acme._post(acme.directory["newOrder"], order)
        body = messages.Order.from_json(response.json())
        authorizations = [
            acme._authzr_from_response(acme._post_as_get(url), uri=url)
            for url in body.authorizations
        ]
        return messages.OrderResource(
            body=body,
            uri=response.headers.get("Location"),
            authorizations=authorizations,
            csr_pem=csr_pem,
        )

    def _order_once(
        self,
        csr_pem: bytes,
        dns01: Dns01Provider | None,
        http01: Http01Store | None,
        replaces: str | None,
        deadline: datetime,
    ) -> tuple[str, str | None]:
        try:
            order = self.call(
                "new order", lambda: self._new_order(csr_pem, replaces), deadline=deadline
            )
        except messages.Error as error:
            if error.code == "accountDoesNotExist":
                self.forget_session()
                order = self.call(
                    "new order", lambda: self._new_order(csr_pem, replaces), deadline=deadline
                )
            else:
                raise
        acme = self.acme()
        published: list[Callable[[], None]] = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue
                name = authz.body.identifier.value
                use_dns = (
                    bool(authz.body.wildcard) or self.config.challenge == "dns-01" or http01 is None
                )
                wanted = challenges.DNS01 if use_dns else challenges.HTTP01
                challenge = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, wanted)), None
                )
                if challenge is None:
                    raise IssuanceFailed(f"the CA offers no {wanted.typ} challenge for {name}")
                if use_dns:
                    if dns01 is None:
                        raise IssuanceFailed("DNS-01 is needed but no DNS provider is configured")
                    record = challenge.chall.validation_domain_name(name)
                    value = challenge.chall.validation(self.key)
                    dns01.present(record, value)
                    published.append(functools.partial(dns01.cleanup, record, value))
                else:
                    assert http01 is not None
                    token = challenge.chall.encode("token")
                    http01.present(token, challenge.chall.validation(self.key), name)
                    published.append(functools.partial(http01.cleanup, token))
                self._answer(acme, challenge, deadline)
            # The library compares its deadline with a naive local clock.
            naive_deadline = deadline.astimezone().replace(tzinfo=None)
            placed = order

            def poll() -> messages.OrderResource:
                return acme.poll_authorizations(placed, naive_deadline)

            polled = self.call("poll authorizations", poll, deadline=deadline)

            def finalize() -> messages.OrderResource:
                return acme.finalize_order(polled, naive_deadline)

            done = self.call("finalize", finalize, deadline=deadline)
        finally:
            for withdraw in published:
                try:
                    withdraw()
                except Exception as error:
                    log.warning("acme.cleanup_failed", error=str(error)[:200])
        if not done.fullchain_pem:
            raise IssuanceFailed("the CA finalized the order without a certificate", definite=False)
        return done.fullchain_pem, order.uri

    def _answer(
        self, acme: client.ClientV2, challenge: messages.ChallengeBody, deadline: datetime
    ) -> None:
        response = challenge.chall.response(self.key)

        def answer() -> messages.ChallengeResource:
            return acme.answer_challenge(challenge, response)

        self.call("answer challenge", answer, deadline=deadline)

    def revoke(self, chain_pem: str, reason: int) -> None:
        acme = self.acme()
        cert = x509.load_pem_x509_certificate(leaf_pem(chain_pem).encode())
        self.call("revoke", lambda: acme.revoke(cert, reason))


def caa_refusal(hostname: str, config: AcmeConfig) -> str | None:
    """Why CAA forbids our CA to issue for `hostname`, or None when it may."""
    if not config.caa_identities:
        return None
    for name in caa_names(hostname):
        found = lookup(name, "CAA", servers=config.dns_resolvers, timeout=5.0)
        if found.kind is LookupKind.ANSWER:
            if caa_permits(found.values, config.caa_identities, wildcard=hostname.startswith("*.")):
                return None
            return (
                f"caa: the CAA records of {name} ({'; '.join(found.values)}) do not allow "
                f"{', '.join(config.caa_identities)} to issue; add one for it"
            )
        if found.kind in {LookupKind.SERVFAIL, LookupKind.TIMEOUT}:
            return None  # the CA checks CAA itself; do not fail on our lookup
    return None


def _validation_problem(error: errors.ValidationError) -> str:
    problems = []
    for authz in error.failed_authzrs:
        for challenge in authz.body.challenges:
            if challenge.error is not None:
                problem = challenge.error.detail or challenge.error.code
                problems.append(f"{authz.body.identifier.value}: {problem}")
    return "validation failed: " + ("; ".join(problems) or "no detail")


# --- the account ----------------------------------------------------------------------------


def account_for(
    session: Session, *, config: AcmeConfig, box: SecretBox, now: datetime
) -> AcmeAccount:
    """The platform's account at `config.directory_url`, its key created on first use."""
    accounts = AcmeAccountRepository(session)
    account = accounts.by_directory(config.directory_url)
    if account is not None:
        return account
    key_pem = new_private_key_pem()
    account = accounts.add(
        AcmeAccount(
            directory_url=config.directory_url,
            key_encrypted=box.seal(key_pem),
            contact=config.contact,
            created_at=now,
            updated_at=now,
        )
    )
    record_audit(
        session,
        "acme_account.created",
        account.id,
        actor="system:certificates",
        details={"directory_url": config.directory_url},
    )
    return account


def acme_client(
    account: AcmeAccount, *, config: AcmeConfig, box: SecretBox, clock: Clock, **kwargs: Any
) -> AcmeClient:
    """A client acting as `account` (one per thread: the `acme` library is not thread-safe)."""
    return AcmeClient(
        config, box.open(account.key_encrypted), account.account_url, clock=clock, **kwargs
    )


def remember_account_url(
    session: Session, *, account_id: uuid.UUID, account_url: str | None, now: datetime
) -> None:
    """Store the account URL the CA gave (it changes when a test CA restarts)."""
    account = AcmeAccountRepository(session).get(account_id)
    if account is not None and account_url and account.account_url != account_url:
        account.account_url = account_url
        account.updated_at = now


# --- claims and outcomes --------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A certificate claimed for one order: the attempt row holds the claim."""

    attempt_id: uuid.UUID
    certificate_id: uuid.UUID
    organization_id: uuid.UUID
    hostnames: tuple[str, ...]
    kind: CertificateAttemptKind
    replaces: str | None


def claim_certificate(
    session: Session,
    *,
    domain_id: uuid.UUID,
    claimed_by: str,
    now: datetime,
    config: AcmeConfig,
    force: bool = False,
) -> Claim | None:
    """Claim a verified domain's certificate for an order, or None when there is nothing to do.

    None when the domain is not verified, the certificate is not due, its failure budget is
    spent, or another run holds the claim (its lease unexpired). Ownership must be verified
    before any order is placed.
    """
    domain = DomainRepository(session).get_any(domain_id)
    if domain is None or domain.status != DomainStatus.VERIFIED:
        return None
    certificates = CertificateRepository(session)
    certificate = certificates.for_domain(domain.id)
    if certificate is None:
        certificate = _new_certificate(session, domain, now)
    if not force and not _due(certificate, now=now, config=config):
        return None
    running = certificates.running_attempt(certificate.id)
    if running is not None:
        if running.lease_until > now:
            return None
        certificates.abandon_attempt(running.id, now=now)
        session.flush()
    kind = (
        CertificateAttemptKind.RENEW
        if certificate.status == CertificateStatus.VALID
        else CertificateAttemptKind.ISSUE
    )
    replaces = certificate.ari_id if kind is CertificateAttemptKind.RENEW else None
    try:
        with session.begin_nested():
            attempt = certificates.add_attempt(
                CertificateAttempt(
                    organization_id=certificate.organization_id,
                    certificate_id=certificate.id,
                    kind=kind,
                    status=CertificateAttemptStatus.RUNNING,
                    claimed_by=claimed_by,
                    lease_until=now + config.lease,
                    started_at=now,
                    replaces=replaces,
                )
            )
    except IntegrityError:
        return None  # another run claimed it first
    return Claim(
        attempt.id,
        certificate.id,
        certificate.organization_id,
        tuple(certificate.hostnames),
        kind,
        replaces,
    )


def _new_certificate(session: Session, domain: Domain, now: datetime) -> Certificate:
    try:
        with session.begin_nested():
            return CertificateRepository(session).add(
                Certificate(
                    organization_id=domain.organization_id,
                    domain_id=domain.id,
                    hostnames=[domain.hostname],
                    status=CertificateStatus.PENDING,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        existing = CertificateRepository(session).for_domain(domain.id)
        assert existing is not None
        return existing


def _due(certificate: Certificate, *, now: datetime, config: AcmeConfig) -> bool:
    if certificate.status == CertificateStatus.REVOKED:
        return False
    state = BudgetState(
        certificate.failures,
        certificate.failure_window_started_at,
        certificate.consecutive_failures,
    )
    if not budget_allows(state, now=now, budget=config.budget):
        return False
    if certificate.next_attempt_at is not None and certificate.next_attempt_at > now:
        return False
    if certificate.status != CertificateStatus.VALID:
        return True
    assert certificate.not_before is not None
    assert certificate.not_after is not None
    return decide_renewal(
        not_before=certificate.not_before,
        not_after=certificate.not_after,
        now=now,
        ari_time=certificate.renew_at if certificate.ari_id and certificate.renew_at else None,
        policy=config.renewal,
    ).renew


def record_issued(
    session: Session,
    *,
    claim: Claim,
    obtained: Obtained,
    box: SecretBox,
    account_id: uuid.UUID,
    now: datetime,
    config: AcmeConfig,
) -> Certificate:
    """Store the new chain and sealed key, schedule the renewal, end the attempt."""
    certificates = CertificateRepository(session)
    certificate = certificates.get_any(claim.certificate_id)
    attempt = certificates.get_attempt(claim.attempt_id)
    if certificate is None or attempt is None:
        raise NotFound("the certificate was removed while its order ran")
    issued = describe_certificate(obtained.chain_pem)
    certificate.chain_pem = obtained.chain_pem
    certificate.key_encrypted = box.seal(obtained.key_pem)
    certificate.serial = issued.serial
    certificate.ari_id = issued.ari_id
    certificate.not_before = issued.not_before
    certificate.not_after = issued.not_after
    certificate.renew_at = (
        obtained.ari_time
        or decide_renewal(
            not_before=issued.not_before, not_after=issued.not_after, now=now, policy=config.renewal
        ).due_at
    )
    certificate.status = CertificateStatus.VALID
    certificate.acme_account_id = account_id
    certificate.issued_at = now
    certificate.revoked_at = None
    certificate.revocation_reason = None
    certificate.failures = 0
    certificate.failure_window_started_at = None
    certificate.consecutive_failures = 0
    certificate.next_attempt_at = None
    certificate.last_error = None
    certificate.updated_at = now
    attempt.status = CertificateAttemptStatus.SUCCEEDED
    attempt.finished_at = now
    attempt.serial = issued.serial
    attempt.order_url = obtained.order_url
    attempt.retries = obtained.retries
    session.flush()
    record_audit(
        session,
        f"certificate.{'renewed' if claim.kind is CertificateAttemptKind.RENEW else 'issued'}",
        certificate.id,
        actor="system:certificates",
        organization_id=certificate.organization_id,
        details={"serial": issued.serial, "hostnames": list(issued.hostnames)},
    )
    return certificate


def record_failure(
    session: Session,
    *,
    claim: Claim,
    error: str,
    retries: int,
    now: datetime,
    config: AcmeConfig,
) -> Certificate:
    """Count a failed attempt against the budget and schedule the next one with backoff."""
    certificates = CertificateRepository(session)
    certificate = certificates.get_any(claim.certificate_id)
    attempt = certificates.get_attempt(claim.attempt_id)
    if certificate is None or attempt is None:
        raise NotFound("the certificate was removed while its order ran")
    state, next_at = after_failure(
        BudgetState(
            certificate.failures,
            certificate.failure_window_started_at,
            certificate.consecutive_failures,
        ),
        now=now,
        budget=config.budget,
    )
    certificate.failures = state.failures
    certificate.failure_window_started_at = state.window_started_at
    certificate.consecutive_failures = state.consecutive_failures
    certificate.next_attempt_at = next_at
    certificate.last_error = error[:2000]
    if certificate.status != CertificateStatus.VALID:
        certificate.status = CertificateStatus.FAILED
    certificate.updated_at = now
    attempt.status = CertificateAttemptStatus.FAILED
    attempt.finished_at = now
    attempt.error = error[:2000]
    attempt.retries = retries
    session.flush()
    record_audit(
        session,
        "certificate.failed",
        certificate.id,
        actor="system:certificates",
        organization_id=certificate.organization_id,
        details={"error": error[:300], "failures": state.failures},
    )
    return certificate


EXPIRY_WARNING = timedelta(days=14)
"""Renewal starts when a third of the term is left; this close to the end it has failed."""


def announce_expiring(
    session: Session, *, now: datetime, within: timedelta = EXPIRY_WARNING, limit: int = 500
) -> int:
    """Queue `certificate.expiring` webhooks for valid certificates ending within `within`.

    Once per certificate term and endpoint (the event's subject is the certificate and its end),
    in the caller's transaction; returns how many certificates were announced.
    """
    expiring = CertificateRepository(session).expiring(now + within, limit=limit)
    for certificate in expiring:
        assert certificate.not_after is not None, "the query selects certificates with an end"
        emit_event(
            session,
            organization_id=certificate.organization_id,
            event_type="certificate.expiring",
            subject_id=f"{certificate.id}:{certificate.not_after.isoformat()}",
            data={
                "certificate_id": str(certificate.id),
                "hostnames": list(certificate.hostnames),
                "not_after": certificate.not_after.isoformat(),
                "links": {"self": f"/v1/domains/{certificate.domain_id}/certificate"},
            },
            now=now,
        )
    return len(expiring)


def certificates_due(session: Session, *, now: datetime, limit: int = 500) -> list[uuid.UUID]:
    """Domains whose certificate should be ordered now (platform scope)."""
    return CertificateRepository(session).due_domains(now, limit=limit)


# --- HTTP-01 answers ------------------------------------------------------------------------


def put_http01(
    session: Session, *, token: str, key_authorization: str, hostname: str, expires_at: datetime
) -> None:
    Http01Repository(session).put(
        Http01Challenge(
            token=token,
            key_authorization=key_authorization,
            hostname=hostname,
            expires_at=expires_at,
        )
    )


def drop_http01(session: Session, *, token: str) -> None:
    Http01Repository(session).drop(token)


def http01_answer(session: Session, *, token: str, now: datetime) -> str:
    """The key authorization to answer for `token`; NotFound if none is pending."""
    found = Http01Repository(session).answer(token, now=now)
    if found is None:
        raise NotFound("no ACME challenge pending for this token", field="token")
    return found.key_authorization


# --- revocation, export, reads --------------------------------------------------------------


def revoke_certificate(
    session: Session,
    *,
    certificate_id: uuid.UUID,
    reason: int,
    actor: str,
    now: datetime,
    revoke: Callable[[str, int], None],
) -> CertificateDetail:
    """Revoke a certificate at the CA (`revoke(chain, reason)`) and record it (provider)."""
    if reason not in REVOCATION_REASONS:
        raise InvalidInput(
            f"reason {reason} is not one of {sorted(REVOCATION_REASONS)} (RFC 5280)", field="reason"
        )
    certificate = CertificateRepository(session).get_any(certificate_id)
    if certificate is None:
        raise NotFound(f"certificate {certificate_id} not found", field="certificate_id")
    if certificate.status == CertificateStatus.REVOKED:
        return certificate_detail_of(session, certificate)
    if certificate.status != CertificateStatus.VALID or certificate.chain_pem is None:
        raise Conflict("only an issued, valid certificate can be revoked")
    revoke(certificate.chain_pem, reason)
    certificate.status = CertificateStatus.REVOKED
    certificate.revoked_at = now
    certificate.revocation_reason = reason
    certificate.updated_at = now
    session.flush()
    record_audit(
        session,
        "certificate.revoked",
        certificate.id,
        actor=actor,
        organization_id=certificate.organization_id,
        details={"serial": certificate.serial, "reason": reason},
    )
    return certificate_detail_of(session, certificate)


def export_bundle(
    session: Session, *, certificate_id: uuid.UUID, box: SecretBox, actor: str
) -> CertificateBundle:
    """The chain and private key of a valid certificate for the edge (provider; audited)."""
    certificate = CertificateRepository(session).get_any(certificate_id)
    if certificate is None:
        raise NotFound(f"certificate {certificate_id} not found", field="certificate_id")
    if (
        certificate.status != CertificateStatus.VALID
        or certificate.chain_pem is None
        or certificate.key_encrypted is None
        or certificate.serial is None
        or certificate.not_after is None
    ):
        raise Conflict("the certificate has no valid chain to export yet")
    record_audit(
        session,
        "certificate.exported",
        certificate.id,
        actor=actor,
        organization_id=certificate.organization_id,
        details={"serial": certificate.serial},
    )
    return CertificateBundle(
        certificate_id=certificate.id,
        hostnames=list(certificate.hostnames),
        serial=certificate.serial,
        not_after=certificate.not_after,
        chain_pem=certificate.chain_pem,
        private_key_pem=box.open(certificate.key_encrypted).decode("ascii"),
    )
