"""What commands act on: a database transaction and the organisation chosen with `--org`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def org_slug(org: str | None) -> str:
    """The organisation to act as: `--org`, else the configured default."""
    from flows.runtime import runtime

    return org or runtime().evaluation.organization


@contextmanager
def session() -> Iterator[Session]:
    """One transaction on the configured database, committed when the block succeeds."""
    from flows.runtime import runtime
    from models.db.engine import transaction

    with transaction(runtime().sessions) as opened:
        yield opened


def org_id(opened: Session, org: str | None) -> uuid.UUID:
    """The id of the organisation to act as."""
    from pipelines.organizations import get_organization

    return get_organization(opened, org_slug(org)).id
