"""Request ids, access logs and Prometheus metrics for every request."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, Metric
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import rate_limit_headers
from models.cache.cache import Counters

log = structlog.get_logger()

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


class Metrics:
    """The API's Prometheus series, in a registry of their own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "streamflow_http_request_duration_seconds",
            "Request latency by route template and method.",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.responses = Counter(
            "streamflow_http_responses_total",
            "Responses by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "streamflow_rate_limited_total",
            "Requests rejected by a rate limit, by limit kind.",
            ["kind"],
            registry=self.registry,
        )
        self.computed = Counter(
            "streamflow_expensive_reads_computed_total",
            "Expensive reads computed (cache misses that ran), by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.refused = Counter(
            "streamflow_expensive_reads_refused_total",
            "Expensive reads refused with 503, by kind and reason (busy: no computation slot "
            "free; waited: computed elsewhere for too long).",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.cache_counters = Counters()
        self.rate_limit_counters = Counters()
        self.flight_counters = Counters()
        self.registry.register(
            _CountersCollector(self.cache_counters, self.rate_limit_counters, self.flight_counters)
        )
        self.redis_errors = Counter(
            "streamflow_redis_errors_total",
            "Redis failures by component (the API failed open or closed as designed).",
            ["component"],
            registry=self.registry,
        )


class _CountersCollector(Collector):
    """Exports the cache's and rate limiter's counters at scrape time."""

    def __init__(self, cache: Counters, rate_limit: Counters, flight: Counters) -> None:
        self.cache = cache
        self.rate_limit = rate_limit
        self.flight = flight

    def collect(self) -> Iterator[Metric]:
        cache = self.cache.snapshot()
        lookups = CounterMetricFamily(
            "streamflow_cache_lookups", "Result cache lookups by outcome.", labels=["outcome"]
        )
        lookups.add_metric(["hit"], cache["hits"])
        lookups.add_metric(["miss"], cache["misses"])
        yield lookups
        errors = CounterMetricFamily(
            "streamflow_redis_fail_open",
            "Redis failures the API rode out (cache served from the database, rate limits "
            "in-process, expensive reads computed without the cross-process lock).",
            labels=["component"],
        )
        errors.add_metric(["cache"], cache["errors"])
        errors.add_metric(["rate_limit"], self.rate_limit.snapshot()["errors"])
        errors.add_metric(["single_flight"], self.flight.snapshot()["errors"])
        yield errors


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    """Accepts or makes an `X-Request-ID`, binds it into every log line, echoes it, measures."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, int] = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                decision = scope["state"].get("rate_limit")
                if decision is not None and status_holder["status"] < 400:
                    for name, value in rate_limit_headers(decision).items():
                        headers.append((name.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope.get("method", "")
            status = status_holder["status"]
            # The app's state (and its metrics) is built by the lifespan, after this middleware.
            metrics: Metrics = scope["app"].state.streamflow.metrics
            metrics.latency.labels(route, method).observe(elapsed)
            metrics.responses.labels(route, method, str(status)).inc()
            log.info(
                "request.finished",
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 3),
            )
            structlog.contextvars.clear_contextvars()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            decoded: Any = value.decode("latin-1")
            return str(decoded)
    return None


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
