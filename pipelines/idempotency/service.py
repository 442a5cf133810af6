"""Idempotency keys: claim a key in the mutation's transaction, store its response, replay it.

A request carrying a key claims (scope, key) before doing any work, in the same transaction as
the work. The claim waits for a concurrent request holding the same key; when that one
commits, the claim finds its record and replays it; when it rolls back, the claim succeeds.
Because the record commits or rolls back with the mutation, a failed request stores nothing
and its retry does the work again.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from models.db.repositories.idempotency import PENDING_STATUS, IdempotencyRepository
from pipelines.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 200


class IdempotencyKeyReused(InvalidInput):
    """An idempotency key sent again with a different request."""


@dataclass(frozen=True)
class StoredResponse:
    """The response given to the first request with a key."""

    status_code: int
    body: str


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 (hex) of what makes two requests the same: method, path and raw body."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim_key(
    session: Session,
    *,
    scope: str,
    key: str,
    fingerprint: str,
    now: datetime,
    organization_id: uuid.UUID | None = None,
) -> StoredResponse | None:
    """None when this request now holds the key (do the work, then `store_response`).

    Otherwise the stored response of the first request with this key, or IdempotencyKeyReused
    when that request differed from this one.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key: give 1-{MAX_KEY_LENGTH} characters")
    records = IdempotencyRepository(session)
    if records.claim(
        scope=scope,
        key=key,
        request_hash=fingerprint,
        organization_id=organization_id,
        now=now,
    ):
        return None
    record = records.get(scope, key)
    if record is None or record.status_code == PENDING_STATUS:
        # Only possible if the holder's row is invisible to us, e.g. under row-level security.
        raise Conflict(f"Idempotency-Key {key!r} is in use by a request still in progress")
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used for a different request (method, path "
            "or body differ); send a new key for a new request"
        )
    return StoredResponse(record.status_code, record.response_body)


def store_response(session: Session, *, scope: str, key: str, status_code: int, body: str) -> None:
    """Record the response of the request holding (scope, key), for its retries."""
    IdempotencyRepository(session).store_response(scope, key, status_code=status_code, body=body)
