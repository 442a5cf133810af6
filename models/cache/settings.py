"""Where the result cache, rate limiter and nonce store keep their state (prefix `STREAMFLOW_`).

Without `STREAMFLOW_REDIS_URL` (the embedded default) all three live in the process.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CacheSettings(BaseSettings):
    """The Redis server shared by the API processes, and the cache's defaults."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_", extra="ignore")

    redis_url: str | None = None
    """Redis URL, e.g. `redis://cache:6379/0`; None keeps everything in-process."""
    cache_ttl_seconds: int = Field(default=300, ge=1)
    """Lifetime of a cached result unless the caller gives its own."""
    comparison_ttl_seconds: int = Field(default=86_400, ge=1)
    """Lifetime of a cached comparison: comparisons of completed runs never change and cost
    seconds of CPU to compute again, so they are kept longer than other results."""
    redis_socket_timeout_seconds: float = Field(default=0.25, gt=0)
    """Connect and read timeout of every Redis call, short so an outage costs little latency."""
    local_cache_ttl_seconds: int = Field(default=60, ge=0)
    """With Redis: lifetime of the in-process copy of an (immutable) cached result; 0: none."""
    key_prefix: str = "streamflow:"
    """Prefix of every Redis key StreamFlow writes, so one server can be shared."""
