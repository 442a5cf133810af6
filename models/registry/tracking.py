"""Evaluation runs mirrored into MLflow tracking: metrics, config and the dataset digest."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import mlflow
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


def log_evaluation(
    *,
    experiment_id: str,
    run_name: str,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    metrics: Sequence[TrackedMetric],
    dataset_name: str,
    dataset_digest: str,
    dataset_uri: str,
) -> str:
    """Log an evaluation as an MLflow run; returns the MLflow run id."""
    values: dict[str, float] = {}
    for metric in metrics:
        key = _metric_key(metric.name)
        for suffix, value in (
            ("", metric.value),
            ("_ci_low", metric.ci_low),
            ("_ci_high", metric.ci_high),
        ):
            if value is not None:
                values[key + suffix] = float(value)
    # A MetaDataset carries the digest without MLflow re-reading (and re-hashing) the rows.
    dataset = MetaDataset(  # type: ignore[abstract]  # `profile` is optional at runtime
        source=HTTPDatasetSource(url=dataset_uri),  # type: ignore[no-untyped-call]
        name=dataset_name,
        digest=dataset_digest[:36],
    )
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(dict(params))
        mlflow.set_tags({**tags, "golden_dataset.sha256": dataset_digest})
        mlflow.log_metrics(values)
        mlflow.log_input(dataset, context="evaluation")
        return str(run.info.run_id)


def _metric_key(name: str) -> str:
    """MLflow metric keys allow few characters: `f1[billing]` becomes `f1.billing`."""
    return _UNSAFE.sub("_", name.replace("[", ".").replace("]", ""))
