"""Single flight: one computation per key at a time, across tasks and API processes.

An expensive read (a comparison's bootstrap) asked for by several clients at once should run
once while the others wait for its result. `SingleFlight.run(key, lookup, compute)`:

- within a process, concurrent calls for the same key share one task: the first caller starts
  it, the others await it (a caller that goes away does not cancel it for the rest);
- across processes, that task takes a Redis lock (`SET <prefix>flight:<key> <token> NX PX`)
  before computing; a task that finds the lock taken polls `lookup` (the shared cache) until
  the holder's result is there, or the lock is gone (it then tries to take it itself), or
  `wait_seconds` have passed (`FlightTimedOut`). The lock expires after `lock_seconds` unless
  its holder, while computing, extends it (every third of that time), so a holder that dies
  frees it soon; it is extended and released by compare-and-set scripts, so a holder never
  touches a lock that expired and was taken by another.

Without Redis there is nothing to share across processes and only the in-process part applies.
When Redis fails in any way the lock fails open: the error is logged (`flight.unavailable`)
and counted, and the process computes by itself (still once per key within the process).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio
import structlog
from redis.exceptions import RedisError

from models.cache.cache import Clock, Counters

log = structlog.get_logger()

T = TypeVar("T")

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class FlightTimedOut(RuntimeError):
    """Another process held the computation's lock for longer than this caller may wait."""

    def __init__(self, key: str, waited_seconds: float) -> None:
        super().__init__(f"{key}: still computed elsewhere after {waited_seconds:.0f} s")
        self.waited_seconds = waited_seconds


class RedisFlightLock:
    """The cross-process lock of one key: a Redis string holding its holder's random token."""

    def __init__(self, client: redis.asyncio.Redis[bytes], *, key_prefix: str) -> None:
        self._client = client
        self._prefix = f"{key_prefix}flight:"
        self._release = client.register_script(_RELEASE_LUA)
        self._extend = client.register_script(_EXTEND_LUA)

    def key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    async def acquire(self, key: str, token: str, *, lock_seconds: float) -> bool:
        """True when this token now holds the lock; raises RedisError when Redis fails."""
        taken = await self._client.set(
            self.key(key), token.encode(), nx=True, px=max(1, round(lock_seconds * 1000))
        )
        return bool(taken)

    async def held(self, key: str) -> bool:
        return bool(await self._client.exists(self.key(key)))

    async def release(self, key: str, token: str) -> None:
        await self._release(keys=[self.key(key)], args=[token.encode()])

    async def extend(self, key: str, token: str, *, lock_seconds: float) -> bool:
        """Give the lock `lock_seconds` more if `token` still holds it; False otherwise."""
        ms = max(1, round(lock_seconds * 1000))
        return bool(await self._extend(keys=[self.key(key)], args=[token.encode(), ms]))


class SingleFlight:
    """Runs at most one computation per key: one per process always, one across processes
    while Redis answers (see the module's docstring)."""

    def __init__(
        self,
        lock: RedisFlightLock | None,
        counters: Counters,
        *,
        lock_seconds: float = 30.0,
        wait_seconds: float = 60.0,
        poll_seconds: float = 0.05,
        max_poll_seconds: float = 0.5,
        clock: Clock = time.monotonic,
    ) -> None:
        if lock_seconds <= 0 or wait_seconds < 0 or poll_seconds <= 0:
            raise ValueError("lock_seconds and poll_seconds must be positive, wait_seconds >= 0")
        self._lock = lock
        self._counters = counters
        """`errors`: Redis failures the flight rode out by computing without the lock."""
        self._lock_seconds = lock_seconds
        self._wait_seconds = wait_seconds
        self._poll_seconds = poll_seconds
        self._max_poll_seconds = max(poll_seconds, max_poll_seconds)
        self._clock = clock
        self._running: dict[str, asyncio.Task[Any]] = {}
        self._callers: dict[str, int] = {}

    def in_flight(self) -> int:
        """Keys being computed (or waited for) by this process now."""
        return len(self._running)

    def callers(self, key: str) -> int:
        """Calls of this process waiting for `key` now."""
        return self._callers.get(key, 0)

    async def run(
        self,
        key: str,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
    ) -> T:
        """`compute()`'s result for `key`, computed once however many callers ask at once.

        `lookup` reads where `compute` leaves its result for other processes (the shared
        cache); it is asked before computing and while another process holds the lock.
        `compute` raises as it likes: its error reaches every caller of this process.
        """
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._once(key, lookup, compute))
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        self._callers[key] = self._callers.get(key, 0) + 1
        try:
            # Shielded: a caller that goes away leaves the computation to the others.
            result: T = await asyncio.shield(task)
        finally:
            self._callers[key] -= 1
            if not self._callers[key]:
                del self._callers[key]
        return result

    def _finished(self, key: str, task: asyncio.Task[Any]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not reported twice

    async def _once(
        self,
        key: str,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
    ) -> T:
        # Asked first: the result may have landed since the caller last looked.
        found = await lookup()
        if found is not None:
            return found
        if self._lock is None:
            return await compute()
        token = secrets.token_hex(16)
        started = self._clock()
        pause = self._poll_seconds
        while True:
            try:
                taken = await self._lock.acquire(key, token, lock_seconds=self._lock_seconds)
            except RedisError as exc:
                self._unavailable("acquire", exc)
                return await compute()
            if taken:
                keeper = asyncio.ensure_future(self._keep(key, token))
                try:
                    # A holder that released just before we took the lock left its result.
                    found = await lookup()
                    return found if found is not None else await compute()
                finally:
                    keeper.cancel()
                    await self._release(key, token)
            # Another process computes: wait for its result, or for its lock to go.
            while True:
                waited = self._clock() - started
                if waited >= self._wait_seconds:
                    raise FlightTimedOut(key, waited)
                await asyncio.sleep(min(pause, self._wait_seconds - waited))
                pause = min(pause * 2, self._max_poll_seconds)
                found = await lookup()
                if found is not None:
                    return found
                try:
                    if not await self._lock.held(key):
                        break
                except RedisError as exc:
                    self._unavailable("held", exc)
                    return await compute()
            # The holder may have stored its result between our last look and its release.
            found = await lookup()
            if found is not None:
                return found

    async def _keep(self, key: str, token: str) -> None:
        """Extend the lock every third of its lifetime while its computation runs, so a short
        lifetime frees the lock soon after a holder dies, yet never under a long computation."""
        assert self._lock is not None
        while True:
            await asyncio.sleep(self._lock_seconds / 3)
            try:
                if not await self._lock.extend(key, token, lock_seconds=self._lock_seconds):
                    return
            except RedisError as exc:
                self._unavailable("extend", exc)

    async def _release(self, key: str, token: str) -> None:
        assert self._lock is not None
        try:
            await self._lock.release(key, token)
        except RedisError as exc:
            # The lock then expires by itself; waiters find the result in the cache first.
            self._unavailable("release", exc)

    def _unavailable(self, operation: str, exc: RedisError) -> None:
        self._counters.record_error()
        log.warning(
            "flight.unavailable", operation=operation, error=str(exc), error_type=type(exc).__name__
        )
