"""Idempotency records: the first response to a create request, kept for its retries."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from models.db.base import new_id
from models.db.repositories.base import Repository
from models.db.tables import IdempotencyRecord

PENDING_STATUS = 0
"""Status of a claimed record whose response is not stored yet (seen only by its transaction)."""


class IdempotencyRepository(Repository):
    """SQL for idempotency records."""

    def claim(
        self,
        *,
        scope: str,
        key: str,
        request_hash: str,
        organization_id: uuid.UUID | None,
        now: datetime,
    ) -> bool:
        """Insert a pending record for (scope, key); False when one exists already.

        `ON CONFLICT DO NOTHING` waits for a concurrent transaction holding the same key and
        then skips, so the transaction stays usable, unlike a failed plain INSERT.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(IdempotencyRecord)
            .values(
                id=new_id(),
                scope=scope,
                key=key,
                organization_id=organization_id,
                request_hash=request_hash,
                status_code=PENDING_STATUS,
                response_body="",
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["scope", "key"])
            .returning(IdempotencyRecord.id)
        )
        return self.session.execute(statement).first() is not None

    def get(self, scope: str, key: str) -> IdempotencyRecord | None:
        return self.session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == scope, IdempotencyRecord.key == key
            )
        ).first()

    def store_response(self, scope: str, key: str, *, status_code: int, body: str) -> None:
        self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
            .values(status_code=status_code, response_body=body)
        )
