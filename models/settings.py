"""Where StreamFlow keeps its state: one settings object per concern, prefix `STREAMFLOW_`.

The embedded default needs no variable: everything lives under `.streamflow/` in the working
directory (SQLite database, MLflow store and artifacts, golden dataset Parquet files).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    """The system of record and the folder for files StreamFlow writes."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_", extra="ignore")

    home: Path = Path(".streamflow")
    """Folder for the embedded default's files (`STREAMFLOW_HOME`)."""
    database_url: str | None = None
    """SQLAlchemy URL, e.g. `postgresql+psycopg://streamflow_worker@db/streamflow`; default SQLite
    under home. On PostgreSQL its login acts for the platform (a member of `streamflow_system`)."""
    database_migration_url: str | None = None
    """URL of the schema owner's login, which alone migrates (`streamflow db upgrade`); unset:
    `database_url` migrates (the embedded default). Leave it unset where the API runs."""

    def resolved_migration_url(self) -> str | None:
        """The schema owner's URL, when it differs from the database URL in force."""
        if not self.database_migration_url:
            return None
        return normalize_database_url(self.database_migration_url)

    def resolved_database_url(self) -> str:
        """The database URL in force: the configured one or the embedded SQLite file."""
        if self.database_url:
            return normalize_database_url(self.database_url)
        return f"sqlite:///{(self.home / 'streamflow.db').resolve()}"

    @property
    def golden_dataset_dir(self) -> Path:
        """Folder holding one Parquet file per golden dataset version."""
        return self.home / "golden_datasets"


class RegistrySettings(BaseSettings):
    """The MLflow tracking store and model registry."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_", extra="ignore")

    home: Path = Path(".streamflow")
    mlflow_tracking_uri: str | None = None
    """MLflow tracking server or store URI; default a SQLite store under home."""
    mlflow_artifact_root: str | None = None
    """Where new MLflow experiments keep artifacts; default a folder under home."""
    mlflow_experiment: str = "streamflow-evaluations"
    """MLflow experiment that evaluation runs are logged to."""
    loaded_model_cache_size: int = Field(default=8, ge=1)
    """How many loaded model versions a process keeps in memory (least recently used out)."""

    def resolved_tracking_uri(self) -> str:
        """The tracking URI in force."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def resolved_artifact_root(self) -> str:
        """The artifact root in force, as a URI."""
        if self.mlflow_artifact_root:
            return self.mlflow_artifact_root
        return (self.home / "mlartifacts").resolve().as_uri()


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class ServingSettings(BaseSettings):
    """Serving the agents: alias freshness, the traffic log, and the shadow challenger's
    workers (prefix `STREAMFLOW_SERVING_`)."""

    model_config = SettingsConfigDict(env_prefix="STREAMFLOW_SERVING_", extra="ignore")

    alias_cache_seconds: float = Field(default=5.0, ge=0)
    """How old a process's view of the champion aliases and running experiments may be: an
    alias moved or an experiment started elsewhere takes effect everywhere within this time
    (0: ask the registry and database on every request)."""
    traffic_text_limit: int = Field(default=4_000, ge=0)
    """Characters of each input and output kept in the traffic log (the hash covers all)."""
    traffic_retention_days: int = Field(default=30, ge=1)
    """Traffic rows older than this are deleted by the `prune-traffic` flow."""
    shadow_mode: str = Field(default="process", pattern="^(process|thread)$")
    """Where shadow predictions run: `process` (worker processes at lower OS priority, killed
    on timeout) or `thread` (threads of the API process, for small setups)."""
    shadow_workers: int = Field(default=1, ge=1, le=64)
    """Shadow predictions run at once per API process."""
    shadow_queue_size: int = Field(default=1_000, ge=1)
    """Shadow requests waiting at most; beyond it they are counted and dropped, never waited on."""
    shadow_timeout_seconds: float = Field(default=10.0, gt=0)
    """A challenger slower than this is logged as timed out (its worker process is replaced)."""
    shadow_niceness: int = Field(default=19, ge=0, le=19)
    """How much lower the shadow worker processes' OS priority is than the API's."""
    shadow_idle_priority: bool = True
    """Run the shadow worker processes in the idle scheduling class (Linux `SCHED_IDLE`): they
    get a core only when nothing else wants it, so a busy machine drops shadow work (counted)
    rather than slowing the champion."""
    log_flush_seconds: float = Field(default=0.1, ge=0)
    """Longest a prediction's traffic row and usage event wait in the serving log's buffer
    before they are written, in one transaction with the others waiting (and, on a crash,
    what can be lost); 0: each served prediction is written before its response goes out."""
    log_batch_size: int = Field(default=200, ge=1)
    """Predictions that make the serving log write at once, before `log_flush_seconds`."""
    log_buffer_size: int = Field(default=10_000, ge=1)
    """Predictions the serving log holds at most: beyond it a served prediction is written
    before its response (slowed, never dropped) and a shadow prediction is dropped (counted)."""
