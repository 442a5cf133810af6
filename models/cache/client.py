"""Redis clients built from `CacheSettings`: short timeouts, no retries, so an outage fails fast.

A refused connection fails in about a millisecond and a silent server after one socket timeout;
redis-py's default retries with back-off would multiply that on every request of an outage.
"""

from __future__ import annotations

import redis
import redis.asyncio
import structlog
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from models.cache.settings import CacheSettings

log = structlog.get_logger()


def _require_url(settings: CacheSettings) -> str:
    if settings.redis_url is None:
        raise ValueError("STREAMFLOW_REDIS_URL is not set; use the in-process implementations")
    return settings.redis_url


def make_sync_client(settings: CacheSettings) -> redis.Redis[bytes]:
    """A blocking Redis client (for flows and scripts) returning bytes."""
    timeout = settings.redis_socket_timeout_seconds
    return redis.Redis.from_url(
        _require_url(settings),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def make_async_client(
    settings: CacheSettings, *, max_connections: int = 100
) -> redis.asyncio.Redis[bytes]:
    """An asyncio Redis client (for the API) returning bytes; use it on one event loop.

    Its pool makes a command wait (up to the socket timeout) for one of `max_connections`
    connections, where redis-py's default pool would fail it at once during a traffic spike.
    """
    timeout = settings.redis_socket_timeout_seconds
    pool: redis.asyncio.BlockingConnectionPool[redis.asyncio.Connection]
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        _require_url(settings),
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(NoBackoff(), 0),
    )
    client: redis.asyncio.Redis[bytes] = redis.asyncio.Redis.from_pool(pool)  # type: ignore[attr-defined]
    return client


async def async_health_check(client: redis.asyncio.Redis[bytes]) -> bool:
    """Whether the server answers PING (asyncio client)."""
    try:
        return bool(await client.ping())
    except RedisError as exc:
        log.warning("redis.health_check_failed", error=str(exc), error_type=type(exc).__name__)
        return False
