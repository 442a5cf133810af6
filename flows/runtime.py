"""Resources a flow or command opens once per process: settings, database, registry."""

from __future__ import annotations

import getpass
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.migrate import ensure_schema
from models.settings import RegistrySettings, StorageSettings
from pipelines.golden_datasets.validation import DEFAULT_MAX_ROW_BYTES
from pipelines.logging import init_error_reporting
from pipelines.organizations import ensure_provider


class EvaluationSettings(BaseSettings):
    """Defaults of evaluation runs (`STREAMFLOW_EVAL_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_EVAL_", extra="ignore")

    batch_size: int = 5000
    """Examples per batch; one Prefect task per batch."""
    bootstrap_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0
    min_n: int = 30
    """Slices (and runs) with fewer examples are flagged `small_n` (`STREAMFLOW_EVAL_MIN_N`)."""
    processes: int = 2
    """Worker processes for scoring large batches (this machine kind has 2 cores)."""
    claim_lease_seconds: float = 30
    """How long a flow's claim on a run holds without a sign of life (it shows one every
    third of that): a flow killed mid-run is taken over by the next identical one after it."""
    organization: str = "provider"
    """Organisation slug the CLI acts as without `--org` (`STREAMFLOW_EVAL_ORGANIZATION`)."""
    provider: str = "provider"
    """Slug of the provider organisation created with the schema (`STREAMFLOW_EVAL_PROVIDER`)."""
    compare_with_champion: bool = True
    """When a run completes, compare it with its agent type's champion run on the same dataset
    version and store the comparison, so pages and the API read it instead of computing it
    (`STREAMFLOW_EVAL_COMPARE_WITH_CHAMPION`)."""


class DatasetSettings(BaseSettings):
    """Limits of golden dataset imports (`STREAMFLOW_DATASET_*`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_DATASET_", extra="ignore")

    max_row_bytes: int = Field(default=DEFAULT_MAX_ROW_BYTES, ge=1)
    """Largest row an import accepts: UTF-8 bytes of its normalised id, input, expected, slice
    and tags together (`STREAMFLOW_DATASET_MAX_ROW_BYTES`)."""


@dataclass(frozen=True)
class Runtime:
    """Opened resources of this process."""

    storage: StorageSettings
    registry: RegistrySettings
    evaluation: EvaluationSettings
    engine: Engine
    sessions: sessionmaker[Session]


@cache
def runtime() -> Runtime:
    """The process's resources, opened on first use; the schema is migrated to head."""
    storage = StorageSettings()
    storage.home.mkdir(parents=True, exist_ok=True)
    init_error_reporting(os.environ.get("STREAMFLOW_SENTRY_DSN"), component="flows")
    engine = make_engine(storage.resolved_database_url())
    ensure_schema(engine, migration_url=storage.resolved_migration_url())
    evaluation = EvaluationSettings()
    sessions = make_sessionmaker(engine)
    # The README's commands work in the order written: the provider exists from the start.
    with transaction(sessions) as session:
        ensure_provider(session, slug=evaluation.provider, actor="system")
    registry_settings = RegistrySettings()
    _point_mlflow_at(registry_settings)
    return Runtime(
        storage=storage,
        registry=registry_settings,
        evaluation=evaluation,
        engine=engine,
        sessions=sessions,
    )


def _point_mlflow_at(settings: RegistrySettings) -> None:
    """Point MLflow at the configured store without importing it (seconds) when not loaded yet:
    MLflow reads these variables on first use, and commands that never touch it pay nothing."""
    if "mlflow" in sys.modules:
        from models.registry import client as registry

        registry.configure(settings)
        return
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = settings.resolved_tracking_uri()
    os.environ["MLFLOW_REGISTRY_URI"] = settings.resolved_tracking_uri()


def reset_runtime() -> None:
    """Forget the opened resources (tests switch databases between cases)."""
    if runtime.cache_info().currsize:
        runtime().engine.dispose()
    runtime.cache_clear()


def cli_actor() -> str:
    """Who the CLI acts as in the audit log."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


ProgressListener = Callable[[str, int, int], None]
_listeners: list[ProgressListener] = []


def add_progress_listener(listener: ProgressListener) -> None:
    """Be told (stage, done, total) while flows in this process work."""
    _listeners.append(listener)


def remove_progress_listener(listener: ProgressListener) -> None:
    _listeners.remove(listener)


def report_progress(stage: str, done: int, total: int) -> None:
    for listener in list(_listeners):
        listener(stage, done, total)


def new_request_id() -> str:
    return uuid.uuid4().hex
