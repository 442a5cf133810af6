"""The API app for `bench.predict_bench`, with optional stages cut out of the shadow path and
time spans of the request's own work (written as JSON to `PREDICT_BENCH_SPANS` on exit).

`PREDICT_BENCH_STAGE`:
- `full` (default): the shadow as shipped;
- `no_run`: queued and written, but the challenger is not asked (no worker process);
- `no_write`: the worker process answers, but its rows are dropped (not written).

The serving log's batching is set as usual (`STREAMFLOW_SERVING_LOG_FLUSH_SECONDS`; 0 writes
each served prediction before its response, as before batching).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI

import api.serving
import api.serving_log
from api.app import create_app as create_api

_SPANS: dict[str, list[float]] = {}
_LOCK = threading.Lock()


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            with _LOCK:
                _SPANS.setdefault(name, []).append(elapsed)
                every = len(_SPANS["predict"]) % 200 == 0 if "predict" in _SPANS else False
            if every:
                _dump()

    return wrapper


class _Instant:
    def run(self, _challenger: str, text: str) -> tuple[str | None, float, str | None]:
        return text, 0.0, None

    def close(self) -> None:
        return None


def _dump() -> None:
    target = os.environ.get("PREDICT_BENCH_SPANS")
    if not target:
        return
    summary = {}
    with _LOCK:
        held = {name: list(values) for name, values in _SPANS.items()}
    for name, values in held.items():
        ordered = sorted(values)
        summary[name] = {
            "n": len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2], 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "total_ms": round(sum(ordered), 1),
        }
    Path(target).write_text(json.dumps(summary), encoding="utf-8")


def create_app() -> FastAPI:
    stage = os.environ.get("PREDICT_BENCH_STAGE", "full")
    runtime = api.serving.ServingRuntime
    patches: dict[str, Any] = {
        "predict": _timed("predict", runtime.predict),
        "_write_rows": _timed("log_write", runtime._write_rows),
    }
    if stage == "no_run":
        patches["_default_runner"] = lambda _self: _Instant()
    for name, value in patches.items():
        setattr(runtime, name, value)
    if stage == "no_write":
        log = api.serving_log.ServingLog
        add = log.add

        def served_only(self: Any, traffic: Any, usage: Any, *, served: bool) -> bool:
            return add(self, traffic, usage, served=True) if served else False

        log.add = served_only  # type: ignore[method-assign]
    atexit.register(_dump)
    return create_api()
