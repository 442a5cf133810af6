"""Redis fixtures: the real server under a unique key prefix per test, and a closed port."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from models.cache.client import make_async_client, make_sync_client
from models.cache.settings import CacheSettings

REDIS_URL = os.environ.get("STREAMFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"streamflow-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def settings(key_prefix: str) -> CacheSettings:
    # A generous timeout: these tests check behaviour, and a busy CI machine can stall the event
    # loop for longer than the production default while a hundred connections open at once.
    return CacheSettings(redis_url=REDIS_URL, key_prefix=key_prefix, redis_socket_timeout_seconds=5)


@pytest.fixture
def down_settings() -> CacheSettings:
    """Settings pointing at a port where nothing listens."""
    return CacheSettings(redis_url=CLOSED_PORT_URL, key_prefix="streamflow-test:down:")


@pytest.fixture
async def aredis(settings: CacheSettings, anyio_backend: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = make_async_client(settings)
    yield client
    await client.aclose()


@pytest.fixture
async def aredis_down(
    down_settings: CacheSettings, anyio_backend: str
) -> AsyncIterator[redis.asyncio.Redis]:
    client = make_async_client(down_settings)
    yield client
    await client.aclose()


@pytest.fixture
def sredis(settings: CacheSettings) -> Iterator[redis.Redis]:
    client = make_sync_client(settings)
    yield client
    client.close()
