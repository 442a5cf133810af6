"""Registered model versions of the agents, as tenants list them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from models.registry.client import ModelVersionInfo, list_model_versions
from pipelines.pagination import Paged, decode_cursor, paged


def model_versions_page(
    *, agent_type: str | None, cursor: str | None, limit: int
) -> Paged[dict[str, Any]]:
    """Model versions in the registry by name, newest version first, optionally of one agent type.

    The registry is small and has no keyset paging of its own, so it is read whole and paged
    here; the cursor is the (name, version) of the last item.
    """
    versions = list_model_versions()
    if agent_type is not None:
        versions = [v for v in versions if v.agent_type == agent_type]
    if cursor:
        name, number = decode_cursor(cursor, str, int)
        versions = [v for v in versions if (v.name, -int(v.version)) > (name, -number)]
    page = paged(versions[: limit + 1], limit, lambda v: (v.name, int(v.version)))
    return Paged([_document(v) for v in page.items], page.next_cursor)


def _document(version: ModelVersionInfo) -> dict[str, Any]:
    created = datetime.fromtimestamp(version.created_at_ms / 1000, UTC)
    return {
        "name": version.name,
        "version": version.version,
        "agent_type": version.agent_type,
        "task": version.task,
        "aliases": list(version.aliases),
        "description": version.description,
        "created_at": created.isoformat().replace("+00:00", "Z"),
    }
