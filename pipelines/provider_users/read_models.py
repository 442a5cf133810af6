"""Provider users and signed-in sessions as readers see them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from models.db.enums import ProviderRole


class ProviderUserView(BaseModel):
    """A person at the provider who may sign in to the dashboards."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: uuid.UUID
    email: str = Field(examples=["ana@provider.example"])
    name: str
    role: ProviderRole
    created_at: datetime
    disabled_at: datetime | None

    @property
    def can_change(self) -> bool:
        """Admins change things; analysts read."""
        return self.role == ProviderRole.ADMIN


class SignedIn(BaseModel):
    """A browser session: who is signed in and the token its forms must echo (CSRF)."""

    model_config = ConfigDict(frozen=True)

    user: ProviderUserView | None = Field(description="The provider user, for provider sessions.")
    organization_id: uuid.UUID | None = Field(description="The tenant, for tenant sessions.")
    organization_slug: str | None
    csrf_token: str
    expires_at: datetime


class NewSession(BaseModel):
    """A session just opened: the cookie value (shown once, stored only as a hash) and its data."""

    model_config = ConfigDict(frozen=True)

    token: str
    signed_in: SignedIn
