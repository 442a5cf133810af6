"""API keys of tenants: issued and revoked by the provider, shown once, stored as a hash.

A key reads `sf_<prefix>_<secret>`: the prefix is public and indexes the row; only the SHA-256
of the whole key is stored (the secret has 256 bits of entropy, so a slow hash adds nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models.db.enums import ApiKeyScope
from models.db.repositories.api_keys import ApiKeyRepository
from models.db.repositories.audit import record_audit
from models.db.tables import ApiKey, Organization
from pipelines.errors import InvalidInput, NotFound, StreamflowError
from pipelines.organizations import get_tenant
from pipelines.pagination import Paged, after_key, as_paged

SCOPES = tuple(ApiKeyScope)
"""Every scope a key may carry."""
LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per key, so reads stay reads."""


class Unauthenticated(StreamflowError):
    """No valid credentials: missing, malformed, unknown, revoked or expired key."""


class Forbidden(StreamflowError):
    """Valid credentials without the scope the operation needs."""


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued key: the row and the plaintext, which is shown once and never stored."""

    key: ApiKey
    plaintext: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organisation through one of its keys, with the key's scopes."""

    organization_id: uuid.UUID
    organization_slug: str
    key_id: uuid.UUID
    scopes: frozenset[str]
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    """When the key stops authenticating (None: never); caches must not outlive it."""

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(
                f"this API key lacks the scope {scope!r}; ask the provider for a key with it"
            )


def _hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_api_key(
    session: Session,
    *,
    organization_id: uuid.UUID,
    name: str,
    scopes: Sequence[str],
    actor: str,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Create a key for an organisation; the plaintext is returned once."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}",
            field="scopes",
        )
    if not scopes:
        raise InvalidInput(f"give at least one of {', '.join(SCOPES)}", field="scopes")
    if not name.strip():
        raise InvalidInput("name: give the key a name, e.g. 'ci pipeline'")
    prefix = secrets.token_hex(6)
    plaintext = f"sf_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKeyRepository(session).add(
        ApiKey(
            organization_id=organization_id,
            name=name.strip(),
            prefix=prefix,
            key_hash=_hash(plaintext),
            scopes=sorted(set(scopes)),
            expires_at=expires_at,
        )
    )
    record_audit(
        session,
        "api_key.issued",
        key.id,
        actor=actor,
        organization_id=organization_id,
        details={"name": key.name, "prefix": prefix, "scopes": key.scopes},
    )
    return IssuedKey(key, plaintext)


def revoke_api_key(
    session: Session, *, organization_id: uuid.UUID, key_id: uuid.UUID, actor: str, now: datetime
) -> ApiKey:
    """Revoke a key of this organisation (idempotent: revoking twice keeps the first time)."""
    key = ApiKeyRepository(session).get(organization_id, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None:
        key.revoked_at = now
        record_audit(
            session,
            "api_key.revoked",
            key.id,
            actor=actor,
            organization_id=organization_id,
            details={"prefix": key.prefix},
        )
    return key


def list_api_keys(
    session: Session,
    *,
    organization_id: uuid.UUID,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[ApiKey]:
    """An organisation's keys, oldest first, up to `limit` after the key of `after`."""
    return ApiKeyRepository(session).page_for(organization_id, after=after, limit=limit).items


def api_keys_page(
    session: Session, *, organization_id: uuid.UUID, cursor: str | None, limit: int
) -> Paged[ApiKey]:
    """An organisation's keys, oldest first, one page per opaque cursor."""
    after = after_key(cursor, ApiKeyRepository.ORDER)
    page = ApiKeyRepository(session).page_for(organization_id, after=after, limit=limit)
    return as_paged(page, lambda key: key)


REFUSALS = {
    "unknown": "unknown API key",
    "revoked": "this API key was revoked",
    "expired": "this API key has expired",
    "suspended": "this organisation is suspended; contact the provider",
}
"""Why a key does not authenticate, in the words the caller gets."""


def enter_key_scope(session: Session, presented: str) -> None:
    """Scope the transaction to the organisation of the presented key, or Unauthenticated.

    On PostgreSQL the database checks the key and scopes the transaction itself, so a tenant
    session sees its own organisation's rows only with one of its valid keys; elsewhere the
    queries' own scoping is all there is (nothing to do here).
    """
    if "\x00" in presented:  # no key holds one, and the database refuses the character
        raise Unauthenticated(REFUSALS["unknown"])
    verdict = ApiKeyRepository(session).enter_scope(presented.strip())
    if verdict is not None and verdict != "ok":
        raise Unauthenticated(REFUSALS.get(verdict, REFUSALS["unknown"]))


def authenticate(session: Session, presented: str, *, now: datetime) -> Principal:
    """The principal behind a presented key, or Unauthenticated; the transaction is then scoped
    to its organisation (see `enter_key_scope`)."""
    parts = presented.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != "sf" or not parts[1] or not parts[2]:
        raise Unauthenticated(
            "the API key is malformed; send `Authorization: Bearer sf_<prefix>_<secret>`"
        )
    enter_key_scope(session, presented)
    found = ApiKeyRepository(session).by_prefix(parts[1])
    if found is None:
        raise Unauthenticated(REFUSALS["unknown"])
    key, organization = found
    if not hmac.compare_digest(key.key_hash, _hash(presented.strip())):
        raise Unauthenticated(REFUSALS["unknown"])
    if key.revoked_at is not None:
        raise Unauthenticated(REFUSALS["revoked"])
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated(REFUSALS["expired"])
    if organization.status != "active":
        raise Unauthenticated(REFUSALS["suspended"])
    return Principal(
        organization_id=organization.id,
        organization_slug=organization.slug,
        key_id=key.id,
        scopes=frozenset(key.scopes),
        last_used_at=key.last_used_at,
        expires_at=key.expires_at,
    )


def record_key_use(session: Session, principal: Principal, *, now: datetime) -> None:
    """Write `last_used_at`, at most once per `LAST_USED_RESOLUTION` per key.

    Called in the transaction `authenticate` scoped to the key's organisation: row-level
    security lets an organisation write only its own keys (and of them only these columns).
    """
    last = principal.last_used_at
    if last is None or now - last >= LAST_USED_RESOLUTION:
        ApiKeyRepository(session).touch(principal.key_id, now)


def suspend_organization(
    session: Session, *, organization: Organization, actor: str, suspended: bool = True
) -> Organization:
    """Suspend (or reactivate) a tenant: its keys stop authenticating at once."""
    if organization.kind != "tenant":
        raise InvalidInput("only tenants can be suspended")
    status = "suspended" if suspended else "active"
    if organization.status != status:
        organization.status = status
        record_audit(
            session,
            "organization.suspended" if suspended else "organization.reactivated",
            organization.id,
            actor=actor,
            organization_id=organization.id,
        )
    return organization


def issue_tenant_api_key(
    session: Session,
    *,
    slug: str,
    name: str,
    scopes: Sequence[str],
    actor: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Issue a key to the tenant with `slug`; the plaintext is returned once."""
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("expires_at: must be in the future")
    tenant = get_tenant(session, slug)
    return issue_api_key(
        session,
        organization_id=tenant.id,
        name=name,
        scopes=scopes,
        actor=actor,
        expires_at=expires_at,
    )


def set_tenant_suspended(
    session: Session, *, slug: str, actor: str, suspended: bool
) -> Organization:
    """Suspend or reactivate the tenant with `slug` (idempotent; audited when it changes)."""
    return suspend_organization(
        session, organization=get_tenant(session, slug), actor=actor, suspended=suspended
    )
