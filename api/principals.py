"""A short-lived in-process memory of authenticated API keys.

Authenticating costs a database round trip; remembering a key for a few seconds lets cached
reads skip the database entirely. Revoking a key or suspending a tenant through this process
forgets every entry at once; other API processes notice within the TTL. A key is never
remembered past its own `expires_at`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cachetools import TLRUCache

from pipelines.access.service import Principal


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    lifetime: float
    """Seconds the entry may be used for: the TTL, or less when the key expires sooner."""


class PrincipalCache:
    """Principals by the SHA-256 of the presented key, for `ttl_seconds` (0 turns it off) or
    until the key expires if that is sooner; past `max_entries` the least recently used key is
    forgotten first. `clock` measures the TTL; expiry is read against the `now` of `put`."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: TLRUCache[str, _Entry] | None = (
            TLRUCache(maxsize=max_entries, ttu=_expiry, timer=clock) if ttl_seconds > 0 else None
        )
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Principal | None:
        if self._entries is None:
            return None
        with self._lock:
            entry = self._entries.get(self._digest(token))
        return entry.principal if entry is not None else None

    def put(self, token: str, principal: Principal, *, now: datetime) -> None:
        """Remember `principal`, authenticated at `now` (aware), within its key's lifetime."""
        if self._entries is None:
            return
        lifetime = self.ttl_seconds
        if principal.expires_at is not None:
            lifetime = min(lifetime, (principal.expires_at - now).total_seconds())
        if lifetime <= 0:
            return
        with self._lock:
            self._entries[self._digest(token)] = _Entry(principal, lifetime)

    def forget(self, token: str) -> None:
        """Drop the entry of this key (the database refused it)."""
        if self._entries is None:
            return
        with self._lock:
            self._entries.pop(self._digest(token), None)

    def forget_all(self) -> None:
        """Drop every entry (a key was revoked or a tenant suspended)."""
        if self._entries is None:
            return
        with self._lock:
            self._entries.clear()


def _expiry(_key: str, entry: _Entry, now: float) -> float:
    return now + entry.lifetime
