"""Read-through caching of the API's expensive reads: a completed run's detail, comparisons.

A read asks the cache first and opens the database only on a miss; what it loaded is stored
only when it can never change (results of completed runs: a completed run is final, every
status change is conditional on the run not being completed, so a cached document is never
contradicted by the database and needs no invalidation when other runs change). The keys and
tags come from `models.cache.keys`, which the evaluation flow also uses to warm a finished
run's detail.

A comparison costs seconds of CPU (paired bootstrap over every example), so a missing one is
guarded three ways (`ExpensiveReads`):

- single flight (`models.cache.flight`): identical requests arriving together compute it once,
  in one process (across processes while Redis answers); the others wait for its result;
- a cap on computations per process (`ComputeSlots`): beyond it a request for another
  uncached comparison gets 503 with `Retry-After` instead of queueing more CPU work;
- the work runs in a worker thread, off the event loop, on a database session of its own (a
  tenant's opens the tenant login and presents the request's API key, as every tenant
  transaction does; a provider user's is the platform's), so no one request's lifetime decides
  whether it finishes for the others.

Results of completed runs never change, so the stored comparison stays right for as long as
the cache keeps it; a cold one is computed again only after the cache dropped it. Before any
of that, a comparison the evaluation flow stored when run B completed (against the champion's
run: `views.compare_with_champion`) is read from the database: the same document, in
milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from api.errors import Busy
from api.observability import Metrics
from models.cache.cache import ResultCache
from models.cache.flight import FlightTimedOut, SingleFlight
from models.cache.keys import comparison_key, run_detail_key, run_tag
from pipelines.evaluation.service import compare_runs
from pipelines.evaluation.views import (
    comparison_payload,
    encode,
    run_detail,
    stored_comparison,
)


async def _read_through(
    cache: ResultCache | None,
    key: str,
    load: Callable[[], dict[str, Any]],
    *,
    tags: Sequence[str],
    cacheable: Callable[[dict[str, Any]], bool],
) -> bytes:
    if cache is not None:
        cached = await cache.get(key)
        if cached is not None:
            return cached
    # The load runs blocking SQL (and, for comparisons, bootstrap resampling): off the event loop.
    document = await anyio.to_thread.run_sync(load)
    body = encode(document)
    if cache is not None and cacheable(document):
        await cache.set(key, body, tags=tags)
    return body


async def cached_run_detail(
    session: Callable[[], Session],
    cache: ResultCache | None,
    *,
    organization_id: uuid.UUID,
    run_id: uuid.UUID,
) -> bytes:
    """A run's detail as JSON bytes, read through the cache once the run is completed.

    `session` opens the database session only when the cache cannot answer.

    Results of a completed run never change, so only those are cached; a pending or running
    run is read from the database on every poll.
    """
    return await _read_through(
        cache,
        run_detail_key(organization_id, run_id),
        lambda: run_detail(session(), organization_id=organization_id, run_id=run_id),
        tags=[run_tag(run_id)],
        cacheable=lambda document: document["status"] == "completed",
    )


RETRY_AFTER_SECONDS = 5
"""What a refused expensive read tells its client to wait."""


class ComputeSlots:
    """At most `limit` expensive computations at once in this process; beyond, `Busy`.

    Taken and given back on the event loop only, so it needs no lock.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.running = 0

    @contextmanager
    def take(self, what: str) -> Iterator[None]:
        if self.running >= self.limit:
            raise Busy(
                f"this server is computing {self.limit} {what}s already; retry after "
                f"{RETRY_AFTER_SECONDS} s (results already computed are served at once)",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1


@dataclass
class ExpensiveReads:
    """What guards reads that cost seconds of CPU: single flight, a slot cap, their metrics."""

    flights: SingleFlight
    slots: ComputeSlots
    metrics: Metrics


ScopedSession = Callable[[], AbstractContextManager[Session]]
"""Opens a session with its transaction begun and already in the caller's row scope; the
transaction ends (committed) when the block does."""


def platform_session(sessions: sessionmaker[Session]) -> ScopedSession:
    """A `ScopedSession` of the platform's login (provider callers: it sees every organisation)."""

    @contextmanager
    def scoped() -> Iterator[Session]:
        with sessions() as session, session.begin():
            yield session

    return scoped


def _stored(
    open_session: ScopedSession, organization_id: uuid.UUID, run_a: uuid.UUID, run_b: uuid.UUID
) -> bytes | None:
    with open_session() as session:
        document = stored_comparison(
            session, organization_id=organization_id, run_a=run_a, run_b=run_b
        )
    return None if document is None else encode(document)


async def cached_comparison(
    reads: ExpensiveReads,
    cache: ResultCache | None,
    open_session: ScopedSession,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID,
    run_b: uuid.UUID,
    primary: str | None = None,
) -> bytes:
    """The paired comparison of run b against run a as JSON bytes, read through the cache.

    Only completed runs can be compared, so every comparison is cacheable. One the evaluation
    flow stored (decided on the default primary metric) is read as stored. A missing one is
    computed once for all concurrent identical requests, within the process's slot cap, on a
    session of its own that `open_session` opens in the caller's scope (see the module's
    docstring).
    """
    key = comparison_key(organization_id, run_a, run_b, primary)
    if cache is not None:
        cached = await cache.get(key)
        if cached is not None:
            return cached
    if primary is None:
        # The evaluation flow stores the comparison of a new run with the champion's when the
        # run completes: read it (milliseconds) rather than compute it (up to a minute).
        stored = await anyio.to_thread.run_sync(
            _stored, open_session, organization_id, run_a, run_b
        )
        if stored is not None:
            if cache is not None:
                await cache.set(key, stored, tags=[run_tag(run_a), run_tag(run_b)])
            return stored

    def load() -> dict[str, Any]:
        with open_session() as session:
            result = compare_runs(
                session,
                organization_id=organization_id,
                run_a=run_a,
                run_b=run_b,
                primary=primary,
            )
            return comparison_payload(result)

    async def lookup() -> bytes | None:
        return None if cache is None else await cache.get(key)

    async def compute() -> bytes:
        try:
            with reads.slots.take("comparison"):
                document = await anyio.to_thread.run_sync(load)
        except Busy:
            reads.metrics.refused.labels("comparison", "busy").inc()
            raise
        reads.metrics.computed.labels("comparison").inc()
        body = encode(document)
        if cache is not None:
            await cache.set(key, body, tags=[run_tag(run_a), run_tag(run_b)])
        return body

    try:
        return await reads.flights.run(key, lookup, compute)
    except FlightTimedOut as exc:
        reads.metrics.refused.labels("comparison", "waited").inc()
        raise Busy(
            f"this comparison has been computed by another server for "
            f"{exc.waited_seconds:.0f} s; retry after {RETRY_AFTER_SECONDS} s",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        ) from None
