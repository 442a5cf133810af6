"""Rate limits by GCRA (generic cell rate algorithm): Redis when configured, else in-process.

GCRA keeps one number per key, the theoretical arrival time (TAT): when the key's bucket would
be empty again if it stopped sending now. A limit of `limit` per `period_seconds` admits one
unit every emission interval T = period / limit, and up to `burst` (default `limit`) units at
once: a request of cost c is admitted iff `max(TAT, now) + c·T - burst·T <= now`, and then
TAT becomes `max(TAT, now) + c·T`.

All arithmetic is in whole microseconds, with T rounded up to a whole microsecond, so the Lua
script and the Python implementation give identical decisions and no float rounding can
admit one extra or refuse the last unit of a burst. In Redis the whole check-and-update is
one Lua script (run by EVALSHA, loaded again on NOSCRIPT), so it is atomic across API
processes, and it reads the Redis server's clock (TIME), so the API hosts' clocks do not
matter. The TAT key expires when the bucket is full again.

If Redis fails in any way (down, slow, read-only, out of memory), `FailOpenRateLimiter` logs
`rate_limit.redis_unavailable`, counts the error and decides with an in-process limiter, so
each API process then enforces the limits on its own share of the traffic.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio
import structlog
from cachetools import TLRUCache
from redis.exceptions import RedisError

from models.cache.cache import Clock, Counters
from models.cache.client import make_async_client
from models.cache.settings import CacheSettings

log = structlog.get_logger()

_MICROS = 1_000_000

# One GCRA step per key, in one round trip for several limits (e.g. per address and per key):
# KEYS are checked in order and the first refusal stops the walk, so later limits are not
# charged. ARGV: "now" in µs or "" for TIME, then emission interval (µs), burst tolerance (µs)
# and cost per key. TAT is written with %.0f because Lua's tostring keeps only 14 significant
# digits.
_GCRA_LUA = """
local now = tonumber(ARGV[1])
if now == nil then
    local clock = redis.call('TIME')
    now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local out = {}
for i, key in ipairs(KEYS) do
    local emission = tonumber(ARGV[3 * i - 1])
    local tolerance = tonumber(ARGV[3 * i])
    local cost = tonumber(ARGV[3 * i + 1])
    local tat = tonumber(redis.call('GET', key))
    if tat == nil or tat < now then
        tat = now
    end
    local new_tat = tat + cost * emission
    local allow_at = new_tat - tolerance
    if now < allow_at then
        local remaining = math.max(0, math.floor((now + tolerance - tat) / emission))
        table.insert(out, {0, remaining, tat - now, allow_at - now})
        return out
    end
    if new_tat > now then
        local ttl_ms = math.ceil((new_tat - now) / 1000)
        redis.call('SET', key, string.format('%.0f', new_tat), 'PX', ttl_ms)
    end
    table.insert(out, {1, math.floor((now + tolerance - new_tat) / emission), new_tat - now, 0})
end
return out
"""


@dataclass(frozen=True)
class RateLimit:
    """`limit` units per `period_seconds`, up to `burst` (default `limit`) of them at once."""

    limit: int
    period_seconds: float
    burst: int | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        if self.period_seconds <= 0:
            raise ValueError(f"period_seconds must be positive, got {self.period_seconds}")
        if self.burst is not None and self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")

    @property
    def capacity(self) -> int:
        """Units admitted at once from a full bucket."""
        return self.limit if self.burst is None else self.burst

    @property
    def emission_interval_us(self) -> int:
        """Microseconds per unit, rounded up (the limit is never exceeded by rounding)."""
        period_us = max(1, round(self.period_seconds * _MICROS))
        return -(-period_us // self.limit)

    @property
    def tolerance_us(self) -> int:
        return self.emission_interval_us * self.capacity


@dataclass(frozen=True)
class RateLimitDecision:
    """The outcome of one hit, with what the `RateLimit`, `RateLimit-Policy` and `Retry-After`
    headers need.

    `remaining` is how many more unit-cost hits would be admitted right now,
    `reset_after_seconds` the time until the bucket is full again, and `retry_after_seconds`
    (0 when allowed) the time until the same hit would be admitted.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after_seconds: float
    retry_after_seconds: float


class RateLimiter(Protocol):
    """Admits or refuses hits against a key's rate limit, atomically."""

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateLimitDecision:
        """Spend `cost` units of `key`'s allowance if they are available (0 only looks)."""
        ...

    async def hit_all(self, checks: Sequence[tuple[str, RateLimit]]) -> list[RateLimitDecision]:
        """Unit hits on several keys in order, stopping at the first refusal (its decision is
        last); the keys after it are not charged."""
        ...

    async def aclose(self) -> None:
        """Release the connections this limiter opened itself."""
        ...


def _check_cost(limit: RateLimit, cost: int) -> None:
    if cost < 0 or cost > limit.capacity:
        raise ValueError(f"cost must be between 0 and the burst {limit.capacity}, got {cost}")


def _micros(seconds: float) -> int:
    return round(seconds * _MICROS)


def _decision(
    limit: RateLimit, allowed: int, remaining: int, reset_us: int, retry_us: int
) -> RateLimitDecision:
    return RateLimitDecision(
        allowed=bool(allowed),
        limit=limit.limit,
        remaining=int(remaining),
        reset_after_seconds=int(reset_us) / _MICROS,
        retry_after_seconds=int(retry_us) / _MICROS,
    )


def gcra(
    tat_us: int | None, now_us: int, limit: RateLimit, cost: int
) -> tuple[int | None, RateLimitDecision]:
    """One GCRA step in Python, the twin of the Lua script: (TAT to keep, decision)."""
    emission = limit.emission_interval_us
    tolerance = limit.tolerance_us
    tat = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = tat + cost * emission
    allow_at = new_tat - tolerance
    if now_us < allow_at:
        remaining = max(0, (now_us + tolerance - tat) // emission)
        return tat_us, _decision(limit, 0, remaining, tat - now_us, allow_at - now_us)
    remaining = (now_us + tolerance - new_tat) // emission
    kept = new_tat if new_tat > now_us else None
    return kept, _decision(limit, 1, remaining, new_tat - now_us, 0)


class RedisRateLimiter:
    """GCRA in Redis, shared by all API processes; raises on Redis errors."""

    def __init__(
        self,
        client: redis.asyncio.Redis[bytes],
        *,
        key_prefix: str = "streamflow:",
        clock: Clock | None = None,
        owns_client: bool = False,
    ) -> None:
        """`clock` replaces the Redis server's TIME; for tests only."""
        self._client = client
        self._prefix = f"{key_prefix}ratelimit:"
        self._script = client.register_script(_GCRA_LUA)
        self._clock = clock
        self._owns_client = owns_client

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateLimitDecision:
        _check_cost(limit, cost)
        return (await self._run([(key, limit, cost)]))[0]

    async def hit_all(self, checks: Sequence[tuple[str, RateLimit]]) -> list[RateLimitDecision]:
        return await self._run([(key, limit, 1) for key, limit in checks])

    async def _run(self, checks: Sequence[tuple[str, RateLimit, int]]) -> list[RateLimitDecision]:
        args: list[int | str] = ["" if self._clock is None else _micros(self._clock())]
        for _, limit, cost in checks:
            args += [limit.emission_interval_us, limit.tolerance_us, cost]
        rows = await self._script(keys=[self._prefix + key for key, _, _ in checks], args=args)
        return [_decision(limit, *row) for (_, limit, _), row in zip(checks, rows, strict=False)]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()  # type: ignore[attr-defined]  # types-redis lacks it


def _tat_expiry(_key: str, tat_us: int, _now_us: float) -> float:
    # A key whose TAT has passed is a full bucket, the same as no key: it can be forgotten.
    return tat_us


class MemoryRateLimiter:
    """GCRA inside one process; thread- and task-safe (a hit never awaits).

    A key is kept only until its bucket is full again, so one-off clients do not pile up.
    """

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._tats: TLRUCache[str, int] = TLRUCache(
            maxsize=math.inf, ttu=_tat_expiry, timer=lambda: _micros(clock())
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tats)

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateLimitDecision:
        _check_cost(limit, cost)
        # The timer as a context holds "now" still for every lookup inside it.
        with self._lock, self._tats.timer as now:
            tat, decision = gcra(self._tats.get(key), round(now), limit, cost)
            if tat is None:
                self._tats.pop(key, None)
            else:
                self._tats[key] = tat
            return decision

    async def hit_all(self, checks: Sequence[tuple[str, RateLimit]]) -> list[RateLimitDecision]:
        decisions = []
        for key, limit in checks:
            decision = await self.hit(key, limit)
            decisions.append(decision)
            if not decision.allowed:
                break
        return decisions

    async def aclose(self) -> None:
        return None


class FailOpenRateLimiter:
    """The Redis limiter, falling back to an in-process one for each hit Redis cannot serve."""

    def __init__(
        self, primary: RedisRateLimiter, fallback: MemoryRateLimiter, counters: Counters
    ) -> None:
        self._primary = primary
        self._fallback = fallback
        self._counters = counters

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateLimitDecision:
        try:
            return await self._primary.hit(key, limit, cost=cost)
        except RedisError as exc:
            self._record(exc)
        return await self._fallback.hit(key, limit, cost=cost)

    async def hit_all(self, checks: Sequence[tuple[str, RateLimit]]) -> list[RateLimitDecision]:
        try:
            return await self._primary.hit_all(checks)
        except RedisError as exc:
            self._record(exc)
        return await self._fallback.hit_all(checks)

    def _record(self, exc: RedisError) -> None:
        log.warning("rate_limit.redis_unavailable", error=str(exc), error_type=type(exc).__name__)
        self._counters.record_error()

    async def aclose(self) -> None:
        await self._primary.aclose()


def make_rate_limiter(
    settings: CacheSettings,
    counters: Counters,
    *,
    client: redis.asyncio.Redis[bytes] | None = None,
) -> RateLimiter:
    """The configured limiter: Redis failing open to in-process (on `client`, or a client of
    its own), or in-process only."""
    if settings.redis_url is None:
        return MemoryRateLimiter()
    primary = RedisRateLimiter(
        client or make_async_client(settings),
        key_prefix=settings.key_prefix,
        owns_client=client is None,
    )
    return FailOpenRateLimiter(primary, MemoryRateLimiter(), counters)
