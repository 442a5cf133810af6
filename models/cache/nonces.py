"""Nonces of signed provider requests, remembered so a captured request cannot be replayed.

Claim a nonce only after the request's signature has been verified, so an attacker cannot use
up nonces that legitimate clients will send. Unlike the cache and the rate limiter, the Redis
store fails closed: when Redis cannot answer it raises `ReplayProtectionUnavailable`, and the
API refuses the signed request (503) rather than accept one it cannot prove is new.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

import redis.asyncio
import structlog
from cachetools import TLRUCache
from redis.exceptions import RedisError

from models.cache.cache import Clock
from models.cache.client import make_async_client
from models.cache.settings import CacheSettings

log = structlog.get_logger()


class ReplayProtectionUnavailable(RuntimeError):
    """The nonce store cannot tell whether a nonce is new (Redis is unreachable or failing)."""


class NonceStore(Protocol):
    """Remembers (key id, nonce) pairs for a while."""

    async def claim(self, key_id: str, nonce: str, *, ttl_seconds: int) -> bool:
        """True the first time a pair is claimed within `ttl_seconds`, False for a replay."""
        ...

    async def aclose(self) -> None:
        """Release the connections this store opened itself."""
        ...


def _check(nonce: str, ttl_seconds: int) -> None:
    if not nonce:
        raise ValueError("nonce must not be empty")
    if ttl_seconds < 1:
        raise ValueError(f"ttl_seconds must be at least 1, got {ttl_seconds}")


class RedisNonceStore:
    """Nonces in Redis (`SET key NX EX`), shared by all API processes; fails closed."""

    def __init__(
        self,
        client: redis.asyncio.Redis[bytes],
        *,
        key_prefix: str = "streamflow:",
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._prefix = f"{key_prefix}nonce:"
        self._owns_client = owns_client

    def key(self, key_id: str, nonce: str) -> str:
        """The Redis key of a pair; the key id's length keeps `a:b` + `c` apart from `a` + `b:c`."""
        return f"{self._prefix}{len(key_id)}:{key_id}:{nonce}"

    async def claim(self, key_id: str, nonce: str, *, ttl_seconds: int) -> bool:
        _check(nonce, ttl_seconds)
        try:
            created = await self._client.set(self.key(key_id, nonce), b"1", nx=True, ex=ttl_seconds)
        except RedisError as exc:
            log.error(
                "nonce.redis_unavailable",
                key_id=key_id,
                error=str(exc),
                error_type=type(exc).__name__,
            )
            raise ReplayProtectionUnavailable("the nonce store cannot be reached") from exc
        return bool(created)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()  # type: ignore[attr-defined]  # types-redis lacks it


def _nonce_expiry(_pair: tuple[str, str], expires_at: float, _now: float) -> float:
    return expires_at


class MemoryNonceStore:
    """Nonces inside one process, each until its TTL ends; thread- and task-safe.

    Unbounded on purpose: forgetting a live nonce early would let its request be replayed.
    """

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._expiries: TLRUCache[tuple[str, str], float] = TLRUCache(
            maxsize=math.inf, ttu=_nonce_expiry, timer=clock
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiries)

    async def claim(self, key_id: str, nonce: str, *, ttl_seconds: int) -> bool:
        _check(nonce, ttl_seconds)
        with self._lock, self._expiries.timer as now:
            pair = (key_id, nonce)
            if pair in self._expiries:
                return False
            self._expiries[pair] = now + ttl_seconds
            return True

    async def aclose(self) -> None:
        return None


def make_nonce_store(
    settings: CacheSettings, *, client: redis.asyncio.Redis[bytes] | None = None
) -> NonceStore:
    """The configured store: Redis (on `client`, or a client of its own) or in-process."""
    if settings.redis_url is None:
        return MemoryNonceStore()
    return RedisNonceStore(
        client or make_async_client(settings),
        key_prefix=settings.key_prefix,
        owns_client=client is None,
    )
