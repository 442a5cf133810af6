"""StreamFlow's tables. A table class never has "Model" in its name: "model" means an ML model."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.db.base import Base, JsonDocument, new_id, utcnow
from models.db.enums import (
    AdoptionBasis,
    CertificateAttemptKind,
    CertificateAttemptStatus,
    CertificateStatus,
    DomainStatus,
    ExperimentKind,
    ExperimentStatus,
    FeedbackKind,
    JobAttemptOutcome,
    JobKind,
    JobStatus,
    NoticeAudience,
    NoticeSeverity,
    OrganizationKind,
    OrganizationStatus,
    OwnershipOutcome,
    PeriodKind,
    PromotionOutcome,
    ProviderRole,
    RoutingOutcome,
    RunStatus,
    SplitKey,
    TrafficRole,
    Variant,
    WebhookEndpointStatus,
    check_in,
)

EVALUATION_STATUSES = tuple(RunStatus)
"""Every run status, in lifecycle order (for counts that list zeros too)."""
ACTIVE_RUN = f"status IN ('{RunStatus.PENDING}', '{RunStatus.RUNNING}')"
"""Runs a flow is about to carry out or carrying out: one per identity at most."""


class Organization(Base):
    """The provider running the platform, or one of its tenants."""

    __tablename__ = "organizations"
    __table_args__ = (
        CheckConstraint(check_in("kind", OrganizationKind), name="kind"),
        CheckConstraint(check_in("status", OrganizationStatus), name="status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=OrganizationStatus.ACTIVE)
    notification_email: Mapped[str | None] = mapped_column(String(320), default=None)
    """Where notices and report links are e-mailed (none: no e-mail)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key of an organisation: looked up by its public prefix, stored only as a hash."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditLogEntry(Base):
    """One mutation: who did what to which object, in which request or flow run."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_org_time", "organization_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL"), default=None
    )
    action: Mapped[str] = mapped_column(String(100), index=True)
    target_type: Mapped[str] = mapped_column(String(100))
    target_id: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(100), default=None)
    flow_run_id: Mapped[str | None] = mapped_column(String(100), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class GoldenDataset(Base):
    """A named golden dataset of one organisation; its content lives in immutable versions."""

    __tablename__ = "golden_datasets"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GoldenDatasetVersion(Base):
    """One immutable, content-addressed version of a golden dataset, stored as Parquet."""

    __tablename__ = "golden_dataset_versions"
    __table_args__ = (
        UniqueConstraint("golden_dataset_id", "version"),
        UniqueConstraint("golden_dataset_id", "content_hash"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    golden_dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("golden_datasets.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    storage_path: Mapped[str] = mapped_column(String(500))
    source_filename: Mapped[str] = mapped_column(String(500))
    slice_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    label_set: Mapped[list[str] | None] = mapped_column(default=None)
    """Classification: the declared label set, sorted (null for text generation, and for
    versions imported before label sets were stored: their `expected` values are the set)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationRun(Base):
    """An evaluation of one model version (or predictions file) on one golden dataset version."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (
        CheckConstraint(check_in("status", RunStatus), name="status"),
        Index("ix_evaluation_runs_lookup", "organization_id", "subject_key", "config_hash"),
        # At most one active (pending or running) run per identity: concurrent identical
        # requests meet on this index instead of scoring the same thing twice.
        Index(
            "uq_evaluation_runs_active",
            "organization_id",
            "subject_key",
            "golden_dataset_version_id",
            "config_hash",
            unique=True,
            sqlite_where=text(ACTIVE_RUN),
            postgresql_where=text(ACTIVE_RUN),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    golden_dataset_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("golden_dataset_versions.id", ondelete="RESTRICT"), index=True
    )
    task: Mapped[str] = mapped_column(String(32))
    agent_type: Mapped[str] = mapped_column(String(64))
    registered_model_name: Mapped[str | None] = mapped_column(String(200), default=None)
    model_version: Mapped[str | None] = mapped_column(String(32), default=None)
    model_alias: Mapped[str | None] = mapped_column(String(64), default=None)
    predictions_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    predictions_filename: Mapped[str | None] = mapped_column(String(500), default=None)
    subject_key: Mapped[str] = mapped_column(String(300))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    config_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.PENDING)
    batch_size: Mapped[int] = mapped_column(Integer)
    batch_count: Mapped[int] = mapped_column(Integer, default=0)
    example_count: Mapped[int] = mapped_column(Integer, default=0)
    flow_run_id: Mapped[str | None] = mapped_column(String(100), default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    """The claim of the flow carrying the run out (a token of that flow), while `running`."""
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    """When the claiming flow last showed it is alive; an old one lets another flow take over."""
    mlflow_run_id: Mapped[str | None] = mapped_column(String(100), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    scoring_signatures: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """What the metrics equal: sacrebleu signatures, rouge-score / scikit-learn versions."""
    confusion_matrix: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """Classification, once completed: counts over the label set (see `ConfusionMatrix`)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class EvaluationExampleScore(Base):
    """The scores of one golden example in one evaluation run; exactly one per run and example."""

    __tablename__ = "evaluation_example_scores"
    __table_args__ = (Index("ix_evaluation_example_scores_batch", "run_id", "batch_index"),)

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("evaluation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    example_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    batch_index: Mapped[int] = mapped_column(Integer)
    slice: Mapped[str] = mapped_column(String(200), default="")
    prediction: Mapped[str] = mapped_column(Text)
    scores: Mapped[dict[str, Any]] = mapped_column()


class EvaluationMetric(Base):
    """An aggregate metric of a run, overall (slice "") or per slice, with its bootstrap CI."""

    __tablename__ = "evaluation_metrics"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("evaluation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    slice: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)


class SystemNotice(Base):
    """A notice from the provider to all tenants or to listed ones, shown while it is active."""

    __tablename__ = "system_notices"
    __table_args__ = (
        CheckConstraint(check_in("severity", NoticeSeverity), name="severity"),
        CheckConstraint(check_in("audience", NoticeAudience), name="audience"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime | None] = mapped_column(default=None)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SystemNoticeAudience(Base):
    """A tenant a `listed` notice is addressed to."""

    __tablename__ = "system_notice_audiences"

    notice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("system_notices.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class NoticeAcknowledgement(Base):
    """A tenant's acknowledgement of a notice (once per tenant)."""

    __tablename__ = "notice_acknowledgements"

    notice_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("system_notices.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    actor: Mapped[str] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The first response to a create request carrying an `Idempotency-Key`, replayed on retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(200))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), default=None, index=True
    )
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Domain(Base):
    """A tenant's claim on a hostname and what the ownership checks found.

    Several tenants may claim a hostname, but only one holds it verified at a time (a partial
    unique index); another takes it over only by proving ownership through its own TXT token.
    """

    __tablename__ = "domains"
    __table_args__ = (
        UniqueConstraint("organization_id", "hostname"),
        CheckConstraint(check_in("status", DomainStatus), name="status"),
        CheckConstraint(
            f"ownership_outcome IS NULL OR {check_in('ownership_outcome', OwnershipOutcome)}",
            name="ownership_outcome",
        ),
        CheckConstraint(
            f"routing_outcome IS NULL OR {check_in('routing_outcome', RoutingOutcome)}",
            name="routing_outcome",
        ),
        Index(
            "uq_domains_verified_hostname",
            "hostname",
            unique=True,
            sqlite_where=text("status = 'verified'"),
            postgresql_where=text("status = 'verified'"),
        ),
        Index("ix_domains_org_created", "organization_id", "created_at", "id"),
        Index("ix_domains_next_check_at", "next_check_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    hostname: Mapped[str] = mapped_column(String(253))
    """ASCII (IDNA A-label) form, lowercase, no trailing dot; `*.` first for a wildcard."""
    unicode_hostname: Mapped[str] = mapped_column(String(253))
    verification_token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=DomainStatus.PENDING)
    ownership_outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    ownership_found: Mapped[list[str]] = mapped_column(default=list)
    ownership_detail: Mapped[str | None] = mapped_column(Text, default=None)
    routing_outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    routing_found: Mapped[list[str]] = mapped_column(default=list)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    unavailable_streak: Mapped[int] = mapped_column(Integer, default=0)
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    next_check_at: Mapped[datetime | None] = mapped_column(default=None)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    failing_since: Mapped[datetime | None] = mapped_column(default=None)
    """First failed check since the domain was last seen verified (the grace period runs)."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AcmeAccount(Base):
    """The one long-lived ACME account per directory URL; its key is encrypted at rest."""

    __tablename__ = "acme_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    directory_url: Mapped[str] = mapped_column(String(500), unique=True)
    account_url: Mapped[str | None] = mapped_column(String(500), default=None)
    key_encrypted: Mapped[str] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(300), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Certificate(Base):
    """The certificate of one domain: current chain, its encrypted key, renewal and budget state."""

    __tablename__ = "certificates"
    __table_args__ = (
        CheckConstraint(check_in("status", CertificateStatus), name="status"),
        Index("ix_certificates_org_created", "organization_id", "created_at", "id"),
        Index("ix_certificates_next_attempt_at", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    domain_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), unique=True
    )
    hostnames: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.PENDING)
    acme_account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("acme_accounts.id", ondelete="SET NULL"), default=None
    )
    serial: Mapped[str | None] = mapped_column(String(64), default=None)
    ari_id: Mapped[str | None] = mapped_column(String(200), default=None)
    not_before: Mapped[datetime | None] = mapped_column(default=None)
    not_after: Mapped[datetime | None] = mapped_column(default=None)
    renew_at: Mapped[datetime | None] = mapped_column(default=None)
    chain_pem: Mapped[str | None] = mapped_column(Text, default=None)
    key_encrypted: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    """Sealed private key: loaded only when read (the tenant login may not select it)."""
    issued_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revocation_reason: Mapped[int | None] = mapped_column(Integer, default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts inside the current failure window (the per-hostname budget)."""
    failure_window_started_at: Mapped[datetime | None] = mapped_column(default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CertificateAttempt(Base):
    """Every ACME order placed for a certificate; a `running` one is the claim on it."""

    __tablename__ = "certificate_attempts"
    __table_args__ = (
        CheckConstraint(check_in("kind", CertificateAttemptKind), name="kind"),
        CheckConstraint(check_in("status", CertificateAttemptStatus), name="status"),
        Index(
            "uq_certificate_attempts_running",
            "certificate_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_certificate_attempts_cert_started", "certificate_id", "started_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    certificate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("certificates.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CertificateAttemptStatus.RUNNING)
    claimed_by: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    order_url: Mapped[str | None] = mapped_column(String(500), default=None)
    replaces: Mapped[str | None] = mapped_column(String(200), default=None)
    serial: Mapped[str | None] = mapped_column(String(64), default=None)
    retries: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class Http01Challenge(Base):
    """A pending ACME HTTP-01 answer, served at `/.well-known/acme-challenge/{token}`."""

    __tablename__ = "http01_challenges"

    token: Mapped[str] = mapped_column(String(200), primary_key=True)
    key_authorization: Mapped[str] = mapped_column(String(400))
    hostname: Mapped[str] = mapped_column(String(253))
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ProviderUser(Base):
    """A person at the provider who signs in to the dashboards, with a role."""

    __tablename__ = "provider_users"
    __table_args__ = (CheckConstraint(check_in("role", ProviderRole), name="role"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class DashboardSession(Base):
    """A signed-in browser: a provider user, or a tenant that exchanged an API key for it.

    Looked up by the hash of its cookie, never by the cookie itself.
    """

    __tablename__ = "dashboard_sessions"
    __table_args__ = (
        CheckConstraint(
            "(user_id IS NULL) <> (organization_id IS NULL)", name="one_kind_of_signed_in"
        ),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("provider_users.id", ondelete="CASCADE"), index=True, default=None
    )
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True, default=None
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class WebhookEndpoint(Base):
    """A tenant's URL that receives signed webhooks for the event types it subscribed to."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (CheckConstraint(check_in("status", WebhookEndpointStatus), name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default=WebhookEndpointStatus.ACTIVE)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookSecret(Base):
    """A signing secret (`whsec_…`) of an endpoint; after a rotation the old one signs until
    it expires, so receivers can switch over."""

    __tablename__ = "webhook_secrets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    secret: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)


class Job(Base):
    """A unit of background work: the queue (queued, running) and the dead-letter queue (dead).

    Written in the same transaction as the change that causes it (transactional outbox). A
    dispatcher leases due jobs; a lease that expires returns the job to the queue.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(check_in("kind", JobKind), name="kind"),
        CheckConstraint(check_in("status", JobStatus), name="status"),
        UniqueConstraint("organization_id", "kind", "idempotency_key"),
        Index("ix_jobs_due", "status", "next_attempt_at"),
        Index("ix_jobs_org_kind_created", "organization_id", "kind", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    webhook_endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="SET NULL"), default=None, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    flow_run_id: Mapped[str | None] = mapped_column(String(100), default=None)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class JobAttempt(Base):
    """One attempt at a job: when, by which dispatcher, and how it ended."""

    __tablename__ = "job_attempts"
    __table_args__ = (
        CheckConstraint(check_in("outcome", JobAttemptOutcome), name="outcome"),
        UniqueConstraint("job_id", "number"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class JobArtifact(Base):
    """A document a job produced (a report's HTML and CSV, an AI task's outputs)."""

    __tablename__ = "job_artifacts"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


BigCount = BigInteger().with_variant(Integer(), "sqlite")
"""A count that can pass 2³¹ (a 64-bit integer on PostgreSQL; SQLite's are 64-bit anyway)."""


class UsageEvent(Base):
    """One metered use of the platform by a tenant, idempotent by its `event_id`.

    An event with an agent type used an AI agent (tokens and requests of a model version); one
    without records activity that used none (a job done by hand), so adoption can be measured.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_events_org_time", "organization_id", "occurred_at"),
        CheckConstraint("tokens_in >= 0 AND tokens_out >= 0 AND requests >= 0", name="counts"),
    )

    event_id: Mapped[str] = mapped_column(
        String(100).with_variant(String(100, collation="C"), "postgresql"), primary_key=True
    )
    """Compared bytewise on PostgreSQL (migration 0016): the primary key's comparisons skip the
    locale's collation."""
    organization_id: Mapped[uuid.UUID] = mapped_column()
    """No foreign key: an import checks its tenants once per batch (every tenant slug must name
    a tenant), where a per-row check would cost more than the rest of a bulk load.
    Organisations are suspended, never deleted."""
    occurred_at: Mapped[datetime] = mapped_column()
    agent_type: Mapped[str | None] = mapped_column(String(64), default=None)
    model_version: Mapped[str | None] = mapped_column(String(200), default=None)
    tokens_in: Mapped[int] = mapped_column(BigCount, default=0)
    tokens_out: Mapped[int] = mapped_column(BigCount, default=0)
    requests: Mapped[int] = mapped_column(BigCount, default=0)
    end_user_key: Mapped[str | None] = mapped_column(String(200), default=None)
    job_id: Mapped[str | None] = mapped_column(String(200), default=None)


class TenantPlan(Base):
    """A version of a tenant's plan for the AI features, in force from `effective_from` (UTC day)
    until the next version: a monthly fee with included tokens, overage per 1,000 tokens."""

    __tablename__ = "tenant_plans"
    __table_args__ = (UniqueConstraint("organization_id", "effective_from"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    effective_from: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    monthly_fee_micros: Mapped[int] = mapped_column(BigCount)
    included_tokens: Mapped[int] = mapped_column(BigCount)
    overage_micros_per_1k_tokens: Mapped[int] = mapped_column(BigCount)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AiCostRate(Base):
    """A version of what one model version costs the provider: per 1,000 tokens in and out and
    per request, in force from `effective_from` (UTC day) until the next version."""

    __tablename__ = "ai_cost_rates"
    __table_args__ = (UniqueConstraint("model_version", "effective_from"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    model_version: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    micros_per_1k_tokens_in: Mapped[int] = mapped_column(BigCount)
    micros_per_1k_tokens_out: Mapped[int] = mapped_column(BigCount)
    micros_per_request: Mapped[int] = mapped_column(BigCount)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InfrastructureCostRule(Base):
    """A version of the rule allocating infrastructure cost to tenants: per request, per 1,000
    tokens and per active tenant-month (prorated by day), in force from `effective_from`."""

    __tablename__ = "infrastructure_cost_rules"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    effective_from: Mapped[date] = mapped_column(Date, unique=True)
    currency: Mapped[str] = mapped_column(String(3))
    micros_per_request: Mapped[int] = mapped_column(BigCount)
    micros_per_1k_tokens: Mapped[int] = mapped_column(BigCount)
    micros_per_tenant_month: Mapped[int] = mapped_column(BigCount)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdoptionTierSchedule(Base):
    """A version of the adoption discount tiers: each tier a minimum adoption rate and a discount
    on the AI add-on revenue (both in basis points), in force from `effective_from`."""

    __tablename__ = "adoption_tier_schedules"
    __table_args__ = (CheckConstraint(check_in("basis", AdoptionBasis), name="basis"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    effective_from: Mapped[date] = mapped_column(Date, unique=True)
    basis: Mapped[str] = mapped_column(String(16))
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProfitabilityDirtyPeriod(Base):
    """A tenant-month whose figures are stale: new or late events, or a price change."""

    __tablename__ = "profitability_dirty_periods"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(BigCount, default=1, server_default="1")
    """Raised at every new mark; a rollup clears a mark only at the version it read before
    extracting the tenant-month's events."""


class ProfitabilityDirtyDay(Base):
    """A tenant-day whose events changed (new or late events): its usage is aggregated again
    and its tenant-month's figures recomputed from that day on."""

    __tablename__ = "profitability_dirty_days"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    marked_at: Mapped[datetime] = mapped_column(default=utcnow)
    version: Mapped[int] = mapped_column(BigCount, default=1, server_default="1")
    """Raised at every new mark; a rollup clears a mark only at the version it read before
    extracting the tenant-day's events."""


class ProfitabilityDayUsage(Base):
    """The exact usage of one tenant-day, aggregated from its events by the rollup (stage 1):
    what the day's and month's figures are computed from without reading events again.

    `cost_thousandths` is the AI cost at the rates in force that day, exact, in thousandths of
    a micro-unit (rates are per 1,000 tokens); `breakdown` is JSON text, one entry per agent
    type and model version with the same sums; jobs and users are distinct keys of the day.
    """

    __tablename__ = "profitability_day_usage"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigCount)
    tokens_in: Mapped[int] = mapped_column(BigCount)
    tokens_out: Mapped[int] = mapped_column(BigCount)
    requests: Mapped[int] = mapped_column(BigCount)
    cost_thousandths: Mapped[int] = mapped_column(BigCount)
    unpriced_events: Mapped[int] = mapped_column(BigCount)
    jobs: Mapped[int] = mapped_column(BigCount)
    ai_jobs: Mapped[int] = mapped_column(BigCount)
    users: Mapped[int] = mapped_column(BigCount)
    ai_users: Mapped[int] = mapped_column(BigCount)
    breakdown: Mapped[str] = mapped_column(Text)


class ProfitabilityMonthUsage(Base):
    """The exact usage of one tenant-month: the sums of its day usage rows (kept up to date
    by difference when days are aggregated again) and its distinct jobs and users; its usage
    by agent type and model version is in `profitability_month_combos`."""

    __tablename__ = "profitability_month_usage"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    events: Mapped[int] = mapped_column(BigCount)
    tokens_in: Mapped[int] = mapped_column(BigCount)
    tokens_out: Mapped[int] = mapped_column(BigCount)
    requests: Mapped[int] = mapped_column(BigCount)
    cost_thousandths: Mapped[int] = mapped_column(BigCount)
    unpriced_events: Mapped[int] = mapped_column(BigCount)
    jobs: Mapped[int] = mapped_column(BigCount)
    ai_jobs: Mapped[int] = mapped_column(BigCount)
    users: Mapped[int] = mapped_column(BigCount)
    ai_users: Mapped[int] = mapped_column(BigCount)


class ProfitabilityMonthCombo(Base):
    """A tenant-month's usage of one agent type and model version: the sums of its days'
    breakdown entries, kept up to date by difference as the month's usage (a few rows written
    per new day, where a month's whole breakdown was rewritten)."""

    __tablename__ = "profitability_month_combos"

    organization_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """No foreign key (bulk writes, as `usage_events`)."""
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    agent_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(200), primary_key=True)
    """'' for an AI event without a model version (part of the key, so never NULL)."""
    events: Mapped[int] = mapped_column(BigCount)
    tokens_in: Mapped[int] = mapped_column(BigCount)
    tokens_out: Mapped[int] = mapped_column(BigCount)
    requests: Mapped[int] = mapped_column(BigCount)
    cost: Mapped[int] = mapped_column(BigCount)
    """AI cost in thousandths of a micro-unit, at the rates in force each day."""
    unpriced_events: Mapped[int] = mapped_column(BigCount)


class ProfitabilityMonthKey(Base):
    """A job id (`kind` 'j') or end-user key ('u') seen in a tenant-month, and whether any of
    its events used an AI agent: the month's distinct counts without reading its events.
    Events are never changed or removed, so keys are only added (or become AI)."""

    __tablename__ = "profitability_month_keys"

    organization_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    """No foreign key (bulk writes, as `usage_events`)."""
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    ai: Mapped[bool] = mapped_column()


class TenantProfitability(Base):
    """What a tenant's use of the AI features earned and cost in one day or month.

    Money is in integer micro-units of `currency`; each figure is rounded once (half to even)
    from its exact value, and the derived ones (revenue, margin) are integer differences.
    """

    __tablename__ = "tenant_profitability"
    __table_args__ = (
        CheckConstraint(check_in("period_kind", PeriodKind), name="period_kind"),
        Index("ix_tenant_profitability_ranking", "period_kind", "period_start", "margin_micros"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    period_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    events: Mapped[int] = mapped_column(BigCount)
    tokens_in: Mapped[int] = mapped_column(BigCount)
    tokens_out: Mapped[int] = mapped_column(BigCount)
    requests: Mapped[int] = mapped_column(BigCount)
    subscription_micros: Mapped[int] = mapped_column(BigCount)
    overage_micros: Mapped[int] = mapped_column(BigCount)
    gross_revenue_micros: Mapped[int] = mapped_column(BigCount)
    discount_micros: Mapped[int] = mapped_column(BigCount)
    revenue_micros: Mapped[int] = mapped_column(BigCount)
    ai_cost_micros: Mapped[int] = mapped_column(BigCount)
    infra_cost_micros: Mapped[int] = mapped_column(BigCount)
    margin_micros: Mapped[int] = mapped_column(BigCount)
    margin_bps: Mapped[int | None] = mapped_column(BigCount, default=None)
    """Margin / revenue in basis points; null when revenue is 0 (undefined)."""
    adoption_basis: Mapped[str | None] = mapped_column(String(16), default=None)
    adoption_numerator: Mapped[int] = mapped_column(BigCount, default=0)
    adoption_denominator: Mapped[int] = mapped_column(BigCount, default=0)
    adoption_ppm: Mapped[int | None] = mapped_column(Integer, default=None)
    """Adoption rate in parts per million; null when nothing was measured."""
    tier: Mapped[str | None] = mapped_column(String(100), default=None)
    discount_bps: Mapped[int] = mapped_column(Integer, default=0)
    unpriced_events: Mapped[int] = mapped_column(BigCount, default=0)
    ai_cost_breakdown: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    explanation: Mapped[dict[str, Any]] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


class EvaluationComparison(Base):
    """A paired comparison of run B against run A, computed off the request path and stored.

    The evaluation flow stores one when a run completes (against its agent type's champion run
    on the same dataset version); readers take `document` (the comparison read model, exactly
    as the API serves it) instead of computing it again. `document_version` is the read model's
    version: a stored document of another version is ignored and computed afresh.
    """

    __tablename__ = "evaluation_comparisons"
    __table_args__ = (UniqueConstraint("run_a_id", "run_b_id", "document_version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    run_a_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("evaluation_runs.id", ondelete="CASCADE")
    )
    run_b_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("evaluation_runs.id", ondelete="CASCADE"), index=True
    )
    document_version: Mapped[str] = mapped_column(String(16))
    # Plain JSON (not JSONB) on PostgreSQL too: the document is read back byte for byte as it
    # was computed, keys in the read model's order.
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(32))
    """Why it was computed: `champion` (the flow compared a new run with the champion's)."""
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)


ACTIVE_EXPERIMENT = f"status IN ('{ExperimentStatus.RUNNING}', '{ExperimentStatus.PAUSED}')"
"""Experiments that hold their agent type: one per agent type at most."""


class Experiment(Base):
    """A challenger model version tried against an agent type's champion on live traffic.

    Platform-wide: the provider owns the models, so an experiment sees every tenant's requests
    to its agent type. `shadow` sends a sample (`sample_rate`) of the requests to the challenger
    after the champion answered; `ab` lets the challenger answer a sticky share
    (`traffic_split`) of the tenants or end users, by hash of `salt` and the key.
    """

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(check_in("kind", ExperimentKind), name="kind"),
        CheckConstraint(check_in("status", ExperimentStatus), name="status"),
        CheckConstraint(check_in("split_key", SplitKey), name="split_key"),
        CheckConstraint("sample_rate >= 0 AND sample_rate <= 1", name="sample_rate"),
        CheckConstraint("traffic_split >= 0 AND traffic_split <= 1", name="traffic_split"),
        Index(
            "uq_experiments_active_agent_type",
            "agent_type",
            unique=True,
            sqlite_where=text(ACTIVE_EXPERIMENT),
            postgresql_where=text(ACTIVE_EXPERIMENT),
        ),
        Index("ix_experiments_created", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ExperimentStatus.DRAFT)
    champion_version: Mapped[str] = mapped_column(String(200))
    """`NAME@VERSION` the champion alias named when the experiment was created (or started)."""
    challenger_version: Mapped[str] = mapped_column(String(200))
    """`NAME@VERSION` of the challenger."""
    sample_rate: Mapped[float] = mapped_column(Float, default=1.0)
    """Shadow: the share of requests the challenger also answers."""
    traffic_split: Mapped[float] = mapped_column(Float, default=0.5)
    """A/B: the share of keys the challenger answers for."""
    split_key: Mapped[str] = mapped_column(String(16), default=SplitKey.TENANT)
    salt: Mapped[str] = mapped_column(String(64))
    mde: Mapped[float] = mapped_column(Float)
    """The minimum detectable effect asked for (on the primary metric's scale)."""
    planned_sample_size: Mapped[int] = mapped_column(Integer)
    """Requests (shadow: pairs; A/B: per variant) needed to detect `mde`."""
    plan: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """How the sample size was planned (alpha, power, metric, standard deviation, method)."""
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    paused_at: Mapped[datetime | None] = mapped_column(default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class TrafficLogEntry(Base):
    """One prediction of one model version for one request: served, or shadowed.

    A request has one `served` row, and one `shadow` row when an experiment's challenger saw
    it too (paired by `request_id`). Inputs and outputs are cut to the configured length;
    `input_hash` is of the whole input. Pruned after the configured retention.
    """

    __tablename__ = "traffic_log"
    __table_args__ = (
        CheckConstraint(check_in("role", TrafficRole), name="role"),
        CheckConstraint(f"variant IS NULL OR {check_in('variant', Variant)}", name="variant"),
        UniqueConstraint("request_id", "role"),
        Index("ix_traffic_log_experiment_time", "experiment_id", "created_at"),
        Index("ix_traffic_log_org_time", "organization_id", "created_at"),
        Index("ix_traffic_log_agent_time", "agent_type", "created_at"),
        Index("ix_traffic_log_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[uuid.UUID] = mapped_column()
    """No foreign key, like `usage_events`: rows arrive in batches; tenants are never deleted."""
    agent_type: Mapped[str] = mapped_column(String(64))
    experiment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experiments.id", ondelete="SET NULL"), default=None
    )
    variant: Mapped[str | None] = mapped_column(String(16), default=None)
    role: Mapped[str] = mapped_column(String(16), default=TrafficRole.SERVED)
    model_version: Mapped[str] = mapped_column(String(200))
    """`NAME@VERSION` that made the prediction."""
    end_user_key: Mapped[str | None] = mapped_column(String(200), default=None)
    input_hash: Mapped[str] = mapped_column(String(64))
    input_text: Mapped[str] = mapped_column(Text)
    output_text: Mapped[str | None] = mapped_column(Text, default=None)
    input_chars: Mapped[int] = mapped_column(Integer, default=0)
    output_chars: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """What a tenant said about one served prediction; one per request and kind (idempotent)."""

    __tablename__ = "feedback"
    __table_args__ = (
        CheckConstraint(check_in("kind", FeedbackKind), name="kind"),
        UniqueConstraint("request_id", "kind"),
        Index("ix_feedback_org_created", "organization_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    request_id: Mapped[str] = mapped_column(String(64))
    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    agent_type: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    """The rating as text, the correct label, or the corrected output."""
    rating: Mapped[float | None] = mapped_column(Float, default=None)
    """The rating as a number (kind `rating` only)."""
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- Promotion: gates, decisions (immutable evidence) and drift reports --------------------------


class PromotionGate(Base):
    """A version of the pre-registered promotion gate of one agent type: the primary metric,
    the guardrails with their margins, the minimum sample and duration, and alpha.

    Gates are provider-level (no tenant); a change adds a version, the newest is in force."""

    __tablename__ = "promotion_gates"
    __table_args__ = (UniqueConstraint("agent_type", "version"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromotionDecision(Base):
    """One decision of a promotion gate (promote, reject, wait) with all of its evidence.

    Immutable: triggers refuse UPDATE and DELETE on PostgreSQL and SQLite alike."""

    __tablename__ = "promotion_decisions"
    __table_args__ = (
        CheckConstraint(check_in("outcome", PromotionOutcome), name="outcome"),
        Index("ix_promotion_decisions_agent_created", "agent_type", "created_at", "id"),
        Index("ix_promotion_decisions_created", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(64))
    experiment_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(200))
    champion_version: Mapped[str] = mapped_column(String(200))
    challenger_version: Mapped[str] = mapped_column(String(200))
    dataset_version_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    dataset_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    n: Mapped[int] = mapped_column(Integer)
    gate_version: Mapped[int | None] = mapped_column(Integer, default=None)
    gate_config: Mapped[dict[str, Any]] = mapped_column()
    evidence: Mapped[dict[str, Any]] = mapped_column()
    """Metrics with intervals, tests, p-values or e-values, seeds, checks."""
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DriftReport(Base):
    """A data-drift report of recent traffic against the pinned golden dataset version; the
    HTML lives in a file under the StreamFlow home, its SHA-256 here."""

    __tablename__ = "drift_reports"
    __table_args__ = (Index("ix_drift_reports_agent_created", "agent_type", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    dataset_version_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    dataset_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    n_current: Mapped[int] = mapped_column(Integer)
    n_reference: Mapped[int] = mapped_column(Integer)
    drift_share: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    drifted: Mapped[bool]
    drifted_columns: Mapped[list[str]] = mapped_column()
    html_path: Mapped[str | None] = mapped_column(String(500), default=None)
    html_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
