"""The FastAPI application: tenants under `/v1`, the provider under `/provider/v1`."""

from __future__ import annotations

import gc
import importlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from api.cache import ComputeSlots, ExpensiveReads
from api.dashboards.pages import static_files
from api.edge import EdgeMiddleware
from api.errors import install_error_handlers
from api.observability import Metrics, RequestContextMiddleware
from api.principals import PrincipalCache
from api.routers import (
    acme,
    agents,
    console,
    dashboards,
    docs,
    experiment_pages,
    health,
    jobs,
    profitability,
    promotion,
    provider,
    tenant,
    tenant_dashboards,
)
from api.serving import ServingRuntime
from api.settings import ApiSettings, ProviderAuthSettings
from api.state import ApiState, EvaluationLauncher
from models.cache.cache import make_immutable_result_cache, make_result_cache
from models.cache.client import make_async_client
from models.cache.flight import RedisFlightLock, SingleFlight
from models.cache.nonces import make_nonce_store
from models.cache.rate_limit import make_rate_limiter
from models.cache.settings import CacheSettings
from models.db.engine import make_engine, make_sessionmaker
from models.db.migrate import ensure_schema
from models.domain_settings import DomainSettings
from models.registry import client as registry
from models.settings import (
    RegistrySettings,
    ServingSettings,
    StorageSettings,
    normalize_database_url,
)
from pipelines.logging import configure_logging, init_error_reporting

log = structlog.get_logger()

DESCRIPTION = """
Results of StreamFlow evaluations for tenants (`/v1`, API keys) and the platform's operations
for the provider (`/provider/v1`, HMAC-signed requests). Errors are RFC 9457 problem+json;
lists are cursor-paginated; every response carries `X-Request-ID`.
"""


def build_state(
    *,
    api: ApiSettings | None = None,
    storage: StorageSettings | None = None,
    cache_settings: CacheSettings | None = None,
    provider_auth: ProviderAuthSettings | None = None,
    launcher: EvaluationLauncher | None = None,
    serving: ServingSettings | None = None,
) -> ApiState:
    """Open what the API needs from settings (the environment by default)."""
    api = api or ApiSettings()
    storage = storage or StorageSettings()
    cache_settings = cache_settings or CacheSettings()
    provider_auth = provider_auth or ProviderAuthSettings()
    storage.home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(storage.resolved_database_url())
    ensure_schema(engine, migration_url=storage.resolved_migration_url())
    tenant_engine = engine
    if api.database_tenant_url:
        tenant_engine = make_engine(normalize_database_url(api.database_tenant_url))
    elif engine.dialect.name == "postgresql":
        log.warning(
            "database.tenant_login_unset",
            detail="tenant requests use the platform's login: set STREAMFLOW_DATABASE_TENANT_URL "
            "so row-level security backs tenant isolation",
        )
    registry_settings = RegistrySettings()
    registry.configure(registry_settings)
    metrics = Metrics()
    client = make_async_client(cache_settings) if cache_settings.redis_url else None
    shared_cache = make_result_cache(cache_settings, metrics.cache_counters, client=client)
    comparisons = cache_settings.model_copy(
        update={"cache_ttl_seconds": cache_settings.comparison_ttl_seconds}
    )
    sessions = make_sessionmaker(engine)
    return ApiState(
        api=api,
        storage=storage,
        registry=registry_settings,
        cache_settings=cache_settings,
        engine=engine,
        sessions=sessions,
        tenant_engine=tenant_engine,
        tenant_sessions=make_sessionmaker(tenant_engine),
        cache=shared_cache,
        immutable_cache=make_immutable_result_cache(
            cache_settings, metrics.cache_counters, shared_cache
        ),
        comparison_cache=make_immutable_result_cache(
            cache_settings,
            metrics.cache_counters,
            make_result_cache(comparisons, metrics.cache_counters, client=client),
        ),
        rate_limiter=make_rate_limiter(cache_settings, metrics.rate_limit_counters, client=client),
        nonces=make_nonce_store(cache_settings, client=client),
        metrics=metrics,
        launcher=launcher or _load_launcher(api),
        provider_keys=provider_auth.signing_keys(),
        signature_tolerance_seconds=provider_auth.signature_tolerance_seconds,
        expensive_reads=ExpensiveReads(
            flights=SingleFlight(
                RedisFlightLock(client, key_prefix=cache_settings.key_prefix) if client else None,
                metrics.flight_counters,
                lock_seconds=api.comparison_lock_seconds,
                wait_seconds=api.comparison_wait_seconds,
            ),
            slots=ComputeSlots(api.comparison_concurrency),
            metrics=metrics,
        ),
        principals=PrincipalCache(api.auth_cache_seconds),
        redis=client,
        domains=DomainSettings(home=storage.home),
        serving=ServingRuntime(serving or ServingSettings(), sessions),
    )


def _load_launcher(api: ApiSettings) -> EvaluationLauncher:
    """The launcher named in the settings (flow code is handed in by name, never imported)."""
    module_name, _, attribute = api.evaluation_launcher.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    launcher: EvaluationLauncher = factory(api.evaluation_deployment)
    return launcher


def create_app(state: ApiState | None = None) -> FastAPI:
    """The app; `uvicorn --factory api.app:create_app` builds its state from the environment."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not hasattr(app.state, "streamflow"):
            configure_logging(level=os.environ.get("STREAMFLOW_LOG_LEVEL", "INFO").upper())
            init_error_reporting(os.environ.get("STREAMFLOW_SENTRY_DSN"), component="api")
            app.state.streamflow = build_state()
        # The process holds a large, long-lived heap (pandas, MLflow, SQLAlchemy); moving it out
        # of the collector's reach keeps full collections from pausing requests.
        gc.collect()
        gc.freeze()
        yield
        opened: ApiState = app.state.streamflow
        opened.launcher.shutdown()
        if opened.serving is not None:
            opened.serving.close()
        if opened.redis is not None:
            await opened.redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
        opened.tenant_engine.dispose()
        opened.engine.dispose()

    app = FastAPI(
        title="StreamFlow API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # A slash redirect would take its target from the Host header (an open redirect).
        redirect_slashes=False,
    )
    if state is not None:
        app.state.streamflow = state
    # Added first, so it runs inside the request context (its refusals carry the request id).
    app.add_middleware(EdgeMiddleware)
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(tenant.router)
    app.include_router(provider.router)
    app.include_router(jobs.router)
    app.include_router(jobs.provider_router)
    app.include_router(acme.router)
    app.include_router(profitability.provider_router)
    app.include_router(profitability.tenant_router)
    app.include_router(agents.tenant_router)
    app.include_router(agents.provider_router)
    app.include_router(promotion.provider_router)
    # The console first: its /dashboards/evaluations/new must not be read as a run id.
    app.include_router(console.router)
    app.include_router(dashboards.router)
    app.include_router(experiment_pages.router)
    app.include_router(tenant_dashboards.router)
    app.mount("/dashboards/static", static_files(), name="dashboard-static")
    docs.install(app)
    return app
