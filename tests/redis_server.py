"""A private `redis-server` for fault injection: out of memory, stopped, frozen.

The shared Redis at 127.0.0.1:6379 serves every other test, so faults are injected on a server
of our own, started once per session on a free loopback port, with no persistence.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

FAULTS = ("out_of_memory", "stopped", "frozen")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PrivateRedis:
    """One `redis-server` process on loopback that tests may break and mend."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; the Redis fault tests need it")
        self.binary = binary
        self.folder = folder
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
                "--enable-debug-command",
                "local",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.admin() as client:
                    client.ping()
                return
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    @contextmanager
    def admin(self) -> Iterator[redis.Redis[bytes]]:
        client: redis.Redis[bytes] = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=5
        )
        try:
            yield client
        finally:
            client.close()

    def reset(self) -> None:
        """Healthy and empty, as a test expects to find it."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            self.start()
        with self.admin() as client:
            client.config_set("maxmemory", 0)
            client.flushall()

    @contextmanager
    def fault(self, kind: str) -> Iterator[None]:
        """Break the server the way `kind` (one of FAULTS) says for the block, then mend it."""
        if kind == "out_of_memory":
            with self.admin() as client:
                client.config_set("maxmemory-policy", "noeviction")
                client.config_set("maxmemory", 1)
            try:
                yield
            finally:
                with self.admin() as client:
                    client.config_set("maxmemory", 0)
        elif kind == "stopped":
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)
            try:
                yield
            finally:
                self.process = None
                self.start()
        elif kind == "frozen":
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGSTOP)
            try:
                yield
            finally:
                os.kill(self.process.pid, signal.SIGCONT)
        else:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
