"""Opaque keyset cursors for paged listings."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from pipelines.errors import InvalidInput


def encode_run_cursor(created_at: datetime, run_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{run_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_run_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, run_id = raw.split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(run_id)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(
            f"cursor {cursor!r} is not valid; pass next_cursor from a previous page"
        ) from error
