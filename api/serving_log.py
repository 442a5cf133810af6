"""The serving log's writer: the traffic rows and usage events of served predictions, and the
shadow challenger's traffic rows, written off the request path in batches.

A request hands its rows to `ServingLog.add`, which only appends them to a bounded buffer
under a lock (no I/O, no waiting on the database). One writer thread writes what is buffered
in one transaction when `batch_size` predictions are waiting or `flush_seconds` have passed,
so a prediction's rows reach the database about `flush_seconds` after its response at most
(plus the time of the write itself).

What can be lost, and what is never dropped:

- `flush()` writes everything buffered at once, on the caller's thread (the feedback route
  calls it before it looks a request up, tests call it instead of sleeping); `close()` (the
  app's shutdown) flushes too. A process killed without shutdown loses what was buffered: the
  rows of its last `flush_seconds`, or of writes failing since.
- A failed write keeps its rows buffered and is retried with growing pauses (at most
  `MAX_RETRY_SECONDS`); the inserts skip rows already stored, so a retried batch adds nothing.
- When the buffer holds `capacity` predictions, a served prediction's rows are written on the
  caller's thread as before batching (counted as `inline`): metering is slowed, never dropped.
  The shadow challenger's rows are best effort: they are counted and dropped instead.
- `flush_seconds == 0` writes every served prediction on the caller's thread.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger()

Rows = Sequence[Mapping[str, Any]]
Sink = Callable[[Rows, Rows], None]
"""Writes traffic rows and usage events in one transaction."""

MAX_RETRY_SECONDS = 5.0


@dataclass
class ServingLogStats:
    """What the serving log did since it started (predictions, not rows, but `written`)."""

    added: int = 0
    inline: int = 0
    """Served predictions written on the caller's thread (buffer full, or no batching)."""
    dropped: int = 0
    """Shadow predictions dropped because the buffer was full."""
    batches: int = 0
    written: int = 0
    """Traffic rows written by batches."""
    write_errors: int = 0


class ServingLog:
    """The bounded buffer and its writer thread (see the module docstring)."""

    def __init__(
        self,
        sink: Sink,
        *,
        batch_size: int,
        flush_seconds: float,
        capacity: int,
        write_lock: threading.Lock | contextlib.nullcontext[None] | None = None,
    ) -> None:
        self._sink = sink
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._capacity = capacity
        self._write_lock = write_lock or contextlib.nullcontext()
        """Held around every write (SQLite's writers take turns on it, see `ServingRuntime`)."""
        self._turn = threading.Lock()
        """Held by whoever is writing buffered rows, so a flush waits for a batch in flight."""
        self._cond = threading.Condition()
        self._traffic: list[Mapping[str, Any]] = []
        self._usage: list[Mapping[str, Any]] = []
        self._waiting = 0
        """Predictions in the buffer."""
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats = ServingLogStats()

    @property
    def batching(self) -> bool:
        return self._flush_seconds > 0

    def add(self, traffic: Rows, usage: Rows, *, served: bool) -> bool:
        """Buffer one prediction's rows; never waits on the database unless the buffer is full
        (or batching is off) and the prediction was `served`, whose rows are then written here.
        False when shadow rows were dropped."""
        if self.batching and not self._closed:
            with self._cond:
                if self._waiting < self._capacity:
                    self._traffic.extend(traffic)
                    self._usage.extend(usage)
                    self._waiting += 1
                    self.stats.added += 1
                    if self._waiting >= self._batch_size:
                        self._cond.notify()
                    self._start()
                    return True
                if not served:
                    self.stats.dropped += 1
                    return False
                self.stats.inline += 1
        elif not served:
            with self._cond:
                self.stats.dropped += 1
            return False
        else:
            with self._cond:
                self.stats.inline += 1
        with self._write_lock:
            self._sink(traffic, usage)
        return True

    def _start(self) -> None:
        """Start the writer thread (under `_cond`)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="serving-log", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failures = 0
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._waiting >= self._batch_size or self._closed,
                    timeout=self._flush_seconds,
                )
                if self._closed:
                    return
                if not self._waiting:
                    continue
            try:
                self._write_buffered()
            except Exception:
                failures += 1
                log.exception("serving_log.write_failed", failures=failures)
                time.sleep(min(MAX_RETRY_SECONDS, self._flush_seconds * 2**failures))
            else:
                failures = 0

    def _write_buffered(self) -> None:
        """Write what is buffered in one transaction; on failure put it back, first in line,
        and raise."""
        with self._turn:
            with self._cond:
                traffic, self._traffic = self._traffic, []
                usage, self._usage = self._usage, []
                waiting, self._waiting = self._waiting, 0
            if not waiting:
                return
            try:
                with self._write_lock:
                    self._sink(traffic, usage)
            except Exception:
                with self._cond:
                    self._traffic[:0] = traffic
                    self._usage[:0] = usage
                    self._waiting += waiting
                    self.stats.write_errors += 1
                raise
            with self._cond:
                self.stats.batches += 1
                self.stats.written += len(traffic)

    @property
    def waiting(self) -> int:
        """Predictions buffered and not yet written."""
        with self._cond:
            return self._waiting

    def flush(self) -> None:
        """Write everything buffered before this call, now, waiting for a batch in flight;
        raises what the write raised (the rows stay buffered, for the writer to retry)."""
        if self.waiting or self._thread is not None:
            self._write_buffered()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the writer thread and write what is left (once; later rows are written on the
        caller's thread, or dropped for the shadow)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout)
        try:
            self.flush()
        except Exception:
            log.exception("serving_log.final_write_failed", waiting=self.waiting)
