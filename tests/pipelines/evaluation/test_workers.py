"""Scoring's worker processes die with the process that scores (kill -9 leaves no orphan)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from pipelines.evaluation.workers import process_pool

REPO = Path(__file__).resolve().parents[3]

# Scores ROUGE of a large batch over two worker processes (seconds each time), again and again,
# as `evaluate-batch` does (through `score_examples`) for batches of 2,000 examples or more.
SCORING = textwrap.dedent(
    """
    from pipelines.evaluation.rouge import score_rouge

    predictions = [f"replaced the leaking valve {i} and tested the line" for i in range(60000)]
    expected = [f"replaced valve {i}; tested the line, customer signed off" for i in range(60000)]
    print("scoring", flush=True)
    while True:
        score_rouge(predictions, expected, processes=2)
    """
)


def _workers_of(parent: psutil.Process, count: int, timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = parent.children()
        if len(children) >= count:
            return children
        time.sleep(0.05)
    raise AssertionError(f"the scoring process started no {count} workers in {timeout} s")


def _alive(processes: list[psutil.Process]) -> list[int]:
    alive = []
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
    return alive


def test_kill_9_of_the_scoring_process_takes_its_workers_down() -> None:
    """Kill -9 the process scoring over worker processes: every worker is gone within seconds."""
    scorer = subprocess.Popen(
        [sys.executable, "-c", SCORING],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    workers: list[psutil.Process] = []
    try:
        assert scorer.stdout is not None
        assert scorer.stdout.readline() == b"scoring\n"
        workers = _workers_of(psutil.Process(scorer.pid), 2, timeout=60)
        os.kill(scorer.pid, signal.SIGKILL)
        scorer.wait(10)
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert _alive(alive) == []
        assert len(gone) + len(alive) == len(workers)
    finally:
        # A failing run must not leave orphans behind either.
        for process in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        if scorer.poll() is None:
            scorer.kill()
            scorer.wait(10)


def test_workers_ignore_no_sigterm_their_parent_handles() -> None:
    """A worker forked from a process that traps SIGTERM still ends on SIGTERM."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with process_pool(1) as pool:
            pid = pool.submit(os.getpid).result(timeout=30)
            worker = psutil.Process(pid)
            worker.terminate()
            worker.wait(5)
            assert not worker.is_running()
    finally:
        signal.signal(signal.SIGTERM, previous)
