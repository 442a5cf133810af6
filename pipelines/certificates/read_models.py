"""Certificates as every reader sees them (API, CLI `--json`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.db.enums import CertificateAttemptKind, CertificateAttemptStatus, CertificateStatus


class CertificateReadModel(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class CertificateDetail(CertificateReadModel):
    """A domain's certificate: status, validity and renewal, never its private key."""

    id: uuid.UUID
    domain_id: uuid.UUID
    hostname: str
    hostnames: list[str]
    status: CertificateStatus
    serial: str | None
    not_before: datetime | None
    not_after: datetime | None
    renew_at: datetime | None = Field(description="When the renewal flow will renew it")
    issued_at: datetime | None
    revoked_at: datetime | None
    failures: int = Field(description="Failed attempts in the current failure-budget window")
    next_attempt_at: datetime | None
    last_error: str | None


class CertificateAttemptView(CertificateReadModel):
    """One ACME order placed for a certificate."""

    id: uuid.UUID
    kind: CertificateAttemptKind
    status: CertificateAttemptStatus
    started_at: datetime
    finished_at: datetime | None
    serial: str | None
    replaces: str | None
    retries: int = Field(description="Requests retried (network errors, badNonce, rate limits)")
    error: str | None


class CertificateBundle(CertificateReadModel):
    """What the edge needs to serve a hostname: the chain and its private key (PEM)."""

    certificate_id: uuid.UUID
    hostnames: list[str]
    serial: str
    not_after: datetime
    chain_pem: str
    private_key_pem: str
