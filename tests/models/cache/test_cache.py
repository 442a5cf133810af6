"""The result cache: in-process and on the real Redis server, including Redis being down."""

from __future__ import annotations

import threading

import anyio.to_thread
import pytest
import redis
import redis.asyncio
from structlog.testing import capture_logs

from models.cache.cache import (
    ENTRY_OVERHEAD_BYTES,
    Counters,
    MemoryResultCache,
    RedisResultCache,
    make_result_cache,
    warm,
)
from models.cache.settings import CacheSettings
from tests.models.cache.conftest import FakeClock


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
        await cache.set("run:1", b"payload", tags=["run:1"])
        assert await cache.get("run:1") == b"payload"
        assert await cache.get("run:2") is None
        assert counters.snapshot() == {"hits": 1, "misses": 1, "errors": 0}

    async def test_empty_value_is_a_hit(self, clock: FakeClock) -> None:
        """An empty byte string is a cached value, not a miss."""
        cache = MemoryResultCache(Counters(), clock=clock)
        await cache.set("empty", b"")
        assert await cache.get("empty") == b""

    async def test_values_expire_after_the_ttl(self, clock: FakeClock) -> None:
        """A value is served until the cache's TTL has passed, then it is a miss."""
        cache = MemoryResultCache(Counters(), ttl_seconds=10, clock=clock)
        await cache.set("k", b"v")
        clock.advance(9.9)
        assert await cache.get("k") == b"v"
        clock.advance(0.1)
        assert await cache.get("k") is None
        assert len(cache) == 0

    async def test_rejects_ttl_below_one_second(self, clock: FakeClock) -> None:
        """A TTL of zero is a caller error, as it is for Redis."""
        with pytest.raises(ValueError, match="TTL"):
            MemoryResultCache(Counters(), ttl_seconds=0, clock=clock)

    async def test_evicts_the_least_recently_used_entry(self, clock: FakeClock) -> None:
        """Past max_bytes the entry read longest ago goes first, each entry counting its value
        and the per-entry overhead."""
        cache = MemoryResultCache(Counters(), max_bytes=2 * (ENTRY_OVERHEAD_BYTES + 5), clock=clock)
        await cache.set("a", b"12345")
        await cache.set("b", b"12345")
        assert await cache.get("a") == b"12345"
        await cache.set("c", b"12345")
        assert await cache.get("b") is None
        assert await cache.get("a") == b"12345"
        assert await cache.get("c") == b"12345"

    async def test_an_oversized_value_is_not_kept(self, clock: FakeClock) -> None:
        """A value larger than the whole cache is skipped, replacing an older value."""
        cache = MemoryResultCache(Counters(), max_bytes=ENTRY_OVERHEAD_BYTES + 10, clock=clock)
        await cache.set("small", b"123")
        await cache.set("huge", b"x" * 11)
        assert await cache.get("huge") is None
        assert await cache.get("small") == b"123"
        await cache.set("small", b"y" * 11)
        assert await cache.get("small") is None


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

    async def test_keys_carry_the_ttl(self, aredis: redis.asyncio.Redis, key_prefix: str) -> None:
        """Values expire after the cache's TTL; once Redis expires one, reads miss."""
        cache = RedisResultCache(aredis, Counters(), ttl_seconds=300, key_prefix=key_prefix)
        await cache.set("k", b"v")
        assert 290_000 < await aredis.pttl(f"{key_prefix}cache:k:k") <= 300_000
        # Expire it the way Redis would at the end of its TTL, without waiting.
        await aredis.pexpireat(f"{key_prefix}cache:k:k", 1)
        assert await cache.get("k") is None

    async def test_tag_sets_outlive_their_keys(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """A tag's set takes the longest TTL of its values and is never shortened."""
        tag_key = f"{key_prefix}cache:t:run:1"

        def cache(ttl: int) -> RedisResultCache:
            return RedisResultCache(aredis, Counters(), ttl_seconds=ttl, key_prefix=key_prefix)

        await cache(100).set("a", b"1", tags=["run:1"])
        assert 90_000 < await aredis.pttl(tag_key) <= 100_000
        await cache(1_000).set("b", b"2", tags=["run:1"])
        assert 990_000 < await aredis.pttl(tag_key) <= 1_000_000
        await cache(10).set("c", b"3", tags=["run:1"])
        assert 990_000 < await aredis.pttl(tag_key) <= 1_000_000
        assert await aredis.smembers(tag_key) == {
            f"{key_prefix}cache:k:{key}".encode() for key in "abc"
        }


@pytest.mark.anyio
class TestRedisResultCacheFailsOpen:
    async def test_misses_and_skips_writes_when_redis_is_down(
        self, aredis_down: redis.asyncio.Redis
    ) -> None:
        """Reads miss and writes do nothing; each failure is logged and counted."""
        counters = Counters()
        cache = RedisResultCache(aredis_down, counters)
        with capture_logs() as logs:
            assert await cache.get("k") is None
            await cache.set("k", b"v", tags=["run:1"])
        assert counters.snapshot() == {"hits": 0, "misses": 1, "errors": 2}
        events = [(entry["event"], entry["operation"]) for entry in logs]
        assert events == [("cache.unavailable", "get"), ("cache.unavailable", "set")]
        assert all(entry["log_level"] == "warning" for entry in logs)

    async def test_any_redis_error_fails_open(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """An error other than a lost connection (here WRONGTYPE) is a counted miss, too."""
        counters = Counters()
        cache = RedisResultCache(aredis, counters, key_prefix=key_prefix)
        await aredis.sadd(f"{key_prefix}cache:k:k", b"not a string")
        with capture_logs() as logs:
            assert await cache.get("k") is None
        assert counters.snapshot() == {"hits": 0, "misses": 1, "errors": 1}
        assert [entry["error_type"] for entry in logs] == ["ResponseError"]


@pytest.mark.anyio
class TestWarm:
    async def test_replaces_what_was_cached_under_the_tags(
        self, aredis: redis.asyncio.Redis, settings: CacheSettings, key_prefix: str
    ) -> None:
        """Values stored with the tag go; the warmed value is then served by the API's cache,
        with the configured TTL and under the tag; other values stay."""
        cache = RedisResultCache(aredis, Counters(), key_prefix=key_prefix)
        await cache.set("r1:comparison", b"1", tags=["run:1", "run:2"])
        await cache.set("r1:detail", b"old", tags=["run:1"])
        await cache.set("r2:detail", b"2", tags=["run:2"])
        await cache.set("plain", b"3")
        await anyio.to_thread.run_sync(lambda: warm(settings, "r1:detail", b"new", tags=["run:1"]))
        assert await cache.get("r1:comparison") is None
        assert await cache.get("r1:detail") == b"new"
        assert await cache.get("r2:detail") == b"2"
        assert await cache.get("plain") == b"3"
        ttl = settings.cache_ttl_seconds * 1000
        assert ttl - 10_000 < await aredis.pttl(f"{key_prefix}cache:k:r1:detail") <= ttl
        assert await aredis.smembers(f"{key_prefix}cache:t:run:1") == {
            f"{key_prefix}cache:k:r1:detail".encode()
        }

    async def test_drops_large_tags(
        self, aredis: redis.asyncio.Redis, settings: CacheSettings, key_prefix: str
    ) -> None:
        """A tag listing more keys than Lua can unpack at once is dropped in full."""
        async with aredis.pipeline(transaction=False) as pipe:
            for index in range(2_500):
                pipe.set(f"{key_prefix}cache:k:{index}", b"v", ex=60)
                pipe.sadd(f"{key_prefix}cache:t:big", f"{key_prefix}cache:k:{index}")
            await pipe.execute()
        await anyio.to_thread.run_sync(lambda: warm(settings, "k", b"v", tags=["big"]))
        assert await aredis.exists(*[f"{key_prefix}cache:k:{i}" for i in range(2_500)]) == 0

    def test_does_nothing_without_redis(self) -> None:
        """Without a Redis URL there is no shared cache, and nothing to connect to."""
        warm(CacheSettings(redis_url=None), "k", b"v", tags=["run:1"])

    def test_fails_open_when_redis_is_down(self, down_settings: CacheSettings) -> None:
        """An unreachable Redis makes warming a logged no-op."""
        with capture_logs() as logs:
            warm(down_settings, "k", b"v", tags=["run:1"])
        assert [(entry["event"], entry["operation"]) for entry in logs] == [
            ("cache.unavailable", "warm")
        ]


@pytest.mark.anyio
class TestFactories:
    async def test_in_process_without_a_redis_url(self) -> None:
        """No Redis URL gives the in-process cache with the configured TTL."""
        settings = CacheSettings(redis_url=None, cache_ttl_seconds=60)
        cache = make_result_cache(settings, Counters())
        assert isinstance(cache, MemoryResultCache)

    async def test_redis_with_a_redis_url(self, settings: CacheSettings) -> None:
        """A Redis URL gives the Redis cache, which warm() reaches."""
        cache = make_result_cache(settings, Counters())
        assert isinstance(cache, RedisResultCache)
        try:
            await anyio.to_thread.run_sync(lambda: warm(settings, "k", b"v", tags=["t"]))
            assert await cache.get("k") == b"v"
        finally:
            await cache.aclose()
