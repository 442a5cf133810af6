"""Nonce stores: in-process with a fake clock, on the real Redis server, and failing closed."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from structlog.testing import capture_logs

from models.cache.nonces import (
    MemoryNonceStore,
    RedisNonceStore,
    ReplayProtectionUnavailable,
    make_nonce_store,
)
from models.cache.settings import CacheSettings
from tests.models.cache.conftest import FakeClock

NONCE = "b5c1f0e2a9d84c7e"


@pytest.mark.anyio
class TestMemoryNonceStore:
    async def test_second_claim_is_a_replay(self, clock: FakeClock) -> None:
        """A pair is new once; claiming it again within its TTL reports a replay."""
        store = MemoryNonceStore(clock=clock)
        assert await store.claim("key-1", NONCE, ttl_seconds=600) is True
        assert await store.claim("key-1", NONCE, ttl_seconds=600) is False

    async def test_pairs_are_per_key(self, clock: FakeClock) -> None:
        """The same nonce under another key id is a different pair."""
        store = MemoryNonceStore(clock=clock)
        assert await store.claim("key-1", NONCE, ttl_seconds=600)
        assert await store.claim("key-2", NONCE, ttl_seconds=600)

    async def test_forgets_a_pair_after_its_ttl(self, clock: FakeClock) -> None:
        """After the TTL the pair can be claimed again, and old pairs are swept away."""
        store = MemoryNonceStore(clock=clock)
        assert await store.claim("key-1", NONCE, ttl_seconds=600)
        clock.advance(599)
        assert not await store.claim("key-1", NONCE, ttl_seconds=600)
        clock.advance(1)
        assert await store.claim("key-1", NONCE, ttl_seconds=600)
        for index in range(1_100):
            await store.claim("key-1", f"nonce-{index}", ttl_seconds=10)
        clock.advance(10)
        for index in range(1_100, 2_200):
            await store.claim("key-1", f"nonce-{index}", ttl_seconds=10)
        assert len(store) <= 1_200

    async def test_rejects_empty_nonce_and_ttl_below_one(self, clock: FakeClock) -> None:
        """An empty nonce or a TTL under a second is a caller error."""
        store = MemoryNonceStore(clock=clock)
        with pytest.raises(ValueError, match="nonce"):
            await store.claim("key-1", "", ttl_seconds=600)
        with pytest.raises(ValueError, match="ttl"):
            await store.claim("key-1", NONCE, ttl_seconds=0)


@pytest.mark.anyio
class TestRedisNonceStore:
    async def test_second_claim_is_a_replay(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """A pair is new once, kept for its TTL; claiming it again reports a replay."""
        store = RedisNonceStore(aredis, key_prefix=key_prefix)
        assert await store.claim("key-1", NONCE, ttl_seconds=600) is True
        assert await store.claim("key-1", NONCE, ttl_seconds=600) is False
        assert 590_000 < await aredis.pttl(store.key("key-1", NONCE)) <= 600_000

    async def test_pairs_are_per_key_and_unambiguous(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """Key id and nonce never run together: (`a:b`, `c`) and (`a`, `b:c`) are different."""
        store = RedisNonceStore(aredis, key_prefix=key_prefix)
        assert await store.claim("key-1", NONCE, ttl_seconds=600)
        assert await store.claim("key-2", NONCE, ttl_seconds=600)
        assert await store.claim("a:b", "c", ttl_seconds=600)
        assert await store.claim("a", "b:c", ttl_seconds=600)

    async def test_racing_claims_admit_one(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """Of many simultaneous claims of one pair, exactly one wins."""
        store = RedisNonceStore(aredis, key_prefix=key_prefix)
        results = await asyncio.gather(
            *(store.claim("key-1", NONCE, ttl_seconds=600) for _ in range(50))
        )
        assert results.count(True) == 1

    async def test_fails_closed_when_redis_is_down(self, aredis_down: redis.asyncio.Redis) -> None:
        """An unreachable Redis raises ReplayProtectionUnavailable and logs an error."""
        store = RedisNonceStore(aredis_down)
        with capture_logs() as logs, pytest.raises(ReplayProtectionUnavailable):
            await store.claim("key-1", NONCE, ttl_seconds=600)
        assert [(entry["event"], entry["log_level"]) for entry in logs] == [
            ("nonce.redis_unavailable", "error")
        ]


@pytest.mark.anyio
class TestMakeNonceStore:
    async def test_in_process_without_a_redis_url(self) -> None:
        """No Redis URL gives the in-process store."""
        assert isinstance(make_nonce_store(CacheSettings(redis_url=None)), MemoryNonceStore)

    async def test_redis_with_a_redis_url(self, settings: CacheSettings) -> None:
        """A Redis URL gives the Redis store under the configured prefix."""
        store = make_nonce_store(settings)
        try:
            assert isinstance(store, RedisNonceStore)
            assert await store.claim("key-1", NONCE, ttl_seconds=60)
            assert not await store.claim("key-1", NONCE, ttl_seconds=60)
        finally:
            await store.aclose()
