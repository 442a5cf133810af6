"""The dispatcher against a real receiver on 127.0.0.1, on PostgreSQL and SQLite: retries as
data, 410, timeouts, a killed dispatcher, two dispatchers at once, the outbox's rollback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from flows.dispatcher import dispatch_forever, dispatch_once
from models.db.engine import transaction
from models.db.tables import Job, JobAttempt, WebhookEndpoint
from pipelines.jobs import service as jobs
from pipelines.webhooks.events import EventType
from pipelines.webhooks.service import emit_event, rotate_secret
from pipelines.webhooks.signing import sign
from tests.conftest import REPO_ROOT
from tests.pipelines.jobs.conftest import JobWorld, body_of


def _emit(world: JobWorld, subject: str = "run-1") -> list[uuid.UUID]:
    with transaction(world.sessions) as session:
        queued = emit_event(
            session,
            organization_id=world.tenant_id,
            event_type="evaluation.completed",
            subject_id=subject,
            data={"run_id": subject, "links": {"evaluation": f"/v1/evaluations/{subject}"}},
            now=world.clock(),
        )
        return [job.id for job in queued]


def _job(world: JobWorld, job_id: uuid.UUID) -> tuple[Job, list[JobAttempt]]:
    with transaction(world.sessions) as session:
        job = session.get(Job, job_id)
        assert job is not None
        attempts = list(
            session.scalars(
                select(JobAttempt).where(JobAttempt.job_id == job_id).order_by(JobAttempt.number)
            )
        )
        return job, attempts


def test_a_receiver_failing_twice_gets_the_message_once_after_three_attempts(
    job_world: JobWorld,
) -> None:
    url, _ = job_world.endpoint("flaky")
    (job_id,) = _emit(job_world)
    dispatcher = job_world.dispatcher()
    assert dispatch_once(dispatcher).statuses == {"queued": 1}
    job, _ = _job(job_world, job_id)
    assert job.next_attempt_at == job_world.clock() + timedelta(seconds=5)
    assert dispatch_once(dispatcher).claimed == 0  # not due yet: retries are data, not sleeps
    job_world.clock.advance(5)
    assert dispatch_once(dispatcher).statuses == {"queued": 1}
    job_world.clock.advance(300)
    assert dispatch_once(dispatcher).statuses == {"succeeded": 1}
    delivered_at = job_world.clock()
    job_world.clock.advance(86400)
    assert dispatch_once(dispatcher).claimed == 0

    job, attempts = _job(job_world, job_id)
    assert (job.status, job.attempts) == ("succeeded", 3)
    assert [(a.outcome, a.status_code) for a in attempts] == [
        ("failed", 500),
        ("failed", 500),
        ("succeeded", 204),
    ]
    received = job_world.receiver.at(url)
    assert len(received) == 3
    assert len({r.headers["webhook-id"] for r in received}) == 1  # one message, three tries
    last = received[-1]
    headers = {k.lower(): v for k, v in last.headers.items()}
    assert headers["webhook-timestamp"] == str(int(delivered_at.timestamp()))
    document = body_of(last)
    assert document["type"] == "evaluation.completed"
    assert document["data"]["links"] == {"evaluation": "http://127.0.0.1:8000/v1/evaluations/run-1"}


def test_the_signature_verifies_with_the_standardwebhooks_package(job_world: JobWorld) -> None:
    url, secret = job_world.endpoint("ok")
    job_world.clock.now = datetime.now(UTC)  # the package checks the timestamp
    _emit(job_world)
    dispatch_once(job_world.dispatcher())
    (received,) = job_world.receiver.at(url)
    headers = {k.lower(): v for k, v in received.headers.items()}
    payload = Webhook(secret).verify(received.body, headers)
    assert payload["type"] == "evaluation.completed"
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(secret).verify(received.body + b" ", headers)


def test_a_410_disables_the_endpoint(job_world: JobWorld) -> None:
    url, _ = job_world.endpoint("gone")
    (job_id,) = _emit(job_world)
    assert dispatch_once(job_world.dispatcher()).statuses == {"failed": 1}
    _, attempts = _job(job_world, job_id)
    assert [a.outcome for a in attempts] == ["gone"]
    with transaction(job_world.sessions) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert (endpoint.status, endpoint.disabled_reason) == (
            "disabled",
            "the receiver answered 410 Gone",
        )
    assert _emit(job_world, "run-2") == []  # a disabled endpoint gets nothing new
    assert len(job_world.receiver.at(url)) == 1


def test_a_hanging_receiver_times_out_and_is_retried(job_world: JobWorld) -> None:
    job_world.receiver.hang_seconds = 2.0
    job_world.endpoint("hang")
    (job_id,) = _emit(job_world)
    dispatcher = job_world.dispatcher(timeout_seconds=0.5)
    started = time.monotonic()
    assert dispatch_once(dispatcher).statuses == {"queued": 1}
    assert time.monotonic() - started < 1.8
    job, attempts = _job(job_world, job_id)
    assert [a.outcome for a in attempts] == ["timed_out"]
    assert job.last_error == "no answer within 0.5 s"
    assert job.next_attempt_at > job_world.clock()


def test_retry_after_is_honoured(job_world: JobWorld) -> None:
    job_world.endpoint("busy")
    (job_id,) = _emit(job_world)
    dispatch_once(job_world.dispatcher())
    job, _ = _job(job_world, job_id)
    assert job.next_attempt_at == job_world.clock() + timedelta(seconds=120)


def test_after_the_last_attempt_the_job_is_dead_and_can_be_retried(job_world: JobWorld) -> None:
    job_world.endpoint_at(f"http://127.0.0.1:{_closed_port()}/nobody")
    url = job_world.receiver.url("flaky")
    (job_id,) = _emit(job_world)
    dispatcher = job_world.dispatcher()
    for _ in range(10):
        dispatch_once(dispatcher)
        job_world.clock.advance(90000)
    job, attempts = _job(job_world, job_id)
    assert (job.status, job.attempts, len(attempts)) == ("dead", 10, 10)
    assert "ConnectError" in (job.last_error or "")
    with transaction(job_world.sessions) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        endpoint.url = url
        retried = jobs.retry_dead(session, kind="webhook", actor="test", now=job_world.clock())
    assert [j.id for j in retried] == [job_id]
    dispatch_once(dispatcher)
    assert _job(job_world, job_id)[0].status == "queued"  # flaky: fails twice first


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_job_whose_transaction_rolls_back_never_runs(job_world: JobWorld) -> None:
    url, _ = job_world.endpoint("ok")
    with (  # noqa: PT012
        pytest.raises(RuntimeError, match="the cause failed"),
        transaction(job_world.sessions) as session,
    ):
        emit_event(
            session,
            organization_id=job_world.tenant_id,
            event_type="evaluation.completed",
            subject_id="run-x",
            data={},
            now=job_world.clock(),
        )
        raise RuntimeError("the cause failed")
    assert dispatch_once(job_world.dispatcher()).claimed == 0
    with transaction(job_world.sessions) as session:
        assert session.scalars(select(Job)).all() == []
    assert job_world.receiver.at(url) == []


def test_the_same_event_is_queued_once(job_world: JobWorld) -> None:
    job_world.endpoint("ok")
    first = _emit(job_world)
    assert _emit(job_world) == first


def test_two_dispatchers_at_once_run_each_job_once(job_world: JobWorld) -> None:
    urls = [job_world.endpoint("ok")[0] for _ in range(3)]
    queued = [job_id for i in range(8) for job_id in _emit(job_world, f"run-{i}")]
    assert len(queued) == 24
    settings = {"prefetch": 5, "workers": 2, "poll_seconds": 0.01}
    counts: list[int] = []

    def run() -> None:
        counts.append(dispatch_forever(job_world.dispatcher(**settings), passes=12))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == 24
    ids = [r.headers["webhook-id"] for url in urls for r in job_world.receiver.at(url)]
    assert len(ids) == 24
    assert len(set(ids)) == 24
    with transaction(job_world.sessions) as session:
        rows = session.scalars(select(Job)).all()
        assert {(j.status, j.attempts) for j in rows} == {("succeeded", 1)}


def test_a_killed_dispatcher_loses_nothing(job_world: JobWorld) -> None:
    """A dispatcher killed with SIGKILL mid-delivery: its lease expires, the job runs again
    once, to completion."""
    url, _ = job_world.endpoint("hang-once")
    (job_id,) = _emit(job_world)
    script = textwrap.dedent(
        f"""
        from flows.dispatcher import Dispatcher, JobSettings, dispatch_once
        from models.db.engine import make_engine, make_sessionmaker
        from pipelines.webhooks.service import DeliverySettings
        from datetime import datetime, UTC
        sessions = make_sessionmaker(make_engine({job_world.url!r}))
        dispatch_once(Dispatcher(
            sessions=sessions,
            settings=JobSettings(lease_seconds=30),
            delivery=DeliverySettings(timeout_seconds=120, allow_private_addresses=True),
            clock=lambda: datetime.fromisoformat({job_world.clock().isoformat()!r}),
            owner="doomed",
        ))
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not job_world.receiver.at(url) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    job, _ = _job(job_world, job_id)
    assert (job.status, job.lease_owner) == ("running", "doomed")

    dispatcher = job_world.dispatcher()
    assert dispatch_once(dispatcher).claimed == 0  # the lease is still live
    job_world.clock.advance(31)
    outcome = dispatch_once(dispatcher)
    assert (outcome.reclaimed, outcome.claimed) == (1, 0)  # back in the queue, due in 5 s
    job_world.clock.advance(5)
    assert dispatch_once(dispatcher).statuses == {"succeeded": 1}
    job_world.clock.advance(3600)
    assert dispatch_once(dispatcher).claimed == 0
    job, attempts = _job(job_world, job_id)
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert [(a.outcome, a.lease_owner) for a in attempts] == [
        ("lease_expired", "doomed"),
        ("succeeded", dispatcher.owner),
    ]
    assert len(job_world.receiver.at(url)) == 2


def test_a_round_leases_beyond_the_endpoint_limit_but_runs_within_it(job_world: JobWorld) -> None:
    job_world.endpoint("ok")
    for i in range(5):
        _emit(job_world, f"run-{i}")
    limits = jobs.ClaimLimits(prefetch=10, per_tenant=10, per_endpoint=2)
    with transaction(job_world.sessions) as session:
        claimed = jobs.claim(
            session, owner="a", now=job_world.clock(), lease_seconds=60, limits=limits
        )
    assert len(claimed.jobs) == 5
    assert list(claimed.endpoint_slots.values()) == [2]  # at most 2 of them at once
    assert claimed.tenant_slots == {job_world.tenant_id: 10}
    with transaction(job_world.sessions) as session:
        more = jobs.claim(
            session, owner="b", now=job_world.clock(), lease_seconds=60, limits=limits
        )
    assert more.jobs == []  # the endpoint's limit is taken by a's round
    with transaction(job_world.sessions) as session:
        assert (
            jobs.release(session, [j.id for j in claimed.jobs], owner="a", now=job_world.clock())
            == 5
        )
    outcome = dispatch_once(job_world.dispatcher(workers=3, per_endpoint_concurrency=2))
    assert (outcome.claimed, outcome.statuses) == (5, {"succeeded": 5})
    with transaction(job_world.sessions) as session:
        assert {(j.status, j.attempts) for j in session.scalars(select(Job))} == {("succeeded", 1)}


def test_a_rotated_secret_signs_beside_the_new_one_for_the_overlap(job_world: JobWorld) -> None:
    url, old = job_world.endpoint("ok")
    job_world.clock.now = datetime.now(UTC)
    with transaction(job_world.sessions) as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        new = rotate_secret(
            session,
            organization_id=job_world.tenant_id,
            endpoint_id=endpoint.id,
            overlap=timedelta(hours=24),
            actor="test",
            now=job_world.clock(),
        ).secret
    assert new is not None
    _emit(job_world, "run-1")
    dispatch_once(job_world.dispatcher())
    (first,) = job_world.receiver.at(url)
    headers = {k.lower(): v for k, v in first.headers.items()}
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(first.body, headers)

    job_world.clock.advance(25 * 3600)
    _emit(job_world, "run-2")
    dispatch_once(job_world.dispatcher())
    second = job_world.receiver.at(url)[1]
    headers = {k.lower(): v for k, v in second.headers.items()}
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert headers["webhook-signature"] == sign(
        new, headers["webhook-id"], int(headers["webhook-timestamp"]), second.body
    )


def test_a_challenger_promoted_event_reaches_its_subscribers(job_world: JobWorld) -> None:
    url, _ = job_world.endpoint("ok", ["challenger.promoted"])
    job_world.endpoint("ok", ["evaluation.completed"])
    with transaction(job_world.sessions) as session:
        (job,) = emit_event(
            session,
            organization_id=job_world.tenant_id,
            event_type=EventType.CHALLENGER_PROMOTED,
            subject_id="promotion-1",
            data={"agent_type": "support", "links": {"evidence": "/v1/promotions/p1"}},
            now=job_world.clock(),
        )
    assert job.payload["type"] == "challenger.promoted"
    assert dispatch_once(job_world.dispatcher()).statuses == {"succeeded": 1}
    (received,) = job_world.receiver.at(url)
    assert body_of(received)["data"]["links"] == {
        "evidence": "http://127.0.0.1:8000/v1/promotions/p1"
    }


def test_a_round_runs_no_more_of_an_endpoint_at_once_than_its_limit(job_world: JobWorld) -> None:
    url, _ = job_world.endpoint("slow")
    for i in range(4):
        _emit(job_world, f"run-{i}")
    dispatcher = job_world.dispatcher(workers=4, per_endpoint_concurrency=2)
    assert dispatch_once(dispatcher).statuses == {"succeeded": 4}  # one round
    path = url.split(str(job_world.receiver.port), 1)[1]
    assert job_world.receiver.peak[path] <= 2  # 4 workers, but the endpoint allows 2
