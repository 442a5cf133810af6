"""Read-through caching of the API's expensive reads: a completed run's detail, comparisons.

A read asks the cache first and opens the database only on a miss; what it loaded is stored
only when it can never change (results of completed runs: a completed run is final, every
status change is conditional on the run not being completed, so a cached document is never
contradicted by the database and needs no invalidation when other runs change). The keys and
tags come from `models.cache.keys`, which the evaluation flow also uses to warm a finished
run's detail.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
from sqlalchemy.orm import Session

from models.cache.cache import ResultCache
from models.cache.keys import comparison_key, run_detail_key, run_tag
from pipelines.evaluation.service import compare_runs
from pipelines.evaluation.views import comparison_payload, encode, run_detail


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


async def cached_comparison(
    session: Callable[[], Session],
    cache: ResultCache | None,
    *,
    organization_id: uuid.UUID,
    run_a: uuid.UUID,
    run_b: uuid.UUID,
) -> bytes:
    """The paired comparison of run b against run a as JSON bytes, read through the cache.

    Only completed runs can be compared, so every comparison is cacheable.
    """

    def load() -> dict[str, Any]:
        result = compare_runs(session(), organization_id=organization_id, run_a=run_a, run_b=run_b)
        return comparison_payload(result)

    return await _read_through(
        cache,
        comparison_key(organization_id, run_a, run_b),
        load,
        tags=[run_tag(run_a), run_tag(run_b)],
        cacheable=lambda _: True,
    )
