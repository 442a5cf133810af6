"""Shadow predictions: the challenger answers a sample of requests after the champion's
response went out, without ever holding the request up.

A request hands a task to the dispatcher's `submit`, which only appends it to a bounded queue
(never waits: when the queue is full the task is counted and dropped).

In `process` mode (`ProcessShadow`) the API process does nothing more per task: a sender
thread per worker process wakes once per batch, sends every waiting task down the pipe in one
message and sleeps until the worker says the batch is done. The worker process
(`api.shadow_worker`, forked from a fork server at lower OS priority) predicts and times each
task on its own, builds the shadow traffic rows and writes them in batches with its own
database connection; its watchdog cuts off a prediction that outlives the timeout, and the
worker is then replaced. In `thread` mode (`ShadowDispatcher`, or with a runner handed in)
worker threads of the API process predict, and each result becomes a shadow traffic row handed
to `sink` (the serving log, which buffers it and writes it in batches).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any, Protocol

import structlog

from api import heap
from api.shadow_worker import TaskTuple, WorkerConfig, predict_one, shadow_row
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


class Shadow(Protocol):
    """A dispatcher of shadow tasks: `ProcessShadow` or `ShadowDispatcher`."""

    stats: ShadowStats

    def submit(self, task: ShadowTask) -> bool: ...

    def drain(self, timeout: float = 30.0) -> bool: ...

    def close(self, timeout: float = 5.0) -> None: ...


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


@dataclass
class ShadowStats:
    """What the dispatcher did since it started."""

    submitted: int = 0
    dropped: int = 0
    completed: int = 0
    failed: int = 0
    lost: int = 0
    """Answered by a worker process that was killed before it wrote their rows."""
    restarts: int = 0
    """Worker processes replaced (after a timeout, a crash or a failed start)."""


PRELOADED = [
    "mlflow.pyfunc",
    "sklearn.pipeline",
    "api.shadow_worker",
    "models.registry.client",
    "models.db.engine",
    "pipelines.serving.service",
]
"""Imported once by the fork server, so a replaced worker starts in a fraction of a second."""


def _worker_context() -> Any:
    """Fork-server processes: each worker forks from a clean server that imported the model
    libraries once (never from the API process, whose threads and sockets must not be forked)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


def _as_tuple(task: ShadowTask) -> TaskTuple:
    return (
        task.request_id,
        str(task.organization_id),
        task.agent_type,
        task.experiment_id,
        task.challenger,
        task.input_text,
        task.end_user_key,
    )


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one batch sent to a worker process."""

    answered: int = 0
    failed: int = 0
    lost: int = 0
    """Tasks answered by a worker killed before it wrote their rows."""
    again: tuple[ShadowTask, ...] = ()
    """Tasks not reached before the worker ended, to send again."""


class WorkerLink:
    """One shadow worker process, its pipe and its progress (started on first use, replaced
    after it ends or is killed).

    Starting the process gets `startup_seconds`; each task's load and prediction are timed by
    the worker's watchdog, and a worker whose watchdog did not act `grace_seconds` after a
    task's deadline is killed from here.
    """

    def __init__(
        self,
        config: WorkerConfig,
        *,
        fallback: Callable[[dict[str, Any]], object],
        clock: Callable[[], datetime],
        grace_seconds: float = 5.0,
    ) -> None:
        self.config = config
        self._fallback = fallback
        self._clock = clock
        self.grace_seconds = grace_seconds
        self._context = _worker_context()
        self._process: Any = None
        self._connection: Connection | None = None
        self._progress: Any = None
        self.restarts = 0
        self.write_errors = 0

    def _ensure(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection
        self.stop()
        pipe: tuple[Connection, Connection] = self._context.Pipe()
        parent, child = pipe
        progress = self._context.RawArray("d", 2)
        process = self._context.Process(
            target=serve_in_worker,
            args=(child, self.config, progress),
            name="streamflow-shadow",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._connection, self._progress = process, parent, progress
        if not parent.poll(self.config.startup_seconds):
            self.stop()
            raise TimeoutError(
                f"the shadow worker did not start within {self.config.startup_seconds:g} s"
            )
        parent.recv()
        return parent

    def run(self, batch: list[ShadowTask], *, flush: bool) -> BatchOutcome:
        """Have the worker answer `batch` (and write everything it holds when `flush`); never
        raises."""
        if not batch and (self._process is None or not self._process.is_alive()):
            return BatchOutcome()  # nothing to answer, and no worker holding rows
        try:
            connection = self._ensure()
        except (EOFError, OSError, TimeoutError) as error:
            return self._failed(batch, f"{type(error).__name__}: {error}")
        try:
            self._progress[0], self._progress[1] = -1.0, 0.0
            connection.send(("batch", [_as_tuple(task) for task in batch], flush))
            while not connection.poll(POLL_SECONDS):
                deadline = float(self._progress[1])
                if deadline and time.time() > deadline + self.grace_seconds:
                    return self._killed(batch, "its watchdog did not act")
            reply = connection.recv()
        except (EOFError, OSError) as error:
            return self._killed(batch, f"{type(error).__name__}: {error}")
        if reply[0] == "done":
            _kind, answered, failed, write_error = reply
            self._note_write_error(write_error)
            return BatchOutcome(answered=answered, failed=failed)
        # ("timeout", index, answered, failed, write error): the worker wrote its rows, the
        # cut-off task's too, and is ending.
        _kind, index, answered, failed, write_error = reply
        self._note_write_error(write_error)
        self.stop()
        self.restarts += 1
        return BatchOutcome(answered=answered, failed=failed, again=tuple(batch[index + 1 :]))

    def _note_write_error(self, error: str | None) -> None:
        if error is not None:
            self.write_errors += 1
            log.warning("shadow.write_failed", error=error)

    def _failed(self, batch: list[ShadowTask], why: str) -> BatchOutcome:
        """The worker did not start, or died before its first task: each task's row says so
        (written by the API process)."""
        self.stop()
        self.restarts += 1
        for task in batch:
            self._fallback(self._row(task, f"shadow worker failed: {why}"))
        return BatchOutcome(failed=len(batch))

    def _killed(self, batch: list[ShadowTask], why: str) -> BatchOutcome:
        """The worker died or hung past its watchdog: the task under way fails (its row
        written by the API process), the ones before it are lost with the worker's unwritten
        rows, the ones after it go again."""
        index, deadline = int(self._progress[0]), float(self._progress[1])
        if index < 0:
            return self._failed(batch, why)
        self.stop()
        self.restarts += 1
        if not deadline:
            # Died between tasks: the last one begun was answered.
            return BatchOutcome(lost=index + 1, again=tuple(batch[index + 1 :]))
        timed_out = time.time() > deadline
        error = (
            f"timed out after {self.config.timeout_seconds:g} s (the worker was killed)"
            if timed_out
            else f"shadow worker failed: {why}"
        )
        self._fallback(self._row(batch[index], error))
        log.warning("shadow.worker_killed", why=why, request_id=batch[index].request_id)
        return BatchOutcome(failed=1, lost=index, again=tuple(batch[index + 1 :]))

    def _row(self, task: ShadowTask, error: str) -> dict[str, Any]:
        return shadow_row(
            _as_tuple(task),
            None,
            0.0,
            error,
            now=self._clock(),
            text_limit=self.config.text_limit,
        )

    @property
    def pid(self) -> int | None:
        """The worker process's id, while it runs."""
        process = self._process
        return None if process is None else int(process.pid)

    @property
    def busy(self) -> bool:
        """Whether the worker is loading or predicting a task now."""
        progress = self._progress
        return progress is not None and self._process is not None and bool(progress[1])

    def stop(self, timeout: float = 5.0) -> None:
        """Close the pipe (the worker writes what it holds and ends), killing the worker if it
        has not ended within `timeout` seconds."""
        connection, self._connection = self._connection, None
        process, self._process = self._process, None
        if connection is not None:
            connection.close()
        if process is not None:
            process.join(timeout=timeout)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)

    def kill(self) -> None:
        """End the worker now (what it holds is lost)."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()


POLL_SECONDS = 0.5
"""How often a sender waiting for its worker checks the task under way against its deadline."""


class ProcessShadow:
    """Shadow tasks answered in worker processes that write their rows themselves.

    `submit` only appends to a bounded queue (when it is full the task is counted and dropped).
    One sender thread per worker process sleeps `gather_seconds` after the first task arrives,
    then sends what waits (up to `batch_size`) down the pipe in one message and sleeps until
    the worker says the batch is done: a few wake-ups a second in the API process, whatever
    the traffic.
    """

    def __init__(
        self,
        *,
        make_link: Callable[[], WorkerLink],
        workers: int,
        queue_size: int,
        batch_size: int,
        gather_seconds: float,
    ) -> None:
        self._make_link = make_link
        self._workers = workers
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._gather_seconds = gather_seconds
        self._cond = threading.Condition()
        self._pending: deque[ShadowTask] = deque()
        self._in_flight = 0
        self._flush_wanted = 0
        self._flushed = [0] * workers
        self._threads: list[threading.Thread] = []
        self.links: list[WorkerLink] = []
        self._started = False
        self._closed = False
        self._abandoned = False
        self._closing = threading.Event()
        """Set by `close`: cuts a sender's gathering pause short."""
        self.stats = ShadowStats()

    def submit(self, task: ShadowTask) -> bool:
        """Queue a task; False (counted as dropped) when the queue is full or closed."""
        with self._cond:
            if self._closed or len(self._pending) >= self._queue_size:
                self.stats.dropped += 1
                return False
            self._pending.append(task)
            self.stats.submitted += 1
            if not self._started:
                self._start()
            self._cond.notify()
            return True

    def _start(self) -> None:
        """Start the sender threads (under `_cond`); each starts its worker on first use."""
        for number in range(self._workers):
            link = self._make_link()
            self.links.append(link)
            thread = threading.Thread(
                target=self._send, args=(number, link), name=f"shadow-{number}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._started = True

    def _flush_due(self, number: int) -> bool:
        return self._flushed[number] < self._flush_wanted

    def _send(self, number: int, link: WorkerLink) -> None:
        try:
            while self._send_once(number, link):
                pass
        except Exception:
            log.exception("shadow.sender_failed")
        finally:
            link.stop()

    def _send_once(self, number: int, link: WorkerLink) -> bool:
        """Send one batch; False when the sender should end."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending or self._flush_due(number) or self._closed)
            if self._abandoned or (self._closed and not self._pending):
                return False
            hurry = self._closed or self._flush_due(number)
        if not hurry and self._gather_seconds:
            self._closing.wait(self._gather_seconds)
        with self._cond:
            if self._abandoned:
                return False
            size = min(len(self._pending), self._batch_size)
            batch = [self._pending.popleft() for _ in range(size)]
            wanted = self._flush_wanted
            flush = self._closed or (self._flush_due(number) and not self._pending)
            self._in_flight += size
        outcome = link.run(batch, flush=flush) if batch or flush else BatchOutcome()
        with self._cond:
            self._in_flight -= size
            self.stats.completed += outcome.answered
            self.stats.failed += outcome.failed
            self.stats.lost += outcome.lost
            self.stats.restarts = sum(found.restarts for found in self.links)
            if outcome.again:
                self._pending.extendleft(reversed(outcome.again))
            elif flush:
                self._flushed[number] = wanted
            self._cond.notify_all()
        return True

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued task is answered and every worker wrote its rows (tests,
        shutdown); False on timeout."""
        with self._cond:
            if not self._started:
                return True
            self._flush_wanted += 1
            wanted = self._flush_wanted
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: (
                    not self._pending
                    and not self._in_flight
                    and all(flushed >= wanted for flushed in self._flushed)
                ),
                timeout=timeout,
            )

    def close(self, timeout: float = 5.0) -> None:
        """Stop taking tasks, send what waits and stop the workers (each writes what it holds
        as it ends); after `timeout` seconds in all, what still waits is dropped and the
        workers are killed."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._closing.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._abandoned = True
            self.stats.dropped += len(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for link in self.links:
            link.kill()


class ShadowDispatcher:
    """The bounded queue and its worker threads, in the API process (`thread` mode, see the
    module docstring)."""

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
