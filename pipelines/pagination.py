"""Opaque keyset cursors for paged listings.

A cursor is the sort key of the last item of a page (e.g. its creation time and id), as
base64url JSON; the next page starts strictly after it. Clients treat it as an opaque string.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

from models.db.repositories.base import Key, Keyset, KeysetPage
from pipelines.errors import InvalidInput

Item = TypeVar("Item")
Shown = TypeVar("Shown")

CursorValue = datetime | date | uuid.UUID | str | int
"""What a cursor may carry: the values of a keyset sort key."""


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if "\x00" in value:
        raise ValueError("cursor text holds no NUL character")
    return value


def _aware(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_text(value))
    if parsed.tzinfo is None:
        raise ValueError("cursor times carry a zone")
    # Raises OverflowError at the edges of the range (0001-01-01T00:00:00+01:00).
    return parsed.astimezone(UTC)


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected an integer")
    return value


def _day(value: Any) -> date:
    return date.fromisoformat(_text(value))


_PARSERS: dict[type[Any], Callable[[Any], Any]] = {
    datetime: _aware,
    date: _day,
    uuid.UUID: lambda value: uuid.UUID(_text(value)),
    str: _text,
    int: _integer,
}


@dataclass(frozen=True)
class Paged(Generic[Item]):
    """One page of items and the cursor of the next page (None on the last page)."""

    items: list[Item]
    next_cursor: str | None


def encode_cursor(*values: CursorValue) -> str:
    """An opaque cursor carrying these key values."""
    parts = [value.isoformat() if isinstance(value, datetime | date) else value for value in values]
    raw = json.dumps([str(p) if isinstance(p, uuid.UUID) else p for p in parts]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type[Any]) -> tuple[Any, ...]:
    """The key values a cursor carries, parsed as `kinds`; InvalidInput if it is not ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong number of values")
        return tuple(_PARSERS[kind](value) for kind, value in zip(kinds, values, strict=True))
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, binascii.Error) as error:
        raise InvalidInput(
            f"cursor {cursor!r} is not valid; pass next_cursor from a previous page",
            field="cursor",
        ) from error


def after_key(cursor: str | None, keyset: Keyset) -> Key | None:
    """Where the page of `cursor` starts in a `keyset` listing (None: the first page)."""
    return decode_cursor(cursor, *keyset.kinds) if cursor else None


def next_cursor(page: KeysetPage[Any]) -> str | None:
    """The cursor of the page after `page` (None on the last page)."""
    return encode_cursor(*page.next_key) if page.next_key is not None else None


def as_paged(page: KeysetPage[Item], show: Callable[[Item], Shown]) -> Paged[Shown]:
    """A repository page as the services return it: each item shown, the next key as a cursor."""
    return Paged([show(item) for item in page.items], next_cursor(page))


def paged(
    rows: Sequence[Item], limit: int, key: Callable[[Item], tuple[CursorValue, ...]]
) -> Paged[Item]:
    """A page from up to `limit + 1` rows held in memory (same contract as `Repository.page`)."""
    return as_paged(KeysetPage.of(rows, limit, key), lambda item: item)


def encode_run_cursor(created_at: datetime, run_id: uuid.UUID) -> str:
    """The cursor after a run in a newest-first run listing."""
    return encode_cursor(created_at, run_id)


def decode_run_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """(created_at, run id) of a run cursor."""
    created_at, run_id = decode_cursor(cursor, datetime, uuid.UUID)
    return created_at, run_id
