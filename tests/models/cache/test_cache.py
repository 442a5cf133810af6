"""The result cache: in-process and on the real Redis server, including Redis being down."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio
from structlog.testing import capture_logs

from models.cache.cache import (
    Counters,
    MemoryCacheInvalidator,
    MemoryResultCache,
    RedisResultCache,
    SyncCacheInvalidator,
    make_cache_invalidator,
    make_result_cache,
)
from models.cache.client import make_sync_client
from models.cache.settings import CacheSettings
from tests.models.cache.conftest import FakeClock


def counting_loader(value: bytes) -> tuple[Callable[[], Awaitable[bytes]], list[int]]:
    """A loader returning `value` and the list its calls are counted in."""
    calls: list[int] = []

    async def load() -> bytes:
        calls.append(1)
        return value

    return load, calls


class TestCounters:
    def test_records_each_kind(self) -> None:
        """Each record method increments its own count."""
        counters = Counters()
        counters.record_hit()
        counters.record_hit()
        counters.record_miss()
        counters.record_error()
        assert counters.snapshot() == {"hits": 2, "misses": 1, "errors": 1}

    def test_is_thread_safe(self) -> None:
        """Increments from many threads are never lost."""
        counters = Counters()

        def work() -> None:
            for _ in range(2_000):
                counters.record_hit()

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counters.hits == 16_000


@pytest.mark.anyio
class TestMemoryResultCache:
    async def test_get_returns_what_was_set(self, clock: FakeClock) -> None:
        """A stored value is returned, an unknown key is a miss, and both are counted."""
        counters = Counters()
        cache = MemoryResultCache(counters, clock=clock)
        await cache.set("run:1", b"payload")
        assert await cache.get("run:1") == b"payload"
        assert await cache.get("run:2") is None
        assert counters.snapshot() == {"hits": 1, "misses": 1, "errors": 0}

    async def test_empty_value_is_a_hit(self, clock: FakeClock) -> None:
        """An empty byte string is a cached value, not a miss."""
        cache = MemoryResultCache(Counters(), clock=clock)
        await cache.set("empty", b"")
        assert await cache.get("empty") == b""

    async def test_values_expire_after_their_ttl(self, clock: FakeClock) -> None:
        """A value is served until its TTL has passed, then it is a miss."""
        cache = MemoryResultCache(Counters(), default_ttl_seconds=300, clock=clock)
        await cache.set("short", b"s", ttl_seconds=10)
        await cache.set("default", b"d")
        clock.advance(9.9)
        assert await cache.get("short") == b"s"
        clock.advance(0.1)
        assert await cache.get("short") is None
        assert await cache.get("default") == b"d"
        clock.advance(290)
        assert await cache.get("default") is None
        assert len(cache) == 0

    async def test_rejects_ttl_below_one_second(self, clock: FakeClock) -> None:
        """A TTL of zero is a caller error, as it is for Redis."""
        cache = MemoryResultCache(Counters(), clock=clock)
        with pytest.raises(ValueError, match="TTL"):
            await cache.set("k", b"v", ttl_seconds=0)

    async def test_evicts_the_least_recently_used_entry(self, clock: FakeClock) -> None:
        """Past max_entries the entry read longest ago goes first."""
        cache = MemoryResultCache(Counters(), max_entries=2, clock=clock)
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        assert await cache.get("a") == b"1"
        await cache.set("c", b"3")
        assert await cache.get("b") is None
        assert await cache.get("a") == b"1"
        assert await cache.get("c") == b"3"

    async def test_stays_within_max_bytes(self, clock: FakeClock) -> None:
        """Old entries are evicted to respect max_bytes, and an oversized value is not kept."""
        cache = MemoryResultCache(Counters(), max_bytes=10, clock=clock)
        await cache.set("a", b"12345")
        await cache.set("b", b"12345")
        await cache.set("c", b"123")
        assert await cache.get("a") is None
        assert await cache.get("b") == b"12345"
        await cache.set("huge", b"x" * 11)
        assert await cache.get("huge") is None
        assert await cache.get("c") == b"123"

    async def test_invalidate_tag_drops_exactly_the_tagged_values(self, clock: FakeClock) -> None:
        """Values stored with the tag go; values with other tags or none stay."""
        cache = MemoryResultCache(Counters(), clock=clock)
        await cache.set("r1:p1", b"1", tags=["run:1"])
        await cache.set("r1:p2", b"2", tags=["run:1", "org:7:notices"])
        await cache.set("r2:p1", b"3", tags=["run:2"])
        await cache.set("plain", b"4")
        assert await cache.invalidate_tag("run:1") == 2
        assert await cache.get("r1:p1") is None
        assert await cache.get("r1:p2") is None
        assert await cache.get("r2:p1") == b"3"
        assert await cache.get("plain") == b"4"
        assert await cache.invalidate_tag("org:7:notices") == 0
        assert await cache.invalidate_tag("run:1") == 0

    async def test_overwriting_a_key_replaces_its_tags(self, clock: FakeClock) -> None:
        """A key written again without a tag no longer belongs to it."""
        cache = MemoryResultCache(Counters(), clock=clock)
        await cache.set("k", b"old", tags=["t"])
        await cache.set("k", b"new")
        assert await cache.invalidate_tag("t") == 0
        assert await cache.get("k") == b"new"

    async def test_invalidation_counts_only_live_values(self, clock: FakeClock) -> None:
        """Expired values under the tag are removed but not counted as dropped."""
        cache = MemoryResultCache(Counters(), clock=clock)
        await cache.set("old", b"1", ttl_seconds=5, tags=["t"])
        await cache.set("live", b"2", ttl_seconds=50, tags=["t"])
        clock.advance(10)
        assert cache.invalidate_tag_sync("t") == 1
        assert len(cache) == 0

    async def test_get_or_load_loads_once_then_hits(self, clock: FakeClock) -> None:
        """The loader runs on the first read only; later reads are hits."""
        counters = Counters()
        cache = MemoryResultCache(counters, clock=clock)
        load, calls = counting_loader(b"result")
        assert await cache.get_or_load("k", load, tags=["run:1"]) == b"result"
        assert await cache.get_or_load("k", load) == b"result"
        assert len(calls) == 1
        assert counters.snapshot() == {"hits": 1, "misses": 1, "errors": 0}
        await cache.invalidate_tag("run:1")
        assert await cache.get_or_load("k", load) == b"result"
        assert len(calls) == 2

    async def test_loader_errors_are_not_cached(self, clock: FakeClock) -> None:
        """A failing loader propagates its error and leaves nothing behind."""
        cache = MemoryResultCache(Counters(), clock=clock)

        async def fail() -> bytes:
            raise LookupError("no such run")

        with pytest.raises(LookupError):
            await cache.get_or_load("k", fail)
        assert len(cache) == 0


@pytest.mark.anyio
class TestRedisResultCache:
    async def test_get_returns_what_was_set(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """A stored value is returned, an unknown key is a miss, and both are counted."""
        counters = Counters()
        cache = RedisResultCache(aredis, counters, key_prefix=key_prefix)
        await cache.set("run:1", b"payload")
        await cache.set("empty", b"")
        assert await cache.get("run:1") == b"payload"
        assert await cache.get("empty") == b""
        assert await cache.get("run:2") is None
        assert counters.snapshot() == {"hits": 2, "misses": 1, "errors": 0}

    async def test_keys_carry_their_ttl(self, aredis: redis.asyncio.Redis, key_prefix: str) -> None:
        """Values expire after the given TTL, or the default one."""
        cache = RedisResultCache(aredis, Counters(), default_ttl_seconds=300, key_prefix=key_prefix)
        await cache.set("short", b"s", ttl_seconds=2)
        await cache.set("default", b"d")
        assert 0 < await aredis.pttl(f"{key_prefix}cache:k:short") <= 2_000
        assert 2_000 < await aredis.pttl(f"{key_prefix}cache:k:default") <= 300_000

    async def test_expired_value_is_a_miss(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """Once Redis expires a value, reads miss and a read-through loads again."""
        cache = RedisResultCache(aredis, Counters(), key_prefix=key_prefix)
        load, calls = counting_loader(b"v")
        await cache.get_or_load("k", load)
        # Expire it the way Redis would at the end of its TTL, without waiting.
        await aredis.pexpireat(f"{key_prefix}cache:k:k", 1)
        assert await cache.get("k") is None
        assert await cache.get_or_load("k", load) == b"v"
        assert len(calls) == 2

    async def test_tag_sets_outlive_their_keys(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """A tag's set takes the longest TTL of its values and is never shortened."""
        cache = RedisResultCache(aredis, Counters(), key_prefix=key_prefix)
        tag_key = f"{key_prefix}cache:t:run:1"
        await cache.set("a", b"1", ttl_seconds=100, tags=["run:1"])
        assert 90_000 < await aredis.pttl(tag_key) <= 100_000
        await cache.set("b", b"2", ttl_seconds=1_000, tags=["run:1"])
        assert 990_000 < await aredis.pttl(tag_key) <= 1_000_000
        await cache.set("c", b"3", ttl_seconds=10, tags=["run:1"])
        assert 990_000 < await aredis.pttl(tag_key) <= 1_000_000
        assert await aredis.smembers(tag_key) == {
            f"{key_prefix}cache:k:{key}".encode() for key in "abc"
        }

    async def test_invalidate_tag_drops_exactly_the_tagged_values(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """Values stored with the tag go, with the tag's set; everything else stays."""
        cache = RedisResultCache(aredis, Counters(), key_prefix=key_prefix)
        await cache.set("r1:p1", b"1", tags=["run:1"])
        await cache.set("r1:p2", b"2", tags=["run:1", "org:7:notices"])
        await cache.set("r2:p1", b"3", tags=["run:2"])
        await cache.set("plain", b"4")
        assert await cache.invalidate_tag("run:1") == 2
        assert await cache.get("r1:p1") is None
        assert await cache.get("r1:p2") is None
        assert await cache.get("r2:p1") == b"3"
        assert await cache.get("plain") == b"4"
        assert await aredis.exists(f"{key_prefix}cache:t:run:1") == 0
        assert await cache.invalidate_tag("org:7:notices") == 0
        assert await cache.invalidate_tag("never-used") == 0

    async def test_invalidates_large_tags(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """A tag listing more keys than Lua can unpack at once is dropped in full."""
        cache = RedisResultCache(aredis, Counters(), key_prefix=key_prefix)
        async with aredis.pipeline(transaction=False) as pipe:
            for index in range(2_500):
                pipe.set(f"{key_prefix}cache:k:{index}", b"v", ex=60)
                pipe.sadd(f"{key_prefix}cache:t:big", f"{key_prefix}cache:k:{index}")
            await pipe.execute()
        assert await cache.invalidate_tag("big") == 2_500
        assert await aredis.exists(*[f"{key_prefix}cache:k:{i}" for i in range(2_500)]) == 0

    async def test_get_or_load_loads_once_then_hits(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """The loader runs on the first read only, until the tag is invalidated."""
        counters = Counters()
        cache = RedisResultCache(aredis, counters, key_prefix=key_prefix)
        load, calls = counting_loader(b"result")
        assert await cache.get_or_load("k", load, tags=["run:1"]) == b"result"
        assert await cache.get_or_load("k", load, tags=["run:1"]) == b"result"
        assert len(calls) == 1
        assert counters.snapshot() == {"hits": 1, "misses": 1, "errors": 0}
        assert await cache.invalidate_tag("run:1") == 1
        assert await cache.get_or_load("k", load) == b"result"
        assert len(calls) == 2


@pytest.mark.anyio
class TestRedisResultCacheFailsOpen:
    async def test_answers_through_the_loader_when_redis_is_down(
        self, aredis_down: redis.asyncio.Redis
    ) -> None:
        """Reads load, writes and invalidations do nothing; each failure is logged and counted."""
        counters = Counters()
        cache = RedisResultCache(aredis_down, counters)
        load, calls = counting_loader(b"fresh")
        with capture_logs() as logs:
            assert await cache.get_or_load("k", load, tags=["run:1"]) == b"fresh"
            assert await cache.get_or_load("k", load) == b"fresh"
            assert await cache.invalidate_tag("run:1") == 0
        assert len(calls) == 2
        # Two failed reads, two failed writes, one failed invalidation.
        assert counters.snapshot() == {"hits": 0, "misses": 2, "errors": 5}
        events = [(entry["event"], entry["operation"]) for entry in logs]
        assert events == [
            ("cache.unavailable", "get"),
            ("cache.unavailable", "set"),
            ("cache.unavailable", "get"),
            ("cache.unavailable", "set"),
            ("cache.unavailable", "invalidate_tag"),
        ]
        assert all(entry["log_level"] == "warning" for entry in logs)


@pytest.mark.anyio
class TestSyncCacheInvalidator:
    async def test_drops_what_the_async_cache_stored(
        self, aredis: redis.asyncio.Redis, sredis: redis.Redis, key_prefix: str
    ) -> None:
        """Sync code invalidates the same tags the API's cache wrote."""
        cache = RedisResultCache(aredis, Counters(), key_prefix=key_prefix)
        await cache.set("r1", b"1", tags=["run:1"])
        await cache.set("r2", b"2", tags=["run:2"])
        invalidator = SyncCacheInvalidator(sredis, Counters(), key_prefix=key_prefix)
        assert invalidator.invalidate_tag("run:1") == 1
        assert await cache.get("r1") is None
        assert await cache.get("r2") == b"2"

    def test_fails_open_when_redis_is_down(self, down_settings: CacheSettings) -> None:
        """An unreachable Redis makes invalidation a logged, counted no-op."""
        counters = Counters()
        invalidator = SyncCacheInvalidator(
            make_sync_client(down_settings), counters, owns_client=True
        )
        with capture_logs() as logs:
            assert invalidator.invalidate_tag("run:1") == 0
        invalidator.close()
        assert counters.errors == 1
        assert [entry["event"] for entry in logs] == ["cache.unavailable"]

    async def test_memory_invalidator_reaches_an_in_process_cache(self, clock: FakeClock) -> None:
        """Without Redis, the invalidator drops tags of the cache it was given."""
        cache = MemoryResultCache(Counters(), clock=clock)
        await cache.set("r1", b"1", tags=["run:1"])
        assert MemoryCacheInvalidator(cache).invalidate_tag("run:1") == 1
        assert await cache.get("r1") is None
        assert MemoryCacheInvalidator(None).invalidate_tag("run:1") == 0


@pytest.mark.anyio
class TestFactories:
    async def test_in_process_without_a_redis_url(self) -> None:
        """No Redis URL gives the in-process cache with the configured default TTL."""
        settings = CacheSettings(redis_url=None, cache_ttl_seconds=60)
        cache = make_result_cache(settings, Counters())
        assert isinstance(cache, MemoryResultCache)
        memory = MemoryResultCache(Counters())
        invalidator = make_cache_invalidator(settings, Counters(), memory_cache=memory)
        assert isinstance(invalidator, MemoryCacheInvalidator)

    async def test_redis_with_a_redis_url(self, settings: CacheSettings) -> None:
        """A Redis URL gives the Redis cache and invalidator, which share keys."""
        cache = make_result_cache(settings, Counters())
        invalidator = make_cache_invalidator(settings, Counters())
        assert isinstance(cache, RedisResultCache)
        assert isinstance(invalidator, SyncCacheInvalidator)
        try:
            await cache.set("k", b"v", tags=["t"])
            assert invalidator.invalidate_tag("t") == 1
            assert await cache.get("k") is None
        finally:
            await cache.aclose()
            invalidator.close()
