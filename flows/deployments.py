"""StreamFlow's Prefect deployments, served together by `streamflow worker` (`prefect.serve`).

Evaluations run on demand; each capability that runs on a schedule adds its deployment to
`deployments()`. In production the same flows are deployed to work pools instead.
"""

from __future__ import annotations

from typing import Any

EVALUATION_DEPLOYMENT = "evaluate-model-version/evaluations"
"""`flow name/deployment name` of on-demand evaluations."""


def deployments() -> list[Any]:
    """Every deployment a local worker serves."""
    from prefect.types.entrypoint import EntrypointType

    from flows.domains import recheck_domains, renew_certificates
    from flows.evaluation import evaluate_model_version, fail_stuck_evaluations
    from flows.experiments import compare_experiments
    from flows.jobs import dispatch_jobs
    from flows.profitability import rollup_profitability
    from flows.serving import prune_traffic_log

    # Imported as `flows.evaluation`, not loaded as a script from a file path.
    return [
        evaluate_model_version.to_deployment(
            name=EVALUATION_DEPLOYMENT.split("/", 1)[1],
            description="Evaluate a model version or predictions file on a golden dataset.",
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        fail_stuck_evaluations.to_deployment(
            name="every-5-minutes",
            description="Fail evaluation runs whose flow never started.",
            interval=300,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        dispatch_jobs.to_deployment(
            name="every-15-seconds",
            description="Run due background jobs: webhooks, e-mail, reports, AI tasks.",
            interval=15,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        recheck_domains.to_deployment(
            name="every-5-minutes",
            description="Re-verify custom domains whose ownership check is due.",
            interval=300,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        renew_certificates.to_deployment(
            name="every-10-minutes",
            description="Order certificates for verified domains and renew those that are due.",
            interval=600,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        rollup_profitability.to_deployment(
            name="hourly",
            description="Recompute tenants' profitability where events or prices changed.",
            interval=3600,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        compare_experiments.to_deployment(
            name="hourly",
            description="Compare running experiments' challengers with their champions, let "
            "the promotion gate decide, and check inputs for drift.",
            interval=3600,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
        prune_traffic_log.to_deployment(
            name="daily",
            description="Delete traffic-log rows older than the retention setting.",
            interval=86_400,
            entrypoint_type=EntrypointType.MODULE_PATH,
        ),
    ]


def serve_forever() -> None:
    """Serve every deployment from this process until interrupted; schedules are kept."""
    from prefect import serve

    serve(*deployments(), pause_on_shutdown=False, print_starting_message=False)


def served_by_a_worker(deployment: str, api_url: str) -> bool:
    """Whether a worker is polling for `deployment` on the server at `api_url` right now."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            with get_client(sync_client=True) as client:
                found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            return False
        except Exception:
            return False
    return found.status == DeploymentStatus.READY
