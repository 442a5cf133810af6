"""Provider users and dashboard sessions on both backends, with an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.db.tables import AuditLogEntry, DashboardSession
from pipelines.access.service import Unauthenticated
from pipelines.errors import Conflict, InvalidInput
from pipelines.provider_users.service import (
    create_user,
    disable_user,
    sign_in,
    sign_out,
    signed_in,
    users_page,
)

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOURS = timedelta(hours=12)
PASSWORD = "a long enough passphrase"


def _user(session: Session, email: str = "Ada@Provider.Example", role: str = "admin") -> None:
    create_user(session, email=email, name="Ada", role=role, password=PASSWORD, actor="test")


def _actions(session: Session) -> list[str]:
    return list(session.scalars(select(AuditLogEntry.action).order_by(AuditLogEntry.id)))


def test_a_user_signs_in_and_the_session_lasts_its_lifetime(session: Session) -> None:
    _user(session)
    opened = sign_in(
        session, email="ada@provider.example", password=PASSWORD, now=NOW, lifetime=HOURS
    )
    assert opened.signed_in.user is not None
    assert opened.signed_in.user.email == "ada@provider.example"
    stored = session.scalars(select(DashboardSession)).one()
    assert stored.token_hash != opened.token
    assert stored.expires_at == NOW + HOURS
    who = signed_in(session, token=opened.token, now=NOW + HOURS - timedelta(seconds=1))
    assert who.csrf_token == opened.signed_in.csrf_token
    with pytest.raises(Unauthenticated):
        signed_in(session, token=opened.token, now=NOW + HOURS)
    assert _actions(session) == ["provider_user.created", "provider_user.signed_in"]


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("ada@provider.example", "not the passphrase"),
        ("nobody@provider.example", PASSWORD),
        ("no", PASSWORD),
    ],
)
def test_a_wrong_email_or_password_is_one_answer(
    session: Session, email: str, password: str
) -> None:
    _user(session)
    with pytest.raises(Unauthenticated, match="the e-mail address or the password is wrong"):
        sign_in(session, email=email, password=password, now=NOW, lifetime=HOURS)
    assert session.scalars(select(DashboardSession)).all() == []


def test_disabling_a_user_ends_their_sessions(session: Session) -> None:
    _user(session)
    opened = sign_in(
        session, email="ada@provider.example", password=PASSWORD, now=NOW, lifetime=HOURS
    )
    disable_user(session, email="ada@provider.example", actor="test", now=NOW)
    with pytest.raises(Unauthenticated):
        signed_in(session, token=opened.token, now=NOW)
    with pytest.raises(Unauthenticated):
        sign_in(session, email="ada@provider.example", password=PASSWORD, now=NOW, lifetime=HOURS)
    assert "provider_user.disabled" in _actions(session)


def test_signing_out_ends_the_session_and_is_audited(session: Session) -> None:
    _user(session)
    opened = sign_in(
        session, email="ada@provider.example", password=PASSWORD, now=NOW, lifetime=HOURS
    )
    sign_out(session, token=opened.token, actor="provider_user:x")
    with pytest.raises(Unauthenticated):
        signed_in(session, token=opened.token, now=NOW)
    sign_out(session, token=opened.token, actor="provider_user:x")
    assert _actions(session).count("dashboard_session.closed") == 1


def test_bad_input_names_its_field(session: Session) -> None:
    with pytest.raises(InvalidInput) as bad_email:
        create_user(session, email="ada", name="Ada", role="admin", password=PASSWORD, actor="t")
    assert bad_email.value.field == "email"
    with pytest.raises(InvalidInput) as bad_role:
        create_user(
            session, email="a@b.example", name="Ada", role="root", password=PASSWORD, actor="t"
        )
    assert bad_role.value.field == "role"
    with pytest.raises(InvalidInput) as weak:
        create_user(
            session, email="a@b.example", name="Ada", role="admin", password="short", actor="t"
        )
    assert weak.value.field == "password"
    _user(session)
    with pytest.raises(Conflict):
        _user(session, email="ADA@provider.example")
    assert [u.email for u in users_page(session, cursor=None, limit=10).items] == [
        "ada@provider.example"
    ]
