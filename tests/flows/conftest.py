"""Flow tests: a Prefect test harness and a fresh StreamFlow home + database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.runtime import Runtime, reset_runtime, runtime
from tests.conftest import fresh_database_url


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the session (Prefect's own test harness)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the session: creating a store costs seconds, and model names differ."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def streamflow(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mlflow_store: str,
) -> Iterator[Runtime]:
    """StreamFlow's runtime on a fresh database of each backend, with a home of its own."""
    monkeypatch.setenv("STREAMFLOW_MLFLOW_TRACKING_URI", mlflow_store)
    with fresh_database_url(request.param, tmp_path) as url:
        yield from _runtime_on(url, tmp_path, monkeypatch)


def _runtime_on(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("STREAMFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STREAMFLOW_DATABASE_URL", url)
    monkeypatch.setenv("STREAMFLOW_EVAL_BOOTSTRAP_RESAMPLES", "200")
    monkeypatch.setenv("STREAMFLOW_EVAL_PROCESSES", "1")
    reset_runtime()
    try:
        yield runtime()
    finally:
        reset_runtime()
