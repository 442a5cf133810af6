"""A short-lived in-process memory of authenticated API keys.

Authenticating costs a database round trip; remembering a key for a few seconds lets cached
reads skip the database entirely. Revoking a key or suspending a tenant through this process
forgets every entry at once; other API processes notice within the TTL.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

from pipelines.access.service import Principal


class PrincipalCache:
    """Principals by the SHA-256 of the presented key, for `ttl_seconds` (0 turns it off);
    past `max_entries` the least recently used key is forgotten first."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: TTLCache[str, Principal] | None = (
            TTLCache(maxsize=max_entries, ttl=ttl_seconds, timer=clock) if ttl_seconds > 0 else None
        )
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Principal | None:
        if self._entries is None:
            return None
        with self._lock:
            return self._entries.get(self._digest(token))

    def put(self, token: str, principal: Principal) -> None:
        if self._entries is None:
            return
        with self._lock:
            self._entries[self._digest(token)] = principal

    def forget_all(self) -> None:
        """Drop every entry (a key was revoked or a tenant suspended)."""
        if self._entries is None:
            return
        with self._lock:
            self._entries.clear()
