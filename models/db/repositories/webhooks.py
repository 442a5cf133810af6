"""Webhook endpoints of tenants and their signing secrets."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select

from models.db.enums import WebhookEndpointStatus
from models.db.repositories.base import Key, Keyset, KeysetPage, Repository
from models.db.tables import Organization, WebhookEndpoint, WebhookSecret


class WebhookRepository(Repository):
    """SQL for webhook endpoints and secrets."""

    ORDER = Keyset.of(WebhookEndpoint.created_at, WebhookEndpoint.id)
    """Oldest first."""

    def add(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        self.session.flush()
        return endpoint

    def get(self, organization_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        return self.session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id == endpoint_id,
                WebhookEndpoint.organization_id == organization_id,
            )
        ).first()

    def page_of(
        self, organization_id: uuid.UUID, *, after: Key | None, limit: int
    ) -> KeysetPage[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(WebhookEndpoint.organization_id == organization_id)
        return self.page(query, self.ORDER, after=after, limit=limit)

    def subscribed(self, organization_id: uuid.UUID, event_type: str) -> list[WebhookEndpoint]:
        """Active endpoints of an organisation subscribed to `event_type` (or to everything)."""
        endpoints = self.session.scalars(
            select(WebhookEndpoint)
            .where(
                WebhookEndpoint.organization_id == organization_id,
                WebhookEndpoint.status == str(WebhookEndpointStatus.ACTIVE),
            )
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return [e for e in endpoints if not e.event_types or event_type in e.event_types]

    def subscriber_ids(self, event_type: str) -> list[uuid.UUID]:
        """Every organisation with an active endpoint subscribed to `event_type` (platform-wide:
        for events about the platform itself, such as a new champion)."""
        endpoints = self.session.execute(
            select(WebhookEndpoint.organization_id, WebhookEndpoint.event_types)
            .where(WebhookEndpoint.status == str(WebhookEndpointStatus.ACTIVE))
            .order_by(WebhookEndpoint.organization_id)
        )
        subscribed = {
            organization_id
            for organization_id, event_types in endpoints
            if not event_types or event_type in event_types
        }
        return sorted(subscribed)

    def add_secret(self, secret: WebhookSecret) -> WebhookSecret:
        self.session.add(secret)
        self.session.flush()
        return secret

    def live_secrets(self, endpoint_id: uuid.UUID, now: datetime) -> list[WebhookSecret]:
        """Secrets that sign now, newest first."""
        return list(
            self.session.scalars(
                select(WebhookSecret)
                .where(
                    WebhookSecret.endpoint_id == endpoint_id,
                    or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
                )
                .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id)
            )
        )

    def tenant_ids(self) -> list[uuid.UUID]:
        """Every active tenant (the audience of a notice to all)."""
        return list(
            self.session.scalars(
                select(Organization.id)
                .where(Organization.kind == "tenant", Organization.status == "active")
                .order_by(Organization.slug)
            )
        )
