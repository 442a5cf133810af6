"""Client addresses refused before authentication after too many failed attempts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from cachetools import TTLCache

from models.cache.rate_limit import RateLimitDecision


class AddressBlocks:
    """Client addresses refused before authentication, in this process, until a time.

    Only failed authentication counts against an address (`failed_authentication`), so its
    limit never throttles a caller whose credentials work below their key's own limit. An
    address past it is refused here, before any database lookup or signature check; another
    process learns of it at that address's next failure there.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._until: TTLCache[str, tuple[float, RateLimitDecision]] = TTLCache(
            maxsize=100_000, ttl=60.0, timer=clock
        )
        self._clock = clock

    def check(self, address: str) -> RateLimitDecision | None:
        """The refusal in force for `address`, if any, with the time left on it."""
        blocked = self._until.get(address)
        if blocked is None:
            return None
        until, decision = blocked
        left = until - self._clock()
        if left <= 0:
            return None
        return replace(decision, retry_after_seconds=left, reset_after_seconds=left)

    def block(self, address: str, decision: RateLimitDecision) -> None:
        self._until[address] = (self._clock() + decision.retry_after_seconds, decision)
