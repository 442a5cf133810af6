"""A run's lifecycle: checked before it exists, pending until claimed, failed with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.db.tables import AuditLogEntry, EvaluationRun
from pipelines.errors import InvalidInput, NotFound
from pipelines.evaluation import service
from pipelines.golden_datasets.service import import_golden_dataset
from tests.factories import create_organization

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ROWS = [(f"n{i}", f"note {i}. more text", f"note {i}.") for i in range(6)]


def _dataset(session: Session, storage: Path, name: str = "notes") -> tuple[object, str]:
    org = create_organization(session)
    import_golden_dataset(
        session,
        organization_id=org.id,
        actor="test",
        name=name,
        task="text_generation",
        data="\n".join(
            json.dumps({"id": i, "input": x, "expected": y}) for i, x, y in ROWS
        ).encode(),
        filename="notes.jsonl",
        storage_dir=storage,
    )
    return org, name


def _predictions(ids: list[str] | None = None) -> service.PredictionsFile:
    chosen = ids if ids is not None else [i for i, _, _ in ROWS]
    data = "\n".join(json.dumps({"id": i, "prediction": "note"}) for i in chosen).encode()
    return service.PredictionsFile.read(data, filename="p.jsonl")


def _runs(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(EvaluationRun)) or 0


def _prepare(session: Session, org, storage: Path, **changes) -> service.PreparedEvaluation:
    request = service.EvaluationRequest(
        dataset="notes",
        predictions=_predictions(),
        agent_type="summarizer",
        options=service.ScoringOptions(n_resamples=50),
    )
    options = {"claim": True, "clock": lambda: T0} | changes
    return service.prepare_evaluation(
        session,
        organization_id=org.id,
        actor="test",
        request=request,
        storage_dir=storage,
        flow_run_id=None,
        **options,
    )


class TestCheckBeforeWriting:
    def test_refused_requests_leave_no_run(self, session: Session, tmp_path: Path) -> None:
        """Unknown datasets, partial predictions, a missing agent type: refused, nothing stored."""
        org, _ = _dataset(session, tmp_path)
        before = _runs(session)
        cases = [
            (
                service.EvaluationRequest(dataset="nope", predictions=_predictions()),
                NotFound,
                "golden dataset 'nope' not found",
                None,
            ),
            (
                service.EvaluationRequest(
                    dataset="notes", predictions=_predictions(["n0"]), agent_type="summarizer"
                ),
                InvalidInput,
                r"5 example\(s\) have no prediction",
                None,
            ),
            (
                service.EvaluationRequest(dataset="notes", predictions=_predictions()),
                InvalidInput,
                "does not say which agent made it.*give the agent type",
                "agent_type",
            ),
            (
                service.EvaluationRequest(
                    dataset="notes", predictions=_predictions(), batch_size=0
                ),
                InvalidInput,
                "must be at least 1",
                "batch_size",
            ),
        ]
        for request, error, message, field in cases:
            with pytest.raises(error, match=message) as raised:
                service.prepare_evaluation(
                    session,
                    organization_id=org.id,
                    actor="test",
                    request=request,
                    storage_dir=tmp_path,
                    flow_run_id=None,
                )
            if field is not None:
                assert raised.value.field == field
        assert _runs(session) == before

    def test_agent_type_is_inferred_from_earlier_runs_on_the_dataset(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Once a dataset has runs of one agent type, a predictions file needs no agent type."""
        org, _ = _dataset(session, tmp_path)
        _prepare(session, org, tmp_path)
        checked = service.check_evaluation(
            session,
            organization_id=org.id,
            request=service.EvaluationRequest(dataset="notes", predictions=_predictions()),
            storage_dir=tmp_path,
        )
        assert checked.request.agent_type == "summarizer"


class TestPendingUntilClaimed:
    def test_unclaimed_run_is_pending_and_a_flow_claims_it(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Without a claim the run waits `pending`; the same request claimed makes it running."""
        org, _ = _dataset(session, tmp_path)
        waiting = _prepare(session, org, tmp_path, claim=False)
        run = service.get_run(session, organization_id=org.id, run_id=waiting.run_id)
        assert (run.status, run.started_at) == ("pending", None)
        later = T0 + timedelta(minutes=1)
        claimed = _prepare(session, org, tmp_path, clock=lambda: later)
        assert claimed.run_id == waiting.run_id
        assert run.status == "running"
        assert service._aware(run.started_at) == later

    def test_stuck_is_reported_after_the_timeout_and_failed_with_the_reason(
        self, session: Session, tmp_path: Path
    ) -> None:
        """A run pending longer than the limit is reported stuck, then failed; others stay."""
        org, _ = _dataset(session, tmp_path)
        waiting = _prepare(session, org, tmp_path, claim=False)
        busy = _prepare(session, org, tmp_path, claim=True, clock=lambda: T0)
        assert busy.run_id == waiting.run_id  # the same request: claimed now
        session.get(EvaluationRun, busy.run_id).status = "pending"
        session.flush()
        limit = timedelta(minutes=10)
        for minutes, stuck in ((9, False), (11, True)):
            progress = service.run_progress(
                session,
                organization=org.slug,
                run_id=waiting.run_id,
                clock=lambda m=minutes: T0 + timedelta(minutes=m),
                pending_timeout=limit,
            )
            assert progress.stuck is stuck
        assert (
            service.fail_stuck_runs(
                session,
                actor="sweeper",
                clock=lambda: T0 + timedelta(minutes=9),
                pending_timeout=limit,
            )
            == []
        )
        failed = service.fail_stuck_runs(
            session,
            actor="sweeper",
            clock=lambda: T0 + timedelta(minutes=11),
            pending_timeout=limit,
        )
        assert [run.id for run in failed] == [waiting.run_id]
        run = session.get(EvaluationRun, waiting.run_id)
        assert run.status == "failed"
        assert run.error.startswith("the flow never started; ")
        assert service._aware(run.finished_at) == T0 + timedelta(minutes=11)
        audited = session.scalars(
            select(AuditLogEntry.actor).where(AuditLogEntry.action == "evaluation_run.failed")
        ).all()
        assert audited == ["sweeper"]


class TestFailureReasons:
    def test_database_errors_never_show_their_sql(self, session: Session, tmp_path: Path) -> None:
        """A database failure is stored as one line naming its kind, without the statement."""
        org, _ = _dataset(session, tmp_path)
        prepared = _prepare(session, org, tmp_path)
        error = IntegrityError(
            "INSERT INTO evaluation_example_scores (run_id) VALUES (?)", {}, None
        )
        run = service.fail_run(
            session, organization_id=org.id, run_id=prepared.run_id, actor="t", error=error
        )
        assert "IntegrityError" in run.error
        assert "INSERT" not in run.error
        assert "\n" not in run.error

    def test_other_errors_keep_their_first_line_only(self) -> None:
        """An unexpected error becomes `Type: first line`; a domain error keeps its message."""
        multi = RuntimeError("worker lost\nTraceback (most recent call last):\n  File x")
        assert service.failure_reason(multi) == "RuntimeError: worker lost"
        assert service.failure_reason(NotFound("run x not found")) == "run x not found"
        launch = service.failure_reason(
            f"the flow could not be started: {service.failure_reason(TimeoutError())}"
        )
        assert launch == "the flow could not be started: TimeoutError"


def _score_all(session: Session, prepared: service.PreparedEvaluation, **claim) -> None:
    predictions = ["note"] * len(prepared.examples)
    service.store_batch(
        session,
        run_id=prepared.run_id,
        batch_index=0,
        examples=prepared.examples,
        predictions=predictions,
        scores=service.score_batch(
            task="text_generation",
            examples=prepared.examples,
            predictions=predictions,
            options=service.ScoringOptions(n_resamples=50),
        ),
        **claim,
    )


def _actions(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(AuditLogEntry.action)
            .where(AuditLogEntry.action.like("evaluation_run.%"))
            .order_by(AuditLogEntry.occurred_at)
        )
    )


class TestOneFlowAtATime:
    def test_a_completed_run_is_never_reopened(self, session: Session, tmp_path: Path) -> None:
        """Once completed, no failure, claim, launch failure or second completion changes a
        run: what readers cached of it stays true."""
        org, _ = _dataset(session, tmp_path)
        prepared = _prepare(session, org, tmp_path)
        _score_all(session, prepared, claim=prepared.claim)
        metrics = service.aggregate_run(session, organization_id=org.id, run_id=prepared.run_id)
        done = {"organization_id": org.id, "run_id": prepared.run_id, "actor": "t"}
        service.complete_run(session, **done, metrics=metrics, mlflow_run_id=None)
        later = T0 + timedelta(hours=1)
        for attempt in (
            lambda: service.fail_run(session, **done, error=RuntimeError("late")),
            lambda: service.fail_run(session, **done, error="late", claim=prepared.claim),
            lambda: service.launch_failed(session, **done, error=TimeoutError()),
        ):
            assert attempt().status == "completed"
        for claim in (False, True):
            again = _prepare(session, org, tmp_path, claim=claim, clock=lambda: later)
            assert (again.run_id, again.reused, again.claim) == (prepared.run_id, True, None)
        with pytest.raises(service.RunTakenOver, match="is completed"):
            service.complete_run(session, **done, metrics=metrics, mlflow_run_id=None)
        run = session.get(EvaluationRun, prepared.run_id)
        assert (run.status, run.error) == ("completed", None)
        assert _actions(session) == ["evaluation_run.created", "evaluation_run.completed"]

    def test_a_live_claim_is_kept_and_a_silent_one_is_taken_over(
        self, session: Session, tmp_path: Path
    ) -> None:
        """A second flow waits while the first shows signs of life within the lease; after a
        lease of silence it takes the run over, and the first may no longer write to it."""
        org, _ = _dataset(session, tmp_path)
        lease = timedelta(seconds=30)
        first = _prepare(session, org, tmp_path, holder="first", lease=lease)
        assert first.claim == "first"
        soon = T0 + timedelta(seconds=20)
        second = _prepare(session, org, tmp_path, holder="second", clock=lambda: soon)
        assert (second.run_id, second.waiting, second.claim) == (first.run_id, True, None)
        where = {"organization_id": org.id, "run_id": first.run_id, "lease": lease}
        assert service.holding(session, **where, clock=lambda: soon)[0] == service.Holding.HELD
        silent = T0 + timedelta(seconds=31)
        assert service.holding(session, **where, clock=lambda: silent)[0] == "claimable"
        taken = _prepare(session, org, tmp_path, holder="second", clock=lambda: silent)
        assert (taken.run_id, taken.resumed, taken.claim) == (first.run_id, True, "second")
        with pytest.raises(service.RunTakenOver, match="no longer carried out by this flow"):
            _score_all(session, first, claim="first")
        failed = service.fail_run(
            session,
            organization_id=org.id,
            run_id=first.run_id,
            actor="t",
            error="x",
            claim="first",
        )
        assert (failed.status, failed.claimed_by, failed.error) == ("running", "second", None)
        _score_all(session, taken, claim="second")
        assert _runs(session) == 1

    def test_an_identical_start_joins_the_pending_run(
        self, session: Session, tmp_path: Path
    ) -> None:
        """Without a claim (the API), an identical request finds the pending run in progress:
        the same run, and no second flow to start."""
        org, _ = _dataset(session, tmp_path)
        first = _prepare(session, org, tmp_path, claim=False)
        second = _prepare(session, org, tmp_path, claim=False)
        assert (first.waiting, second.waiting) == (False, True)
        assert second.run_id == first.run_id
        assert _runs(session) == 1
