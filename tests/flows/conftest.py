"""Flow tests: one local Prefect server per test worker, and a fresh StreamFlow home + database
per test.

The server is StreamFlow's own local orchestrator, started from a database migrated once per
test session and on a port below the kernel's ephemeral range. Its URL is put in the environment
before Prefect is imported, so flows run from any thread (the API's launcher) find it.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock
from sqlalchemy.orm import Session

from flows.orchestrator import (
    LocalOrchestrator,
    OrchestratorSettings,
    ServerRecord,
    free_port,
    migrate_orchestrator_database,
)
from flows.runtime import Runtime, reset_runtime, runtime
from models.db.engine import transaction
from pipelines.golden_datasets.service import import_golden_dataset
from pipelines.organizations import ensure_organization
from tests.conftest import TemplateCache, migrated_database_url

assert "prefect" not in sys.modules, "Prefect must read PREFECT_API_URL after this conftest sets it"
ORCHESTRATOR_PORT = free_port()
os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{ORCHESTRATOR_PORT}/api"


def _migrated_template(folder: Path) -> Path:
    """A migrated Prefect database, made once for every worker of this test session."""
    folder.mkdir(parents=True, exist_ok=True)
    prefect_home = folder / "prefect"
    with FileLock(str(folder / "template.lock")):
        if not (folder / "migrated").exists():
            migrate_orchestrator_database(LocalOrchestrator(folder, prefect_home=prefect_home))
            (folder / "migrated").touch()
    return prefect_home / "prefect.db"


@pytest.fixture(scope="session", autouse=True)
def orchestrator(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str
) -> Iterator[ServerRecord]:
    """This worker's local Prefect server; stopped at the end of the session.

    Its scheduler service is off: no test waits on a schedule, and with it on, every scheduled
    deployment a test worker serves (`streamflow worker` serves seven) got a run at once, each
    in a process of its own, competing with the run under test. Nor does it register Prefect's
    block types (no flow uses blocks; registering them cost ~2.6 CPU seconds per start).
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base
    template = _migrated_template(shared / "prefect-template")
    home = tmp_path_factory.mktemp("orchestrator")
    prefect_home = home / "prefect"
    prefect_home.mkdir()
    shutil.copyfile(template, prefect_home / "prefect.db")
    server = LocalOrchestrator(
        home,
        OrchestratorSettings(port=ORCHESTRATOR_PORT, start_timeout_seconds=300),
        prefect_home=prefect_home,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED", "false")
        patch.setenv("PREFECT_SERVER_REGISTER_BLOCKS_ON_START", "false")
        record = server.ensure()
    try:
        yield record
    finally:
        server.stop()


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
    migrated_templates: TemplateCache,
) -> Iterator[Runtime]:
    """StreamFlow's runtime on a fresh database of each backend, with a home of its own.

    The database is a copy of the session's migrated template (migrating per test cost ~1 s on
    SQLite and ~3 s on PostgreSQL); the runtime still runs its own `ensure_schema` on it.
    """
    monkeypatch.setenv("STREAMFLOW_MLFLOW_TRACKING_URI", mlflow_store)
    with migrated_database_url(migrated_templates, request.param, tmp_path) as url:
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


def add_golden_rows(
    session: Session,
    *,
    storage_dir: Path,
    organization_id: uuid.UUID,
    name: str,
    rows: list[dict[str, str]],
    task: str = "text_generation",
) -> None:
    """Import `rows` as `name`'s next golden dataset version (JSON lines, as a user would)."""
    import_golden_dataset(
        session,
        organization_id=organization_id,
        actor="test",
        name=name,
        task=task,
        data="\n".join(json.dumps(row) for row in rows).encode(),
        filename=f"{name}.jsonl",
        storage_dir=storage_dir,
    )


def import_golden_rows(
    rt: Runtime, name: str, rows: list[dict[str, str]], task: str = "text_generation"
) -> None:
    """Import `rows` as the provider's golden dataset `name`, in a transaction of its own."""
    with transaction(rt.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="test"
        )
        add_golden_rows(
            session,
            storage_dir=rt.storage.golden_dataset_dir,
            organization_id=provider.id,
            name=name,
            rows=rows,
            task=task,
        )
