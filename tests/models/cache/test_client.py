"""Cache settings and Redis clients."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio

from models.cache.client import async_health_check, make_async_client, make_sync_client
from models.cache.settings import CacheSettings


class TestCacheSettings:
    def test_defaults_keep_everything_in_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without environment variables there is no Redis and the documented defaults apply."""
        for name in (
            "REDIS_URL",
            "CACHE_TTL_SECONDS",
            "REDIS_SOCKET_TIMEOUT_SECONDS",
            "KEY_PREFIX",
        ):
            monkeypatch.delenv(f"STREAMFLOW_{name}", raising=False)
        settings = CacheSettings()
        assert settings.redis_url is None
        assert settings.cache_ttl_seconds == 300
        assert settings.redis_socket_timeout_seconds == 0.25
        assert settings.key_prefix == "streamflow:"

    def test_reads_prefixed_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every field comes from its `STREAMFLOW_` variable."""
        monkeypatch.setenv("STREAMFLOW_REDIS_URL", "redis://cache:6379/2")
        monkeypatch.setenv("STREAMFLOW_CACHE_TTL_SECONDS", "60")
        monkeypatch.setenv("STREAMFLOW_REDIS_SOCKET_TIMEOUT_SECONDS", "0.5")
        monkeypatch.setenv("STREAMFLOW_KEY_PREFIX", "sf:")
        settings = CacheSettings()
        assert settings.redis_url == "redis://cache:6379/2"
        assert settings.cache_ttl_seconds == 60
        assert settings.redis_socket_timeout_seconds == 0.5
        assert settings.key_prefix == "sf:"

    def test_rejects_a_ttl_below_one_second(self) -> None:
        """A zero TTL would make Redis refuse every write, so it is refused up front."""
        with pytest.raises(ValueError, match="cache_ttl_seconds"):
            CacheSettings(cache_ttl_seconds=0)


class TestClients:
    def test_clients_need_a_url(self) -> None:
        """Building a client without a Redis URL is a configuration error."""
        with pytest.raises(ValueError, match="STREAMFLOW_REDIS_URL"):
            make_sync_client(CacheSettings(redis_url=None))
        with pytest.raises(ValueError, match="STREAMFLOW_REDIS_URL"):
            make_async_client(CacheSettings(redis_url=None))

    def test_clients_use_the_short_timeout(self) -> None:
        """Connect and read timeouts both come from the settings."""
        settings = CacheSettings(
            redis_url="redis://127.0.0.1:6379/0", redis_socket_timeout_seconds=0.1
        )
        client = make_sync_client(settings)
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.1
        assert kwargs["socket_connect_timeout"] == 0.1
        client.close()

    @pytest.mark.anyio
    async def test_async_client_waits_for_a_free_connection(self, settings: CacheSettings) -> None:
        """More concurrent commands than pooled connections queue instead of failing."""
        client = make_async_client(settings, max_connections=4)
        try:
            replies = await asyncio.gather(*(client.ping() for _ in range(200)))
            assert all(replies)
            assert client.connection_pool.max_connections == 4
        finally:
            await client.aclose()

    @pytest.mark.anyio
    async def test_async_health_check(
        self, aredis: redis.asyncio.Redis, aredis_down: redis.asyncio.Redis
    ) -> None:
        """The asyncio check agrees: healthy server true, closed port false."""
        assert await async_health_check(aredis) is True
        assert await async_health_check(aredis_down) is False
