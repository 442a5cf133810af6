"""System notices, their audiences and tenants' acknowledgements."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, exists, insert, or_, select

from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import (
    NoticeAcknowledgement,
    Organization,
    SystemNotice,
    SystemNoticeAudience,
)


class NoticeRepository(Repository):
    """SQL for notices."""

    ORDER = Keyset.of(SystemNotice.created_at, SystemNotice.id, descending=True)
    """The provider's listing: newest created first."""
    ACTIVE_ORDER = Keyset.of(SystemNotice.starts_at, SystemNotice.id, descending=True)
    """A tenant's listing: latest started first."""

    def add(self, notice: SystemNotice, audience: Sequence[uuid.UUID]) -> SystemNotice:
        self.session.add(notice)
        self.session.flush()
        self.set_audience(notice.id, audience)
        return notice

    def set_audience(self, notice_id: uuid.UUID, audience: Sequence[uuid.UUID]) -> None:
        self.session.execute(
            delete(SystemNoticeAudience).where(SystemNoticeAudience.notice_id == notice_id)
        )
        if audience:
            self.session.execute(
                insert(SystemNoticeAudience),
                [{"notice_id": notice_id, "organization_id": org} for org in sorted(set(audience))],
            )

    def audience(self, notice_id: uuid.UUID) -> list[uuid.UUID]:
        return list(
            self.session.scalars(
                select(SystemNoticeAudience.organization_id).where(
                    SystemNoticeAudience.notice_id == notice_id
                )
            )
        )

    def get(self, notice_id: uuid.UUID) -> SystemNotice | None:
        return self.session.get(SystemNotice, notice_id)

    def page_all(self, *, after: Key | None, limit: int) -> KeysetPage[SystemNotice]:
        """Every notice (provider view) in `ORDER`."""
        return self.page(select(SystemNotice), self.ORDER, after=after, limit=limit)

    def _addressed_to(self, organization_id: uuid.UUID) -> object:
        return or_(
            SystemNotice.audience == "all",
            exists().where(
                SystemNoticeAudience.notice_id == SystemNotice.id,
                SystemNoticeAudience.organization_id == organization_id,
            ),
        )

    def _active(self, now: datetime) -> object:
        return and_(
            SystemNotice.retired_at.is_(None),
            SystemNotice.starts_at <= now,
            or_(SystemNotice.ends_at.is_(None), SystemNotice.ends_at > now),
        )

    def page_active_for(
        self,
        organization_id: uuid.UUID,
        *,
        now: datetime,
        after: Key | None,
        limit: int,
    ) -> KeysetPage[tuple[SystemNotice, datetime | None]]:
        """Active notices addressed to a tenant with its acknowledgement time, `ACTIVE_ORDER`."""
        query = (
            select(SystemNotice, NoticeAcknowledgement.acknowledged_at)
            .outerjoin(
                NoticeAcknowledgement,
                (NoticeAcknowledgement.notice_id == SystemNotice.id)
                & (NoticeAcknowledgement.organization_id == organization_id),
            )
            .where(self._active(now), self._addressed_to(organization_id))  # type: ignore[arg-type]
        )
        return self.page(query, self.ACTIVE_ORDER, after=after, limit=limit)

    def get_active_for(
        self, organization_id: uuid.UUID, notice_id: uuid.UUID, *, now: datetime
    ) -> SystemNotice | None:
        return self.session.scalars(
            select(SystemNotice).where(
                SystemNotice.id == notice_id,
                self._active(now),  # type: ignore[arg-type]
                self._addressed_to(organization_id),  # type: ignore[arg-type]
            )
        ).first()

    def acknowledgement(
        self, organization_id: uuid.UUID, notice_id: uuid.UUID
    ) -> NoticeAcknowledgement | None:
        return self.session.get(NoticeAcknowledgement, (notice_id, organization_id))

    def acknowledge(
        self, organization_id: uuid.UUID, notice_id: uuid.UUID, *, actor: str, now: datetime
    ) -> NoticeAcknowledgement:
        ack = NoticeAcknowledgement(
            notice_id=notice_id, organization_id=organization_id, actor=actor, acknowledged_at=now
        )
        self.session.add(ack)
        self.session.flush()
        return ack

    def audience_slugs(self, notice_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        """The tenant slugs each of these notices is addressed to (listed audiences only)."""
        if not notice_ids:
            return {}
        rows = self.session.execute(
            select(SystemNoticeAudience.notice_id, Organization.slug)
            .join(Organization, Organization.id == SystemNoticeAudience.organization_id)
            .where(SystemNoticeAudience.notice_id.in_(list(notice_ids)))
            .order_by(Organization.slug)
        )
        slugs: dict[uuid.UUID, list[str]] = {}
        for notice_id, slug in rows:
            slugs.setdefault(notice_id, []).append(slug)
        return slugs
