"""Who is looking at a dashboard: a session cookie, checked per request, and CSRF on forms.

Browsers never hold signing keys. A provider user signs in with an e-mail and password, a tenant
with one of its API keys; either way the browser gets an HttpOnly, SameSite=Lax cookie whose
hash names a stored session. Every form and HTMX request that changes something echoes the
session's CSRF token (a hidden field, or the `X-CSRF-Token` header HTMX sends).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from api.deps import StateDep
from api.state import ApiState
from pipelines.access.service import Forbidden, Unauthenticated
from pipelines.provider_users.read_models import SignedIn
from pipelines.provider_users.service import enter_session_scope, signed_in

COOKIE = "streamflow_session"
SECURE_COOKIE = "__Host-streamflow_session"
CSRF_HEADER = "X-CSRF-Token"
SIGN_IN_PATH = "/dashboards/sign-in"


class SignInRequired(Exception):
    """The request has no live session; pages redirect to the sign-in form, HTMX gets 401."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in to see the dashboards")
        self.next_path = next_path

    @property
    def location(self) -> str:
        return f"{SIGN_IN_PATH}?next={quote(self.next_path, safe='/')}"


def cookie_name(state: ApiState) -> str:
    return SECURE_COOKIE if state.api.dashboard_secure_cookies else COOKIE


@dataclass
class DashboardContext:
    """A signed-in dashboard request: who, when, and a platform-wide database session."""

    signed_in: SignedIn
    session: Session
    """The platform's session for provider users; the tenant's own, row-scoped, for tenants."""
    now: datetime
    token: str

    @property
    def actor(self) -> str:
        if self.signed_in.user is not None:
            return f"provider_user:{self.signed_in.user.id}"
        return f"tenant_session:{self.signed_in.organization_id}"

    @property
    def can_change(self) -> bool:
        return self.signed_in.user is not None and self.signed_in.user.can_change


def _next_path(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query else path


def _signed_in_session(request: Request, state: StateDep) -> Iterator[DashboardContext]:
    token = request.cookies.get(cookie_name(state))
    if not token:
        raise SignInRequired(_next_path(request))
    now = datetime.now(UTC)
    with state.sessions() as session, session.begin():
        try:
            who = signed_in(session, token=token, now=now)
        except Unauthenticated:
            raise SignInRequired(_next_path(request)) from None
        yield DashboardContext(signed_in=who, session=session, now=now, token=token)


async def _csrf_token_sent(request: Request) -> str:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.method in {"POST", "PUT", "PATCH", "DELETE"}:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent or ""


SignedInContext = Annotated[DashboardContext, Depends(_signed_in_session, scope="function")]


def _require_provider_user(context: DashboardContext) -> None:
    if context.signed_in.user is None:
        raise Forbidden("this page is for provider users; tenants see their own pages")


async def _require_csrf(request: Request, context: DashboardContext) -> None:
    if not hmac.compare_digest(await _csrf_token_sent(request), context.signed_in.csrf_token):
        raise Forbidden("the form is stale or was not sent by this site; reload the page")


def _analyst(context: SignedInContext) -> DashboardContext:
    _require_provider_user(context)
    return context


async def _admin_change(request: Request, context: SignedInContext) -> DashboardContext:
    _require_provider_user(context)
    await _require_csrf(request, context)
    if not context.can_change:
        raise Forbidden("analysts have read-only access; ask an admin")
    return context


def _tenant(state: StateDep, context: SignedInContext) -> Iterator[DashboardContext]:
    if context.signed_in.organization_id is None:
        raise Forbidden("this page is for tenants; sign in with one of the tenant's API keys")
    with state.tenant_sessions() as session, session.begin():
        enter_session_scope(session, context.token)
        yield DashboardContext(
            signed_in=context.signed_in, session=session, now=context.now, token=context.token
        )


TenantContext = Annotated[DashboardContext, Depends(_tenant, scope="function")]


async def _tenant_change(request: Request, context: TenantContext) -> DashboardContext:
    await _require_csrf(request, context)
    return context


async def _any_signed_in_change(request: Request, context: SignedInContext) -> DashboardContext:
    await _require_csrf(request, context)
    return context


Analyst = Annotated[DashboardContext, Depends(_analyst)]
"""A signed-in provider user, any role: may read every provider dashboard."""
AdminChange = Annotated[DashboardContext, Depends(_admin_change)]
"""A provider admin sending a form with this session's CSRF token."""
TenantPage = TenantContext
"""A tenant session; its database session sees only the tenant's rows."""
TenantChange = Annotated[DashboardContext, Depends(_tenant_change)]
"""A tenant session sending a form with this session's CSRF token."""
SignedInChange = Annotated[DashboardContext, Depends(_any_signed_in_change)]
"""Anyone signed in, sending this session's CSRF token (e.g. signing out)."""
