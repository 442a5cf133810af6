"""Response shapes shared by the tenant and provider APIs."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, Field

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
RUN_ID_HELP = "A run id, or a unique prefix of it (at least 4 characters) as the CLI prints it."
RunId = Annotated[str, Path(pattern=RUN_ID_PATTERN, description=RUN_ID_HELP)]
"""A run named in a path: its id or a unique prefix, resolved within the caller's tenant."""
