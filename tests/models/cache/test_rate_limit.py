"""GCRA rate limiting: in-process with a fake clock, and on the real Redis server."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis.asyncio
from structlog.testing import capture_logs

from models.cache.cache import Counters
from models.cache.rate_limit import (
    FailOpenRateLimiter,
    MemoryRateLimiter,
    RateLimit,
    RateLimitDecision,
    RedisRateLimiter,
    make_rate_limiter,
)
from models.cache.settings import CacheSettings
from tests.models.cache.conftest import FakeClock

PER_MINUTE = RateLimit(limit=6, period_seconds=60)  # one unit every 10 s


class TestRateLimit:
    def test_emission_interval_and_tolerance(self) -> None:
        """T = period / limit in microseconds; the tolerance is T times the burst."""
        assert PER_MINUTE.emission_interval_us == 10_000_000
        assert PER_MINUTE.tolerance_us == 60_000_000
        bursty = RateLimit(limit=6, period_seconds=60, burst=2)
        assert bursty.capacity == 2
        assert bursty.tolerance_us == 20_000_000

    def test_rounds_the_interval_up(self) -> None:
        """A period that does not divide evenly never yields a faster rate than asked."""
        assert RateLimit(limit=3, period_seconds=1).emission_interval_us == 333_334

    @pytest.mark.parametrize(
        ("limit", "period", "burst"), [(0, 60, None), (10, 0, None), (10, -1, None), (10, 60, 0)]
    )
    def test_rejects_nonsense(self, limit: int, period: float, burst: int | None) -> None:
        """Non-positive limits, periods and bursts are refused."""
        with pytest.raises(ValueError, match="must be"):
            RateLimit(limit=limit, period_seconds=period, burst=burst)


@pytest.mark.anyio
class TestMemoryRateLimiter:
    async def test_admits_a_burst_then_refuses(self, clock: FakeClock) -> None:
        """`limit` hits pass at once, counting down `remaining`; the next waits one interval."""
        limiter = MemoryRateLimiter(clock=clock)
        decisions = [await limiter.hit("k", PER_MINUTE) for _ in range(6)]
        assert [d.allowed for d in decisions] == [True] * 6
        assert [d.remaining for d in decisions] == [5, 4, 3, 2, 1, 0]
        assert decisions[-1].reset_after_seconds == 60
        assert decisions[-1].retry_after_seconds == 0
        refused = await limiter.hit("k", PER_MINUTE)
        assert refused == RateLimitDecision(
            allowed=False,
            limit=6,
            remaining=0,
            reset_after_seconds=60,
            retry_after_seconds=10,
        )

    async def test_refills_over_time(self, clock: FakeClock) -> None:
        """One unit comes back per interval, and the whole burst after the period."""
        limiter = MemoryRateLimiter(clock=clock)
        for _ in range(6):
            await limiter.hit("k", PER_MINUTE)
        clock.advance(9.999)
        early = await limiter.hit("k", PER_MINUTE)
        assert not early.allowed
        assert early.retry_after_seconds == pytest.approx(0.001)
        clock.advance(0.001)
        assert (await limiter.hit("k", PER_MINUTE)).allowed
        assert not (await limiter.hit("k", PER_MINUTE)).allowed
        clock.advance(60)
        assert (await limiter.hit("k", PER_MINUTE)).remaining == 5

    async def test_burst_can_be_smaller_than_the_limit(self, clock: FakeClock) -> None:
        """With burst 2 only two pass at once, though six pass per minute."""
        limiter = MemoryRateLimiter(clock=clock)
        limit = RateLimit(limit=6, period_seconds=60, burst=2)
        assert [(await limiter.hit("k", limit)).allowed for _ in range(3)] == [True, True, False]
        clock.advance(10)
        assert (await limiter.hit("k", limit)).allowed

    async def test_cost_spends_several_units(self, clock: FakeClock) -> None:
        """A hit of cost 4 takes four units; one of cost 3 then waits for a unit."""
        limiter = MemoryRateLimiter(clock=clock)
        first = await limiter.hit("k", PER_MINUTE, cost=4)
        assert (first.allowed, first.remaining) == (True, 2)
        refused = await limiter.hit("k", PER_MINUTE, cost=3)
        assert (refused.allowed, refused.remaining, refused.retry_after_seconds) == (False, 2, 10)
        assert (await limiter.hit("k", PER_MINUTE, cost=2)).allowed

    async def test_cost_zero_only_looks(self, clock: FakeClock) -> None:
        """A hit of cost 0 reports the state without spending anything."""
        limiter = MemoryRateLimiter(clock=clock)
        await limiter.hit("k", PER_MINUTE, cost=2)
        look = await limiter.hit("k", PER_MINUTE, cost=0)
        assert (look.allowed, look.remaining) == (True, 4)
        assert (await limiter.hit("k", PER_MINUTE, cost=0)).remaining == 4
        assert (await limiter.hit("fresh", PER_MINUTE, cost=0)).remaining == 6

    async def test_cost_above_the_burst_is_an_error(self, clock: FakeClock) -> None:
        """A cost that could never pass is refused as a caller error."""
        limiter = MemoryRateLimiter(clock=clock)
        with pytest.raises(ValueError, match="cost"):
            await limiter.hit("k", PER_MINUTE, cost=7)
        with pytest.raises(ValueError, match="cost"):
            await limiter.hit("k", PER_MINUTE, cost=-1)

    async def test_keys_are_independent(self, clock: FakeClock) -> None:
        """Spending one key's allowance leaves another's whole."""
        limiter = MemoryRateLimiter(clock=clock)
        for _ in range(6):
            await limiter.hit("a", PER_MINUTE)
        assert not (await limiter.hit("a", PER_MINUTE)).allowed
        assert (await limiter.hit("b", PER_MINUTE)).remaining == 5

    async def test_forgets_full_buckets(self, clock: FakeClock) -> None:
        """Keys whose bucket has refilled are swept, so many one-off clients do not pile up."""
        limiter = MemoryRateLimiter(clock=clock)
        for index in range(1_000):
            await limiter.hit(f"addr:{index}", PER_MINUTE)
        clock.advance(61)
        for index in range(1_000, 2_100):
            await limiter.hit(f"addr:{index}", PER_MINUTE)
        assert len(limiter) <= 1_100

    def test_threads_never_over_admit(self, clock: FakeClock) -> None:
        """Hits racing from many threads admit exactly the burst."""
        limiter = MemoryRateLimiter(clock=clock)
        limit = RateLimit(limit=100, period_seconds=3_600)
        allowed: list[bool] = []
        lock = threading.Lock()

        def work() -> None:
            for _ in range(50):
                decision = asyncio.run(limiter.hit("k", limit))
                with lock:
                    allowed.append(decision.allowed)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert allowed.count(True) == 100
        assert len(allowed) == 400


@pytest.mark.anyio
class TestRedisRateLimiter:
    async def test_agrees_with_the_memory_limiter(
        self, aredis: redis.asyncio.Redis, key_prefix: str, clock: FakeClock
    ) -> None:
        """Given the same clock, the Lua script and the Python GCRA decide identically."""
        in_redis = RedisRateLimiter(aredis, key_prefix=key_prefix, clock=clock)
        in_memory = MemoryRateLimiter(clock=clock)
        limits = [
            PER_MINUTE,
            RateLimit(limit=3, period_seconds=1),
            RateLimit(limit=10, period_seconds=60, burst=3),
        ]
        steps = [(0.0, 1), (0.0, 1), (0.0, 2), (0.0, 1), (0.4, 1), (3.3, 1), (0.0, 0), (7.0, 3)]
        steps += [(0.333334, 1), (0.333333, 1), (12.5, 2), (60.0, 1), (0.0, 1), (0.0, 1)]
        for index, limit in enumerate(limits):
            for advance, cost in steps:
                clock.advance(advance)
                cost = min(cost, limit.capacity)
                expected = await in_memory.hit(f"k{index}", limit, cost=cost)
                assert await in_redis.hit(f"k{index}", limit, cost=cost) == expected

    async def test_uses_the_server_clock(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """With Redis TIME, a burst passes, then the next hit waits one interval."""
        limiter = RedisRateLimiter(aredis, key_prefix=key_prefix)
        per_hour = RateLimit(limit=5, period_seconds=3_600)
        decisions = [await limiter.hit("k", per_hour) for _ in range(6)]
        assert [d.allowed for d in decisions] == [True] * 5 + [False]
        assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
        refused = decisions[-1]
        assert refused.limit == 5
        assert refused.retry_after_seconds == pytest.approx(720, abs=1)
        assert refused.reset_after_seconds == pytest.approx(3_600, abs=1)
        ttl_ms = await aredis.pttl(f"{key_prefix}ratelimit:k")
        assert 3_590_000 < ttl_ms <= 3_600_000

    async def test_refills_after_the_advertised_wait(
        self, aredis: redis.asyncio.Redis, key_prefix: str, clock: FakeClock
    ) -> None:
        """A hit refused with retry_after passes once that much time has gone by, not before."""
        limiter = RedisRateLimiter(aredis, key_prefix=key_prefix, clock=clock)
        limit = RateLimit(limit=2, period_seconds=60)
        assert [(await limiter.hit("k", limit)).allowed for _ in range(2)] == [True, True]
        refused = await limiter.hit("k", limit)
        assert not refused.allowed
        assert refused.retry_after_seconds == 30
        clock.advance(refused.retry_after_seconds - 0.001)
        assert not (await limiter.hit("k", limit)).allowed
        clock.advance(0.001)
        assert (await limiter.hit("k", limit)).allowed

    async def test_concurrent_hits_never_over_admit(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """Hundreds of tasks racing on one key admit exactly the burst."""
        limiter = RedisRateLimiter(aredis, key_prefix=key_prefix)
        limit = RateLimit(limit=50, period_seconds=3_600)
        decisions = await asyncio.gather(*(limiter.hit("k", limit) for _ in range(300)))
        assert sum(d.allowed for d in decisions) == 50
        assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))


@pytest.mark.anyio
class TestFailOpenRateLimiter:
    async def test_falls_back_when_redis_is_down(self, aredis_down: redis.asyncio.Redis) -> None:
        """With Redis unreachable the in-process limiter decides; each failure logged, counted."""
        counters = Counters()
        limiter = FailOpenRateLimiter(RedisRateLimiter(aredis_down), MemoryRateLimiter(), counters)
        limit = RateLimit(limit=3, period_seconds=3_600)
        with capture_logs() as logs:
            decisions = [await limiter.hit("k", limit) for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert decisions[-1].retry_after_seconds == pytest.approx(1_200, abs=1)
        assert counters.errors == 4
        assert [entry["event"] for entry in logs] == ["rate_limit.redis_unavailable"] * 4

    async def test_any_redis_error_falls_back(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """An error other than a lost connection (here WRONGTYPE) falls back, logged, too."""
        counters = Counters()
        limiter = FailOpenRateLimiter(
            RedisRateLimiter(aredis, key_prefix=key_prefix), MemoryRateLimiter(), counters
        )
        await aredis.sadd(f"{key_prefix}ratelimit:k", b"not a TAT")
        with capture_logs() as logs:
            assert (await limiter.hit("k", PER_MINUTE)).remaining == 5
            decisions = await limiter.hit_all([("k", PER_MINUTE)])
        assert decisions[-1].remaining == 4
        assert counters.errors == 2
        assert [entry["error_type"] for entry in logs] == ["ResponseError"] * 2

    async def test_uses_redis_when_it_is_up(
        self, aredis: redis.asyncio.Redis, key_prefix: str
    ) -> None:
        """With Redis up the fallback is never touched and nothing is counted."""
        counters = Counters()
        fallback = MemoryRateLimiter()
        limiter = FailOpenRateLimiter(
            RedisRateLimiter(aredis, key_prefix=key_prefix), fallback, counters
        )
        assert (await limiter.hit("k", PER_MINUTE)).remaining == 5
        assert await aredis.exists(f"{key_prefix}ratelimit:k") == 1
        assert len(fallback) == 0
        assert counters.errors == 0


@pytest.mark.anyio
class TestMakeRateLimiter:
    async def test_in_process_without_a_redis_url(self) -> None:
        """No Redis URL gives the in-process limiter."""
        limiter = make_rate_limiter(CacheSettings(redis_url=None), Counters())
        assert isinstance(limiter, MemoryRateLimiter)

    async def test_redis_failing_open_with_a_redis_url(self, settings: CacheSettings) -> None:
        """A Redis URL gives the Redis limiter wrapped to fail open."""
        limiter = make_rate_limiter(settings, Counters())
        try:
            assert isinstance(limiter, FailOpenRateLimiter)
            assert (await limiter.hit("k", PER_MINUTE)).allowed
        finally:
            await limiter.aclose()
