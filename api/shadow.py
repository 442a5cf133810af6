"""Shadow predictions: the challenger answers a sample of requests after the champion's
response went out, without ever holding the request up.

A request hands a task to `ShadowDispatcher.submit`, which only puts it on a bounded queue
(never waits: when the queue is full the task is counted and dropped). Worker threads take
tasks and have a runner predict: in `process` mode each worker thread owns one spawned worker
process at lower OS priority, killed and replaced when a prediction outlives the timeout, so a
hanging or CPU-heavy challenger never competes with the champion for the interpreter; in
`thread` mode the worker thread predicts itself. Each result becomes a shadow traffic row
handed to `sink` (the serving log, which buffers it and writes it in batches).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, Protocol

import structlog

from api import heap
from api.shadow_worker import predict_one
from api.shadow_worker import serve as serve_in_worker
from models.db.enums import TrafficRole, Variant
from models.registry import client as registry
from pipelines.serving.service import Prediction, traffic_row

log = structlog.get_logger()


@dataclass(frozen=True)
class ShadowTask:
    """One request the challenger should also answer."""

    request_id: str
    organization_id: Any
    agent_type: str
    experiment_id: str
    challenger: str
    """`NAME@VERSION`."""
    input_text: str
    end_user_key: str | None = None


class Runner(Protocol):
    """Predicts one input with one model version: (output or None, latency ms, error or None)."""

    def run(self, challenger: str, text: str) -> tuple[str | None, float, str | None]: ...

    def close(self) -> None: ...


class ThreadRunner:
    """Predicts in the calling worker thread (a hung challenger holds that worker)."""

    def run(self, challenger: str, text: str) -> tuple[str | None, float, str | None]:
        started = time.perf_counter()
        try:
            ref = registry.ModelVersionRef(*challenger.split("@", 1))
            output = predict_one(heap.load_model(ref), text)
        except Exception as error:
            return None, _ms(started), f"{type(error).__name__}: {error}"[:2000]
        return output, _ms(started), None

    def close(self) -> None:
        return None


PRELOADED = ["mlflow.pyfunc", "sklearn.pipeline", "api.shadow_worker", "models.registry.client"]
"""Imported once by the fork server, so a replaced worker starts in a fraction of a second."""


def _worker_context() -> Any:
    """Fork-server processes: each worker forks from a clean server that imported the model
    libraries once (never from the API process, whose threads and sockets must not be forked)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


class ProcessRunner:
    """Predicts in a spawned worker process of its own, replaced after a timeout or a crash.

    Starting the process and loading a model version get `startup_seconds`; only the
    prediction itself is held to `timeout_seconds`.
    """

    def __init__(
        self,
        *,
        tracking_uri: str,
        timeout_seconds: float,
        niceness: int,
        idle: bool = False,
        startup_seconds: float = 60.0,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.timeout_seconds = timeout_seconds
        self.startup_seconds = startup_seconds
        self.niceness = niceness
        self.idle = idle
        self._context = _worker_context()
        self._process: Any = None
        self._connection: Connection | None = None
        self._loaded: set[str] = set()
        self._stop_lock = threading.Lock()
        self.restarts = 0

    def _ensure(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection
        self._stop()
        pipe: tuple[Connection, Connection] = self._context.Pipe()
        parent, child = pipe
        process = self._context.Process(
            target=serve_in_worker,
            args=(child, self.tracking_uri, self.niceness, self.idle),
            name="streamflow-shadow",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._connection = process, parent
        if not parent.poll(self.startup_seconds):
            self._stop()
            raise TimeoutError(f"the shadow worker did not start within {self.startup_seconds} s")
        parent.recv()
        return parent

    def _ask(self, message: tuple[str, ...], timeout: float) -> tuple[str, str, float] | None:
        connection = self._ensure()
        connection.send(message)
        if not connection.poll(timeout):
            return None
        status, value, latency = connection.recv()
        return str(status), str(value), float(latency)

    def run(self, challenger: str, text: str) -> tuple[str | None, float, str | None]:
        name, _, version = challenger.partition("@")
        started = time.perf_counter()
        try:
            if challenger not in self._loaded:
                loaded = self._ask(("load", name, version), self.startup_seconds)
                if loaded is None:
                    raise TimeoutError(f"loading {challenger} took over {self.startup_seconds} s")
                if loaded[0] != "ok":
                    return None, loaded[2], loaded[1]
                self._loaded.add(challenger)
            reply = self._ask(("predict", name, version, text), self.timeout_seconds)
        except (EOFError, OSError, TimeoutError) as error:
            self._stop()
            self.restarts += 1
            return None, _ms(started), f"shadow worker failed: {type(error).__name__}: {error}"
        if reply is None:
            # A hung or slow challenger: replace its worker, so the next task starts afresh.
            self._stop()
            self.restarts += 1
            return None, _ms(started), f"timed out after {self.timeout_seconds:g} s"
        status, value, latency = reply
        if status == "ok":
            return value, latency, None
        return None, latency, value

    def _stop(self) -> None:
        with self._stop_lock:
            connection, self._connection = self._connection, None
            process, self._process = self._process, None
            self._loaded.clear()
        if connection is not None:
            connection.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)

    def close(self) -> None:
        self._stop()


@dataclass
class ShadowStats:
    """What the dispatcher did since it started."""

    submitted: int = 0
    dropped: int = 0
    completed: int = 0
    failed: int = 0


class ShadowDispatcher:
    """The bounded queue and its worker threads (see the module docstring)."""

    def __init__(
        self,
        *,
        make_runner: Callable[[], Runner],
        sink: Callable[[dict[str, Any]], object],
        workers: int,
        queue_size: int,
        text_limit: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._make_runner = make_runner
        self._sink = sink
        self._workers = workers
        self._queue: queue.Queue[ShadowTask | None] = queue.Queue(maxsize=queue_size)
        self._text_limit = text_limit
        self._clock = clock
        self._threads: list[threading.Thread] = []
        self._runners: list[Runner] = []
        self._started = False
        self._closed = False
        self._start_lock = threading.Lock()
        self.stats = ShadowStats()
        self._stats_lock = threading.Lock()

    def submit(self, task: ShadowTask) -> bool:
        """Queue a task; False (counted as dropped) when the queue is full or closed."""
        if self._closed:
            self._count("dropped")
            return False
        self._start()
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            self._count("dropped")
            return False
        self._count("submitted")
        return True

    def _count(self, name: str) -> None:
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _start(self) -> None:
        if self._started:
            return
        with self._start_lock:
            if self._started:
                return
            for number in range(self._workers):
                runner = self._make_runner()
                self._runners.append(runner)
                thread = threading.Thread(
                    target=self._work, args=(runner,), name=f"shadow-{number}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            self._started = True

    def _work(self, runner: Runner) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                self._queue.task_done()
                return
            try:
                output, latency, error = runner.run(task.challenger, task.input_text)
                self._sink(
                    traffic_row(
                        Prediction(
                            request_id=task.request_id,
                            organization_id=task.organization_id,
                            agent_type=task.agent_type,
                            model_version=task.challenger,
                            input_text=task.input_text,
                            output_text=output,
                            latency_ms=latency,
                            error=error,
                            experiment_id=task.experiment_id,
                            variant=Variant.CHALLENGER,
                            role=TrafficRole.SHADOW,
                            end_user_key=task.end_user_key,
                        ),
                        now=self._clock(),
                        text_limit=self._text_limit,
                    )
                )
                self._count("completed" if error is None else "failed")
            except Exception:
                log.exception("shadow.task_failed", request_id=task.request_id)
            finally:
                self._queue.task_done()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued task is answered and handed to the sink (tests, shutdown);
        False on timeout."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout=timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking tasks and stop the workers; waits at most `timeout` seconds in all for
        the threads (a hung challenger's thread is left behind)."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        for _ in range(self._workers):
            try:
                self._queue.put_nowait(None)
            except queue.Full:
                break
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for runner in self._runners:
            runner.close()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
