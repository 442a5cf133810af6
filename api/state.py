"""What the API process opens once: settings, database, cache, rate limiter, nonce store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import redis.asyncio
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api.address_blocks import AddressBlocks
from api.cache import ExpensiveReads
from api.observability import Metrics
from api.principals import PrincipalCache
from api.serving import ServingRuntime
from api.settings import ApiSettings
from models.cache.cache import ResultCache
from models.cache.nonces import NonceStore
from models.cache.rate_limit import RateLimiter
from models.cache.settings import CacheSettings
from models.domain_settings import DomainSettings
from models.settings import RegistrySettings, StorageSettings


class EvaluationLauncher(Protocol):
    """Starts the evaluation flow with keyword parameters, without waiting for it."""

    def launch(self, parameters: dict[str, Any]) -> None: ...

    def shutdown(self) -> None: ...


@dataclass
class ApiState:
    """Resources shared by every request of one app."""

    api: ApiSettings
    storage: StorageSettings
    registry: RegistrySettings
    cache_settings: CacheSettings
    engine: Engine
    """The platform's login (provider requests, probes, metrics)."""
    sessions: sessionmaker[Session]
    tenant_engine: Engine
    """The login of tenant requests (row-level security scopes it per API key); may be `engine`."""
    tenant_sessions: sessionmaker[Session]
    cache: ResultCache
    immutable_cache: ResultCache
    """`cache` with an in-process tier in front, for results that never change."""
    comparison_cache: ResultCache
    """Like `immutable_cache`, with the longer lifetime of comparisons (see CacheSettings)."""
    rate_limiter: RateLimiter
    nonces: NonceStore
    metrics: Metrics
    launcher: EvaluationLauncher
    provider_keys: dict[str, bytes]
    signature_tolerance_seconds: int
    expensive_reads: ExpensiveReads
    """Single flight and the computation cap of comparisons (see api/cache.py)."""
    principals: PrincipalCache = field(default_factory=lambda: PrincipalCache(0))
    """Recently authenticated API keys (see api/principals.py)."""
    redis: redis.asyncio.Redis[bytes] | None = None
    """The shared Redis client, when Redis is configured."""
    address_blocks: AddressBlocks = field(default_factory=AddressBlocks)
    """Addresses past their limit of failed authentications (see api/address_blocks.py)."""
    domains: DomainSettings = field(default_factory=DomainSettings)
    """DNS checks, the ACME CA and the sealing key of custom domains and certificates."""
    serving: ServingRuntime | None = None
    """Serving the agents: champion and experiment caches, the shadow dispatcher."""
