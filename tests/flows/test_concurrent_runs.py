"""Identical evaluations at once (abuse suite: concurrent identical runs), on PostgreSQL and SQLite.

One flow at a time carries a run out: the other waits for it and reuses its result. A completed
run stays completed, its `error` stays empty, every example has exactly one score, and nothing
on stderr but what the user asked for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flows.evaluation import run_evaluation
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.repositories.evaluations import EvaluationRepository
from models.db.tables import AuditLogEntry, EvaluationExampleScore, EvaluationRun
from pipelines.evaluation import service
from pipelines.organizations import get_organization
from tests.concurrency import at_once, meet_after
from tests.flows.conftest import import_golden_rows

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "flows.cli"]
ROWS = [
    {
        "id": f"n{i:03d}",
        "input": f"Arrived. Found leaking valve {i}. Replaced it and tested the line.",
        "expected": f"Replaced leaking valve {i} and tested the line.",
    }
    for i in range(30)
]


def _predictions(tmp_path: Path, rows: list[dict[str, str]] = ROWS) -> Path:
    path = tmp_path / "predictions.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"id": row["id"], "prediction": row["input"].split(". ", 1)[1]})
            for row in rows
        )
    )
    return path


def _evaluate(path: Path) -> object:
    return run_evaluation(
        "provider",
        "test",
        dataset="notes",
        predictions_path=str(path),
        agent_type="summarizer",
        batch_size=10,
    )


def _stored(rt: Runtime) -> tuple[list[EvaluationRun], int, list[str]]:
    """The runs, how many score rows, and the run audit actions, in order."""
    with rt.sessions() as session:
        runs = list(session.scalars(select(EvaluationRun)))
        scores = session.scalar(select(func.count()).select_from(EvaluationExampleScore)) or 0
        actions = list(
            session.scalars(
                select(AuditLogEntry.action)
                .where(AuditLogEntry.action.like("evaluation_run.%"))
                .order_by(AuditLogEntry.occurred_at)
            )
        )
    return runs, scores, actions


def _failed_run(rt: Runtime, path: Path) -> uuid.UUID:
    """The same evaluation, failed after its first batch (as a crashed flow leaves it)."""
    request = service.EvaluationRequest(
        dataset="notes",
        agent_type="summarizer",
        predictions=service.PredictionsFile.read(path.read_bytes(), filename=path.name),
        options=service.ScoringOptions(
            n_resamples=rt.evaluation.bootstrap_resamples,
            confidence=rt.evaluation.confidence,
            seed=rt.evaluation.seed,
        ),
        batch_size=10,
    )
    with transaction(rt.sessions) as session:
        org = get_organization(session, "provider")
        prepared = service.prepare_evaluation(
            session,
            organization_id=org.id,
            actor="test",
            request=request,
            storage_dir=rt.storage.golden_dataset_dir,
            flow_run_id=None,
        )
        service.fail_run(
            session,
            organization_id=org.id,
            run_id=prepared.run_id,
            actor="test",
            error=RuntimeError("worker lost"),
            claim=prepared.claim,
        )
    return prepared.run_id


class TestIdenticalRunsAtOnce:
    @pytest.mark.parametrize("before", ["nothing", "a failed run"])
    def test_one_flow_scores_the_other_waits_and_reuses(
        self, streamflow: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: str
    ) -> None:
        """Both flows decide from the same state (no run, or a failed one) before either
        writes: one claims and scores the run, the other reuses it; nothing fails."""
        import_golden_rows(streamflow, "notes", ROWS)
        path = _predictions(tmp_path)
        earlier = _failed_run(streamflow, path) if before == "a failed run" else None
        meet_after(monkeypatch, EvaluationRepository, "find_reusable")
        outcomes = at_once(lambda: _evaluate(path), lambda: _evaluate(path), timeout=240)
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        assert sorted(o.reused for o in outcomes) == [False, True]  # type: ignore[union-attr]
        [run_id] = {o.run_id for o in outcomes}  # type: ignore[union-attr]
        runs, scores, actions = _stored(streamflow)
        assert [(str(r.id), r.status, r.error) for r in runs] == [(run_id, "completed", None)]
        assert earlier is None or str(earlier) == run_id
        assert scores == len(ROWS)
        expected = ["evaluation_run.created"]
        if earlier is not None:
            expected.append("evaluation_run.failed")
        assert actions == [*expected, "evaluation_run.completed"]

    def test_a_run_whose_flow_went_silent_is_taken_over_and_resumed(
        self, streamflow: Runtime, tmp_path: Path
    ) -> None:
        """A run left `running` by a killed flow (no sign of life for a lease) is resumed by
        the next identical evaluation, which stores only the missing scores."""
        import_golden_rows(streamflow, "notes", ROWS)
        path = _predictions(tmp_path)
        run_id = _failed_run(streamflow, path)
        lease = timedelta(seconds=streamflow.evaluation.claim_lease_seconds)
        with transaction(streamflow.sessions) as session:
            run = session.get(EvaluationRun, run_id)
            assert run is not None
            killed_at = service.utc_now() - 2 * lease
            run.status, run.error, run.claimed_by, run.heartbeat_at = (
                "running",
                None,
                "killed-flow",
                killed_at,
            )
        outcome = _evaluate(path)
        assert (outcome.run_id, outcome.reused, outcome.resumed) == (str(run_id), False, True)
        runs, scores, _ = _stored(streamflow)
        assert [(r.status, r.error) for r in runs] == [("completed", None)]
        assert scores == len(ROWS)


@pytest.mark.parametrize("streamflow", ["postgresql"], indirect=True)
def test_an_identical_eval_run_command_waits_for_the_flow_holding_the_run(
    streamflow: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow holds the run (its scoring held back) when `streamflow eval run` starts the same
    evaluation in another process: the command waits for that flow, then exits 0 with the
    reused run and no warning, error or traceback on stderr; one score per example."""
    rows = ROWS[:4]
    import_golden_rows(streamflow, "notes", rows)
    path = _predictions(tmp_path, rows)
    command_waits = threading.Event()
    score_batch = service.score_batch

    def held_back(**kwargs: Any) -> Any:
        command_waits.wait(300)  # the command's start alone takes a minute on a busy machine
        return score_batch(**kwargs)

    monkeypatch.setattr(service, "score_batch", held_back)
    outcomes: list[Any] = []

    def holding_flow() -> None:
        try:
            outcomes.append(_evaluate(path))
        except BaseException as error:  # reported to the test, which asserts on it
            outcomes.append(error)

    flow = threading.Thread(target=holding_flow, daemon=True)
    flow.start()
    try:
        _wait_until_claimed(streamflow)
        command = [
            *CLI,
            "--log-level",
            "info",  # the line saying it waits is the test's cue to let the flow go on
            "eval",
            "run",
            "--dataset",
            "notes",
            "--predictions",
            str(path),
            "--agent-type",
            "summarizer",
            "--batch-size",
            "10",
            "--json",
        ]
        environment = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        logged: list[str] = []

        def read_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                logged.append(line)
                if "evaluation.waiting_for_other_flow" in line:
                    command_waits.set()

        # Only the reader takes stderr (communicate() would read it too and steal lines).
        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        assert process.stdout is not None
        out = process.stdout.read()
        process.wait(timeout=360)
        reader.join(10)
    finally:
        command_waits.set()
        flow.join(360)
    assert process.returncode == 0, "".join(logged)
    assert [o for o in outcomes if isinstance(o, BaseException)] == []
    [outcome] = outcomes
    assert outcome.reused is False  # type: ignore[union-attr]
    document = json.loads(out)
    assert (document["id"], document["reused"], document["status"]) == (
        outcome.run_id,  # type: ignore[union-attr]
        True,
        "completed",
    )
    records = [json.loads(line) for line in logged if line.startswith("{")]
    assert "evaluation.waiting_for_other_flow" in {r.get("event") for r in records}
    assert [line for line in logged if not line.startswith("{")] == []  # no traceback
    assert [r for r in records if r.get("level") not in ("debug", "info")] == []
    runs, scores, actions = _stored(streamflow)
    assert [(r.status, r.error) for r in runs] == [("completed", None)]
    assert scores == len(rows)
    assert actions == ["evaluation_run.created", "evaluation_run.completed"]


def _wait_until_claimed(rt: Runtime, timeout: float = 240) -> None:
    """Until a flow has claimed a run (it is `running` and held)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with rt.sessions() as session:
            held = session.scalar(
                select(func.count())
                .select_from(EvaluationRun)
                .where(EvaluationRun.status == "running", EvaluationRun.claimed_by.is_not(None))
            )
        if held:
            return
        time.sleep(0.1)
    raise AssertionError("no flow claimed the run")
