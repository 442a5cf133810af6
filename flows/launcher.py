"""Starting evaluation flows for the API: a Prefect deployment, or a worker thread of its process.

The API never imports flow code: it is handed a launcher, named by import string in its settings
(`STREAMFLOW_EVALUATION_LAUNCHER`, default `flows.launcher:make_launcher`), as uvicorn is handed
an app. A launch that raises is failed by the API; a flow that cannot start in the background
thread fails its run here, so no run waits forever.
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog

from flows.deployments import EVALUATION_DEPLOYMENT

log = structlog.get_logger()


def _mark_failed(parameters: dict[str, Any], error: BaseException) -> None:
    """Record on the run that its flow never ran (the flow itself records its own failures)."""
    from flows.runtime import runtime
    from models.db.engine import transaction
    from pipelines.evaluation import service
    from pipelines.organizations import get_organization

    run_id = parameters.get("run_id")
    if run_id is None:
        return
    rt = runtime()
    try:
        with transaction(rt.sessions) as session:
            organization = get_organization(session, parameters["organization"])
            service.launch_failed(
                session,
                organization_id=organization.id,
                run_id=uuid.UUID(run_id),
                actor=parameters.get("actor", "launcher"),
                error=error,
            )
    except Exception:
        log.exception("evaluation.mark_failed_failed", run_id=run_id)


def _run_flow(parameters: dict[str, Any]) -> None:
    from flows.evaluation import evaluate_model_version
    from flows.orchestrator import OrchestratorUnavailable, orchestrated

    try:
        with orchestrated():
            evaluate_model_version(**parameters)
    except OrchestratorUnavailable as error:
        # The flow never started, so nothing else records why.
        log.exception("evaluation.orchestrator_unavailable", run_id=parameters.get("run_id"))
        _mark_failed(parameters, error)
    except Exception:
        # The flow marked its run failed with the reason; keep that reason.
        log.exception("evaluation.background_flow_failed", run_id=parameters.get("run_id"))


class BackgroundThreadLauncher:
    """The embedded default: one worker thread in this process runs flows one after another."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamflow-flows")
        self.futures: list[Future[None]] = []

    def launch(self, parameters: dict[str, Any]) -> None:
        self.futures.append(self.executor.submit(_run_flow, parameters))

    def wait(self, timeout: float | None = None) -> None:
        """Block until every launched flow has finished (tests and shutdown)."""
        for future in list(self.futures):
            future.result(timeout=timeout)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


class PrefectDeploymentLauncher:
    """A flow run of a Prefect deployment, picked up by whatever worker serves it."""

    def __init__(self, deployment: str = EVALUATION_DEPLOYMENT) -> None:
        self.deployment = deployment

    def launch(self, parameters: dict[str, Any]) -> None:
        """Create the flow run; raises when the server refuses (the caller fails the run)."""
        from prefect.deployments import run_deployment

        run_deployment(name=self.deployment, parameters=parameters, timeout=0)

    def shutdown(self) -> None:
        return None


class LocalLauncher:
    """The embedded default: through the deployment when a local worker serves it (as in
    production), else in a worker thread of this process."""

    def __init__(self, deployment: str = EVALUATION_DEPLOYMENT) -> None:
        self.deployment = deployment
        self.thread = BackgroundThreadLauncher()

    def launch(self, parameters: dict[str, Any]) -> None:
        from flows.deployments import served_by_a_worker
        from flows.orchestrator import local_api_url_if_running

        api_url = local_api_url_if_running()
        if api_url is not None and served_by_a_worker(self.deployment, api_url):
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                PrefectDeploymentLauncher(self.deployment).launch(parameters)
            return
        self.thread.launch(parameters)

    def wait(self, timeout: float | None = None) -> None:
        self.thread.wait(timeout)

    def shutdown(self) -> None:
        self.thread.shutdown()


def make_launcher(deployment: str | None = None) -> PrefectDeploymentLauncher | LocalLauncher:
    """The launcher for this process: a named deployment (production) or the local choice."""
    if deployment:
        return PrefectDeploymentLauncher(deployment)
    return LocalLauncher()
