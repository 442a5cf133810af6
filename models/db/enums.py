"""The enumerations stored in tables: one `StrEnum` each, used by CHECK constraints,
services and API schemas alike."""

from __future__ import annotations

from enum import StrEnum


class OrganizationKind(StrEnum):
    """The provider running the platform, or one of its tenants."""

    PROVIDER = "provider"
    TENANT = "tenant"


class OrganizationStatus(StrEnum):
    """Whether an organisation may act."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class RunStatus(StrEnum):
    """Where an evaluation run stands: created, claimed by its flow, then finished either way."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class Task(StrEnum):
    """What a golden dataset evaluates: picking a label, or producing text."""

    CLASSIFICATION = "classification"
    TEXT_GENERATION = "text_generation"


class ApiKeyScope(StrEnum):
    """What an API key may do."""

    RESULTS_READ = "results:read"
    PREDICT = "predict"
    DOMAINS_WRITE = "domains:write"
    NOTICES_WRITE = "notices:write"
    KEYS_WRITE = "keys:write"
    WEBHOOKS_WRITE = "webhooks:write"


class NoticeSeverity(StrEnum):
    """How urgent a system notice is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class NoticeAudience(StrEnum):
    """Whom a system notice addresses: every tenant, or the listed ones."""

    ALL = "all"
    LISTED = "listed"


class JobKind(StrEnum):
    """What a background job does."""

    AI_TASK = "ai_task"
    REPORT = "report"
    EMAIL = "email"
    WEBHOOK = "webhook"


class JobStatus(StrEnum):
    """Where a job stands: waiting (also between retries), leased, or finished one way or another.

    `dead` is the dead-letter queue: the last attempt failed; an operator may retry it.
    """

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"


class JobAttemptOutcome(StrEnum):
    """How one attempt at a job ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    GONE = "gone"
    """The receiver answered 410: the webhook endpoint is disabled."""
    LEASE_EXPIRED = "lease_expired"
    """The dispatcher holding the job stopped before finishing it."""


class WebhookEndpointStatus(StrEnum):
    """Whether an endpoint receives deliveries."""

    ACTIVE = "active"
    DISABLED = "disabled"


class DomainStatus(StrEnum):
    """Whether a tenant has proven it owns a hostname.

    `pending` until the TXT record is seen; `verified` while it is; `unverified` once the record
    has been missing longer than the grace period; `released` when another tenant proved
    ownership and took the hostname over.
    """

    PENDING = "pending"
    VERIFIED = "verified"
    UNVERIFIED = "unverified"
    RELEASED = "released"


class OwnershipOutcome(StrEnum):
    """What one ownership check found. `unavailable` (timeout, SERVFAIL) is not a failure."""

    VERIFIED = "verified"
    WRONG_VALUE = "wrong_value"
    MISSING = "missing"
    NXDOMAIN = "nxdomain"
    UNAVAILABLE = "unavailable"


class RoutingOutcome(StrEnum):
    """Whether a hostname points at the platform (CNAME, A, AAAA); reported apart from ownership."""

    POINTS_HERE = "points_here"
    POINTS_ELSEWHERE = "points_elsewhere"
    NOT_FOUND = "not_found"
    UNAVAILABLE = "unavailable"
    NOT_CONFIGURED = "not_configured"


class CertificateStatus(StrEnum):
    """Where a domain's certificate stands, apart from the domain's own status."""

    PENDING = "pending"
    VALID = "valid"
    FAILED = "failed"
    REVOKED = "revoked"


class CertificateAttemptKind(StrEnum):
    """Why an ACME order was placed."""

    ISSUE = "issue"
    RENEW = "renew"


class CertificateAttemptStatus(StrEnum):
    """An attempt: `running` holds the claim (one per certificate), then it ends either way."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"


class PeriodKind(StrEnum):
    """The length of a profitability period: a UTC calendar day or month."""

    DAY = "day"
    MONTH = "month"


class AdoptionBasis(StrEnum):
    """How adoption of the AI features is measured for the discount tiers.

    `jobs`: share of a tenant's jobs (distinct job ids of its usage events) with at least one
    AI event; `users`: active AI users / active users (distinct end-user keys).
    """

    JOBS = "jobs"
    USERS = "users"


class ProviderRole(StrEnum):
    """What a provider user may do in the dashboards: everything, or read only."""

    ADMIN = "admin"
    ANALYST = "analyst"


class ExperimentKind(StrEnum):
    """How a challenger meets traffic: shadowing the champion, or answering a share of it."""

    SHADOW = "shadow"
    AB = "ab"


class ExperimentStatus(StrEnum):
    """Where an experiment stands: set up, live, held, or over (never restarted)."""

    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class SplitKey(StrEnum):
    """What an A/B split hashes with the salt: the tenant, or the end user (tenant if absent)."""

    TENANT = "tenant"
    END_USER = "end_user"


class Variant(StrEnum):
    """Which side of an experiment a traffic row belongs to."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"


class TrafficRole(StrEnum):
    """Whether a prediction was returned to the caller (`served`) or only logged (`shadow`)."""

    SERVED = "served"
    SHADOW = "shadow"


class FeedbackKind(StrEnum):
    """What a tenant said about a prediction: a rating, the correct label, or corrected text."""

    RATING = "rating"
    LABEL = "label"
    CORRECTION = "correction"


class PromotionOutcome(StrEnum):
    """What a promotion gate decided about a challenger: promote it, reject it, or wait for
    more evidence."""

    PROMOTE = "promote"
    REJECT = "reject"
    WAIT = "wait"


def check_in(column: str, values: type[StrEnum]) -> str:
    """The SQL of a CHECK constraint keeping `column` to the enumeration's values."""
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"
