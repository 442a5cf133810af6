"""Starting evaluation flows from outside the CLI: a Prefect deployment or a local worker thread.

The API never imports flow code: it names the flow by entrypoint, as Prefect deployments do.
"""

from __future__ import annotations

import importlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

import structlog

log = structlog.get_logger()

EVALUATION_FLOW_ENTRYPOINT = "flows.evaluation:evaluate_model_version"


class EvaluationLauncher(Protocol):
    """Runs the evaluation flow with keyword parameters, without waiting for it."""

    def launch(self, parameters: dict[str, Any]) -> None: ...

    def shutdown(self) -> None: ...


class BackgroundThreadLauncher:
    """The embedded default: one worker thread in this process runs flows one after another."""

    def __init__(self, entrypoint: str = EVALUATION_FLOW_ENTRYPOINT) -> None:
        self.entrypoint = entrypoint
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamflow-flows")
        self.futures: list[Future[Any]] = []

    def _run(self, parameters: dict[str, Any]) -> Any:
        module_name, _, attribute = self.entrypoint.partition(":")
        flow = getattr(importlib.import_module(module_name), attribute)
        try:
            return flow(**parameters)
        except Exception:
            # The flow marks its run failed; the API reports that through the run's status.
            log.exception("evaluation.background_flow_failed")
            return None

    def launch(self, parameters: dict[str, Any]) -> None:
        self.futures.append(self.executor.submit(self._run, parameters))

    def wait(self, timeout: float | None = None) -> None:
        """Block until every launched flow has finished (tests and shutdown)."""
        for future in list(self.futures):
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


class PrefectDeploymentLauncher:
    """Production: a flow run of a Prefect deployment, picked up by a worker of its work pool."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment

    def launch(self, parameters: dict[str, Any]) -> None:
        from prefect.deployments import run_deployment

        run_deployment(name=self.deployment, parameters=parameters, timeout=0)

    def shutdown(self) -> None:
        return None
