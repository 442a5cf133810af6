"""The `compare-experiments` Prefect flow on the local orchestrator: it evaluates both versions
of a shadow experiment on the pinned golden dataset version with the evaluation flow (subflow
runs, the runs stored like any other), reuses them at the next look, and lets the gate decide.

Traffic is written straight into the traffic log (the API's part is tested elsewhere); drift is
left out (`drift=False`), as Evidently has a test of its own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from sqlalchemy import select

from flows.experiments import compare_experiments
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.tables import EvaluationRun
from pipelines.promotion import service as promotion
from tests.flows.shadow_experiment import add_shadow_traffic, running_shadow


def test_the_flow_evaluates_with_subflows_reuses_the_runs_and_decides(streamflow: Runtime) -> None:
    rt = streamflow
    agent = f"flow-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC) - timedelta(hours=1)
    experiment_id, provider_id, tenant_id = running_shadow(
        rt, agent, started, tenant_slug="tenant-flow"
    )

    add_shadow_traffic(
        rt, agent, experiment_id, tenant_id, range(10), started + timedelta(minutes=1)
    )
    first = compare_experiments(experiment_id=str(experiment_id), drift=False)
    assert [d["outcome"] for d in first["decisions"]] == ["wait"]
    assert first["drift_reports"] == []

    with transaction(rt.sessions) as session:
        runs = session.execute(
            select(EvaluationRun.id, EvaluationRun.model_version, EvaluationRun.flow_run_id)
            .where(EvaluationRun.organization_id == provider_id)
            .order_by(EvaluationRun.model_version)
        ).all()
    assert [(version, run_id is not None) for _, version, run_id in runs] == [
        ("1", True),
        ("2", True),
    ]
    # Each run was carried out by an evaluation flow run nested in the compare flow's run.
    with get_client(sync_client=True) as client:
        for _, _, flow_run_id in runs:
            flow_run = client.read_flow_run(uuid.UUID(str(flow_run_id)))
            assert client.read_flow(flow_run.flow_id).name == "evaluate-model-version"
            assert flow_run.parent_task_run_id is not None
            assert flow_run.state is not None
            assert flow_run.state.is_completed()

    add_shadow_traffic(
        rt, agent, experiment_id, tenant_id, range(10, 30), started + timedelta(minutes=2)
    )
    second = compare_experiments(experiment_id=str(experiment_id), drift=False)
    (decided,) = second["decisions"]
    assert decided["outcome"] == "promote"
    assert decided["n"] == 30
    with transaction(rt.sessions) as session:
        again = session.execute(
            select(EvaluationRun.id).where(EvaluationRun.organization_id == provider_id)
        ).all()
        decision = promotion.decision_detail(session, decided["id"])
    # The second look reused both runs: none was added, and the evidence names them.
    assert sorted(str(r[0]) for r in again) == sorted(str(r[0]) for r in runs)
    assert set(decision.evidence["golden"]["evaluation_runs"].values()) == {str(r[0]) for r in runs}
