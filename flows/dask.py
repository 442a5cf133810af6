"""Running batch tasks on a Dask cluster (prefect-dask): the runner and the workers' settings."""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask.task_runners import DaskTaskRunner

ADDRESS_VARIABLE = "STREAMFLOW_DASK_ADDRESS"
# Settings a Dask worker needs to open the same database, registry and files as the flow.
_FORWARDED_PREFIXES = ("STREAMFLOW_", "MLFLOW_")


class WorkerEnvironment(WorkerPlugin):
    """Gives every worker (also those joining later) the StreamFlow settings of the flow's process.

    Sent over Dask's own connection, never as task parameters (which Prefect would store).
    """

    name = "streamflow-environment"

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment

    def setup(self, worker: Any) -> None:  # noqa: ARG002
        from flows.runtime import reset_runtime

        if any(os.environ.get(key) != value for key, value in self.environment.items()):
            os.environ.update(self.environment)
            reset_runtime()


def task_runner(address: str) -> DaskTaskRunner:
    """A started-on-enter runner on the cluster at `address`, or a new local cluster (`local`)."""
    if address == "local":
        return DaskTaskRunner()
    return DaskTaskRunner(address=address)


def forward_settings(runner: DaskTaskRunner) -> None:
    """Install this process's StreamFlow and MLflow settings on the runner's workers."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(_FORWARDED_PREFIXES) and key != ADDRESS_VARIABLE
    }
    runner.client.register_plugin(WorkerEnvironment(environment))
