"""`streamflow promotion compare --local`: run as a user would, it compares a running shadow
experiment here (no orchestrator), prints each decision, and stores it with its evidence; a
better challenger is promoted (the aliases move) once the gate's minimum sample is reached.

Traffic is written straight into the traffic log (the API's part is tested elsewhere).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from flows.cli import app
from flows.experiments import FLOW_ACTOR
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.enums import ExperimentKind
from models.db.tables import Feedback, TrafficLogEntry
from models.registry import client as registry
from pipelines.experiments.service import ExperimentRequest, change_status, create_experiment
from pipelines.organizations import ensure_organization
from pipelines.promotion import service as promotion
from tests.flows.conftest import add_golden_rows

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


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


def _traffic(rt: Runtime, agent: str, experiment_id: uuid.UUID, tenant: uuid.UUID,
             numbers: range, at: datetime) -> None:  # fmt: skip
    """Served (champion) and shadow (challenger) rows of requests, each with its label."""
    with transaction(rt.sessions) as session:
        for i in numbers:
            request_id, text = uuid.uuid4().hex, _text(i)
            for role, version, model in (("served", "1", Half()), ("shadow", "2", Perfect())):
                session.add(
                    TrafficLogEntry(
                        request_id=request_id,
                        organization_id=tenant,
                        agent_type=agent,
                        experiment_id=experiment_id,
                        role=role,
                        model_version=f"{agent}-model@{version}",
                        input_hash=hashlib.sha256(text.encode()).hexdigest(),
                        input_text=text,
                        output_text=model.predict([text])[0],
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


def _running_shadow(rt: Runtime, agent: str, started: datetime) -> tuple[uuid.UUID, uuid.UUID]:
    """Champion v1 (half right) and challenger v2 (always right) of `agent`, a golden dataset,
    a gate wanting 30 requests, and a running shadow experiment: (experiment id, tenant id)."""
    for model in (Half(), Perfect()):
        register_agent(
            f"{agent}-model",
            BuiltAgent(model, agent, "classification"),
            alias="champion" if isinstance(model, Half) else None,
            actor="test",
        )
    with transaction(rt.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="test"
        )
        tenant, _ = ensure_organization(
            session, slug="tenant-cli", name="T", kind="tenant", actor="test"
        )
        add_golden_rows(
            session,
            storage_dir=rt.storage.golden_dataset_dir,
            organization_id=provider.id,
            name=f"{agent}-golden",
            rows=[
                {"id": f"g{i:02d}", "input": _text(i), "expected": _truth(_text(i))}
                for i in range(30)
            ],
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
        return experiment_id, tenant.id


def test_compare_local_waits_then_promotes_and_stores_each_decision(streamflow: Runtime) -> None:
    rt = streamflow
    registry.configure(rt.registry)
    code, out, err = _run("promotion", "compare", "--local")
    assert code == 0, err
    assert out.strip() == "no running experiment"

    agent = f"cli-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC) - timedelta(hours=1)
    experiment_id, tenant_id = _running_shadow(rt, agent, started)
    _traffic(rt, agent, experiment_id, tenant_id, range(10), started + timedelta(minutes=1))

    code, out, err = _run("promotion", "compare", "--local", "--experiment", str(experiment_id))
    assert code == 0, err
    (line,) = out.strip().splitlines()
    waited_id, shown_agent, outcome, n = line.split()
    assert (shown_agent, outcome, n) == (agent, "wait", "n=10")
    with transaction(rt.sessions) as session:
        waited = promotion.decision_detail(session, waited_id)
    assert (waited.outcome, waited.n, waited.agent_type) == ("wait", 10, agent)
    assert registry.resolve(f"{agent}-model@champion").version == "1"

    _traffic(rt, agent, experiment_id, tenant_id, range(10, 30), started + timedelta(minutes=2))
    code, out, err = _run("promotion", "compare", "--local", "--json")
    assert code == 0, err
    (shown,) = json.loads(out)["decisions"]
    assert (shown["agent_type"], shown["outcome"], shown["n"]) == (agent, "promote", 30)
    with transaction(rt.sessions) as session:
        stored = promotion.decision_detail(session, shown["id"])
        page = promotion.decisions_page(session, agent_type=agent, cursor=None, limit=10)
    assert (stored.outcome, stored.n) == ("promote", 30)
    assert (stored.champion_version, stored.challenger_version) == (
        f"{agent}-model@1",
        f"{agent}-model@2",
    )
    assert stored.actor == FLOW_ACTOR
    checks = stored.evidence["gate"]["checks"]
    assert checks
    assert all(check["passed"] for check in checks)
    assert [str(item.id) for item in page.items] == [shown["id"], waited_id]
    assert registry.resolve(f"{agent}-model@champion").version == "2"
    assert registry.resolve(f"{agent}-model@previous").version == "1"


def test_gate_set_takes_critical_slices_with_their_margin(streamflow: Runtime) -> None:
    agent = f"cli-gate-{uuid.uuid4().hex[:6]}"
    code, out, err = _run(
        "promotion",
        "gate",
        "set",
        agent,
        "--golden-dataset",
        "intents@3",
        "--critical-slice",
        "refunds",
        "--critical-slice",
        "billing",
        "--slice-margin",
        "0.02",
        "--json",
    )
    assert code == 0, err
    config = json.loads(out)["config"]
    assert (config["critical_slices"], config["slice_margin"]) == (["billing", "refunds"], 0.02)
    code, _, err = _run("promotion", "gate", "set", agent, "--slice-margin", "-1")
    assert code != 0
    assert "slice_margin" in err
