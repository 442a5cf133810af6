"""The local orchestrator's bookkeeping: records, stale processes, taken ports, failed starts."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest

from flows import orchestrator as orchestrator_module
from flows.orchestrator import (
    LocalOrchestrator,
    OrchestratorSettings,
    OrchestratorUnavailable,
    ServerRecord,
)


def _orchestrator(home: Path, **settings: object) -> LocalOrchestrator:
    return LocalOrchestrator(home, OrchestratorSettings(**settings), prefect_home=home / "prefect")


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


class TestStatus:
    def test_a_new_home_has_no_server(self, tmp_path: Path, monkeypatch) -> None:
        """Status starts nothing and says how to start one."""
        monkeypatch.delenv("PREFECT_API_URL")
        status = _orchestrator(tmp_path).status()
        assert status.running is False
        assert status.managed is True
        assert status.detail == "not running"
        assert not (tmp_path / "orchestrator").exists()

    def test_a_record_of_a_dead_process_is_stale(self, tmp_path: Path, monkeypatch) -> None:
        """A server killed without clean-up is reported as a stale record, not as running."""
        monkeypatch.delenv("PREFECT_API_URL")
        server = _orchestrator(tmp_path)
        server.folder.mkdir(parents=True)
        record = ServerRecord(_dead_pid(), 12_345, "3.9.1", "2026-12-01T00:00:00+00:00")
        server.record_file.write_text(json.dumps(record.__dict__))
        status = server.status()
        assert status.running is False
        assert status.detail == "not running (stale record)"
        assert server.stop() is False
        assert not server.record_file.exists()

    def test_an_external_server_is_used_and_not_managed(self, tmp_path: Path, monkeypatch) -> None:
        """With PREFECT_API_URL set (production) StreamFlow manages nothing."""
        monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")
        status = _orchestrator(tmp_path).status()
        assert status.managed is False
        assert status.running is False
        assert "PREFECT_API_URL" in status.detail


class TestStart:
    def test_a_taken_configured_port_is_one_clear_error(self, tmp_path: Path) -> None:
        """Nothing is started when STREAMFLOW_ORCHESTRATOR_PORT is taken; the error says so."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(OrchestratorUnavailable, match="STREAMFLOW_ORCHESTRATOR_PORT"):
                _orchestrator(tmp_path, port=port).ensure()
        assert not (tmp_path / "orchestrator" / "server.json").exists()

    def test_a_server_that_dies_at_start_names_the_log_file(
        self, tmp_path: Path, monkeypatch
    ) -> None:
        """A start that fails is one line naming the log, and leaves no record behind."""
        monkeypatch.setattr(orchestrator_module.sys, "executable", "false")
        server = _orchestrator(tmp_path)
        with pytest.raises(OrchestratorUnavailable) as raised:
            server.ensure()
        assert str(server.log_file) in str(raised.value)
        assert "\n" not in str(raised.value)
        assert server.record() is None

    def test_a_healthy_recorded_server_is_reused_without_a_start(
        self, orchestrator: ServerRecord, tmp_path: Path
    ) -> None:
        """ensure() returns the recorded server when it answers; nothing new is started."""
        server = _orchestrator(tmp_path)
        server.folder.mkdir(parents=True)
        server.record_file.write_text(json.dumps(orchestrator.__dict__))
        announced: list[str] = []
        assert server.ensure(on_start=lambda: announced.append("start")) == orchestrator
        assert announced == []
