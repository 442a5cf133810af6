"""The `compare-experiments` Prefect flow on the local orchestrator: it evaluates both versions
of a shadow experiment on the pinned golden dataset version with the evaluation flow (subflow
runs, the runs stored like any other), reuses them at the next look, and lets the gate decide.

Traffic is written straight into the traffic log (the API's part is tested elsewhere); drift is
left out (`drift=False`), as Evidently has a test of its own.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from sqlalchemy import select

from flows.experiments import compare_experiments
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.enums import ExperimentKind
from models.db.tables import EvaluationRun, Feedback, TrafficLogEntry
from pipelines.experiments.service import ExperimentRequest, change_status, create_experiment
from pipelines.organizations import ensure_organization
from pipelines.promotion import service as promotion
from tests.flows.conftest import add_golden_rows


def _truth(text: str) -> str:
    return "refund" if "money" in text else "cancel"


def _text(i: int) -> str:
    return f"{'give my money back' if i % 3 else 'stop my plan'} please {i}"


class Half:
    """Right on even-numbered texts only."""

    def predict(self, texts: list[str]) -> list[str]:
        return [_truth(t) if int(t.rsplit(" ", 1)[-1]) % 2 == 0 else "wrong" for t in texts]


class Perfect:
    """Always right."""

    def predict(self, texts: list[str]) -> list[str]:
        return [_truth(t) for t in texts]


def _traffic(rt: Runtime, agent: str, experiment_id: uuid.UUID, tenant: uuid.UUID, start: int,
             count: int, at: datetime) -> None:  # fmt: skip
    """Served (champion) and shadow (challenger) rows of `count` requests, each with a label."""
    with transaction(rt.sessions) as session:
        for i in range(start, start + count):
            request_id, text = uuid.uuid4().hex, _text(i)
            for role, version, output in (
                ("served", f"{agent}-model@1", Half().predict([text])[0]),
                ("shadow", f"{agent}-model@2", _truth(text)),
            ):
                session.add(
                    TrafficLogEntry(
                        request_id=request_id,
                        organization_id=tenant,
                        agent_type=agent,
                        experiment_id=experiment_id,
                        role=role,
                        model_version=version,
                        input_hash=hashlib.sha256(text.encode()).hexdigest(),
                        input_text=text,
                        output_text=output,
                        input_chars=len(text),
                        latency_ms=5.0,
                        created_at=at + timedelta(milliseconds=i),
                    )
                )
            session.add(
                Feedback(
                    request_id=request_id,
                    organization_id=tenant,
                    agent_type=agent,
                    kind="label",
                    value=_truth(text),
                    created_by="test",
                    created_at=at + timedelta(milliseconds=i),
                )
            )


def test_the_flow_evaluates_with_subflows_reuses_the_runs_and_decides(streamflow: Runtime) -> None:
    rt = streamflow
    agent = f"flow-{uuid.uuid4().hex[:6]}"
    for model in (Half(), Perfect()):
        register_agent(
            f"{agent}-model",
            BuiltAgent(model, agent, "classification"),
            alias="champion" if isinstance(model, Half) else None,
            actor="test",
        )
    started = datetime.now(UTC) - timedelta(hours=1)
    with transaction(rt.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="test"
        )
        tenant, _ = ensure_organization(
            session, slug="tenant-flow", name="T", kind="tenant", actor="test"
        )
        provider_id, tenant_id = provider.id, tenant.id
        rows = [
            {"id": f"g{i:02d}", "input": _text(i), "expected": _truth(_text(i))} for i in range(30)
        ]
        add_golden_rows(
            session,
            storage_dir=rt.storage.golden_dataset_dir,
            organization_id=provider.id,
            name=f"{agent}-golden",
            rows=rows,
            task="classification",
        )
        promotion.set_gate(
            session,
            agent_type=agent,
            config={
                "min_n": 30,
                "min_duration_seconds": 0,
                "golden_dataset": f"{agent}-golden@1",
                "guardrails": [{"metric": "error_rate", "margin": 0.2}],
            },
            actor="test",
            now=started,
        )
        created = create_experiment(
            session,
            ExperimentRequest(
                kind=ExperimentKind.SHADOW, agent_type=agent, challenger=f"{agent}-model@2", mde=0.3
            ),
            champion=f"{agent}-model@1",
            resolve=lambda reference: reference,
            actor="test",
            now=started,
        )
        experiment_id = uuid.UUID(str(created.id))
        change_status(
            session, experiment_id, "start", actor="test", now=started, champion=f"{agent}-model@1"
        )

    _traffic(rt, agent, experiment_id, tenant_id, 0, 10, started + timedelta(minutes=1))
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

    _traffic(rt, agent, experiment_id, tenant_id, 10, 20, started + timedelta(minutes=2))
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
