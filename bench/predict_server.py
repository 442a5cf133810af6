"""The API app for `bench.predict_bench`, with optional stages cut out of the shadow path and
time spans of the request's own work and of the serving log's writes (CPU time and statements
too), apart for shadowed predictions and batches holding shadow rows (written as JSON to
`PREDICT_BENCH_SPANS` every 200 predictions and on exit).

`PREDICT_BENCH_STAGE`:
- `full` (default): the shadow as shipped (a worker process answers and writes the rows);
- `no_run`: the challenger is not asked: a thread of the API process echoes each input and its
  row goes through the serving log (the queue and the rows without any prediction).

The serving log's batching is set as usual (`STREAMFLOW_SERVING_LOG_FLUSH_SECONDS`; 0 writes
each served prediction before its response, as before batching).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.engine import Engine

import api.serving
from api.app import create_app as create_api

_SPANS: dict[str, list[float]] = {}
_LOCK = threading.Lock()


_STATEMENTS = threading.local()
"""SQL statements sent by the current thread (counted per serving-log write)."""


@event.listens_for(Engine, "before_cursor_execute")
def _count_statement(*_args: Any) -> None:
    _STATEMENTS.count = getattr(_STATEMENTS, "count", 0) + 1


def _record(name: str, value: float) -> None:
    with _LOCK:
        _SPANS.setdefault(name, []).append(value)
        every = sum(len(_SPANS.get(key, ())) for key in PREDICT_SPANS) % 200 == 0
    if every:
        _dump()


PREDICT_SPANS = ("predict", "predict_shadowed")


def _timed_predict(function: Callable[..., Any]) -> Callable[..., Any]:
    """The prediction's span, apart for predictions handed to the shadow."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        served = None
        try:
            served = function(*args, **kwargs)
            return served
        finally:
            shadowed = served is not None and served.shadow is not None
            _record(PREDICT_SPANS[shadowed], (time.perf_counter() - started) * 1000)

    return wrapper


def _timed_write(function: Callable[..., Any]) -> Callable[..., Any]:
    """A serving-log write's wall time, the CPU time of its thread (time the writer can hold
    the interpreter) and its statements, apart for batches that hold shadow rows."""

    def wrapper(self: Any, traffic: Any, usage: Any) -> Any:
        started, cpu = time.perf_counter(), time.thread_time()
        before = getattr(_STATEMENTS, "count", 0)
        try:
            return function(self, traffic, usage)
        finally:
            name = "log_write"
            if any(row["role"] == "shadow" for row in traffic):
                name = "log_write_with_shadow"
            _record(f"{name}_cpu", (time.thread_time() - cpu) * 1000)
            _record(f"{name}_statements", getattr(_STATEMENTS, "count", 0) - before)
            _record(f"{name}_rows", len(traffic) + len(usage))
            _record(name, (time.perf_counter() - started) * 1000)

    return wrapper


class _Instant:
    def run(self, _challenger: str, text: str) -> tuple[str | None, float, str | None]:
        return text, 0.0, None

    def close(self) -> None:
        return None


def _with_runner(init: Callable[..., None]) -> Callable[..., None]:
    """`ServingRuntime.__init__` with the echoing runner handed in (`no_run`)."""

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **{**kwargs, "make_runner": _Instant})

    return wrapper


def _dump() -> None:
    target = os.environ.get("PREDICT_BENCH_SPANS")
    if not target:
        return
    summary: dict[str, Any] = {}
    with _LOCK:
        held = {name: list(values) for name, values in _SPANS.items()}
    held.update({name: list(values) for name, values in _GC_PAUSES.items() if values})
    for name, values in held.items():
        ordered = sorted(values)
        summary[name] = {
            "n": len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2], 3),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "max_ms": round(ordered[-1], 3),
            "total_ms": round(sum(ordered), 1),
        }
    Path(target).write_text(json.dumps({**summary, "long": list(_LONG)}), encoding="utf-8")


LONG_MS = 200.0
_LONG: list[tuple[str, float, float]] = []
"""(what, when as Unix time, ms) of each stall or collection over `LONG_MS`."""
_GC_STARTED: list[float] = []
_GC_PAUSES: dict[str, list[float]] = {
    **{f"gc_gen{generation}": [] for generation in range(3)},
    "server_stall": [],
}
"""Appended without `_LOCK`: a collection can start while a thread holds it."""


def _time_collections(phase: str, info: dict[str, Any]) -> None:
    """The cyclic garbage collector's pauses, by generation (they stop every thread)."""
    if phase == "start":
        _GC_STARTED[:] = [time.perf_counter()]
    elif _GC_STARTED:
        pause = (time.perf_counter() - _GC_STARTED[0]) * 1000
        _GC_PAUSES[f"gc_gen{info['generation']}"].append(pause)
        if pause > LONG_MS:
            _LONG.append((f"gc_gen{info['generation']}", round(time.time(), 2), round(pause, 1)))


def _watch_stalls() -> None:
    """Oversleep of a 50 ms sleep, from a thread of its own: how long the process could not
    run Python (the interpreter held elsewhere, a collection, or no core to run on)."""
    while True:
        started = time.perf_counter()
        time.sleep(0.05)
        stall = (time.perf_counter() - started) * 1000 - 50
        _GC_PAUSES["server_stall"].append(stall)
        if stall > LONG_MS:
            _LONG.append(("server_stall", round(time.time(), 2), round(stall, 1)))


def create_app() -> FastAPI:
    stage = os.environ.get("PREDICT_BENCH_STAGE", "full")
    runtime = api.serving.ServingRuntime
    patches: dict[str, Any] = {
        "predict": _timed_predict(runtime.predict),
        "_write_rows": _timed_write(runtime._write_rows),
    }
    if stage == "no_run":
        patches["__init__"] = _with_runner(runtime.__init__)
    for name, value in patches.items():
        setattr(runtime, name, value)
    gc.callbacks.append(_time_collections)
    threading.Thread(target=_watch_stalls, name="stall-watch", daemon=True).start()
    atexit.register(_dump)
    return create_api()
