"""Response shapes shared by the tenant and provider APIs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Path
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a cursor-paginated list."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None,
        description="Pass as `cursor` to get the next page; null on the last page.",
        examples=["WyIyMDI2LTExLTI1VDE4OjE3OjE2KzAwOjAwIl0"],
    )


RUN_ID_PATTERN = r"^[0-9a-fA-F-]{4,36}$"
METRIC_NAME_PATTERN = r"^[A-Za-z0-9_]{1,64}(\[[^\[\]]{1,128}\])?$"
"""A metric name as stored: `f1_macro`, or a per-class one such as `f1[billing]`."""
RUN_ID_HELP = "A run id, or a unique prefix of it (at least 4 characters) as the CLI prints it."
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description=RUN_ID_HELP)]
"""A run named in a path: its id or a unique prefix, resolved within the caller's tenant."""


EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _within_range(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(
            f"must be between {EARLIEST.date()} and {LATEST.date()} in UTC, with a zone"
        )
    return utc


Instant = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""A time sent by a client: with a zone, converted to UTC, a day inside the range Python and
the databases can hold in any zone (the edges overflow in conversions)."""


def holds_nul(value: Any) -> bool:
    """Whether a string in `value` (or in its lists and mappings) contains a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(holds_nul(key) or holds_nul(item) for key, item in value.items())
    return False


class InputModel(BaseModel):
    """A request body; no text in it may hold a NUL character (PostgreSQL refuses them)."""

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if holds_nul(value):
            raise ValueError("must not contain a NUL character")
        return value
