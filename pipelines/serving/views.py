"""Read models of serving: the agent types a tenant can call."""

from __future__ import annotations

from dataclasses import dataclass

from models.registry.serving import AgentChampion
from pipelines.pagination import Paged, decode_cursor, paged


@dataclass(frozen=True)
class AgentSummary:
    """An agent type and the model version answering for it."""

    agent_type: str
    task: str
    champion: str
    """`NAME@VERSION` behind the champion alias."""


def agents_page(
    champions: dict[str, AgentChampion], *, cursor: str | None, limit: int
) -> Paged[AgentSummary]:
    """Agent types with a champion, by name; the cursor is the last agent type shown."""
    rows = [
        AgentSummary(c.agent_type, c.task, str(c.champion))
        for c in sorted(champions.values(), key=lambda c: c.agent_type)
    ]
    if cursor:
        (last,) = decode_cursor(cursor, str)
        rows = [row for row in rows if row.agent_type > last]
    return paged(rows[: limit + 1], limit, lambda row: (row.agent_type,))
