"""Which model version answers for an agent type: the `champion` alias of the registered model
tagged with that agent type, resolved through a short-lived in-process cache.

Agent types are data: a registered model carries an `agent_type` tag (set at registration),
so any registered type is served without code. When several registered models of one type
have a champion, the first by name answers (a stable, documented choice).

Every process resolves aliases at most `ttl_seconds` old, so an alias moved by another process
(a promotion, a rollback) takes effect everywhere within that bound, without a restart.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache
from mlflow import MlflowClient

from models.registry.aliases import CHAMPION
from models.registry.client import ModelVersionRef


@dataclass(frozen=True)
class AgentChampion:
    """An agent type a tenant can call, and the model version answering for it now."""

    agent_type: str
    task: str
    champion: ModelVersionRef


def agent_champions() -> dict[str, AgentChampion]:
    """Every agent type with a champion, read from the registry now (one search)."""
    found: dict[str, AgentChampion] = {}
    models = MlflowClient().search_registered_models(max_results=1000)
    for model in sorted(models, key=lambda m: m.name):
        tags = dict(model.tags or {})
        agent_type = tags.get("agent_type")
        aliases = dict(model.aliases or {})
        if not agent_type or CHAMPION not in aliases or agent_type in found:
            continue
        ref = ModelVersionRef(model.name, str(aliases[CHAMPION]), alias=CHAMPION)
        found[agent_type] = AgentChampion(agent_type, tags.get("task", ""), ref)
    return found


class ChampionCache:
    """`agent_champions()` remembered for `ttl_seconds` (0: ask the registry every time)."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        timer: Callable[[], float] | None = None,
        source: Callable[[], dict[str, AgentChampion]] = agent_champions,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._source = source
        self._lock = threading.Lock()
        self._cache: TTLCache[str, dict[str, AgentChampion]] | None = None
        if ttl_seconds > 0:
            self._cache = (
                TTLCache(maxsize=1, ttl=ttl_seconds, timer=timer)
                if timer is not None
                else TTLCache(maxsize=1, ttl=ttl_seconds)
            )

    def all(self) -> dict[str, AgentChampion]:
        """Agent types and their champions, at most `ttl_seconds` old."""
        if self._cache is None:
            return self._source()
        with self._lock:
            held = self._cache.get("all")
        if held is not None:
            return held
        fresh = self._source()
        with self._lock:
            self._cache["all"] = fresh
        return fresh

    def get(self, agent_type: str) -> AgentChampion | None:
        return self.all().get(agent_type)

    def forget(self) -> None:
        """Drop what is remembered (this process moved an alias)."""
        if self._cache is not None:
            with self._lock:
                self._cache.clear()
