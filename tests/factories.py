"""Plain factory functions for rows the tests need."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from models.db.tables import Organization
from pipelines.organizations import ensure_organization


def create_organization(
    session: Session, *, kind: str = "tenant", slug: str | None = None
) -> Organization:
    """A fresh organisation (the provider is created once per database and reused)."""
    if kind == "provider":
        from models.db.repositories.organizations import OrganizationRepository

        existing = OrganizationRepository(session).provider()
        if existing is not None:
            return existing
    organization, _ = ensure_organization(
        session,
        slug=slug or f"{kind}-{uuid.uuid4().hex[:8]}",
        name=f"Test {kind}",
        kind=kind,
        actor="test",
    )
    return organization


def csv_bytes(rows: list[tuple[str, str, str, str]]) -> bytes:
    """A golden dataset CSV with columns id, input, expected, slice."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "input", "expected", "slice"])
    writer.writerows(rows)
    return buffer.getvalue().encode()
