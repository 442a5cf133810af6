"""`streamflow experiments`: create with a planned sample size, then start, pause, stop."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from flows.runtime import Runtime
from models.registry import client as registry
from tests.api.serving_agents import KeywordIntent, SharperIntent

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_create_shows_the_plan_and_the_lifecycle_moves(streamflow: Runtime, tmp_path: Path) -> None:
    registry.configure(streamflow.registry)
    suffix = tmp_path.name[-6:].lower().replace("_", "-")
    name, agent = f"intent-cli-{suffix}", f"intent-cli-{suffix}"
    experiment = registry.experiment_id(streamflow.registry)
    for model in (KeywordIntent(), SharperIntent()):
        registry.register_model_version(
            name, model, agent_type=agent, task="classification", experiment=experiment
        )
    registry.set_alias(name, "champion", "1")
    code, out, err = _run(
        "experiments", "create", "--kind", "shadow", "--agent", agent,
        "--challenger", f"{name}@2", "--mde", "0.05",
    )  # fmt: skip
    assert code == 0, err
    assert "planned sample size: 1,813" in out
    code, out, err = _run("experiments", "list", "--agent", agent, "--json")
    (created,) = json.loads(out)["items"]
    assert (created["status"], created["champion_version"]) == ("draft", f"{name}@1")
    for action, status in (("start", "running"), ("pause", "paused"), ("stop", "stopped")):
        code, out, err = _run("experiments", action, created["id"], "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == status
    code, _, err = _run("experiments", "start", created["id"])
    assert code == 1
    assert "stopped" in err
    code, _, err = _run(
        "experiments", "create", "--kind", "ab", "--agent", agent,
        "--challenger", f"{name}@9", "--mde", "0.05",
    )  # fmt: skip
    assert code == 1
    assert "is not registered; name a registered version" in err
