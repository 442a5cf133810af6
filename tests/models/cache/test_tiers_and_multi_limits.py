"""The in-process tier for immutable results, and several rate limits in one round trip."""

from __future__ import annotations

import pytest
import redis.asyncio

from models.cache.cache import (
    Counters,
    MemoryResultCache,
    RedisResultCache,
    TieredResultCache,
    make_immutable_result_cache,
    make_result_cache,
)
from models.cache.rate_limit import MemoryRateLimiter, RateLimit, RedisRateLimiter
from models.cache.settings import CacheSettings
from tests.models.cache.conftest import FakeClock


@pytest.mark.anyio
class TestTieredResultCache:
    async def test_second_read_is_a_local_hit_and_writes_reach_both_tiers(
        self, aredis: redis.asyncio.Redis, key_prefix: str, clock: FakeClock
    ) -> None:
        """A value read from Redis is kept locally; a write lands in both tiers, with its tags
        in Redis."""
        counters = Counters()
        shared = RedisResultCache(aredis, counters, key_prefix=key_prefix)
        local = MemoryResultCache(Counters(), ttl_seconds=60, clock=clock)
        tiered = TieredResultCache(local, shared, counters)
        await shared.set("doc", b"v1")
        assert await tiered.get("doc") == b"v1"
        await aredis.delete(f"{key_prefix}cache:k:doc")
        assert await tiered.get("doc") == b"v1"
        assert counters.snapshot()["hits"] == 2
        await tiered.set("other", b"v2", tags=["run:1"])
        assert await local.get("other") == b"v2"
        assert await shared.get("other") == b"v2"
        assert await aredis.smembers(f"{key_prefix}cache:t:run:1") == {
            f"{key_prefix}cache:k:other".encode()
        }

    async def test_local_copies_expire_with_their_own_ttl(
        self, aredis: redis.asyncio.Redis, key_prefix: str, clock: FakeClock
    ) -> None:
        """An entry dropped elsewhere is served locally at most until the local TTL ends."""
        counters = Counters()
        shared = RedisResultCache(aredis, counters, key_prefix=key_prefix)
        tiered = TieredResultCache(
            MemoryResultCache(Counters(), ttl_seconds=5, clock=clock), shared, counters
        )
        await tiered.set("doc", b"v1")
        await aredis.delete(f"{key_prefix}cache:k:doc")
        assert await tiered.get("doc") == b"v1"
        clock.advance(6)
        assert await tiered.get("doc") is None

    async def test_factories_add_the_tier_only_with_redis(self, settings: CacheSettings) -> None:
        """Without Redis the shared cache is already in-process; with it the tier is added."""
        memory = make_result_cache(CacheSettings(), Counters())
        assert make_immutable_result_cache(CacheSettings(), Counters(), memory) is memory
        shared = make_result_cache(settings, Counters())
        try:
            immutable = make_immutable_result_cache(settings, Counters(), shared)
            assert isinstance(immutable, TieredResultCache)
        finally:
            await shared.aclose()


@pytest.mark.anyio
class TestHitAll:
    async def test_redis_and_memory_agree_and_stop_at_the_first_refusal(
        self, aredis: redis.asyncio.Redis, key_prefix: str, clock: FakeClock
    ) -> None:
        """Both limiters admit until the tighter limit is spent, then refuse and charge no more."""
        tight, loose = (
            RateLimit(limit=3, period_seconds=60),
            RateLimit(limit=100, period_seconds=60),
        )
        checks = [("address", tight), ("key", loose)]
        redis_limiter = RedisRateLimiter(aredis, key_prefix=key_prefix, clock=clock)
        memory_limiter = MemoryRateLimiter(clock=clock)
        for limiter in (redis_limiter, memory_limiter):
            outcomes = [await limiter.hit_all(checks) for _ in range(5)]
            assert [len(o) for o in outcomes] == [2, 2, 2, 1, 1]
            assert [o[-1].allowed for o in outcomes] == [True, True, True, False, False]
            assert outcomes[2][-1].remaining == 97
            assert outcomes[3][0].retry_after_seconds > 0
            # The refused requests did not spend the key's allowance.
            assert (await limiter.hit("key", loose, cost=0)).remaining == 97
