"""Provider users and dashboard sessions: create and disable users, sign in and out.

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored, with the CSRF
token the session's forms echo. Tenants open a session by presenting an API key once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models.db.enums import ProviderRole
from models.db.repositories.audit import record_audit
from models.db.repositories.organizations import OrganizationRepository
from models.db.repositories.provider_users import ProviderUserRepository
from models.db.tables import DashboardSession, ProviderUser
from pipelines.access.service import Principal, Unauthenticated
from pipelines.errors import Conflict, InvalidInput, NotFound
from pipelines.pagination import Paged, after_key, as_paged
from pipelines.provider_users.passwords import (
    UNKNOWN_USER_HASH,
    check_strength,
    hash_password,
    verify_password,
)
from pipelines.provider_users.read_models import NewSession, ProviderUserView, SignedIn

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$")
SIGN_IN_FAILED = "the e-mail address or the password is wrong"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _normalised_email(email: str) -> str:
    normalised = email.strip().lower()
    if not EMAIL.match(normalised):
        raise InvalidInput(f"{email!r} is not an e-mail address", field="email")
    return normalised


def create_user(
    session: Session, *, email: str, name: str, role: str, password: str, actor: str
) -> ProviderUserView:
    """Add a provider user who may sign in to the dashboards."""
    address = _normalised_email(email)
    try:
        chosen = ProviderRole(role)
    except ValueError:
        roles = ", ".join(ProviderRole)
        raise InvalidInput(f"role must be one of {roles}", field="role") from None
    if not name.strip():
        raise InvalidInput("give the person's name", field="name")
    try:
        check_strength(password)
    except ValueError as error:
        raise InvalidInput(f"password: {error}", field="password") from None
    repository = ProviderUserRepository(session)
    if repository.by_email(address) is not None:
        raise Conflict(f"a provider user {address} exists already", field="email")
    user = repository.add(
        ProviderUser(
            email=address, name=name.strip(), role=chosen, password_hash=hash_password(password)
        )
    )
    record_audit(session, "provider_user.created", user.id, actor=actor, details={"role": chosen})
    return ProviderUserView.model_validate(user)


def disable_user(session: Session, *, email: str, actor: str, now: datetime) -> ProviderUserView:
    """Stop a provider user from signing in, and end their open sessions."""
    repository = ProviderUserRepository(session)
    user = repository.by_email(_normalised_email(email))
    if user is None:
        raise NotFound(f"no provider user {email}", field="email")
    if user.disabled_at is None:
        user.disabled_at = now
        repository.end_sessions_of(user.id)
        record_audit(session, "provider_user.disabled", user.id, actor=actor)
    return ProviderUserView.model_validate(user)


def users_page(session: Session, *, cursor: str | None, limit: int) -> Paged[ProviderUserView]:
    repository = ProviderUserRepository(session)
    page = repository.page_all(after=after_key(cursor, repository.ORDER), limit=limit)
    return as_paged(page, ProviderUserView.model_validate)


def sign_in(
    session: Session, *, email: str, password: str, now: datetime, lifetime: timedelta
) -> NewSession:
    """Open a session for a provider user; Unauthenticated on any mismatch, without saying which."""
    repository = ProviderUserRepository(session)
    try:
        user = repository.by_email(_normalised_email(email))
    except InvalidInput:
        user = None
    stored = user.password_hash if user is not None else UNKNOWN_USER_HASH
    matches = verify_password(password, stored)
    if user is None or not matches or user.disabled_at is not None:
        raise Unauthenticated(SIGN_IN_FAILED)
    opened = _open(session, now=now, lifetime=lifetime, user_id=user.id)
    record_audit(session, "provider_user.signed_in", user.id, actor=f"provider_user:{user.id}")
    view = ProviderUserView.model_validate(user)
    return NewSession(
        token=opened[0],
        signed_in=SignedIn(
            user=view,
            organization_id=None,
            organization_slug=None,
            csrf_token=opened[1].csrf_token,
            expires_at=opened[1].expires_at,
        ),
    )


def tenant_sign_in(
    session: Session, *, principal: Principal, now: datetime, lifetime: timedelta
) -> NewSession:
    """Open a tenant session for a principal that presented one of the tenant's API keys.

    The key is checked by `access.service.authenticate` on the tenant's own login first; this
    stores the session, which only the platform reads.
    """
    opened = _open(session, now=now, lifetime=lifetime, organization_id=principal.organization_id)
    record_audit(
        session,
        "dashboard_session.opened",
        principal.organization_id,
        actor=principal.actor,
        organization_id=principal.organization_id,
    )
    return NewSession(
        token=opened[0],
        signed_in=SignedIn(
            user=None,
            organization_id=principal.organization_id,
            organization_slug=principal.organization_slug,
            csrf_token=opened[1].csrf_token,
            expires_at=opened[1].expires_at,
        ),
    )


def _open(
    session: Session,
    *,
    now: datetime,
    lifetime: timedelta,
    user_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
) -> tuple[str, DashboardSession]:
    token = secrets.token_urlsafe(32)
    row = DashboardSession(
        token_hash=_token_hash(token),
        user_id=user_id,
        organization_id=organization_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime,
    )
    repository = ProviderUserRepository(session)
    repository.end_expired_sessions(now)
    repository.add_session(row)
    return token, row


def signed_in(session: Session, *, token: str, now: datetime) -> SignedIn:
    """Who holds this session cookie; Unauthenticated if it is unknown, expired or disabled."""
    repository = ProviderUserRepository(session)
    row = repository.session_by_hash(_token_hash(token))
    if row is None or row.expires_at <= now:
        raise Unauthenticated("sign in again: the session has ended")
    if row.user_id is not None:
        user = repository.get(row.user_id)
        if user is None or user.disabled_at is not None:
            raise Unauthenticated("sign in again: the session has ended")
        return SignedIn(
            user=ProviderUserView.model_validate(user),
            organization_id=None,
            organization_slug=None,
            csrf_token=row.csrf_token,
            expires_at=row.expires_at,
        )
    organization = OrganizationRepository(session).get(row.organization_id)  # type: ignore[arg-type]
    if organization is None or organization.status != "active":
        raise Unauthenticated("sign in again: the session has ended")
    return SignedIn(
        user=None,
        organization_id=organization.id,
        organization_slug=organization.slug,
        csrf_token=row.csrf_token,
        expires_at=row.expires_at,
    )


def enter_session_scope(session: Session, token: str) -> None:
    """Scope a tenant-login transaction to the tenant whose dashboard session this cookie names.

    On PostgreSQL the database checks the session itself (`streamflow_enter_dashboard_session`,
    like `streamflow_enter_tenant` for API keys), so a tenant page sees only its tenant's rows;
    on SQLite the queries' own scoping is all there is.
    """
    verdict = ProviderUserRepository(session).enter_session_scope(token)
    if verdict is not None and verdict != "ok":
        raise Unauthenticated("sign in again: the session has ended")


def sign_out(session: Session, *, token: str, actor: str) -> None:
    """End the session of this cookie (nothing happens for an unknown one)."""
    repository = ProviderUserRepository(session)
    row = repository.session_by_hash(_token_hash(token))
    if row is None:
        return
    repository.end_session(row.token_hash)
    record_audit(
        session,
        "dashboard_session.closed",
        row.user_id or row.organization_id,
        actor=actor,
        organization_id=row.organization_id,
    )
