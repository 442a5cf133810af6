"""API keys: looked up by public prefix, listed per organisation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, text, update

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import ApiKey, Organization


class ApiKeyRepository(Repository):
    """SQL for API keys."""

    ORDER = Keyset.of(ApiKey.created_at, ApiKey.id)
    """Listings run oldest first."""

    def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        self.session.flush()
        return key

    def get(self, organization_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
        return self.session.scalars(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.organization_id == organization_id)
        ).first()

    def by_prefix(self, prefix: str) -> tuple[ApiKey, Organization] | None:
        """The key with this public prefix and its organisation (authentication only)."""
        row = self.session.execute(
            select(ApiKey, Organization)
            .join(Organization, Organization.id == ApiKey.organization_id)
            .where(ApiKey.prefix == prefix)
        ).first()
        return None if row is None else (row[0], row[1])

    def enter_scope(self, presented: str) -> str | None:
        """Scope this transaction to the organisation of the presented key.

        PostgreSQL checks the key itself (`streamflow_enter_tenant`, see migration 0003_rls) and
        answers `ok`, or why not: `unknown`, `revoked`, `expired` or `suspended`; a tenant
        login sees no rows until it answered `ok`. Elsewhere (SQLite) there is nothing to
        scope: None.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return None
        verdict: str = self.session.execute(
            text("SELECT streamflow_enter_tenant(:key)"), {"key": presented}
        ).scalar_one()
        return verdict

    def page_for(
        self, organization_id: uuid.UUID, *, after: Key | None, limit: int
    ) -> KeysetPage[ApiKey]:
        """An organisation's keys in `ORDER`."""
        query = select(ApiKey).where(ApiKey.organization_id == organization_id)
        return self.page(query, self.ORDER, after=after, limit=limit)

    def touch(self, key_id: uuid.UUID, when: datetime) -> None:
        self.session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))
