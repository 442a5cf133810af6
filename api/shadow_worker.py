"""The shadow worker process: loads challenger model versions and predicts one input at a time.

Started by `api.shadow` (spawned, so it shares no threads or sockets with the API process), at
a lower OS priority, and killed and replaced when a prediction outlives the timeout. It never
touches the database: the API process writes what it answers, in batches.
"""

from __future__ import annotations

import contextlib
import os
import time
from multiprocessing.connection import Connection
from typing import Any


def predict_one(model: Any, text: str) -> str:
    """One prediction checked for shape: exactly one text back, or ValueError."""
    outputs = model.predict([text])
    values = list(outputs) if not isinstance(outputs, str | bytes) else [outputs]
    if len(values) != 1:
        raise ValueError(f"the model answered {len(values)} outputs for one input")
    value = values[0]
    if not isinstance(value, str):
        raise ValueError(f"the model answered a {type(value).__name__}, not text")
    return value


def lower_priority(niceness: int, *, idle: bool) -> None:
    """Lower this process's OS priority: `niceness` steps, and the idle scheduling class when
    `idle` (where the OS has one); refusals are ignored (the worker still runs, only sooner)."""
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    if idle and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def serve(connection: Connection, tracking_uri: str, niceness: int, idle: bool = False) -> None:
    """Say `("ready",)` once imported, then answer until the pipe closes:
    `("load", name, version)` with `("ok", "", ms)` or `("error", why, ms)`, and
    `("predict", name, version, text)` with `("ok", output, ms)` or `("error", why, ms)`."""
    lower_priority(niceness, idle=idle)
    import mlflow

    from models.registry import client as registry

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    connection.send(("ready",))
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        started = time.perf_counter()
        try:
            model = registry.load_model(registry.ModelVersionRef(message[1], message[2]))
            output = predict_one(model, message[3]) if message[0] == "predict" else ""
            reply: tuple[str, str, float] = ("ok", output, _ms(started))
        except Exception as error:
            reply = ("error", f"{type(error).__name__}: {error}"[:2000], _ms(started))
        try:
            connection.send(reply)
        except (BrokenPipeError, OSError):
            return


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
