"""Webhook use cases: tenants register endpoints and rotate their secrets; events become one
delivery job per subscribed endpoint in the event's own transaction; a delivery is signed,
sent to an address the SSRF guard allows (the checked address is the one connected to), and
its outcome tells the jobs service whether to retry. Tenants list deliveries and replay one."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy.orm import Session

from models.db.enums import JobAttemptOutcome, JobKind, WebhookEndpointStatus
from models.db.repositories.audit import record_audit
from models.db.repositories.jobs import JobRepository
from models.db.repositories.webhooks import WebhookRepository
from models.db.tables import Job, WebhookEndpoint, WebhookSecret
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.jobs import service as jobs
from pipelines.jobs.read_models import AttemptView
from pipelines.jobs.retry import parse_retry_after
from pipelines.jobs.views import attempts_page
from pipelines.pagination import Paged, after_key, as_paged
from pipelines.webhooks.addresses import refused_reason
from pipelines.webhooks.signing import SECRET_BYTES, encode_secret, webhook_headers

log = structlog.get_logger()

EVENT_TYPES = (
    "evaluation.completed",
    "evaluation.failed",
    "notice.published",
    "report.ready",
    "ai_task.completed",
    "certificate.expiring",
    "challenger.promoted",
)
"""What tenants can subscribe to."""
ACTIVE, DISABLED = str(WebhookEndpointStatus.ACTIVE), str(WebhookEndpointStatus.DISABLED)
USER_AGENT = "StreamFlow-Webhooks/1"


# --- endpoints ---------------------------------------------------------------------------


SCHEMES = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Target:
    """Where a webhook URL points: scheme, host name (or literal address) and port."""

    scheme: str
    host: str
    port: int


def parse_target(url: str, *, field: str = "url") -> Target:
    """The target of a webhook URL; InvalidInput unless it is an absolute http(s) URL."""
    if len(url) > 2000:
        raise InvalidInput("the URL is longer than 2000 characters", field=field)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise InvalidInput(f"{url!r} is not a URL: {error}", field=field) from None
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise InvalidInput(
            f"{url!r} is not an absolute http(s) URL; give e.g. https://example.com/hooks",
            field=field,
        )
    if parts.username or parts.password:
        raise InvalidInput("put no credentials in the URL; verify the signature", field=field)
    return Target(parts.scheme, parts.hostname, port or SCHEMES[parts.scheme])


@dataclass(frozen=True)
class EndpointView:
    """An endpoint as its tenant sees it; `secret` only when just created or rotated."""

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    status: str
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = None


def _view(endpoint: WebhookEndpoint, secret: str | None = None) -> EndpointView:
    return EndpointView(
        id=endpoint.id,
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        status=endpoint.status,
        disabled_reason=endpoint.disabled_reason,
        created_at=endpoint.created_at,
        secret=secret,
    )


def _event_types(values: list[str] | None) -> list[str]:
    if not values:
        return []
    unknown = sorted(set(values) - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"event_types: unknown {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(EVENT_TYPES)} (or none for every event)",
            field="event_types",
        )
    return sorted(set(values))


def register_endpoint(
    session: Session,
    *,
    organization_id: uuid.UUID,
    url: str,
    event_types: list[str] | None,
    description: str,
    actor: str,
    now: datetime,
) -> EndpointView:
    """Register a URL for webhooks; its first `whsec_` secret is in the result only."""
    parse_target(url)
    endpoint = WebhookRepository(session).add(
        WebhookEndpoint(
            organization_id=organization_id,
            url=url.strip(),
            description=description.strip(),
            event_types=_event_types(event_types),
            status=ACTIVE,
            created_at=now,
        )
    )
    secret = _new_secret(session, endpoint, now)
    record_audit(
        session,
        "webhook_endpoint.created",
        endpoint.id,
        actor=actor,
        organization_id=organization_id,
        details={"event_types": endpoint.event_types},
    )
    return _view(endpoint, secret)


def _new_secret(session: Session, endpoint: WebhookEndpoint, now: datetime) -> str:
    secret = encode_secret(secrets.token_bytes(SECRET_BYTES))
    WebhookRepository(session).add_secret(
        WebhookSecret(
            endpoint_id=endpoint.id,
            organization_id=endpoint.organization_id,
            secret=secret,
            created_at=now,
        )
    )
    return secret


def _endpoint(
    session: Session, organization_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    endpoint = WebhookRepository(session).get(organization_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found", field="endpoint_id")
    return endpoint


def rotate_secret(
    session: Session,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    overlap: timedelta,
    actor: str,
    now: datetime,
) -> EndpointView:
    """A new secret for an endpoint; the current ones keep signing for `overlap`, so a
    receiver can accept both while it switches."""
    endpoint = _endpoint(session, organization_id, endpoint_id)
    if endpoint.status != ACTIVE:
        raise Conflict("this endpoint is disabled; register a new one", field="endpoint_id")
    for old in WebhookRepository(session).live_secrets(endpoint.id, now):
        if old.expires_at is None or old.expires_at > now + overlap:
            old.expires_at = now + overlap
    secret = _new_secret(session, endpoint, now)
    record_audit(
        session,
        "webhook_endpoint.secret_rotated",
        endpoint.id,
        actor=actor,
        organization_id=organization_id,
        details={"overlap_seconds": int(overlap.total_seconds())},
    )
    return _view(endpoint, secret)


def disable_endpoint(
    session: Session,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    reason: str,
    actor: str,
    now: datetime,
) -> EndpointView:
    """Stop deliveries to an endpoint (idempotent); its queued deliveries fail unsent."""
    endpoint = _endpoint(session, organization_id, endpoint_id)
    if endpoint.status == ACTIVE:
        endpoint.status = DISABLED
        endpoint.disabled_reason = reason
        endpoint.disabled_at = now
        record_audit(
            session,
            "webhook_endpoint.disabled",
            endpoint.id,
            actor=actor,
            organization_id=organization_id,
            details={"reason": reason[:300]},
        )
    return _view(endpoint)


def endpoints_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[EndpointView]:
    """A tenant's endpoints, oldest first (never their secrets)."""
    page = WebhookRepository(session).page_of(
        organization_id, after=after_key(cursor, WebhookRepository.ORDER), limit=limit
    )
    return as_paged(page, _view)


# --- events ------------------------------------------------------------------------------


def emit_event(
    session: Session,
    *,
    organization_id: uuid.UUID,
    event_type: str,
    subject_id: str,
    data: dict[str, Any],
    now: datetime,
    not_before: datetime | None = None,
) -> list[Job]:
    """Queue one delivery per endpoint of the organisation subscribed to `event_type`, in the
    caller's transaction. The same event (type + subject) is queued once per endpoint.

    `data` is thin: ids and `links` (paths of the tenant API), never whole objects."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    queued = []
    for endpoint in WebhookRepository(session).subscribed(organization_id, event_type):
        job_id = uuid.uuid4()
        job, _ = jobs.enqueue(
            session,
            organization_id=organization_id,
            kind=JobKind.WEBHOOK,
            payload={
                "message_id": f"msg_{job_id.hex}",
                "type": event_type,
                "timestamp": (not_before or now).isoformat(),
                "data": data,
            },
            idempotency_key=f"{event_type}:{subject_id}:{endpoint.id}",
            now=now,
            not_before=not_before,
            webhook_endpoint_id=endpoint.id,
            job_id=job_id,
        )
        queued.append(job)
    return queued


# --- deliveries as tenants see them --------------------------------------------------------


@dataclass(frozen=True)
class DeliveryView:
    """One webhook message to one endpoint, with where its attempts stand."""

    id: uuid.UUID
    endpoint_id: uuid.UUID | None
    event_type: str
    message_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


def _delivery(job: Job) -> DeliveryView:
    return DeliveryView(
        id=job.id,
        endpoint_id=job.webhook_endpoint_id,
        event_type=str(job.payload.get("type", "")),
        message_id=str(job.payload.get("message_id", "")),
        status=job.status,
        attempts=job.attempts,
        next_attempt_at=job.next_attempt_at if job.status == "queued" else None,
        last_error=job.last_error,
        created_at=job.created_at,
        finished_at=job.finished_at,
    )


def deliveries_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> Paged[DeliveryView]:
    """A tenant's webhook deliveries, newest first, of one endpoint when given."""
    if endpoint_id is not None:
        _endpoint(session, organization_id, endpoint_id)
    page = JobRepository(session).page_matching(
        organization_id=organization_id,
        kind=str(JobKind.WEBHOOK),
        webhook_endpoint_id=endpoint_id,
        after=after_key(cursor, JobRepository.ORDER),
        limit=limit,
    )
    return as_paged(page, _delivery)


def _delivery_job(session: Session, organization_id: uuid.UUID, delivery_id: uuid.UUID) -> Job:
    job = JobRepository(session).get(delivery_id, organization_id=organization_id)
    if job is None or job.kind != JobKind.WEBHOOK:
        raise NotFound(f"webhook delivery {delivery_id} not found", field="delivery_id")
    return job


def delivery_attempts_page(
    session: Session,
    *,
    organization_id: uuid.UUID,
    delivery_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> Paged[AttemptView]:
    """The attempts of one of a tenant's deliveries, first first."""
    job = _delivery_job(session, organization_id, delivery_id)
    return attempts_page(session, job_id=job.id, cursor=cursor, limit=limit)


def replay_delivery(
    session: Session,
    *,
    organization_id: uuid.UUID,
    delivery_id: uuid.UUID,
    actor: str,
    now: datetime,
) -> DeliveryView:
    """Send a delivery's message again as a new delivery with the same `webhook-id` (so a
    receiver that already has it can drop it) to the same, still active, endpoint."""
    original = _delivery_job(session, organization_id, delivery_id)
    if original.webhook_endpoint_id is None:
        raise Conflict("the endpoint of this delivery was removed", field="delivery_id")
    endpoint = _endpoint(session, organization_id, original.webhook_endpoint_id)
    if endpoint.status != ACTIVE:
        raise Conflict(
            "the endpoint of this delivery is disabled; register it again", field="delivery_id"
        )
    if original.status in ("queued", "running"):
        raise Conflict("this delivery is still being attempted", field="delivery_id")
    job, _ = jobs.enqueue(
        session,
        organization_id=organization_id,
        kind=JobKind.WEBHOOK,
        payload=dict(original.payload),
        idempotency_key=f"replay:{original.id}:{now.isoformat()}",
        now=now,
        webhook_endpoint_id=endpoint.id,
    )
    record_audit(
        session,
        "webhook_delivery.replayed",
        original.id,
        actor=actor,
        organization_id=organization_id,
        details={"replay_id": str(job.id)},
    )
    return _delivery(job)


# --- sending -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are sent (the caller reads them from settings)."""

    timeout_seconds: float = 15.0
    allow_private_addresses: bool = False
    """Allow loopback, private and link-local receivers (tests, a private network)."""
    api_base_url: str = "http://127.0.0.1:8000"
    """Where the links in payloads point."""


@dataclass(frozen=True)
class PreparedDelivery:
    """A signed request ready to send, or why none is sent."""

    url: str
    body: bytes
    headers: dict[str, str]
    skip_reason: str | None = None


def prepare_delivery(
    session: Session,
    *,
    organization_id: uuid.UUID,
    endpoint_id: uuid.UUID | None,
    payload: dict[str, Any],
    settings: DeliverySettings,
    now: datetime,
) -> PreparedDelivery:
    """The body and Standard Webhooks headers of one attempt, signed with every live secret."""
    endpoint = WebhookRepository(session).get(organization_id, endpoint_id) if endpoint_id else None
    if endpoint is None or endpoint.status != ACTIVE:
        return PreparedDelivery("", b"", {}, skip_reason="the endpoint is disabled or removed")
    data = dict(payload.get("data", {}))
    links = data.get("links")
    if isinstance(links, dict):
        base = settings.api_base_url.rstrip("/")
        data["links"] = {name: base + str(path) for name, path in links.items()}
    document = {"type": payload["type"], "timestamp": payload["timestamp"], "data": data}
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    live = [s.secret for s in WebhookRepository(session).live_secrets(endpoint.id, now)]
    headers = webhook_headers(live, str(payload["message_id"]), int(now.timestamp()), body)
    headers |= {"content-type": "application/json", "user-agent": USER_AGENT}
    return PreparedDelivery(endpoint.url, body, headers)


def _resolve(target: Target, allow_private: bool) -> str:
    """An address of the target's host that the guard allows (the one to connect to)."""
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ConnectionError(f"cannot resolve {target.host}: {error}") from None
    reasons = []
    for info in infos:
        address = str(info[4][0])
        reason = refused_reason(address, allow_private=allow_private)
        if reason is None:
            return address
        reasons.append(reason)
    raise PermissionError(f"refused to send to {target.host}: {'; '.join(reasons) or 'no address'}")


_shared: httpx.Client | None = None
_shared_lock = threading.Lock()


def _client() -> httpx.Client:
    """One client per process (building one loads the TLS trust store, tens of ms). It keeps
    no connection alive: connections go to checked addresses, and one must never be reused
    for another host name that resolves to the same address."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = httpx.Client(
                follow_redirects=False,
                trust_env=False,
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return _shared


def send_delivery(
    prepared: PreparedDelivery, *, settings: DeliverySettings, now: datetime
) -> jobs.Outcome:
    """POST a prepared delivery once: no redirects, a timeout, to a checked address.

    2xx succeeds; 410 disables the endpoint (the caller does); anything else is retried, after
    `Retry-After` when the receiver sent one."""
    target = parse_target(prepared.url)
    try:
        address = _resolve(target, settings.allow_private_addresses)
    except PermissionError as refused:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error=str(refused), permanent=True)
    except ConnectionError as error:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error=str(error))
    host = f"[{address}]" if ":" in address else address
    parts = httpx.URL(prepared.url)
    url = parts.copy_with(host=host.strip("[]"))
    headers = {**prepared.headers, "host": parts.netloc.decode()}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        response = _client().post(
            url,
            content=prepared.body,
            headers=headers,
            extensions=extensions,
            timeout=settings.timeout_seconds,
        )
    except httpx.TimeoutException:
        return jobs.Outcome(
            JobAttemptOutcome.TIMED_OUT,
            error=f"no answer within {settings.timeout_seconds:g} s",
        )
    except httpx.HTTPError as error:
        return jobs.Outcome(JobAttemptOutcome.FAILED, error=f"{type(error).__name__}: {error}")
    status = response.status_code
    if 200 <= status < 300:
        return jobs.Outcome(JobAttemptOutcome.SUCCEEDED, status_code=status)
    if status == 410:
        return jobs.Outcome(
            JobAttemptOutcome.GONE,
            status_code=status,
            error="the receiver answered 410 Gone; the endpoint is disabled",
            permanent=True,
        )
    return jobs.Outcome(
        JobAttemptOutcome.FAILED,
        status_code=status,
        error=f"the receiver answered {status}",
        retry_after=parse_retry_after(response.headers.get("retry-after"), now=now),
    )


def endpoint_gone(
    session: Session, *, organization_id: uuid.UUID, endpoint_id: uuid.UUID, now: datetime
) -> None:
    """Disable an endpoint whose receiver answered 410 Gone."""
    disable_endpoint(
        session,
        organization_id=organization_id,
        endpoint_id=endpoint_id,
        reason="the receiver answered 410 Gone",
        actor="system:webhooks",
        now=now,
    )
