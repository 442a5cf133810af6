"""Request and response bodies of the provider API (`/provider/v1`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import InputModel, Instant
from models.db.enums import ApiKeyScope, NoticeSeverity, OrganizationStatus, RunStatus
from pipelines.access.service import IssuedKey
from pipelines.audit.service import AuditEntryView
from pipelines.evaluation.service import RunProgress, StartedEvaluation
from pipelines.notices.service import NoticeDraft, NoticeView

NoticeStatus = Literal["scheduled", "active", "expired", "retired"]
Slug = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
        description="Lowercase letters, digits and dashes; 1-63 characters.",
        examples=["acme"],
    ),
]
Audience = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=1000,
        description='`["*"]` for every tenant, else tenant slugs.',
        examples=[["*"], ["acme", "globex"]],
    ),
]


class TenantCreate(InputModel):
    """A tenant to create."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug
    name: str = Field(min_length=1, max_length=200, examples=["Acme Ltd"])


class Tenant(BaseModel):
    """A tenant organisation; `suspended` tenants' API keys do not authenticate."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str = Field(examples=["acme"])
    name: str = Field(examples=["Acme Ltd"])
    status: OrganizationStatus
    created_at: datetime


class ApiKeyCreate(InputModel):
    """An API key to issue to a tenant."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["ci pipeline"])
    scopes: list[ApiKeyScope] = Field(min_length=1, examples=[["results:read"]])
    expires_at: Instant | None = Field(
        default=None, description="When the key stops working; never when omitted."
    )


class IssuedApiKey(BaseModel):
    """A freshly issued API key; `api_key` is the secret, shown in this response only."""

    id: uuid.UUID
    organization: str = Field(description="Slug of the tenant the key belongs to.")
    name: str
    prefix: str = Field(description="Public part of the key, shown in listings.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    api_key: str | None = Field(
        description=(
            "The key to send as `Authorization: Bearer <api_key>`. Only its hash is stored, so "
            "it is null when this response is an idempotent replay (`Idempotent-Replayed: "
            "true`): if the first response was lost, revoke the key and issue another."
        ),
        examples=["sf_4f1c2a9b7e3d_Zk…"],
    )

    @classmethod
    def of(cls, issued: IssuedKey, organization: str) -> IssuedApiKey:
        key = issued.key
        return cls(
            id=key.id,
            organization=organization,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            created_at=key.created_at,
            expires_at=key.expires_at,
            api_key=issued.plaintext,
        )


class EvaluationStart(InputModel):
    """An evaluation of a registered model version on a golden dataset, for one organisation."""

    model_config = ConfigDict(extra="forbid")

    organization: Slug
    model: str = Field(
        max_length=300,
        description="`NAME@VERSION` or `NAME@ALIAS`, resolved in the model registry now.",
        examples=["intent-classifier@champion"],
    )
    dataset: str = Field(
        max_length=300,
        description="`NAME` (latest version) or `NAME@VERSION` of a golden dataset.",
        examples=["support-tickets@2"],
    )
    force: bool = Field(
        default=False,
        description="Start a new run even if an identical one completed already.",
    )


class EvaluationStarted(BaseModel):
    """The run an evaluation request created (or reused); poll a status URL until it ends."""

    run_id: uuid.UUID
    organization: str
    status: RunStatus
    reused: bool = Field(
        description="True when an identical run had completed already: no flow was started."
    )
    status_url: str = Field(
        description="The tenant API's view of the run.", examples=["/v1/evaluations/3f2a…"]
    )
    provider_status_url: str = Field(
        description="This API's view of the run.",
        examples=["/provider/v1/evaluations/3f2a…?organization=acme"],
    )

    @classmethod
    def of(cls, started: StartedEvaluation) -> EvaluationStarted:
        run = started.run
        return cls(
            run_id=run.id,
            organization=started.organization_slug,
            status=run.status,
            reused=started.reused,
            status_url=f"/v1/evaluations/{run.id}",
            provider_status_url=(
                f"/provider/v1/evaluations/{run.id}?organization={started.organization_slug}"
            ),
        )


class ModelVersionRef(BaseModel):
    """The registered model version a run evaluates, and the alias it was asked by."""

    name: str
    version: str | None
    alias: str | None


class RunProgressCounts(BaseModel):
    """How many scoring batches of a run are stored, and how many examples it covers."""

    batches_done: int
    batches_total: int
    examples: int


class EvaluationStatus(BaseModel):
    """Where an evaluation run stands; `completed` and `failed` are final."""

    run_id: uuid.UUID
    organization: str
    status: RunStatus
    model: ModelVersionRef | None
    progress: RunProgressCounts
    error: str | None = Field(description="Why the run failed, when it did.")
    stuck: bool = Field(
        description="`pending` for longer than its flow takes to start: the flow never started."
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, found: RunProgress) -> EvaluationStatus:
        run = found.run
        return cls(
            run_id=run.id,
            organization=found.organization_slug,
            status=run.status,
            model=(
                ModelVersionRef(
                    name=run.registered_model_name,
                    version=run.model_version,
                    alias=run.model_alias,
                )
                if run.registered_model_name
                else None
            ),
            progress=RunProgressCounts(
                batches_done=found.batches_done,
                batches_total=run.batch_count,
                examples=run.example_count,
            ),
            error=run.error,
            stuck=found.stuck,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class AuditEntry(BaseModel):
    """One audited mutation: who did what to which object, in which request or flow run."""

    id: int
    occurred_at: datetime
    actor: str = Field(examples=["provider:key-2026a", "api_key:6d0c…"])
    organization: str | None = Field(description="Slug; null for platform-wide changes.")
    action: str = Field(examples=["organization.suspended"])
    target_type: str = Field(examples=["organization"])
    target_id: str
    request_id: str | None
    flow_run_id: str | None
    details: dict[str, Any]

    @classmethod
    def of(cls, view: AuditEntryView) -> AuditEntry:
        entry = view.entry
        return cls(
            id=entry.id,
            occurred_at=entry.occurred_at,
            actor=entry.actor,
            organization=view.organization_slug,
            action=entry.action,
            target_type=entry.target_type,
            target_id=entry.target_id,
            request_id=entry.request_id,
            flow_run_id=entry.flow_run_id,
            details=entry.details,
        )


class NoticeCreate(InputModel):
    """A system notice to publish, now or on a schedule."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200, examples=["Planned maintenance"])
    body: str = Field(min_length=1, max_length=20_000)
    severity: NoticeSeverity = NoticeSeverity.INFO
    audience: Audience = Field(default=["*"])
    starts_at: Instant | None = Field(
        default=None, description="When tenants start seeing it; now when omitted."
    )
    ends_at: Instant | None = Field(
        default=None, description="When it expires; open-ended when omitted."
    )

    def draft(self) -> NoticeDraft:
        return NoticeDraft(
            title=self.title,
            body=self.body,
            severity=self.severity,
            audience=self.audience,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


class NoticeUpdate(InputModel):
    """Changes to a notice; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=20_000)
    severity: NoticeSeverity | None = None
    audience: Audience | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None

    def draft(self) -> NoticeDraft:
        return NoticeDraft(
            title=self.title,
            body=self.body,
            severity=self.severity,
            audience=self.audience,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
        )


class ProviderNotice(BaseModel):
    """A system notice with its status now: scheduled, active, expired or retired."""

    id: uuid.UUID
    title: str
    body: str
    severity: NoticeSeverity
    audience: list[str] = Field(description='`["*"]` for every tenant, else tenant slugs.')
    status: NoticeStatus
    starts_at: datetime
    ends_at: datetime | None
    retired_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, view: NoticeView) -> ProviderNotice:
        notice = view.notice
        return cls(
            id=notice.id,
            title=notice.title,
            body=notice.body,
            severity=notice.severity,
            audience=list(view.audience),
            status=view.status,
            starts_at=notice.starts_at,
            ends_at=notice.ends_at,
            retired_at=notice.retired_at,
            created_at=notice.created_at,
            updated_at=notice.updated_at,
        )


class CertificateRevocation(InputModel):
    """Why a certificate is revoked (RFC 5280 reason code)."""

    model_config = ConfigDict(extra="forbid")

    reason: int = Field(
        default=0,
        description="0 unspecified, 1 keyCompromise, 3 affiliationChanged, 4 superseded, "
        "5 cessationOfOperation",
        examples=[4],
    )
