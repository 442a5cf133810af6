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

from pipelines.access.service import Principal


class PrincipalCache:
    """Principals by the SHA-256 of the presented key, for `ttl_seconds` (0 turns it off)."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> Principal | None:
        if self.ttl_seconds <= 0:
            return None
        key = self._digest(token)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            principal, expires = found
            if expires <= self.clock():
                del self._entries[key]
                return None
            return principal

    def put(self, token: str, principal: Principal) -> None:
        if self.ttl_seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._digest(token)] = (principal, self.clock() + self.ttl_seconds)

    def forget_all(self) -> None:
        """Drop every entry (a key was revoked or a tenant suspended)."""
        with self._lock:
            self._entries.clear()
