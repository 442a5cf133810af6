"""The `dispatch-jobs` Prefect flow: one pass of the job dispatcher (flows/dispatcher.py)."""

from __future__ import annotations

from typing import Any

import structlog
from prefect import flow

from flows.dispatcher import Dispatcher, dispatch_once


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id: str | None = flow_run.get_id()
    return run_id


@flow(name="dispatch-jobs", log_prints=False)
def dispatch_jobs() -> dict[str, Any]:
    """One dispatcher pass: return expired leases, claim due jobs, run them."""
    from flows.runtime import runtime

    dispatcher = Dispatcher.from_environment(runtime().sessions)
    dispatcher.flow_run_id = _flow_run_id()
    structlog.contextvars.bind_contextvars(flow_run_id=dispatcher.flow_run_id)
    outcome = dispatch_once(dispatcher)
    return {"reclaimed": outcome.reclaimed, "claimed": outcome.claimed, **outcome.statuses}
