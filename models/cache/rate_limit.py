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

If Redis is unavailable, `FailOpenRateLimiter` logs `rate_limit.redis_unavailable`, counts the
error and decides with an in-process limiter, so each API process then enforces the limits on
its own share of the traffic.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio
import structlog

from models.cache.cache import Counters
from models.cache.client import REDIS_UNAVAILABLE, make_async_client
from models.cache.settings import CacheSettings

log = structlog.get_logger()

Clock = Callable[[], float]
"""Seconds on a monotonic scale; injectable so tests control time."""

_MICROS = 1_000_000

# ARGV: emission interval (µs), burst tolerance (µs), cost, and "now" in µs or "" for TIME.
# TAT is written with %.0f because Lua's tostring keeps only 14 significant digits.
_GCRA_LUA = """
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
    local clock = redis.call('TIME')
    now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
    tat = now
end
local new_tat = tat + cost * emission
local allow_at = new_tat - tolerance
if now < allow_at then
    local remaining = math.max(0, math.floor((now + tolerance - tat) / emission))
    return {0, remaining, tat - now, allow_at - now}
end
if new_tat > now then
    local ttl_ms = math.ceil((new_tat - now) / 1000)
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
end
local remaining = math.floor((now + tolerance - new_tat) / emission)
return {1, remaining, new_tat - now, 0}
"""


# One round trip for several limits (e.g. per address and per key): KEYS are checked in order
# with the GCRA step above and the first refusal stops the walk, so later limits are not
# charged. ARGV: "now" (µs or ""), then emission, tolerance and cost per key.
_GCRA_ALL_LUA = """
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
        self._script_all = client.register_script(_GCRA_ALL_LUA)
        self._clock = clock
        self._owns_client = owns_client

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateLimitDecision:
        _check_cost(limit, cost)
        now = "" if self._clock is None else str(_micros(self._clock()))
        args: list[int | str] = [limit.emission_interval_us, limit.tolerance_us, cost, now]
        allowed, remaining, reset_us, retry_us = await self._script(
            keys=[self._prefix + key], args=args
        )
        return _decision(limit, allowed, remaining, reset_us, retry_us)

    async def hit_all(self, checks: Sequence[tuple[str, RateLimit]]) -> list[RateLimitDecision]:
        now = "" if self._clock is None else str(_micros(self._clock()))
        args: list[int | str] = [now]
        for _, limit in checks:
            args += [limit.emission_interval_us, limit.tolerance_us, 1]
        rows = await self._script_all(keys=[self._prefix + key for key, _ in checks], args=args)
        return [_decision(limit, *row) for (_, limit), row in zip(checks, rows, strict=False)]

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()  # type: ignore[attr-defined]  # types-redis lacks it


class MemoryRateLimiter:
    """GCRA inside one process; thread- and task-safe (a hit never awaits)."""

    def __init__(self, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._lock = threading.Lock()
        self._sweep_at = 1024

    def __len__(self) -> int:
        with self._lock:
            return len(self._tats)

    async def hit(self, key: str, limit: RateLimit, *, cost: int = 1) -> RateLimitDecision:
        _check_cost(limit, cost)
        with self._lock:
            now = _micros(self._clock())
            tat, decision = gcra(self._tats.get(key), now, limit, cost)
            if tat is None:
                self._tats.pop(key, None)
            else:
                self._tats[key] = tat
            if len(self._tats) >= self._sweep_at:
                self._sweep(now)
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

    def _sweep(self, now_us: int) -> None:
        # A key whose TAT has passed is a full bucket, the same as no key: forget it. Sweeping
        # only when the table doubled keeps the cost amortised O(1) per hit.
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now_us}
        self._sweep_at = max(1024, 2 * len(self._tats))


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
        except REDIS_UNAVAILABLE as exc:
            log.warning(
                "rate_limit.redis_unavailable", error=str(exc), error_type=type(exc).__name__
            )
            self._counters.record_error()
        return await self._fallback.hit(key, limit, cost=cost)

    async def hit_all(self, checks: Sequence[tuple[str, RateLimit]]) -> list[RateLimitDecision]:
        try:
            return await self._primary.hit_all(checks)
        except REDIS_UNAVAILABLE as exc:
            log.warning(
                "rate_limit.redis_unavailable", error=str(exc), error_type=type(exc).__name__
            )
            self._counters.record_error()
        return await self._fallback.hit_all(checks)

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
