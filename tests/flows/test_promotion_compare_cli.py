"""`streamflow promotion compare --local`: run as a user would, it compares a running shadow
experiment here (no orchestrator), prints each decision, and stores it with its evidence; a
better challenger is promoted (the aliases move) once the gate's minimum sample is reached.

Traffic is written straight into the traffic log (the API's part is tested elsewhere).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from flows.cli import app
from flows.experiments import FLOW_ACTOR
from flows.runtime import Runtime
from models.db.engine import transaction
from models.registry import client as registry
from pipelines.promotion import service as promotion
from tests.flows.shadow_experiment import add_shadow_traffic, running_shadow

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_compare_local_waits_then_promotes_and_stores_each_decision(streamflow: Runtime) -> None:
    rt = streamflow
    registry.configure(rt.registry)
    code, out, err = _run("promotion", "compare", "--local")
    assert code == 0, err
    assert out.strip() == "no running experiment"

    agent = f"cli-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC) - timedelta(hours=1)
    experiment_id, _, tenant_id = running_shadow(rt, agent, started, tenant_slug="tenant-cli")
    add_shadow_traffic(
        rt, agent, experiment_id, tenant_id, range(10), started + timedelta(minutes=1)
    )

    code, out, err = _run("promotion", "compare", "--local", "--experiment", str(experiment_id))
    assert code == 0, err
    (line,) = out.strip().splitlines()
    waited_id, shown_agent, outcome, n = line.split()
    assert (shown_agent, outcome, n) == (agent, "wait", "n=10")
    with transaction(rt.sessions) as session:
        waited = promotion.decision_detail(session, waited_id)
    assert (waited.outcome, waited.n, waited.agent_type) == ("wait", 10, agent)
    assert registry.resolve(f"{agent}-model@champion").version == "1"

    add_shadow_traffic(
        rt, agent, experiment_id, tenant_id, range(10, 30), started + timedelta(minutes=2)
    )
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
    assert err.startswith("error: --slice-margin: -1")
    code, _, err = _run(
        "promotion", "gate", "set", f"{agent}-unpinned", "--critical-slice", "refunds"
    )
    assert code != 0
    assert err.startswith("error: --critical-slice: slices are checked on the golden set")
