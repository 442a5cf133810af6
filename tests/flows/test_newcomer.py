"""The README's first steps, run as a newcomer runs them: real processes on a fresh home."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.orchestrator import LocalOrchestrator, free_port

STREAMFLOW = str(Path(sys.executable).with_name("streamflow"))
REPO = Path(__file__).resolve().parents[2]
ANNOUNCEMENT = "starting the local orchestrator…"
UV_SETUP_LINES = ("Resolved ", "Audited ", "Prepared ", "Installed ", "Uninstalled ", "Built ",
                  "Building ", "Bytecode compiled ", " + ", " - ", " ~ ")  # fmt: skip
"""What `uv sync` in the script says about installing; everything else is StreamFlow's."""


def _newcomer_env(home: Path) -> dict[str, str]:
    """This machine's environment with nothing StreamFlow or Prefect set: a fresh home only."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("STREAMFLOW_", "PREFECT_", "MLFLOW_"))
    }
    env["STREAMFLOW_HOME"] = str(home)
    return env


@pytest.fixture
def fresh_home(tmp_path: Path) -> Iterator[Path]:
    """An empty StreamFlow home; whatever orchestrator a test starts there is stopped after."""
    home = tmp_path / "home"
    try:
        yield home
    finally:
        LocalOrchestrator(home, prefect_home=home / "prefect").stop()


@pytest.mark.slow
class TestNewcomer:
    def test_demo_on_a_fresh_home_starts_the_orchestrator_and_prints_the_comparison(
        self, fresh_home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The README's `./scripts/demo` with no orchestrator running exits 0, prints champion vs
        challenger, and says nothing on stderr but that it is starting the orchestrator."""
        done = subprocess.run(
            ["bash", str(REPO / "scripts" / "demo")],
            env=_newcomer_env(fresh_home),
            cwd=fresh_home.parent,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "B − A" in done.stdout
        assert "McNemar" in done.stdout
        said = [line for line in done.stderr.splitlines() if line.strip()]
        assert [line for line in said if not line.startswith(UV_SETUP_LINES)] == [ANNOUNCEMENT]
        monkeypatch.delenv("PREFECT_API_URL")  # this test process's own server is not the home's
        status = LocalOrchestrator(fresh_home, prefect_home=fresh_home / "prefect").status()
        assert status.running
        assert status.ui_url is not None
        assert status.ui_url in done.stdout
        _the_printed_comparison_pages_render(fresh_home, done.stdout)

    def test_two_commands_at_once_on_a_fresh_home_share_one_server(self, fresh_home: Path) -> None:
        """Two `server start` at the same moment: one starts the server, the other reuses it."""
        env = _newcomer_env(fresh_home)
        starts = [
            subprocess.Popen(
                [STREAMFLOW, "server", "start", "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outcomes = [start.communicate(timeout=600) for start in starts]
        assert [start.returncode for start in starts] == [0, 0], outcomes
        pids = {json.loads(stdout)["pid"] for stdout, _ in outcomes}
        assert len(pids) == 1
        assert sum(stderr.count(ANNOUNCEMENT) for _, stderr in outcomes) == 1
        reused = subprocess.run(
            [STREAMFLOW, "server", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert reused.returncode == 0
        assert json.loads(reused.stdout)["pid"] in pids


def _the_printed_comparison_pages_render(home: Path, printed: str) -> None:
    """The demo's last lines, followed: create a user, `streamflow serve`, open its pages."""
    env = _newcomer_env(home)
    created = subprocess.run(
        [STREAMFLOW, "users", "create", "you@example.com", "--name", "You", "--password-stdin"],
        input="a long enough passphrase\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert created.returncode == 0, created.stderr
    assert created.stderr == ""
    pages = re.findall(r"http://127\.0\.0\.1:8000(/dashboards/compare\?\S+)", printed)
    assert len(pages) == 2, printed[-2000:]
    port = free_port()
    server = subprocess.Popen(
        [STREAMFLOW, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "streamflow serve did not come up"
                time.sleep(0.5)
            signed_in = client.post(
                "/dashboards/sign-in",
                data={"email": "you@example.com", "password": "a long enough passphrase"},
            )
            assert signed_in.status_code == 303, signed_in.text[-500:]
            matrices = 0
            for page in pages:
                shown = client.get(page)
                assert shown.status_code == 200, page
                assert "B against A" in shown.text
                assert "champion" in shown.text
                assert "challenger" in shown.text
                run_a = re.search(r'href="(/dashboards/evaluations/[0-9a-f-]{36})"', shown.text)
                assert run_a is not None
                run_page = client.get(run_a.group(1))
                assert run_page.status_code == 200
                matrices += "Confusion matrix" in run_page.text
            assert matrices == 1, "the classifier's run page shows its confusion matrix"
    finally:
        server.terminate()
        server.wait(timeout=30)
