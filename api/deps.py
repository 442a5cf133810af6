"""Request dependencies: who is calling, within which limits, in which database scope."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.errors import RateLimited, ReplayCheckUnavailable, SignatureInvalid
from api.signing import SignatureRejected, SignedRequest, verify
from api.state import ApiState
from models.cache.nonces import ReplayProtectionUnavailable
from models.cache.rate_limit import RateLimit
from pipelines.access.service import (
    Principal,
    Unauthenticated,
    authenticate,
    enter_key_scope,
    record_key_use,
)

bearer = HTTPBearer(
    auto_error=False, description="A tenant API key: `Bearer sf_<prefix>_<secret>`."
)
provider_signature = APIKeyHeader(
    name="X-StreamFlow-Signature",
    auto_error=False,
    scheme_name="ProviderSignature",
    description=(
        "HMAC-SHA256 request signature (`v1=<hex>`) with X-StreamFlow-Key-Id, "
        "X-StreamFlow-Timestamp and X-StreamFlow-Nonce; see docs/provider-signing.md."
    ),
)


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.streamflow
    return state


StateDep = Annotated[ApiState, Depends(get_state)]


async def _enforce(state: ApiState, request: Request, key: str, per_minute: int, kind: str) -> None:
    decision = await state.rate_limiter.hit(key, RateLimit(limit=per_minute, period_seconds=60.0))
    request.state.rate_limit = decision
    if not decision.allowed:
        state.metrics.rate_limited.labels(kind).inc()
        raise RateLimited(decision, kind)


def _address_check(request: Request, state: ApiState) -> tuple[str, RateLimit]:
    address = request.client.host if request.client else "unknown"
    return f"address:{address}", RateLimit(state.api.rate_limit_per_address_per_minute, 60.0)


async def limit_by_address(request: Request, state: StateDep) -> None:
    """An unauthenticated request (a probe, the metrics) counts against its client address."""
    key, limit = _address_check(request, state)
    await _enforce(state, request, key, limit.limit, "address")


AddressLimited = Depends(limit_by_address)


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def refuse_blocked_address(request: Request, state: ApiState) -> None:
    """429 for an address past its limit of failed authentications."""
    decision = state.address_blocks.check(_address(request))
    if decision is not None:
        request.state.rate_limit = decision
        state.metrics.rate_limited.labels("address").inc()
        raise RateLimited(decision, "address")


async def failed_authentication(request: Request, state: ApiState) -> None:
    """Count a failed authentication against the address; 429 once past its limit."""
    key, limit = _address_check(request, state)
    decision = await state.rate_limiter.hit(key, limit)
    if not decision.allowed:
        state.address_blocks.block(_address(request), decision)
        request.state.rate_limit = decision
        state.metrics.rate_limited.labels("address").inc()
        raise RateLimited(decision, "address")


class TenantContext:
    """An authenticated tenant request: the principal and, on first use, its row-scoped session.

    The session opens lazily so that a read served from the cache never touches the database.
    """

    def __init__(self, principal: Principal, now: datetime, state: ApiState, token: str) -> None:
        self.principal = principal
        self.now = now
        self._state = state
        self._token = token
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """The request's transaction, scoped by the database to the key's organisation.

        The key is presented again in every transaction: a key revoked or expired since it was
        remembered gets 401 here, not rows.
        """
        if self._session is None:
            session = self._state.tenant_sessions()
            session.begin()
            try:
                enter_key_scope(session, self._token)
            except Unauthenticated:
                session.close()
                self._state.principals.forget(self._token)
                raise
            except BaseException:
                session.close()
                raise
            self._session = session
        return self._session

    @property
    def opened(self) -> bool:
        """Whether the request used the database."""
        return self._session is not None

    def finish(self, *, commit: bool) -> None:
        """Commit (or roll back) and close the session, if one was opened."""
        if self._session is None:
            return
        try:
            if commit:
                self._session.commit()
            else:
                self._session.rollback()
        finally:
            self._session.close()
            self._session = None


def _authenticate(state: ApiState, token: str, now: datetime) -> Principal:
    with state.tenant_sessions() as session, session.begin():
        principal = authenticate(session, token, now=now)
        record_key_use(session, principal, now=now)
    return principal


async def _tenant_session(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> AsyncIterator[TenantContext]:
    # Only failed attempts count against the address; once past its limit, the address is
    # refused before any database work.
    if credentials is None or credentials.scheme.lower() != "bearer":
        await failed_authentication(request, state)
        raise Unauthenticated("send `Authorization: Bearer <API key>`; keys come from the provider")
    now = datetime.now(UTC)
    token = credentials.credentials
    principal = state.principals.get(token)
    if principal is None:
        refuse_blocked_address(request, state)
        try:
            principal = await run_in_threadpool(_authenticate, state, token, now)
        except Unauthenticated:
            await failed_authentication(request, state)
            raise
        state.principals.put(token, principal, now=now)
    context = TenantContext(principal, now, state, token)
    try:
        yield context
    except BaseException:
        if context.opened:
            await run_in_threadpool(context.finish, commit=False)
        raise
    if context.opened:
        await run_in_threadpool(context.finish, commit=True)


def tenant(scope: str) -> Callable[..., Awaitable[TenantContext]]:
    """A dependency: an API key with `scope`, within its per-key rate limit."""

    async def dependency(
        request: Request,
        state: StateDep,
        context: Annotated[TenantContext, Depends(_tenant_session, scope="function")],
    ) -> TenantContext:
        context.principal.require(scope)
        per_minute = state.api.rate_limits_per_minute.get(scope, state.api.rate_limit_per_minute)
        key = f"key:{context.principal.key_id}:{scope}"
        await _enforce(state, request, key, per_minute, "key")
        return context

    return dependency


@dataclass
class ProviderContext:
    """A signed provider request: the key id that signed it and a platform-wide session."""

    key_id: str
    session: Session
    now: datetime

    @property
    def actor(self) -> str:
        return f"provider:{self.key_id}"


async def _verified_provider_key(
    request: Request,
    state: StateDep,
    _: Annotated[str | None, Depends(provider_signature)],
) -> str:
    refuse_blocked_address(request, state)
    body = await request.body()
    signed = SignedRequest.from_asgi_scope(request.scope, body)
    try:
        key_id = await verify(
            signed,
            keys=state.provider_keys,
            now=time.time(),
            tolerance_seconds=state.signature_tolerance_seconds,
            claim_nonce=lambda key, nonce, ttl: state.nonces.claim(key, nonce, ttl_seconds=ttl),
        )
    except SignatureRejected as rejection:
        await failed_authentication(request, state)
        raise SignatureInvalid(rejection) from None
    except ReplayProtectionUnavailable:
        state.metrics.redis_errors.labels("nonces").inc()
        raise ReplayCheckUnavailable(
            "replay protection is unavailable, so signed requests are refused; retry shortly"
        ) from None
    await _enforce(state, request, f"provider:{key_id}", state.api.rate_limit_per_minute, "key")
    return key_id


def _provider_session(
    state: StateDep, key_id: Annotated[str, Depends(_verified_provider_key)]
) -> Iterator[ProviderContext]:
    with state.sessions() as session, session.begin():
        yield ProviderContext(key_id=key_id, session=session, now=datetime.now(UTC))


Provider = Annotated[ProviderContext, Depends(_provider_session, scope="function")]
TenantRead = Annotated[TenantContext, Depends(tenant("results:read"))]
TenantNotices = Annotated[TenantContext, Depends(tenant("notices:write"))]
TenantKeys = Annotated[TenantContext, Depends(tenant("keys:write"))]


Limit = Annotated[
    int | None,
    Query(ge=1, description="Items per page (default 50; at most the server's page size limit)."),
]
"""The `limit` query parameter of every paged listing."""
Cursor = Annotated[
    str | None,
    Query(max_length=1000, description="`next_cursor` of the previous page; omit for the first."),
]
"""The `cursor` query parameter of every paged listing."""


def page_size(state: ApiState, limit: int | None) -> int:
    """The page size to use: the default, or the requested one within bounds."""
    if limit is None:
        return state.api.page_size_default
    return max(1, min(limit, state.api.page_size_max))
