"""Serving the agents, shadow mode, A/B tests and feedback through the API, on both backends."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

import mlflow
import pytest
from sqlalchemy import select

from api import shadow
from api.serving import ServingRuntime
from models.db.tables import AuditLogEntry, Feedback, TrafficLogEntry, UsageEvent
from models.registry import client as registry
from models.settings import RegistrySettings, ServingSettings
from tests.api.conftest import SeededTemplates, World
from tests.api.serving_agents import (
    GarbageIntent,
    KeywordIntent,
    RaisingIntent,
    SharperIntent,
    SleepingIntent,
)
from tests.api.test_provider_routes import signed
from tests.api.test_route_coverage import covers
from tests.conftest import copy_sqlite

NAME = "intent-router"
CHAMPION, SHARPER, RAISING, SLEEPING, GARBAGE = (f"{NAME}@{n}" for n in range(1, 6))
PREDICT = "/v1/agents/intent/predict"
P = "/provider/v1"
TEXTS = ["My invoice is wrong", "I want a refund", "The app crashes", "Invoice 42 again"]


@pytest.fixture(scope="session")
def agent_store(
    tmp_path_factory: pytest.TempPathFactory, seeded_templates: SeededTemplates
) -> Path:
    """An MLflow store holding intent-router versions 1-5 (agent type `intent`), version 1
    aliased champion; registered once per session, copied per test."""
    folder = tmp_path_factory.mktemp("intent-agents")
    store = folder / "mlflow.db"
    copy_sqlite(seeded_templates.mlflow(), store)
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    settings = RegistrySettings(home=folder, mlflow_tracking_uri=f"sqlite:///{store}")
    registry.configure(settings)
    try:
        experiment = registry.experiment_id(settings)
        for agent in (KeywordIntent(), SharperIntent(), RaisingIntent(), SleepingIntent()):
            registry.register_model_version(
                NAME, agent, agent_type="intent", task="classification", experiment=experiment
            )
        registry.register_model_version(
            NAME, GarbageIntent(), agent_type="intent", task="classification", experiment=experiment
        )
        registry.set_alias(NAME, "champion", "1")
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    return store


@pytest.fixture(scope="module", autouse=True)
def shadow_fork_server() -> None:
    """Start the shadow workers' fork server when this module starts, so its imports (MLflow,
    some seconds) overlap the thread-mode tests instead of holding up the process-mode one.
    The test agents need no scikit-learn, so it is left out of the preload."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([m for m in shadow.PRELOADED if not m.startswith("sklearn")])
    forkserver.ensure_running()


def _serve(world: World, **settings: Any) -> ServingRuntime:
    """A fresh serving runtime on the world's database with these settings."""
    if world.state.serving is not None:
        world.state.serving.close()
    runtime = ServingRuntime(ServingSettings(**settings), world.state.sessions)
    world.state.serving = runtime
    return runtime


@pytest.fixture
def agents(world: World, agent_store: Path) -> Iterator[ServingRuntime]:
    """The world with the intent agents registered; threads run the shadow by default."""
    tracking_uri = world.state.registry.resolved_tracking_uri()
    copy_sqlite(agent_store, Path(tracking_uri.removeprefix("sqlite:///")))
    runtime = _serve(world, shadow_mode="thread")
    yield runtime
    runtime.close()


def _predict(world: World, text: str, *, end_user: str | None = None, tenant: Any = None) -> Any:
    headers = (tenant or world.tenant_a).headers
    body: dict[str, Any] = {"input": text}
    if end_user is not None:
        body["end_user_key"] = end_user
    return world.client.post(PREDICT, json=body, headers=headers)


def _without_request(response: Any) -> bytes:
    """The response body without what differs per request (its id and timing)."""
    document = response.json()
    document.pop("request_id")
    document.pop("latency_ms")
    return json.dumps(document, sort_keys=True).encode()


def _experiment(world: World, challenger: str, *, kind: str = "shadow", **extra: Any) -> str:
    body = {"kind": kind, "agent_type": "intent", "challenger": challenger, "mde": 0.1, **extra}
    created = signed(world, "POST", f"{P}/experiments", json=body)
    assert created.status_code == 201, created.text
    experiment_id = str(created.json()["id"])
    started = signed(world, "POST", f"{P}/experiments/{experiment_id}/start")
    assert started.status_code == 200, started.text
    return experiment_id


def _rows(world: World, **where: Any) -> list[TrafficLogEntry]:
    """Traffic rows, once this process's serving log has written what it holds."""
    assert world.state.serving is not None
    world.state.serving.flush()
    with world.state.sessions() as session:
        query = select(TrafficLogEntry).order_by(TrafficLogEntry.id)
        for column, value in where.items():
            query = query.where(getattr(TrafficLogEntry, column) == value)
        return list(session.scalars(query))


def _audit(world: World, action: str) -> list[AuditLogEntry]:
    with world.state.sessions() as session:
        return list(session.scalars(select(AuditLogEntry).where(AuditLogEntry.action == action)))


class TestServing:
    @covers("POST /v1/agents/{agent_type}/predict", "GET /v1/agents")
    def test_the_champion_answers_and_the_request_is_recorded(
        self, world: World, agents: ServingRuntime
    ) -> None:
        listed = world.client.get("/v1/agents", headers=world.tenant_a.headers)
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"] == [
            {"agent_type": "intent", "task": "classification", "champion": CHAMPION}
        ]
        response = _predict(world, "My invoice is wrong")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["output"], body["model_version"]) == ("billing", CHAMPION)
        assert body["experiment_id"] is None
        assert body["variant"] is None
        (row,) = _rows(world, request_id=body["request_id"])
        assert (row.role, row.model_version, row.output_text) == ("served", CHAMPION, "billing")
        assert row.organization_id == world.tenant_a.organization_id
        assert row.input_text == "My invoice is wrong"
        assert row.input_chars == 19
        with world.state.sessions() as session:
            event = session.get(UsageEvent, f"predict:{body['request_id']}")
        assert event is not None
        assert (event.agent_type, event.model_version, event.requests) == ("intent", CHAMPION, 1)
        assert (event.tokens_in, event.tokens_out) == (4, 1)

    def test_the_first_load_of_a_version_freezes_the_heap_it_grew(
        self, world: World, agents: ServingRuntime
    ) -> None:
        """The objects a model load brings are moved out of the collector's reach once, so
        full collections stay short (`api.heap`); later requests freeze nothing more."""
        before = gc.get_freeze_count()
        assert _predict(world, TEXTS[0]).status_code == 200
        after_first = gc.get_freeze_count()
        assert after_first > before
        assert _predict(world, TEXTS[1]).status_code == 200
        assert gc.get_freeze_count() <= after_first

    @covers("POST /v1/agents/{agent_type}/predict")
    def test_an_unknown_agent_type_is_not_found(self, world: World, agents: ServingRuntime) -> None:
        response = world.client.post(
            "/v1/agents/nobody/predict", json={"input": "x"}, headers=world.tenant_a.headers
        )
        assert response.status_code == 404, response.text

    def test_an_alias_change_takes_effect_without_a_restart(
        self, world: World, agents: ServingRuntime
    ) -> None:
        """With no cache the next request sees it; with one, within its lifetime (below)."""
        runtime = _serve(world, alias_cache_seconds=0, shadow_mode="thread")
        assert _predict(world, "I want a refund").json()["output"] == "other"
        registry.set_alias(NAME, "champion", "2")
        answer = _predict(world, "I want a refund").json()
        assert (answer["output"], answer["model_version"]) == ("billing", SHARPER)
        runtime.close()

    def test_a_failing_champion_answers_502_and_is_logged(
        self, world: World, agents: ServingRuntime
    ) -> None:
        registry.set_alias(NAME, "champion", "3")
        agents.forget()
        response = _predict(world, "anything")
        assert response.status_code == 502, response.text
        (row,) = _rows(world, model_version=RAISING)
        assert row.error is not None
        assert "challenger exploded" in row.error


class TestShadow:
    @covers("POST /provider/v1/experiments", audit=True)
    @covers("POST /provider/v1/experiments/{experiment_id}/start", audit=True)
    def test_the_challenger_answers_the_same_requests_after_the_champion(
        self, world: World, agents: ServingRuntime
    ) -> None:
        baseline = [_predict(world, text) for text in TEXTS]
        experiment_id = _experiment(world, SHARPER, sample_rate=1.0)
        shadowed = [_predict(world, text) for text in TEXTS]
        assert [_without_request(r) for r in shadowed] == [_without_request(r) for r in baseline]
        assert agents.drain(timeout=20)
        served = _rows(world, experiment_id=_uuid(experiment_id), role="served")
        shadows = _rows(world, experiment_id=_uuid(experiment_id), role="shadow")
        assert [r.request_id for r in served] == [r.json()["request_id"] for r in shadowed]
        assert sorted(r.request_id for r in shadows) == sorted(r.request_id for r in served)
        by_request = {r.request_id: r for r in shadows}
        assert [by_request[r.request_id].output_text for r in served] == [
            "billing",
            "billing",
            "other",
            "billing",
        ]
        assert {(r.variant, r.model_version) for r in shadows} == {("challenger", SHARPER)}
        assert {(r.variant, r.model_version) for r in served} == {("champion", CHAMPION)}
        (created,) = _audit(world, "experiment.created")
        assert created.details["planned_sample_size"] > 0
        assert len(_audit(world, "experiment.started")) == 1

    @pytest.mark.parametrize("world", ["sqlite"], indirect=True)
    @covers("POST /provider/v1/experiments/{experiment_id}/stop", audit=True)
    def test_a_raising_hanging_or_garbage_challenger_leaves_the_champion_byte_identical(
        self, world: World, agents: ServingRuntime
    ) -> None:
        """In worker processes (the default), with a short timeout: the challenger that sleeps
        10 s is cut off and its process replaced, and no response changes."""
        runtime = _serve(
            world,
            shadow_mode="process",
            shadow_timeout_seconds=1.0,
            shadow_niceness=0,
            shadow_idle_priority=False,
        )
        baseline = [_predict(world, text) for text in TEXTS]
        assert {r.status_code for r in baseline} == {200}
        errors: dict[str, list[str | None]] = {}
        for challenger in (RAISING, GARBAGE, SLEEPING):
            experiment_id = _experiment(world, challenger)
            # One request for the sleeper: each timeout replaces its worker process.
            texts = TEXTS[:1] if challenger == SLEEPING else TEXTS
            answers = [_predict(world, text) for text in texts]
            expected = baseline[: len(texts)]
            assert [_without_request(r) for r in answers] == [_without_request(r) for r in expected]
            assert [r.json()["output"].encode() for r in answers] == [
                r.json()["output"].encode() for r in expected
            ]
            assert runtime.drain(timeout=120)
            stopped = signed(world, "POST", f"{P}/experiments/{experiment_id}/stop")
            assert stopped.status_code == 200
            assert stopped.json()["status"] == "stopped"
            rows = _rows(world, experiment_id=_uuid(experiment_id), role="shadow")
            errors[challenger] = [r.error for r in rows]
        assert all("challenger exploded" in str(e) for e in errors[RAISING])
        assert all("outputs for one input" in str(e) for e in errors[GARBAGE])
        assert errors[SLEEPING]
        assert all("timed out" in str(e) for e in errors[SLEEPING])
        assert len(_audit(world, "experiment.stopped")) == 3

    def test_the_worker_process_writes_the_shadow_rows_and_a_stop_writes_what_it_holds(
        self, world: World, agents: ServingRuntime
    ) -> None:
        """In process mode the worker builds and writes the rows (the API process's serving
        log holds only the served ones); closing the runtime sends what waits and the worker
        writes everything before it ends."""
        runtime = _serve(
            world, shadow_mode="process", shadow_niceness=0, shadow_idle_priority=False
        )
        experiment_id = _experiment(world, SHARPER, sample_rate=1.0)
        first = _predict(world, TEXTS[0])
        assert runtime.drain(timeout=120)  # the worker is up
        answers = [first, *(_predict(world, text) for text in TEXTS[1:])]
        assert {r.status_code for r in answers} == {200}
        assert runtime.log.stats.added == len(TEXTS)  # served rows only
        runtime.shadow.close(timeout=120)
        runtime.close()
        shadows = _rows(world, experiment_id=_uuid(experiment_id), role="shadow")
        by_request = {r.request_id: r for r in shadows}
        assert sorted(by_request) == sorted(r.json()["request_id"] for r in answers)
        assert [by_request[r.json()["request_id"]].output_text for r in answers] == [
            "billing",
            "billing",
            "other",
            "billing",
        ]
        assert {(r.variant, r.model_version, r.error) for r in shadows} == {
            ("challenger", SHARPER, None)
        }
        assert {r.organization_id for r in shadows} == {world.tenant_a.organization_id}
        assert all(r.latency_ms >= 0 and r.input_hash for r in shadows)
        assert (runtime.shadow.stats.completed, runtime.shadow.stats.failed) == (4, 0)
        assert runtime.log.stats.dropped == 0

    def test_a_killed_worker_fails_the_task_under_way_and_the_next_worker_answers_the_rest(
        self, world: World, agents: ServingRuntime
    ) -> None:
        """The task the worker was answering gets its row from the API process; the tasks
        after it go to a new worker; the champion's answers never change."""
        runtime = _serve(
            world,
            shadow_mode="process",
            shadow_timeout_seconds=60.0,
            shadow_niceness=0,
            shadow_idle_priority=False,
        )
        assert isinstance(runtime.shadow, shadow.ProcessShadow)
        baseline = [_predict(world, text) for text in TEXTS[:2]]
        experiment_id = _experiment(world, SLEEPING)
        answers = [_predict(world, text) for text in TEXTS[:2]]
        assert [_without_request(r) for r in answers] == [_without_request(r) for r in baseline]
        (link,) = runtime.shadow.links
        deadline = time.monotonic() + 120
        while not link.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.busy
        assert link.pid is not None
        os.kill(link.pid, signal.SIGKILL)
        assert runtime.drain(timeout=120)
        rows = _rows(world, experiment_id=_uuid(experiment_id), role="shadow")
        by_request = {r.request_id: r for r in rows}
        first, second = (by_request[r.json()["request_id"]] for r in answers)
        assert first.output_text is None
        assert "shadow worker failed" in str(first.error)
        assert (second.output_text, second.error) == ("late", None)
        assert runtime.shadow.stats.restarts == 1

    def test_a_full_queue_in_process_mode_drops_and_counts_never_blocks(
        self, world: World, agents: ServingRuntime
    ) -> None:
        """The sender gathers for a minute here, so the first task waits in the queue of one
        and the others are dropped."""
        runtime = _serve(world, shadow_mode="process", shadow_queue_size=1, log_flush_seconds=60)
        _experiment(world, SHARPER)
        answers = [_predict(world, text) for text in TEXTS]
        assert {r.status_code for r in answers} == {200}
        assert (runtime.shadow.stats.submitted, runtime.shadow.stats.dropped) == (1, 3)
        runtime.shadow.close(timeout=0.1)

    def test_a_full_queue_drops_and_counts_never_blocks(
        self, world: World, agents: ServingRuntime
    ) -> None:
        runtime = _serve(world, shadow_mode="thread", shadow_queue_size=1, shadow_workers=1)
        _experiment(world, SLEEPING)
        answers = [_predict(world, text) for text in TEXTS]
        assert {r.status_code for r in answers} == {200}
        # One task hangs in the worker, one waits in the queue; the rest were dropped.
        assert runtime.shadow.stats.dropped >= len(TEXTS) - 2
        assert runtime.shadow.stats.submitted + runtime.shadow.stats.dropped == len(TEXTS)
        runtime.shadow.close(timeout=0.1)  # the sleeping challenger's thread is left behind


class TestExperiments:
    @covers("GET /provider/v1/experiments", "GET /provider/v1/experiments/{experiment_id}")
    @covers("POST /provider/v1/experiments/{experiment_id}/pause", audit=True)
    def test_lifecycle_and_one_experiment_per_agent_type(
        self, world: World, agents: ServingRuntime
    ) -> None:
        experiment_id = _experiment(world, SHARPER)
        read = signed(world, "GET", f"{P}/experiments/{experiment_id}").json()
        assert read["status"] == "running"
        assert read["champion_version"] == CHAMPION
        assert read["planned_sample_size"] >= read["plan"]["fixed_n"] > 0
        second = signed(
            world,
            "POST",
            f"{P}/experiments",
            json={"kind": "ab", "agent_type": "intent", "challenger": GARBAGE, "mde": 0.1},
        ).json()
        refused = signed(world, "POST", f"{P}/experiments/{second['id']}/start")
        assert refused.status_code == 409, refused.text
        paused = signed(world, "POST", f"{P}/experiments/{experiment_id}/pause")
        assert paused.json()["status"] == "paused"
        assert _predict(world, "refund please").json()["model_version"] == CHAMPION
        assert len(_audit(world, "experiment.paused")) == 1
        listed = signed(world, "GET", f"{P}/experiments", params={"limit": 1}).json()
        assert len(listed["items"]) == 1
        assert listed["next_cursor"]
        rest = signed(
            world, "GET", f"{P}/experiments", params={"cursor": listed["next_cursor"]}
        ).json()
        assert {listed["items"][0]["id"], rest["items"][0]["id"]} == {experiment_id, second["id"]}
        missing = signed(world, "GET", f"{P}/experiments/{_uuid(None)}")
        assert missing.status_code == 404

    def test_a_challenger_must_exist_and_differ_from_the_champion(
        self, world: World, agents: ServingRuntime
    ) -> None:
        for challenger, status in ((f"{NAME}@99", 404), (CHAMPION, 422)):
            body = {"kind": "shadow", "agent_type": "intent", "challenger": challenger, "mde": 0.1}
            response = signed(world, "POST", f"{P}/experiments", json=body)
            assert response.status_code == status, response.text


class TestAB:
    def test_the_split_is_sticky_per_end_user_and_recorded(
        self, world: World, agents: ServingRuntime
    ) -> None:
        experiment_id = _experiment(
            world, SHARPER, kind="ab", traffic_split=0.5, split_key="end_user"
        )
        users = [f"user-{n}" for n in range(24)]
        first = {u: _predict(world, "I want a refund", end_user=u).json() for u in users}
        again = {u: _predict(world, "I want a refund", end_user=u).json() for u in users}
        assert {u: a["variant"] for u, a in first.items()} == {
            u: a["variant"] for u, a in again.items()
        }
        variants = {a["variant"] for a in first.values()}
        assert variants == {"champion", "challenger"}
        for answer in first.values():
            expected = SHARPER if answer["variant"] == "challenger" else CHAMPION
            assert answer["model_version"] == expected
            assert answer["experiment_id"] == experiment_id
        rows = _rows(world, experiment_id=_uuid(experiment_id))
        assert len(rows) == 2 * len(users)
        assert {r.variant for r in rows} == variants
        assert {r.role for r in rows} == {"served"}


class TestFeedback:
    @covers("POST /v1/feedback", audit=True, cross_tenant=True)
    def test_feedback_is_idempotent_per_request_and_kind_and_tenant_scoped(
        self, world: World, agents: ServingRuntime
    ) -> None:
        request_id = _predict(world, "I want a refund").json()["request_id"]
        body = {"request_id": request_id, "kind": "label", "value": "billing"}
        first = world.client.post("/v1/feedback", json=body, headers=world.tenant_a.headers)
        assert first.status_code == 201, first.text
        again = world.client.post("/v1/feedback", json=body, headers=world.tenant_a.headers)
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        changed = world.client.post(
            "/v1/feedback", json=body | {"value": "other"}, headers=world.tenant_a.headers
        )
        assert changed.status_code == 200
        assert changed.json()["value"] == "other"
        rating = world.client.post(
            "/v1/feedback",
            json={"request_id": request_id, "kind": "rating", "value": "4"},
            headers=world.tenant_a.headers,
        )
        assert rating.status_code == 201
        assert rating.json()["rating"] == 4.0
        assert len(_audit(world, "feedback.recorded")) == 2
        assert len(_audit(world, "feedback.updated")) == 1
        # Tenant B cannot reach A's request.
        stolen = world.client.post(
            "/v1/feedback",
            json=body | {"kind": "correction", "value": "x"},
            headers=world.tenant_b.headers,
        )
        assert stolen.status_code == 404, stolen.text
        with world.state.sessions() as session:
            kinds = session.scalars(select(Feedback.kind).where(Feedback.request_id == request_id))
            assert sorted(kinds) == ["label", "rating"]

    def test_a_rating_must_be_a_number(self, world: World, agents: ServingRuntime) -> None:
        request_id = _predict(world, "hello").json()["request_id"]
        response = world.client.post(
            "/v1/feedback",
            json={"request_id": request_id, "kind": "rating", "value": "great"},
            headers=world.tenant_a.headers,
        )
        assert response.status_code == 422, response.text


def _uuid(value: str | None) -> Any:
    import uuid

    return uuid.UUID(value) if value else uuid.uuid4()
