"""Handing a committed evaluation run to its flow, from any surface that starts one."""

from __future__ import annotations

import uuid
from typing import Any

from api.state import ApiState
from pipelines.evaluation.service import launch_failed


def launch_or_fail(
    state: ApiState, parameters: dict[str, Any], organization_id: uuid.UUID, actor: str
) -> None:
    """Launch a committed run's flow; if the launch fails, the run is failed with the reason."""
    try:
        state.launcher.launch(parameters)
    except Exception as error:
        with state.sessions() as session, session.begin():
            launch_failed(
                session,
                organization_id=organization_id,
                run_id=uuid.UUID(parameters["run_id"]),
                actor=actor,
                error=error,
            )
