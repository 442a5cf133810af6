"""Which model version answers for an agent type: the `champion` alias of the registered model
tagged with that agent type, resolved through a short-lived in-process cache.

Agent types are data: a registered model carries an `agent_type` tag (set at registration),
so any registered type is served without code. When several registered models of one type
have a champion, the first by name answers (a stable, documented choice).

Every process resolves aliases at most `ttl_seconds` old, so an alias moved by another process
(a promotion, a rollback) takes effect everywhere within that bound, without a restart; the
aliases are re-read ahead of that bound in a background thread, so a request rarely waits for
the registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog
from mlflow import MlflowClient

from models.registry.aliases import CHAMPION
from models.registry.client import ModelVersionRef

log = structlog.get_logger()
T = TypeVar("T")


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


class RefreshAhead(Generic[T]):
    """A value `source()` answered at most `ttl_seconds` ago (0: ask every time).

    Past half its lifetime, a read still gets the value held and starts one refresh in a
    background thread, so under steady traffic no request waits for the source; a value past
    its lifetime is loaded on the reading thread. Either way one load runs at a time: readers
    that find the value expired wait for the load in flight instead of starting their own.
    """

    def __init__(
        self,
        ttl_seconds: float,
        source: Callable[[], T],
        *,
        timer: Callable[[], float] = time.monotonic,
        spawn: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._source = source
        self._timer = timer
        self._spawn = spawn or _in_thread
        self._load_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._held: tuple[T, float] | None = None
        self._generation = 0
        self._refreshing = False

    def get(self) -> T:
        if self.ttl_seconds <= 0:
            return self._source()
        with self._state_lock:
            held, generation = self._held, self._generation
        if held is not None:
            age = self._timer() - held[1]
            if age < self.ttl_seconds:
                if age >= self.ttl_seconds / 2:
                    self._refresh_in_background()
                return held[0]
        return self._load(generation, need_age=self.ttl_seconds)

    def _load(self, generation: int, *, need_age: float) -> T:
        with self._load_lock:
            with self._state_lock:
                held = self._held
                if (
                    held is not None
                    and self._generation == generation
                    and self._timer() - held[1] < need_age
                ):
                    return held[0]  # loaded while this reader waited
                generation = self._generation
            started = self._timer()
            value = self._source()
            with self._state_lock:
                if self._generation == generation:
                    self._held = (value, started)
            return value

    def _refresh_in_background(self) -> None:
        with self._state_lock:
            if self._refreshing:
                return
            self._refreshing = True
            generation = self._generation

        def refresh() -> None:
            try:
                self._load(generation, need_age=self.ttl_seconds / 2)
            except Exception:
                log.warning("refresh_ahead.failed", exc_info=True)
            finally:
                with self._state_lock:
                    self._refreshing = False

        self._spawn(refresh)

    def forget(self) -> None:
        """Drop the value; the next read loads it (a load in flight is not kept)."""
        with self._state_lock:
            self._held = None
            self._generation += 1


def _in_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="refresh-ahead", daemon=True).start()


class ChampionCache:
    """`agent_champions()` remembered for `ttl_seconds` (0: ask the registry every time),
    refreshed ahead of its expiry (see `RefreshAhead`)."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        timer: Callable[[], float] = time.monotonic,
        source: Callable[[], dict[str, AgentChampion]] = agent_champions,
        spawn: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._value = RefreshAhead(ttl_seconds, source, timer=timer, spawn=spawn)

    def all(self) -> dict[str, AgentChampion]:
        """Agent types and their champions, at most `ttl_seconds` old."""
        return self._value.get()

    def get(self, agent_type: str) -> AgentChampion | None:
        return self.all().get(agent_type)

    def forget(self) -> None:
        """Drop what is remembered (this process moved an alias)."""
        self._value.forget()
