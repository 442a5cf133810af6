"""Cache of results that never change: Redis when configured, else a bounded in-process LRU.

Callers build keys from immutable ids and versions (`models.cache.keys`), so a cached value is
never wrong, only missing. A value may carry tags naming what it was derived from (`run:<id>`):
`warm`, called by the evaluation flow when a run finishes, drops every value stored with the
run's tag before it stores the run's detail.

Tags in Redis: a `set` with tags also adds the value's key to one Redis SET per tag
(`<prefix>cache:t:<tag>`) in the same MULTI/EXEC, and raises that set's TTL to at least the
value's (`EXPIRE NX`, then `EXPIRE GT`, Redis 7+), so a tag set outlives every key it lists.
Dropping a tag is one Lua script that UNLINKs every listed key and the set itself, atomically:
a concurrent `set` lands either before (and is dropped) or after (and survives). The script
touches keys not passed in KEYS: fine on a standalone or replicated Redis, not on Redis Cluster.

An in-process cache is reached by no other process and holds only immutable results, so it
keeps no tags. When Redis fails in any way (down, slow, read-only, out of memory) the cache
fails open: the error is logged (`cache.unavailable`) and counted, a lookup is a miss and a
write does nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
import redis.asyncio
import structlog
from cachetools import TTLCache
from redis.exceptions import RedisError

from models.cache.client import make_async_client, make_sync_client
from models.cache.settings import CacheSettings

log = structlog.get_logger()

Clock = Callable[[], float]
"""Seconds on a monotonic scale; injectable so tests control time."""

ENTRY_OVERHEAD_BYTES = 1024
"""What an in-process entry costs besides its value (key, bookkeeping), for the byte bound."""

# Deletes in chunks: Lua's unpack() is limited by the C stack (LUAI_MAXCSTACK = 8000).
_DROP_TAG_LUA = """
local members = redis.call('SMEMBERS', KEYS[1])
local deleted = 0
for first = 1, #members, 1000 do
    local last = math.min(first + 999, #members)
    deleted = deleted + redis.call('UNLINK', unpack(members, first, last))
end
redis.call('UNLINK', KEYS[1])
return deleted
"""


@dataclass
class Counters:
    """Thread-safe event counts of one component, for export as Prometheus counters.

    For the cache, `hits + misses` is the number of lookups (a lookup that Redis could not
    answer is a miss) and `errors` the number of failed Redis operations of any kind. The rate
    limiter counts only `errors`: hits that fell back to the in-process limiter.
    """

    hits: int = 0
    misses: int = 0
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def record_hit(self) -> None:
        with self._lock:
            self.hits += 1

    def record_miss(self) -> None:
        with self._lock:
            self.misses += 1

    def record_error(self) -> None:
        with self._lock:
            self.errors += 1

    def snapshot(self) -> dict[str, int]:
        """The three counts, read together."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "errors": self.errors}


class ResultCache(Protocol):
    """An async byte cache; every value lives for the cache's TTL."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, tags: Sequence[str] = ()) -> None:
        """Store `value` under `key`; `tags` let `warm` drop it later (Redis only)."""
        ...

    async def aclose(self) -> None:
        """Release the connections this cache opened itself."""
        ...


def _log_unavailable(operation: str, exc: RedisError) -> None:
    log.warning(
        "cache.unavailable", operation=operation, error=str(exc), error_type=type(exc).__name__
    )


def _value_key(key_prefix: str, key: str) -> str:
    return f"{key_prefix}cache:k:{key}"


def _tag_key(key_prefix: str, tag: str) -> str:
    return f"{key_prefix}cache:t:{tag}"


def _queue_set(
    pipe: Any, key_prefix: str, key: str, value: bytes, ttl: int, tags: Sequence[str]
) -> None:
    """Queue a value and its tag memberships on a (sync or async) transaction pipeline."""
    value_key = _value_key(key_prefix, key)
    pipe.set(value_key, value, ex=ttl)
    for tag in dict.fromkeys(tags):
        tag_key = _tag_key(key_prefix, tag)
        pipe.sadd(tag_key, value_key)
        # NX gives a new set a TTL; GT only ever lengthens an existing one.
        pipe.expire(tag_key, ttl, nx=True)
        pipe.expire(tag_key, ttl, gt=True)


def _checked_ttl(ttl_seconds: int) -> int:
    if ttl_seconds < 1:
        raise ValueError(f"cache TTL must be at least 1 second, got {ttl_seconds}")
    return ttl_seconds


class RedisResultCache:
    """The result cache in Redis, shared by all API processes; fails open."""

    def __init__(
        self,
        client: redis.asyncio.Redis[bytes],
        counters: Counters,
        *,
        ttl_seconds: int = 300,
        key_prefix: str = "streamflow:",
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._counters = counters
        self._ttl = _checked_ttl(ttl_seconds)
        self._prefix = key_prefix
        self._owns_client = owns_client

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(_value_key(self._prefix, key))
        except RedisError as exc:
            _log_unavailable("get", exc)
            self._counters.record_error()
            value = None
        if value is None:
            self._counters.record_miss()
        else:
            self._counters.record_hit()
        return value

    async def set(self, key: str, value: bytes, *, tags: Sequence[str] = ()) -> None:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                _queue_set(pipe, self._prefix, key, value, self._ttl, tags)
                await pipe.execute()
        except RedisError as exc:
            _log_unavailable("set", exc)
            self._counters.record_error()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()  # type: ignore[attr-defined]  # types-redis lacks it


def _entry_size(value: bytes) -> int:
    return len(value) + ENTRY_OVERHEAD_BYTES


class MemoryResultCache:
    """The result cache inside one process: least recently used out first, bounded by bytes
    (each entry counts `ENTRY_OVERHEAD_BYTES` besides its value), every entry with the TTL.

    Thread-safe. Tags are accepted and ignored: no other process can reach this cache.
    """

    def __init__(
        self,
        counters: Counters,
        *,
        ttl_seconds: int = 300,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_bytes < ENTRY_OVERHEAD_BYTES:
            raise ValueError(f"max_bytes must be at least {ENTRY_OVERHEAD_BYTES}, got {max_bytes}")
        self._counters = counters
        self._entries: TTLCache[str, bytes] = TTLCache(
            maxsize=max_bytes, ttl=_checked_ttl(ttl_seconds), timer=clock, getsizeof=_entry_size
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
        if value is None:
            self._counters.record_miss()
        else:
            self._counters.record_hit()
        return value

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        tags: Sequence[str] = (),  # noqa: ARG002 - no other process can drop them
    ) -> None:
        with self._lock:
            self._entries.pop(key, None)
            if _entry_size(value) <= self._entries.maxsize:
                self._entries[key] = value

    async def aclose(self) -> None:
        return None


class TieredResultCache:
    """A small in-process cache in front of Redis, for documents that never change.

    StreamFlow caches only immutable results (a completed run's detail, comparisons of completed
    runs), so a copy held in the process stays right; the local TTL bounds how long an entry
    dropped by another process can still be served here. A local hit costs no round trip.
    """

    def __init__(self, local: MemoryResultCache, remote: ResultCache, counters: Counters) -> None:
        self._local = local
        self._remote = remote
        self._counters = counters
        """The exported counters: the remote cache counts its own lookups, local hits here."""

    async def get(self, key: str) -> bytes | None:
        value = await self._local.get(key)
        if value is not None:
            self._counters.record_hit()
            return value
        value = await self._remote.get(key)
        if value is not None:
            await self._local.set(key, value)
        return value

    async def set(self, key: str, value: bytes, *, tags: Sequence[str] = ()) -> None:
        await self._local.set(key, value)
        await self._remote.set(key, value, tags=tags)

    async def aclose(self) -> None:
        await self._remote.aclose()


def make_result_cache(
    settings: CacheSettings,
    counters: Counters,
    *,
    client: redis.asyncio.Redis[bytes] | None = None,
) -> ResultCache:
    """The configured cache: Redis (on `client`, or a client of its own) or in-process."""
    if settings.redis_url is None:
        return MemoryResultCache(counters, ttl_seconds=settings.cache_ttl_seconds)
    return RedisResultCache(
        client or make_async_client(settings),
        counters,
        ttl_seconds=settings.cache_ttl_seconds,
        key_prefix=settings.key_prefix,
        owns_client=client is None,
    )


def make_immutable_result_cache(
    settings: CacheSettings, counters: Counters, shared: ResultCache
) -> ResultCache:
    """The cache for documents that never change: an in-process tier in front of `shared`.

    An entry dropped by another process leaves this tier only when its TTL
    (`local_cache_ttl_seconds`) runs out.
    """
    if settings.redis_url is None or settings.local_cache_ttl_seconds <= 0:
        return shared
    local = MemoryResultCache(
        Counters(), ttl_seconds=settings.local_cache_ttl_seconds, max_bytes=32 * 1024 * 1024
    )
    return TieredResultCache(local, shared, counters)


def warm(settings: CacheSettings, key: str, value: bytes, *, tags: Sequence[str]) -> None:
    """Store `value` in the shared cache from synchronous code (a flow, in another process),
    after dropping every value stored with `tags`.

    Without Redis there is no shared cache to reach, and nothing happens. Fails open: a Redis
    error is logged (`cache.unavailable`) and the value is simply not stored.
    """
    if settings.redis_url is None:
        return
    client = make_sync_client(settings)
    try:
        drop_tag = client.register_script(_DROP_TAG_LUA)
        for tag in dict.fromkeys(tags):
            drop_tag(keys=[_tag_key(settings.key_prefix, tag)])
        with client.pipeline(transaction=True) as pipe:
            _queue_set(pipe, settings.key_prefix, key, value, settings.cache_ttl_seconds, tags)
            pipe.execute()
    except RedisError as exc:
        _log_unavailable("warm", exc)
    finally:
        client.close()
