"""Worker processes for scoring large batches: a process pool whose workers die with their parent.

A pool's workers are forked children of the process that scores. Left alone, a worker outlives
a parent killed with SIGKILL (nobody closes the pool) and keeps its memory for minutes; a
worker forked from a process with its own SIGTERM handler inherits it and may ignore SIGTERM.
Each worker therefore starts by restoring SIGTERM's default action and by asking to be killed
when its parent dies: on Linux the kernel does it (`PR_SET_PDEATHSIG`), and everywhere a
watcher thread ends the worker once its parent process has changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext

PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when the thread that made it exits."""
PARENT_CHECK_SECONDS = 0.5
"""How often a worker's watcher looks whether its parent is still the one that made it."""


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes that die with the process calling this.

    Use it in a `with` block in the thread that submits the work: on Linux a worker's death
    signal follows the thread that forked it, which must outlive the pool.
    """
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_context(),
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    )


def _context() -> BaseContext:
    """Fork where the platform has it: a spawned worker re-imports pandas and nltk (seconds)."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def die_with_parent(parent_pid: int) -> None:
    """Set up this process to end when `parent_pid`, its parent, ends (a pool initializer)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watcher", daemon=True
    ).start()


def _watch_parent(parent_pid: int) -> None:
    """End this process as soon as it has been re-parented (its parent died)."""
    stop = threading.Event()
    while not stop.wait(PARENT_CHECK_SECONDS):
        if os.getppid() != parent_pid:
            os._exit(1)
