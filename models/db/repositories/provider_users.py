"""Provider users of the dashboards and their signed-in browser sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, text

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import DashboardSession, ProviderUser


class ProviderUserRepository(Repository):
    """SQL for provider users and dashboard sessions."""

    ORDER = Keyset.of(ProviderUser.email)
    """Listings run by e-mail address."""

    def add(self, user: ProviderUser) -> ProviderUser:
        self.session.add(user)
        self.session.flush()
        return user

    def by_email(self, email: str) -> ProviderUser | None:
        return self.session.scalars(select(ProviderUser).where(ProviderUser.email == email)).first()

    def get(self, user_id: uuid.UUID) -> ProviderUser | None:
        return self.session.get(ProviderUser, user_id)

    def page_all(self, *, after: Key | None, limit: int) -> KeysetPage[ProviderUser]:
        return self.page(select(ProviderUser), self.ORDER, after=after, limit=limit)

    def add_session(self, signed_in: DashboardSession) -> None:
        self.session.add(signed_in)
        self.session.flush()

    def session_by_hash(self, token_hash: str) -> DashboardSession | None:
        return self.session.get(DashboardSession, token_hash)

    def end_session(self, token_hash: str) -> None:
        self.session.execute(
            delete(DashboardSession).where(DashboardSession.token_hash == token_hash)
        )

    def end_sessions_of(self, user_id: uuid.UUID) -> None:
        self.session.execute(delete(DashboardSession).where(DashboardSession.user_id == user_id))

    def end_expired_sessions(self, now: datetime) -> int:
        result = self.session.execute(
            delete(DashboardSession).where(DashboardSession.expires_at <= now)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def enter_session_scope(self, token: str) -> str | None:
        """Scope this transaction to the tenant of a dashboard session (PostgreSQL; see migration
        0004_dashboards): `ok`, or `unknown`, `expired` or `suspended`. SQLite: None."""
        if self.session.get_bind().dialect.name != "postgresql":
            return None
        verdict: str = self.session.execute(
            text("SELECT streamflow_enter_dashboard_session(:token)"), {"token": token}
        ).scalar_one()
        return verdict
