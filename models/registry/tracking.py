"""Evaluation runs mirrored into MLflow tracking: metrics, intervals, tags and artifacts."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.data.meta_dataset import MetaDataset

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


@dataclass(frozen=True)
class TrackedMetric:
    """One overall metric and its CI as MLflow receives it."""

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class TrackedEvaluation:
    """Everything one evaluation run logs to MLflow."""

    experiment_id: str
    run_name: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metrics: Sequence[TrackedMetric]
    dataset_name: str
    dataset_digest: str
    dataset_uri: str
    model_id: str | None = None
    """The MLflow logged model of the evaluated version: metrics are linked to it."""
    documents: Mapping[str, Any] = field(default_factory=dict)
    """Artifact path (`.json`) → a JSON-serialisable document."""
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    """Artifact path (`.csv` or `.parquet`) → a table."""


def log_evaluation(tracked: TrackedEvaluation) -> str:
    """Log an evaluation as an MLflow run; returns the MLflow run id."""
    values: dict[str, float] = {}
    for metric in tracked.metrics:
        key = metric_key(metric.name)
        for suffix, value in (
            ("", metric.value),
            ("_ci_low", metric.ci_low),
            ("_ci_high", metric.ci_high),
        ):
            if value is not None:
                values[key + suffix] = float(value)
    # A MetaDataset carries the digest without MLflow re-reading (and re-hashing) the rows.
    dataset = MetaDataset(  # type: ignore[abstract]  # `profile` is optional at runtime
        source=HTTPDatasetSource(url=tracked.dataset_uri),  # type: ignore[no-untyped-call]
        name=tracked.dataset_name,
        digest=tracked.dataset_digest[:36],
    )
    with mlflow.start_run(experiment_id=tracked.experiment_id, run_name=tracked.run_name) as run:
        mlflow.log_params(dict(tracked.params))
        mlflow.set_tags({**tracked.tags, "golden_dataset.sha256": tracked.dataset_digest})
        mlflow.log_input(dataset, context="evaluation")
        mlflow.log_metrics(values, model_id=tracked.model_id)
        for path, document in tracked.documents.items():
            mlflow.log_dict(document, path)
        _log_tables(tracked.tables)
        return str(run.info.run_id)


def _log_tables(tables: Mapping[str, pd.DataFrame]) -> None:
    with tempfile.TemporaryDirectory(prefix="streamflow-artifacts-") as folder:
        for path, table in tables.items():
            local = Path(folder) / path
            local.parent.mkdir(parents=True, exist_ok=True)
            if local.suffix == ".csv":
                table.to_csv(local, index=False)
            elif local.suffix == ".parquet":
                table.to_parquet(local, index=False)
            else:
                raise ValueError(f"table artifact {path!r} must end in .csv or .parquet")
            parent = str(Path(path).parent)
            mlflow.log_artifact(str(local), artifact_path=None if parent == "." else parent)


def metric_key(name: str) -> str:
    """MLflow metric keys allow few characters: `f1[billing]` becomes `f1.billing`."""
    return _UNSAFE.sub("_", name.replace("[", ".").replace("]", ""))
