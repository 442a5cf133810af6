"""The database's answer to a trivial query, for readiness probes."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def ping(session: Session) -> None:
    """Run `SELECT 1`; raises when the database cannot answer."""
    session.execute(text("SELECT 1"))
