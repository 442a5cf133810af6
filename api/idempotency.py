"""`Idempotency-Key` on create endpoints: a retry gets the first response instead of a duplicate.

An endpoint takes the `Idempotent` dependency and builds its response through `respond`:

    def create_thing(body: ThingCreate, ctx: Provider, idempotency: Idempotent) -> Response:
        return respond(
            ctx.session, idempotency, scope=f"provider:{ctx.key_id}", now=ctx.now,
            status_code=201, produce=lambda: Thing.of(create(ctx.session, ...)),
        )

Without the header `respond` just runs `produce`. With it, the key is claimed in the request's
own transaction before `produce` runs, and the response is stored in that transaction: a retry
with the same key, method, path and body gets the stored status and body with
`Idempotent-Replayed: true`; the same key on a different request is a 422. Tenant endpoints
pass `organization_id` so the record obeys row-level security.

A claim waits for a concurrent request holding the same key; when that one commits, the claim
finds its record and replays it; when it rolls back, the claim succeeds. Because the record
commits or rolls back with the mutation, a failed request stores nothing and its retry does
the work again. The records are stored by `models.db.repositories.idempotency`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
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


HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class IdempotentRequest:
    """The `Idempotency-Key` of a request (None without one) and the request's fingerprint."""

    key: str | None
    fingerprint: str


async def idempotent_request(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description=(
                "A unique value per operation (e.g. a UUID). Retrying with the same key and "
                "the same body returns the first response instead of doing the work again."
            ),
        ),
    ] = None,
) -> IdempotentRequest:
    body = await request.body()
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    return IdempotentRequest(
        idempotency_key, request_fingerprint(request.method, raw_path.decode("latin-1"), body)
    )


Idempotent = Annotated[IdempotentRequest, Depends(idempotent_request)]


def _json(body: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=body, status_code=status_code, media_type="application/json", headers=headers
    )


def respond(
    session: Session,
    request: IdempotentRequest,
    *,
    scope: str,
    now: datetime,
    status_code: int,
    produce: Callable[[], Body],
    stored_as: Callable[[Body], BaseModel] | None = None,
    organization_id: uuid.UUID | None = None,
) -> Response:
    """The response of `produce()`, or of the first request with this idempotency key.

    `stored_as` turns the response into what is kept for replays, e.g. without a secret.
    """
    if request.key is None:
        return _json(produce().model_dump_json(), status_code)
    stored = claim_key(
        session,
        scope=scope,
        key=request.key,
        fingerprint=request.fingerprint,
        now=now,
        organization_id=organization_id,
    )
    if stored is not None:
        return _json(stored.body, stored.status_code, {REPLAYED_HEADER: "true"})
    body = produce()
    kept = stored_as(body) if stored_as is not None else body
    store_response(
        session,
        scope=scope,
        key=request.key,
        status_code=status_code,
        body=kept.model_dump_json(),
    )
    return _json(body.model_dump_json(), status_code)
