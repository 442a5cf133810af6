"""The shadow worker process: answers batches of shadow tasks with challenger model versions and
writes the shadow traffic rows itself, so the API process only queues tasks and sends a batch
now and then.

Started by `api.shadow` from a fork server (it shares no threads or sockets with the API
process), at a lower OS priority. Each task of a batch is predicted and timed on its own; its
traffic row is buffered and written with its own database engine, in one transaction, when
`batch_size` rows wait or the oldest waited `flush_seconds` (checked after each batch and while
idle), when a batch asks for it (`drain`), and when the pipe closes (a graceful stop). A
killed worker loses the rows of its last `flush_seconds`.

A watchdog thread cuts off a prediction that outlives `timeout_seconds` (a load,
`startup_seconds`): it writes the timed-out task's row with everything buffered, tells the API
process which task it was, and ends the process, which the API process then replaces. The
API process kills a worker whose watchdog could not run either (a challenger holding the
interpreter) a grace period later.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from api.serving_log import MAX_RETRY_SECONDS

TaskTuple = tuple[str, str, str, str, str, str, str | None]
"""A shadow task on the pipe: (request id, organisation id, agent type, experiment id,
challenger `NAME@VERSION`, input text, end-user key)."""


@dataclass(frozen=True)
class WorkerConfig:
    """What a shadow worker process needs to answer and write."""

    tracking_uri: str
    database_url: str
    timeout_seconds: float
    startup_seconds: float
    text_limit: int
    flush_seconds: float
    batch_size: int
    capacity: int
    niceness: int = 0
    idle: bool = False


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


def shadow_row(task: TaskTuple, output: str | None, latency_ms: float, error: str | None,
               *, now: datetime, text_limit: int) -> dict[str, Any]:  # fmt: skip
    """The shadow traffic row of one task's answer (or error)."""
    from models.db.enums import TrafficRole, Variant
    from pipelines.serving.service import Prediction, traffic_row

    request_id, organization_id, agent_type, experiment_id, challenger, text, end_user = task
    return traffic_row(
        Prediction(
            request_id=request_id,
            organization_id=uuid.UUID(organization_id),
            agent_type=agent_type,
            model_version=challenger,
            input_text=text,
            output_text=output,
            latency_ms=latency_ms,
            error=error,
            experiment_id=experiment_id,
            variant=Variant.CHALLENGER,
            role=TrafficRole.SHADOW,
            end_user_key=end_user,
        ),
        now=now,
        text_limit=text_limit,
    )


class RowBuffer:
    """The worker's shadow rows waiting to be written, and their writes (thread-safe: the
    watchdog writes too)."""

    def __init__(self, write: Callable[[Sequence[dict[str, Any]]], None], config: WorkerConfig):
        self._write = write
        self._config = config
        self._rows: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self.dropped = 0
        self.write_errors = 0

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            if len(self._rows) >= self._config.capacity:
                self.dropped += 1
                return
            if not self._rows:
                self._oldest = time.monotonic()
            self._rows.append(row)

    def due(self) -> bool:
        """Whether the rows should be written now (a full batch, or the oldest waited long
        enough), unless a failed write's pause is still running."""
        with self._lock:
            if not self._rows or time.monotonic() < self._retry_at:
                return False
            return (
                len(self._rows) >= self._config.batch_size
                or time.monotonic() - self._oldest >= self._config.flush_seconds
            )

    def seconds_to_due(self) -> float | None:
        """Seconds until the buffered rows are due (None: nothing buffered)."""
        with self._lock:
            if not self._rows:
                return None
            due = max(self._oldest + self._config.flush_seconds, self._retry_at)
            return max(0.0, due - time.monotonic())

    def write(self) -> str | None:
        """Write every buffered row in one transaction; None, or why it failed (the rows stay
        buffered, retried after a growing pause)."""
        with self._lock:
            if not self._rows:
                return None
            try:
                self._write(self._rows)
            except Exception as error:
                self._failures += 1
                self.write_errors += 1
                pause = min(MAX_RETRY_SECONDS, self._config.flush_seconds * 2**self._failures)
                self._retry_at = time.monotonic() + pause
                return f"{type(error).__name__}: {error}"[:500]
            self._rows = []
            self._failures = 0
            self._retry_at = 0.0
            return None


@dataclass
class Current:
    """The task being answered: its index in the batch, the deadline of the step under way
    and the error to log if it passes (None: nothing under way)."""

    index: int = -1
    task: TaskTuple | None = None
    started: float = 0.0
    deadline: float = 0.0
    why: str = ""


class Worker:
    """Answers batches on one pipe (see the module docstring)."""

    def __init__(self, connection: Connection, config: WorkerConfig, progress: Any) -> None:
        from models.db.engine import make_engine, make_sessionmaker, transaction
        from models.registry import client as registry
        from pipelines.serving.service import record_shadow_batch

        self._connection = connection
        self._config = config
        self._progress = progress
        """Shared with the API process: [index of the task under way, deadline as Unix time]
        (deadline 0 when nothing is under way)."""
        self._registry = registry
        engine = make_engine(config.database_url)
        sessions = make_sessionmaker(engine)

        def write(rows: Sequence[dict[str, Any]]) -> None:
            with transaction(sessions) as session:
                record_shadow_batch(session, rows)

        self.rows = RowBuffer(write, config)
        self._lock = threading.Lock()
        self._current = Current()
        self._send_lock = threading.Lock()
        self.answered = 0
        self.failed = 0
        """Tasks of the batch under way answered and failed so far."""

    def _begin(self, index: int, task: TaskTuple, seconds: float, why: str) -> None:
        with self._lock:
            deadline = time.time() + seconds
            self._current = Current(index, task, time.perf_counter(), deadline, why)
            self._progress[0], self._progress[1] = float(index), deadline

    def _end(self) -> bool:
        """The step under way is over; False when the watchdog already cut it off."""
        with self._lock:
            if self._current.task is None:
                return False
            self._current = Current()
            self._progress[1] = 0.0
            return True

    def _send(self, message: tuple[Any, ...]) -> None:
        with self._send_lock:
            self._connection.send(message)

    def answer(self, tasks: Sequence[TaskTuple]) -> tuple[int, int]:
        """Answer each task in turn, its row buffered: (answered, failed)."""
        self.answered = self.failed = 0
        for index, task in enumerate(tasks):
            challenger = task[4]
            name, _, version = challenger.partition("@")
            started = time.perf_counter()
            output: str | None = None
            error: str | None = None
            try:
                ref = self._registry.ModelVersionRef(name, version)
                why = f"loading {challenger} took over {self._config.startup_seconds:g} s"
                self._begin(index, task, self._config.startup_seconds, why)
                model = self._registry.load_model(ref)
                if not self._end():
                    self._hang()
                started = time.perf_counter()
                why = f"timed out after {self._config.timeout_seconds:g} s"
                self._begin(index, task, self._config.timeout_seconds, why)
                try:
                    output = predict_one(model, task[5])
                finally:
                    if not self._end():
                        self._hang()
            except Exception as failure:
                error = f"{type(failure).__name__}: {failure}"[:2000]
            latency = (time.perf_counter() - started) * 1000.0
            self.rows.add(self._row(task, output, latency, error))
            if error is None:
                self.answered += 1
            else:
                self.failed += 1
        return self.answered, self.failed

    def _row(self, task: TaskTuple, output: str | None, latency: float, error: str | None
             ) -> dict[str, Any]:  # fmt: skip
        return shadow_row(
            task,
            output,
            latency,
            error,
            now=datetime.now(UTC),
            text_limit=self._config.text_limit,
        )

    @staticmethod
    def _hang() -> None:
        """The watchdog cut this step off and is ending the process: wait for it."""
        while True:
            time.sleep(60)

    def watch(self) -> None:
        """The watchdog (see the module docstring); runs in a thread of its own."""
        while True:
            time.sleep(0.05)
            with self._lock:
                current = self._current
                if current.task is None or time.time() <= current.deadline:
                    continue
                self._current = Current()
            latency = (time.perf_counter() - current.started) * 1000.0
            self.rows.add(self._row(current.task, None, latency, current.why))
            written = self.rows.write()
            with contextlib.suppress(OSError, ValueError):
                self._send(("timeout", current.index, self.answered, self.failed + 1, written))
            os._exit(0)

    def serve(self) -> None:
        """Answer batches until the pipe closes, then write what is left."""
        while True:
            wait = self.rows.seconds_to_due()
            try:
                if not self._connection.poll(wait):
                    self.rows.write()
                    continue
                message = self._connection.recv()
            except (EOFError, OSError):
                break
            _kind, tasks, flush = message
            completed, failed = self.answer(tasks)
            error = self.rows.write() if flush or self.rows.due() else None
            try:
                self._send(("done", completed, failed, error))
            except (BrokenPipeError, OSError):
                break
        self.rows.write()


def serve(connection: Connection, config: WorkerConfig, progress: Any) -> None:
    """Say `("ready",)` once imported and connected, then answer `("batch", tasks, flush)` with
    `("done", answered, failed, write error or None)` until the pipe closes (see the module
    docstring); a cut-off task is told as `("timeout", index, answered, failed, write error or
    None)`, the tasks before it counted, the process then ending."""
    lower_priority(config.niceness, idle=config.idle)
    import mlflow

    mlflow.set_tracking_uri(config.tracking_uri)
    mlflow.set_registry_uri(config.tracking_uri)
    worker = Worker(connection, config, progress)
    threading.Thread(target=worker.watch, name="shadow-watchdog", daemon=True).start()
    connection.send(("ready",))
    worker.serve()
