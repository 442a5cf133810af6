"""The serving log's buffer: what waits, what is written when, and what happens when it is full
or the database refuses (a list stands in for the database; the write itself is tested with
the serving routes and `record_batch`)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from api.serving_log import ServingLog


class Sink:
    """Records each write; fails the next `failures` writes."""

    def __init__(self) -> None:
        self.writes: list[tuple[list[str], list[str]]] = []
        self.failures = 0
        self.threads: set[str] = set()
        self.wrote = threading.Event()

    def __call__(
        self, traffic: Sequence[Mapping[str, Any]], usage: Sequence[Mapping[str, Any]]
    ) -> None:
        self.threads.add(threading.current_thread().name)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database away")
        self.writes.append(([r["id"] for r in traffic], [r["id"] for r in usage]))
        self.wrote.set()


def _log(sink: Sink, **settings: Any) -> ServingLog:
    # A writer that waits a minute: every write below is a flush, close or full buffer.
    return ServingLog(sink, **{"batch_size": 100, "flush_seconds": 60.0, "capacity": 3, **settings})


def _served(log: ServingLog, name: str) -> bool:
    return log.add([{"id": name}], [{"id": f"u-{name}"}], served=True)


def test_rows_wait_until_a_flush_writes_them_in_one_batch_in_order() -> None:
    sink = Sink()
    log = _log(sink)
    assert _served(log, "a")
    assert log.add([{"id": "s-a"}], [], served=False)
    assert _served(log, "b")
    assert (sink.writes, log.waiting) == ([], 3)
    log.flush()
    assert sink.writes == [(["a", "s-a", "b"], ["u-a", "u-b"])]
    assert (log.waiting, log.stats.batches, log.stats.written) == (0, 1, 3)
    log.flush()  # nothing left: no write
    assert len(sink.writes) == 1
    log.close()


def test_the_writer_thread_writes_a_full_batch_without_a_flush() -> None:
    sink = Sink()
    log = _log(sink, batch_size=2, capacity=10)
    _served(log, "a")
    assert not sink.wrote.is_set()
    _served(log, "b")  # wakes the writer
    assert sink.wrote.wait(timeout=10)
    assert sink.writes == [(["a", "b"], ["u-a", "u-b"])]
    assert sink.threads == {"serving-log"}
    log.close()


def test_a_full_buffer_writes_served_rows_on_the_callers_thread_and_drops_shadow_rows() -> None:
    sink = Sink()
    log = _log(sink)
    for name in "abc":
        _served(log, name)
    assert _served(log, "d")  # written at once, here
    assert sink.writes == [(["d"], ["u-d"])]
    assert sink.threads == {threading.current_thread().name}
    assert not log.add([{"id": "s-d"}], [], served=False)
    assert (log.stats.inline, log.stats.dropped, log.waiting) == (1, 1, 3)
    log.close()
    assert sink.writes[-1] == (["a", "b", "c"], ["u-a", "u-b", "u-c"])


def test_a_failed_write_keeps_its_rows_first_in_line() -> None:
    sink = Sink()
    log = _log(sink)
    _served(log, "a")
    sink.failures = 1
    with pytest.raises(ConnectionError):
        log.flush()
    assert (log.waiting, log.stats.write_errors) == (1, 1)
    _served(log, "b")
    log.flush()
    assert sink.writes == [(["a", "b"], ["u-a", "u-b"])]
    log.close()


def test_no_batching_writes_each_served_prediction_before_add_returns() -> None:
    sink = Sink()
    log = _log(sink, flush_seconds=0)
    _served(log, "a")
    assert sink.writes == [(["a"], ["u-a"])]
    assert not log.add([{"id": "s-a"}], [], served=False)
    assert (log.stats.inline, log.stats.dropped) == (1, 1)
    log.close()


def test_close_writes_what_is_left_and_later_rows_go_straight_through() -> None:
    sink = Sink()
    log = _log(sink)
    _served(log, "a")
    log.close()
    assert sink.writes == [(["a"], ["u-a"])]
    _served(log, "b")
    assert sink.writes[-1] == (["b"], ["u-b"])
    assert not log.add([{"id": "s-b"}], [], served=False)
