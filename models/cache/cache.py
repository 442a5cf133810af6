"""Read-through cache of result reads: Redis when configured, else a bounded in-process LRU.

Callers build keys from immutable ids and versions (e.g. `run:<id>:results:v2:page:1`), so a
cached value is never wrong, only missing. Tags name the mutable things a value was read from
(`run:<id>`, `org:<id>:notices`); dropping a tag drops every value stored with it.

Tag invalidation in Redis: a `set` with tags also adds the value's key to one Redis SET per tag
(`<prefix>cache:t:<tag>`) in the same MULTI/EXEC, and raises that set's TTL to at least the
value's (`EXPIRE NX`, then `EXPIRE GT`, Redis 7+), so a tag set outlives every key it lists.
`invalidate_tag` is one Lua script that UNLINKs every listed key and the set itself, atomically:
a concurrent `set` lands either before (and is dropped) or after (and survives). A listed key
that expired on its own stays a dead member until the tag is invalidated or its set expires.
The script touches keys not passed in KEYS: fine on a standalone or replicated Redis, not on
Redis Cluster. A read-through that loaded before an invalidation and stores after it keeps the
old value until its TTL, which is why keys should name immutable versions.

When Redis is unavailable the cache fails open: the error is logged (`cache.unavailable`) and
counted, a lookup is a miss and a write or invalidation does nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
import redis.asyncio
import structlog
from redis.exceptions import RedisError

from models.cache.client import REDIS_UNAVAILABLE, make_async_client, make_sync_client
from models.cache.settings import CacheSettings

log = structlog.get_logger()

Clock = Callable[[], float]
"""Seconds on a monotonic scale; injectable so tests control time."""

# Deletes in chunks: Lua's unpack() is limited by the C stack (LUAI_MAXCSTACK = 8000).
_INVALIDATE_TAG_LUA = """
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
    """An async byte cache with TTLs, tag invalidation and read-through loading."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> None: ...

    async def invalidate_tag(self, tag: str) -> int:
        """Drop every value stored with `tag`; the number of values dropped."""
        ...

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[bytes]],
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> bytes:
        """The cached value, or `load()`'s result, stored before it is returned."""
        ...

    async def aclose(self) -> None:
        """Release the connections this cache opened itself."""
        ...


class CacheInvalidator(Protocol):
    """Tag invalidation for synchronous code, such as a flow that just finished a run."""

    def invalidate_tag(self, tag: str) -> int: ...


def _checked_ttl(ttl_seconds: int | None, default: int) -> int:
    ttl = default if ttl_seconds is None else ttl_seconds
    if ttl < 1:
        raise ValueError(f"cache TTL must be at least 1 second, got {ttl}")
    return ttl


async def _read_through(
    cache: ResultCache,
    key: str,
    load: Callable[[], Awaitable[bytes]],
    ttl_seconds: int | None,
    tags: Sequence[str],
) -> bytes:
    cached = await cache.get(key)
    if cached is not None:
        return cached
    value = await load()
    await cache.set(key, value, ttl_seconds=ttl_seconds, tags=tags)
    return value


def _log_unavailable(operation: str, exc: RedisError) -> None:
    log.warning(
        "cache.unavailable", operation=operation, error=str(exc), error_type=type(exc).__name__
    )


class _RedisKeys:
    """The Redis key of a cached value and of a tag's member set."""

    def __init__(self, key_prefix: str) -> None:
        self.value_prefix = f"{key_prefix}cache:k:"
        self.tag_prefix = f"{key_prefix}cache:t:"

    def value(self, key: str) -> str:
        return self.value_prefix + key

    def tag(self, tag: str) -> str:
        return self.tag_prefix + tag


def _queue_set(
    pipe: Any, keys: _RedisKeys, key: str, value: bytes, ttl: int, tags: Sequence[str]
) -> None:
    """Queue a value and its tag memberships on a (sync or async) transaction pipeline."""
    value_key = keys.value(key)
    pipe.set(value_key, value, ex=ttl)
    for tag in dict.fromkeys(tags):
        tag_key = keys.tag(tag)
        pipe.sadd(tag_key, value_key)
        # NX gives a new set a TTL; GT only ever lengthens an existing one.
        pipe.expire(tag_key, ttl, nx=True)
        pipe.expire(tag_key, ttl, gt=True)


class RedisResultCache:
    """The result cache in Redis, shared by all API processes; fails open."""

    def __init__(
        self,
        client: redis.asyncio.Redis[bytes],
        counters: Counters,
        *,
        default_ttl_seconds: int = 300,
        key_prefix: str = "streamflow:",
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._counters = counters
        self._default_ttl = _checked_ttl(None, default_ttl_seconds)
        self._keys = _RedisKeys(key_prefix)
        self._invalidate = client.register_script(_INVALIDATE_TAG_LUA)
        self._owns_client = owns_client

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._client.get(self._keys.value(key))
        except REDIS_UNAVAILABLE as exc:
            _log_unavailable("get", exc)
            self._counters.record_error()
            self._counters.record_miss()
            return None
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
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        ttl = _checked_ttl(ttl_seconds, self._default_ttl)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                _queue_set(pipe, self._keys, key, value, ttl, tags)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            _log_unavailable("set", exc)
            self._counters.record_error()

    async def invalidate_tag(self, tag: str) -> int:
        try:
            deleted = await self._invalidate(keys=[self._keys.tag(tag)])
        except REDIS_UNAVAILABLE as exc:
            _log_unavailable("invalidate_tag", exc)
            self._counters.record_error()
            return 0
        return int(deleted)

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[bytes]],
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> bytes:
        return await _read_through(self, key, load, ttl_seconds, tags)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()  # type: ignore[attr-defined]  # types-redis lacks it


@dataclass(frozen=True, slots=True)
class _Entry:
    value: bytes
    expires_at: float
    tags: tuple[str, ...]


class MemoryResultCache:
    """The result cache inside one process: LRU bounded by entries and bytes, with TTLs.

    Thread-safe, so a flow running in another thread of the process can invalidate tags
    (`invalidate_tag_sync`).
    """

    def __init__(
        self,
        counters: Counters,
        *,
        default_ttl_seconds: int = 300,
        max_entries: int = 10_000,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("max_entries and max_bytes must be positive")
        self._counters = counters
        self._default_ttl = _checked_ttl(None, default_ttl_seconds)
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at <= self._clock():
                self._remove(key)
                entry = None
            if entry is None:
                self._counters.record_miss()
                return None
            self._entries.move_to_end(key)
            self._counters.record_hit()
            return entry.value

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        ttl = _checked_ttl(ttl_seconds, self._default_ttl)
        with self._lock:
            self._remove(key)
            if len(value) > self._max_bytes:
                return
            entry = _Entry(value, self._clock() + ttl, tuple(dict.fromkeys(tags)))
            self._entries[key] = entry
            self._bytes += len(value)
            for tag in entry.tags:
                self._tags.setdefault(tag, set()).add(key)
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                self._remove(next(iter(self._entries)))

    async def invalidate_tag(self, tag: str) -> int:
        return self.invalidate_tag_sync(tag)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._tags.clear()
            self._bytes = 0

    def invalidate_tag_sync(self, tag: str) -> int:
        """`invalidate_tag` for synchronous callers; the number of live values dropped."""
        with self._lock:
            now = self._clock()
            dropped = 0
            for key in self._tags.pop(tag, set()):
                entry = self._remove(key)
                if entry is not None and entry.expires_at > now:
                    dropped += 1
            return dropped

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[bytes]],
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> bytes:
        return await _read_through(self, key, load, ttl_seconds, tags)

    async def aclose(self) -> None:
        return None

    def _remove(self, key: str) -> _Entry | None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        self._bytes -= len(entry.value)
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]
        return entry


class SyncCacheInvalidator:
    """Tag invalidation of the Redis cache from synchronous code; fails open like the cache."""

    def __init__(
        self,
        client: redis.Redis[bytes],
        counters: Counters,
        *,
        key_prefix: str = "streamflow:",
        owns_client: bool = False,
    ) -> None:
        self._client = client
        self._counters = counters
        self._keys = _RedisKeys(key_prefix)
        self._invalidate = client.register_script(_INVALIDATE_TAG_LUA)
        self._owns_client = owns_client

    def warm(self, key: str, value: bytes, *, ttl_seconds: int, tags: Sequence[str] = ()) -> None:
        """Store a value the API will be asked for, as `RedisResultCache.set` stores it."""
        try:
            with self._client.pipeline(transaction=True) as pipe:
                _queue_set(pipe, self._keys, key, value, ttl_seconds, tags)
                pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            _log_unavailable("warm", exc)
            self._counters.record_error()

    def invalidate_tag(self, tag: str) -> int:
        try:
            deleted = self._invalidate(keys=[self._keys.tag(tag)])
        except REDIS_UNAVAILABLE as exc:
            _log_unavailable("invalidate_tag", exc)
            self._counters.record_error()
            return 0
        return int(deleted)

    def close(self) -> None:
        """Release the connections, if this invalidator opened them itself."""
        if self._owns_client:
            self._client.close()


class MemoryCacheInvalidator:
    """Tag invalidation of an in-process cache; with no cache (another process) a no-op."""

    def __init__(self, cache: MemoryResultCache | None) -> None:
        self._cache = cache

    def invalidate_tag(self, tag: str) -> int:
        return 0 if self._cache is None else self._cache.invalidate_tag_sync(tag)


class TieredResultCache:
    """A small in-process cache in front of Redis, for documents that never change.

    StreamFlow caches only immutable results (a completed run's detail, comparisons of completed
    runs), so a copy held in the process stays right; the local TTL bounds how long an entry
    invalidated by another process can still be served here. A local hit costs no round trip.
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

    async def set(
        self,
        key: str,
        value: bytes,
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> None:
        await self._local.set(key, value, ttl_seconds=ttl_seconds, tags=tags)
        await self._remote.set(key, value, ttl_seconds=ttl_seconds, tags=tags)

    async def invalidate_tag(self, tag: str) -> int:
        # Local copies filled from a remote hit carry no tags, so an invalidation (rare: it
        # means an "immutable" result changed after all) clears the whole local tier.
        self._local.clear()
        return await self._remote.invalidate_tag(tag)

    async def get_or_load(
        self,
        key: str,
        load: Callable[[], Awaitable[bytes]],
        *,
        ttl_seconds: int | None = None,
        tags: Sequence[str] = (),
    ) -> bytes:
        return await _read_through(self, key, load, ttl_seconds, tags)

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
        return MemoryResultCache(counters, default_ttl_seconds=settings.cache_ttl_seconds)
    return RedisResultCache(
        client or make_async_client(settings),
        counters,
        default_ttl_seconds=settings.cache_ttl_seconds,
        key_prefix=settings.key_prefix,
        owns_client=client is None,
    )


def make_immutable_result_cache(
    settings: CacheSettings, counters: Counters, shared: ResultCache
) -> ResultCache:
    """The cache for documents that never change: an in-process tier in front of `shared`.

    Only for immutable results: an invalidation from another process reaches the in-process
    tier only when its TTL (`local_cache_ttl_seconds`) runs out.
    """
    if settings.redis_url is None or settings.local_cache_ttl_seconds <= 0:
        return shared
    local = MemoryResultCache(
        Counters(),
        default_ttl_seconds=settings.local_cache_ttl_seconds,
        max_entries=2_000,
        max_bytes=32 * 1024 * 1024,
    )
    return TieredResultCache(local, shared, counters)


def make_cache_invalidator(
    settings: CacheSettings,
    counters: Counters,
    *,
    memory_cache: MemoryResultCache | None = None,
) -> CacheInvalidator:
    """The invalidator matching the configured cache.

    Without Redis, only a cache in this same process can be reached: pass it as `memory_cache`.
    """
    if settings.redis_url is None:
        return MemoryCacheInvalidator(memory_cache)
    return SyncCacheInvalidator(
        make_sync_client(settings), counters, key_prefix=settings.key_prefix, owns_client=True
    )


def warm(settings: CacheSettings, key: str, value: bytes, *, tags: Sequence[str]) -> None:
    """Store `value` in the shared cache from synchronous code in another process (a flow),
    after dropping every value stored with `tags`.

    Without Redis there is no shared cache to reach: nothing happens. Fails open (logged).
    """
    if settings.redis_url is None:
        return
    writer = SyncCacheInvalidator(
        make_sync_client(settings), Counters(), key_prefix=settings.key_prefix, owns_client=True
    )
    try:
        for tag in tags:
            writer.invalidate_tag(tag)
        writer.warm(key, value, ttl_seconds=settings.cache_ttl_seconds, tags=tags)
    finally:
        writer.close()
