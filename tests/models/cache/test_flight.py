"""Single flight on the real Redis: one computation per key, the lock's owner, failing open."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio
from structlog.testing import capture_logs

from models.cache.cache import Counters
from models.cache.flight import FlightTimedOut, RedisFlightLock, SingleFlight

pytestmark = pytest.mark.anyio


class Work:
    """A computation that counts its runs and finishes when told to."""

    def __init__(self, result: str = "done", error: Exception | None = None) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.result = result
        self.error = error
        self.stored: str | None = None

    async def lookup(self) -> str | None:
        return self.stored

    async def compute(self) -> str:
        self.runs += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        self.stored = self.result
        return self.result


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_computation_and_its_error(
    aredis: redis.asyncio.Redis, key_prefix: str
) -> None:
    flights = SingleFlight(RedisFlightLock(aredis, key_prefix=key_prefix), Counters())
    work = Work(error=LookupError("run 1 not found"))
    callers = [asyncio.create_task(flights.run("k", work.lookup, work.compute)) for _ in range(4)]
    await _settle()
    assert flights.callers("k") == 4
    work.release.set()
    outcomes = await asyncio.gather(*callers, return_exceptions=True)
    assert [type(o) for o in outcomes] == [LookupError] * 4
    assert work.runs == 1
    assert flights.in_flight() == 0
    assert not await aredis.exists(f"{key_prefix}flight:k")


async def test_a_caller_going_away_leaves_the_computation_to_the_others(
    aredis: redis.asyncio.Redis, key_prefix: str
) -> None:
    flights = SingleFlight(RedisFlightLock(aredis, key_prefix=key_prefix), Counters())
    work = Work()
    leaving = asyncio.create_task(flights.run("k", work.lookup, work.compute))
    staying = asyncio.create_task(flights.run("k", work.lookup, work.compute))
    await _settle()
    leaving.cancel()
    await _settle()
    work.release.set()
    assert await staying == "done"
    assert leaving.cancelled()
    assert work.runs == 1


async def test_a_process_waits_for_the_holders_result(
    aredis: redis.asyncio.Redis, key_prefix: str
) -> None:
    """Two flights on one Redis stand for two processes: the second never computes."""
    shared: dict[str, str] = {}

    async def lookup() -> str | None:
        return shared.get("k")

    first, second = (
        SingleFlight(RedisFlightLock(aredis, key_prefix=key_prefix), Counters(), poll_seconds=0.01)
        for _ in range(2)
    )
    release = asyncio.Event()
    runs: list[str] = []

    async def compute_as(name: str) -> str:
        runs.append(name)
        await release.wait()
        shared["k"] = name
        return name

    holder = asyncio.create_task(first.run("k", lookup, lambda: compute_as("first")))
    while runs != ["first"]:  # the holder has the lock and computes
        await asyncio.sleep(0.001)
    waiter = asyncio.create_task(second.run("k", lookup, lambda: compute_as("second")))
    await asyncio.sleep(0.05)
    release.set()
    assert await asyncio.gather(holder, waiter) == ["first", "first"]
    assert runs == ["first"]


async def test_a_waiter_gives_up_after_its_limit(
    aredis: redis.asyncio.Redis, key_prefix: str
) -> None:
    lock = RedisFlightLock(aredis, key_prefix=key_prefix)
    assert await lock.acquire("k", "elsewhere", lock_seconds=30)
    flights = SingleFlight(lock, Counters(), wait_seconds=0.1, poll_seconds=0.01)
    work = Work()
    with pytest.raises(FlightTimedOut):
        await flights.run("k", work.lookup, work.compute)
    assert work.runs == 0


async def test_a_holder_never_releases_anothers_lock(
    aredis: redis.asyncio.Redis, key_prefix: str
) -> None:
    lock = RedisFlightLock(aredis, key_prefix=key_prefix)
    assert await lock.acquire("k", "mine", lock_seconds=30)
    assert not await lock.acquire("k", "theirs", lock_seconds=30)
    await lock.release("k", "theirs")
    assert await aredis.get(f"{key_prefix}flight:k") == b"mine"
    await lock.release("k", "mine")
    assert not await lock.held("k")


async def test_a_failing_redis_fails_open(aredis_down: redis.asyncio.Redis) -> None:
    counters = Counters()
    flights = SingleFlight(RedisFlightLock(aredis_down, key_prefix="down:"), counters)
    work = Work()
    work.release.set()
    with capture_logs() as logs:
        assert await flights.run("k", work.lookup, work.compute) == "done"
    assert work.runs == 1
    assert counters.errors == 1
    assert [(e["event"], e["operation"]) for e in logs] == [("flight.unavailable", "acquire")]


async def test_the_holder_keeps_its_lock_while_it_computes(
    aredis: redis.asyncio.Redis, key_prefix: str
) -> None:
    """A computation longer than the lock's lifetime keeps it: no second process starts."""
    flights = SingleFlight(
        RedisFlightLock(aredis, key_prefix=key_prefix), Counters(), lock_seconds=0.15
    )
    work = Work()
    holder = asyncio.create_task(flights.run("k", work.lookup, work.compute))
    await asyncio.sleep(0.5)
    assert await aredis.exists(f"{key_prefix}flight:k")
    work.release.set()
    assert await holder == "done"
    assert not await aredis.exists(f"{key_prefix}flight:k")
