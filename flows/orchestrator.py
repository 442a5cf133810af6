"""The local orchestrator: a Prefect server that StreamFlow starts once and every command reuses.

Prefect's per-process temporary server migrates its database and imports the whole server on
every start (20-35 s on a fresh home, past Prefect's own 20 s limit) and runs no scheduler. The
embedded default runs one real `prefect server start` instead, detached, with its state under
`$STREAMFLOW_HOME/orchestrator/`: `server.json` (pid, port, Prefect version), `server.log`, and a
lock so two commands never start two servers. With `PREFECT_API_URL` set, StreamFlow uses that
server and manages nothing (production).

This module imports no Prefect code until a flow is about to run: `streamflow server status`
stays fast.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path

import httpx
from filelock import FileLock, Timeout
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.errors import StreamflowError

DEFAULT_PORT = 4200
# Ports the kernel hands out as ephemeral source ports start at 32768; a server picked from
# below that range never collides with an outgoing connection's port.
FALLBACK_PORTS = range(10_000, 30_000)


class OrchestratorSettings(BaseSettings):
    """The embedded default's local Prefect server (`STREAMFLOW_ORCHESTRATOR_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_ORCHESTRATOR_", extra="ignore")

    port: int | None = None
    """Port of the local server; default 4200, or a free port below the ephemeral range."""
    start_timeout_seconds: float = 180.0
    """How long a start (a first migration included) may take before it is reported failed."""


class OrchestratorUnavailable(StreamflowError):
    """The orchestrator could not be started or reached."""


@dataclass(frozen=True)
class ServerRecord:
    """What `server.json` says about the server this home started."""

    pid: int
    port: int
    prefect_version: str
    started_at: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


@dataclass(frozen=True)
class ServerStatus:
    """Whether this home's server is up, and where."""

    running: bool
    managed: bool
    """False when `PREFECT_API_URL` points at a server StreamFlow does not manage."""
    api_url: str | None
    ui_url: str | None
    pid: int | None
    prefect_version: str | None
    log_file: str
    detail: str


def _home() -> Path:
    return Path(os.environ.get("STREAMFLOW_HOME", ".streamflow")).resolve()


def external_api_url() -> str | None:
    """The Prefect server configured outside StreamFlow (production), if any."""
    return os.environ.get("PREFECT_API_URL") or None


class LocalOrchestrator:
    """The Prefect server of one StreamFlow home: start, reuse, stop, report."""

    def __init__(
        self,
        home: Path | None = None,
        settings: OrchestratorSettings | None = None,
        *,
        prefect_home: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.home = (home or _home()).resolve()
        self.settings = settings or OrchestratorSettings()
        self.folder = self.home / "orchestrator"
        self.record_file = self.folder / "server.json"
        self.log_file = self.folder / "server.log"
        self.prefect_home = prefect_home or Path(
            os.environ.get("PREFECT_HOME") or self.home / "prefect"
        )
        self._clock = clock

    # --- reading state -----------------------------------------------------------------------

    def record(self) -> ServerRecord | None:
        """The recorded server, if a record exists and parses."""
        try:
            data = json.loads(self.record_file.read_text())
            return ServerRecord(**data)
        except (OSError, ValueError, TypeError):
            return None

    def healthy(self, record: ServerRecord, timeout: float = 2.0) -> bool:
        """The recorded process lives and its API answers as the Prefect version we run."""
        if not _process_alive(record.pid):
            return False
        try:
            health = httpx.get(f"{record.api_url}/health", timeout=timeout)
            if health.status_code != 200:
                return False
            answered = httpx.get(f"{record.api_url}/admin/version", timeout=timeout)
        except httpx.HTTPError:
            return False
        return answered.status_code == 200 and answered.json() == record.prefect_version

    def status(self) -> ServerStatus:
        """Report without starting anything."""
        external = external_api_url()
        if external:
            return ServerStatus(
                running=_answers(external),
                managed=False,
                api_url=external,
                ui_url=None,
                pid=None,
                prefect_version=None,
                log_file=str(self.log_file),
                detail="PREFECT_API_URL is set: StreamFlow uses that server and manages none",
            )
        record = self.record()
        if record is None:
            return self._status(None, running=False, detail="not running")
        if self.healthy(record):
            return self._status(record, running=True, detail="running")
        if _process_alive(record.pid):
            return self._status(record, running=False, detail="process alive but not answering")
        return self._status(record, running=False, detail="not running (stale record)")

    def _status(self, record: ServerRecord | None, *, running: bool, detail: str) -> ServerStatus:
        return ServerStatus(
            running=running,
            managed=True,
            api_url=record.api_url if record else None,
            ui_url=record.url if record else None,
            pid=record.pid if record else None,
            prefect_version=record.prefect_version if record else None,
            log_file=str(self.log_file),
            detail=detail,
        )

    # --- starting and stopping ---------------------------------------------------------------

    def ensure(self, on_start: Callable[[], None] | None = None) -> ServerRecord:
        """The running server of this home, started first if needed (one per home, ever)."""
        record = self.record()
        if record is not None and self.healthy(record):
            return record
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder / "server.lock"))
        try:
            lock.acquire(timeout=self.settings.start_timeout_seconds)
        except Timeout:
            raise OrchestratorUnavailable(
                "another command is still starting the local orchestrator; "
                f"see {self.log_file} or run `streamflow server status`"
            ) from None
        try:
            # Whoever held the lock before us may have started it.
            record = self.record()
            if record is not None and self.healthy(record):
                return record
            if record is not None:
                self._terminate(record.pid)
            if on_start is not None:
                on_start()
            return self._start()
        finally:
            lock.release()

    def _start(self) -> ServerRecord:
        port = self._choose_port()
        self.prefect_home.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "PREFECT_HOME": str(self.prefect_home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "true",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
            "DO_NOT_TRACK": "1",
        }
        env.pop("PREFECT_API_URL", None)
        command = [
            sys.executable, "-m", "prefect", "server", "start",
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip
        with self.log_file.open("ab") as log:
            log.write(f"\n--- starting {' '.join(command[1:])}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
                start_new_session=True,
            )
        record = ServerRecord(
            pid=process.pid,
            port=port,
            prefect_version=package_version("prefect"),
            started_at=datetime.now(UTC).isoformat(),
        )
        deadline = self._clock() + self.settings.start_timeout_seconds
        while self._clock() < deadline:
            if process.poll() is not None:
                raise OrchestratorUnavailable(
                    f"the local orchestrator exited during start-up (code {process.returncode}); "
                    f"see {self.log_file}"
                )
            if self.healthy(record, timeout=1.0):
                self._write_record(record)
                return record
            time.sleep(0.25)
        self._terminate(process.pid)
        raise OrchestratorUnavailable(
            f"the local orchestrator did not answer within {self.settings.start_timeout_seconds:g}"
            f" s; see {self.log_file} (raise STREAMFLOW_ORCHESTRATOR_START_TIMEOUT_SECONDS on a "
            "slow machine)"
        )

    def _write_record(self, record: ServerRecord) -> None:
        temporary = self.record_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(record)))
        temporary.replace(self.record_file)

    def _choose_port(self) -> int:
        if self.settings.port is not None:
            if not _port_free(self.settings.port):
                raise OrchestratorUnavailable(
                    f"port {self.settings.port} (STREAMFLOW_ORCHESTRATOR_PORT) is taken by "
                    "another program; choose another port or unset the variable"
                )
            return self.settings.port
        if _port_free(DEFAULT_PORT):
            return DEFAULT_PORT
        return free_port()

    def stop(self) -> bool:
        """Stop this home's server; False when none was running."""
        record = self.record()
        if record is None:
            return False
        stopped = self._terminate(record.pid)
        with suppress(FileNotFoundError):
            self.record_file.unlink()
        return stopped

    def _terminate(self, pid: int, grace_seconds: float = 10.0) -> bool:
        if not _process_alive(pid):
            return False
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            if not _process_alive(pid):
                return True
            time.sleep(0.1)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        return True

    def log_tail(self, lines: int = 50) -> list[str]:
        """The last lines of the server's log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return text.splitlines()[-lines:]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A child that exited but was not yet reaped is a zombie: not alive for our purposes.
    with suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _answers(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A free local port below the kernel's ephemeral range."""
    import random

    candidates = list(FALLBACK_PORTS)
    random.shuffle(candidates)
    for port in candidates[:200]:
        if _port_free(port):
            return port
    raise OrchestratorUnavailable("no free port between 10000 and 29999 for the orchestrator")


def orchestrator_api_url(announce: Callable[[str], None] | None = None) -> str:
    """The Prefect API flows of this process use: the configured one, or this home's server."""
    external = external_api_url()
    if external:
        return external
    record = LocalOrchestrator().ensure(
        on_start=(lambda: announce("starting the local orchestrator…")) if announce else None
    )
    return record.api_url


def local_api_url_if_running() -> str | None:
    """The orchestrator's API URL when one answers now; never starts anything."""
    external = external_api_url()
    if external:
        return external if _answers(external) else None
    orchestrator = LocalOrchestrator()
    record = orchestrator.record()
    return record.api_url if record is not None and orchestrator.healthy(record) else None


@contextmanager
def orchestrated(announce: Callable[[str], None] | None = None) -> Iterator[str]:
    """Run the enclosed flows against the orchestrator (started if needed); yields its API URL.

    Prefect reads its settings when it is imported, so the URL is applied as a temporary
    setting of this thread rather than through the environment.
    """
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    configured = get_current_settings().api.url
    if configured:
        yield configured
        return
    url = orchestrator_api_url(announce)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url


def migrate_orchestrator_database(
    orchestrator: LocalOrchestrator | None = None, timeout_seconds: float = 300.0
) -> None:
    """Create or migrate the local server's database now, off the first flow's critical path."""
    if orchestrator is None:
        if external_api_url():
            return
        orchestrator = LocalOrchestrator()
    orchestrator.prefect_home.mkdir(parents=True, exist_ok=True)
    orchestrator.folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(orchestrator.prefect_home)}
    with orchestrator.log_file.open("ab") as log:
        log.write(b"\n--- prefect server database upgrade\n")
        log.flush()
        try:
            completed = subprocess.run(
                [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise OrchestratorUnavailable(
                f"migrating the orchestrator's database took over {timeout_seconds:g} s; "
                f"see {orchestrator.log_file}"
            ) from None
    if completed.returncode != 0:
        raise OrchestratorUnavailable(
            f"migrating the orchestrator's database failed; see {orchestrator.log_file}"
        )
