"""End to end on each backend: two challengers meet a champion in shadow experiments through
the API; the comparison flow's function lets the gate wait on too little data, promote a truly
better challenger (aliases flip, the provider is told, `challenger.promoted` is queued) and
reject a truly worse one; `rollback` reverses the promotion.

Fast on purpose: rule-based agents (no training), 30 requests per experiment, 200 bootstrap
resamples, shadow predictions in threads, no Evidently, no Prefect server round trip (the golden
set's evaluation runs are carried out by the evaluation flow's steps in process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import build_state, create_app
from api.provider_client import ProviderSigningAuth
from api.settings import ApiSettings, ProviderAuthSettings
from flows.experiments import compare_experiments_now
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.cache.settings import CacheSettings
from models.db.engine import transaction
from models.db.tables import (
    AuditLogEntry,
    EvaluationExampleScore,
    EvaluationRun,
    Experiment,
    Job,
    SystemNotice,
    WebhookEndpoint,
)
from models.registry import client as registry
from models.settings import ServingSettings
from pipelines.access.service import issue_api_key
from pipelines.errors import Conflict, InvalidInput
from pipelines.organizations import ensure_organization
from pipelines.profitability.service import set_ai_cost_rate
from pipelines.promotion import service as promotion
from pipelines.serving.routing import assign_variant, split_key_of
from tests.conftest import TENANT_LOGIN, as_login
from tests.flows.conftest import add_golden_rows

SECRET = "e2e-provider-secret-0123456789abcdef"
LABELS = ("refund", "cancel")


def _truth(text: str) -> str:
    return "refund" if "money" in text else "cancel"


class Perfect:
    """Always right."""

    def predict(self, texts: list[str]) -> list[str]:
        return [_truth(t) for t in texts]


class Half:
    """Right on even-numbered requests only."""

    def predict(self, texts: list[str]) -> list[str]:
        return [_truth(t) if int(t.rsplit(" ", 1)[-1]) % 2 == 0 else "wrong" for t in texts]


class Wrong:
    """Never right."""

    def predict(self, texts: list[str]) -> list[str]:
        return ["wrong" for _ in texts]


def _text(i: int) -> str:
    return f"{'give my money back' if i % 3 else 'stop my plan'} please {i}"


@dataclass
class World:
    client: TestClient
    rt: Runtime
    agent: str
    tenant_key: str
    clock: list[datetime]
    auth: ProviderSigningAuth
    drain: Any
    provider_id: uuid.UUID
    tenant_id: uuid.UUID

    def predict_with_feedback(self, start: int, count: int) -> None:
        headers = {"Authorization": f"Bearer {self.tenant_key}"}
        for i in range(start, start + count):
            served = self.client.post(
                f"/v1/agents/{self.agent}/predict", json={"input": _text(i)}, headers=headers
            )
            assert served.status_code == 200, served.text
            feedback = self.client.post(
                "/v1/feedback",
                json={
                    "request_id": served.json()["request_id"],
                    "kind": "label",
                    "value": _truth(_text(i)),
                },
                headers=headers,
            )
            assert feedback.status_code == 201, feedback.text
        assert self.drain()

    def start_shadow(self, challenger: str) -> str:
        created = self.client.post(
            "/provider/v1/experiments",
            json={
                "kind": "shadow",
                "agent_type": self.agent,
                "challenger": challenger,
                "mde": 0.3,
            },
            auth=self.auth,
        )
        assert created.status_code in (200, 201), created.text
        experiment_id = created.json()["id"]
        started = self.client.post(
            f"/provider/v1/experiments/{experiment_id}/start", auth=self.auth
        )
        assert started.status_code == 200, started.text
        return str(experiment_id)

    def start_ab(self, challenger: str, share: float) -> str:
        created = self.client.post(
            "/provider/v1/experiments",
            json={
                "kind": "ab",
                "agent_type": self.agent,
                "challenger": challenger,
                "mde": 0.3,
                "traffic_split": share,
                "split_key": "end_user",
            },
            auth=self.auth,
        )
        assert created.status_code in (200, 201), created.text
        experiment_id = str(created.json()["id"])
        started = self.client.post(
            f"/provider/v1/experiments/{experiment_id}/start", auth=self.auth
        )
        assert started.status_code == 200, started.text
        return experiment_id

    def ab_traffic(self, experiment_id: str, share: float, versions: dict[str, str]) -> None:
        """30 end users per variant, chosen by the split's own hash of the experiment's salt;
        each asks once (with a label as feedback), and three per variant ask again."""
        with transaction(self.rt.sessions) as session:
            salt = session.scalar(
                select(Experiment.salt).where(Experiment.id == uuid.UUID(experiment_id))
            )
        assert salt is not None
        users: dict[str, list[str]] = {"champion": [], "challenger": []}
        for n in range(10_000):
            key = f"user-{n}"
            variant = assign_variant(
                salt, split_key_of("end_user", str(self.tenant_id), key), share
            )
            if len(users[variant]) < 30:
                users[variant].append(key)
            if min(map(len, users.values())) == 30:
                break
        headers = {"Authorization": f"Bearer {self.tenant_key}"}
        for variant, keys in users.items():
            for i, key in enumerate(keys):
                for repeat in range(2 if i < 3 else 1):
                    served = self.client.post(
                        f"/v1/agents/{self.agent}/predict",
                        json={"input": _text(i), "end_user_key": key},
                        headers=headers,
                    )
                    assert served.status_code == 200, served.text
                    answer = served.json()
                    # Sticky and deterministic: the variant the hash gives, every time; and
                    # that variant's version answers.
                    assert (answer["variant"], answer["model_version"]) == (
                        variant,
                        versions[variant],
                    )
                    assert answer["experiment_id"] == experiment_id
                    assert answer["output"] == (
                        _truth(_text(i)) if variant == "challenger" or i % 2 == 0 else "wrong"
                    )
                    if repeat:
                        continue
                    feedback = self.client.post(
                        "/v1/feedback",
                        json={
                            "request_id": answer["request_id"],
                            "kind": "label",
                            "value": _truth(_text(i)),
                        },
                        headers=headers,
                    )
                    assert feedback.status_code == 201, feedback.text

    def compare(self, experiment_id: str) -> dict[str, Any]:
        self.clock[0] += timedelta(minutes=5)
        (decision,) = compare_experiments_now(
            self.rt.sessions,
            experiment_id=uuid.UUID(experiment_id),
            clock=lambda: self.clock[0],
            actor="test",
            resamples=200,
        )
        return decision.model_dump(mode="json")

    def champion(self) -> str:
        agents = self.client.get(
            "/v1/agents", headers={"Authorization": f"Bearer {self.tenant_key}"}
        ).json()["items"]
        return str(next(a["champion"] for a in agents if a["agent_type"] == self.agent))


@pytest.fixture
def world(streamflow: Runtime) -> Iterator[World]:
    agent = f"intent-{uuid.uuid4().hex[:6]}"
    model = f"{agent}-model"
    with transaction(streamflow.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="test"
        )
        tenant, _ = ensure_organization(
            session, slug="tenant-e2e", name="T", kind="tenant", actor="test"
        )
        provider_id, tenant_id = provider.id, tenant.id
        key = issue_api_key(
            session, organization_id=tenant.id, name="k", scopes=["predict"], actor="test"
        )
        session.add(
            WebhookEndpoint(
                organization_id=provider.id,
                url="https://hooks.example.com/promotions",
                event_types=["challenger.promoted"],
                status="active",
            )
        )
        session.add(
            WebhookEndpoint(
                organization_id=tenant.id,
                url="https://tenant.example.com/hooks",
                event_types=["challenger.promoted"],
                status="active",
            )
        )
        rows = [{"id": f"g{i}", "input": _text(i), "expected": _truth(_text(i))} for i in range(40)]
        add_golden_rows(
            session,
            storage_dir=streamflow.storage.golden_dataset_dir,
            organization_id=provider.id,
            name=f"{agent}-golden",
            rows=rows,
            task="classification",
        )
        promotion.set_gate(
            session,
            agent_type=agent,
            config={
                "primary_metric": "quality",
                "min_n": 30,
                "min_duration_seconds": 0,
                "golden_dataset": f"{agent}-golden@1",
                "guardrails": [
                    {"metric": "error_rate", "margin": 0.2, "higher_is_better": False},
                    {"metric": "latency_p95_ms", "margin": 2000, "higher_is_better": False},
                ],
            },
            actor="test",
            now=datetime.now(UTC),
        )
    for agent_object in (Half(), Perfect(), Wrong()):
        register_agent(
            model,
            BuiltAgent(agent_object, agent, "classification"),
            alias="champion" if isinstance(agent_object, Half) else None,
            actor="test",
        )
    url = streamflow.storage.resolved_database_url()
    postgres = streamflow.engine.dialect.name == "postgresql"
    state = build_state(
        api=ApiSettings(
            database_tenant_url=as_login(url, TENANT_LOGIN) if postgres else None,
            rate_limit_per_minute=100_000,
            rate_limits_per_minute={},
            rate_limit_per_address_per_minute=100_000,
        ),
        storage=streamflow.storage,
        cache_settings=CacheSettings(
            redis_url="redis://127.0.0.1:6379/0", key_prefix=f"sftest:{uuid.uuid4().hex[:8]}:"
        ),
        provider_auth=ProviderAuthSettings(provider_keys={"ops": SECRET}),
        serving=ServingSettings(alias_cache_seconds=0, shadow_mode="thread"),
    )
    assert state.serving is not None
    try:
        with TestClient(create_app(state), raise_server_exceptions=False) as client:
            yield World(
                client=client,
                rt=streamflow,
                agent=agent,
                tenant_key=key.plaintext,
                clock=[datetime.now(UTC) + timedelta(seconds=1)],
                auth=ProviderSigningAuth("ops", SECRET),
                drain=state.serving.drain,
                provider_id=provider_id,
                tenant_id=tenant_id,
            )
    finally:
        state.tenant_engine.dispose()
        state.engine.dispose()


def test_wait_promote_reject_and_roll_back(world: World) -> None:
    model = f"{world.agent}-model"
    assert world.champion() == f"{model}@1"

    better = world.start_shadow(f"{model}@2")
    world.predict_with_feedback(0, 6)
    waited = world.compare(better)
    assert waited["outcome"] == "wait", waited["reason"]
    assert "6 of the 30" in waited["reason"]

    world.predict_with_feedback(6, 24)
    promoted = world.compare(better)
    assert promoted["outcome"] == "promote", promoted["reason"]
    evidence = promoted["evidence"]
    live = {m["metric"]: m for m in evidence["metrics"] if m["source"] == "live"}
    golden = next(m for m in evidence["metrics"] if m["source"] == "golden")
    assert live["quality"]["ci_low"] > 0
    assert golden["ci_low"] > 0
    assert evidence["live"]["n_champion"] == 30
    assert evidence["live"]["agreement_rate"] == pytest.approx(0.5, abs=0.05)
    assert promoted["dataset_digest"] == evidence["golden"]["dataset_digest"]
    # The golden set went through evaluation runs like any other; the champion's run of the
    # first look was reused, not recomputed.
    runs = evidence["golden"]["evaluation_runs"]
    assert runs["champion"] == waited["evidence"]["golden"]["evaluation_runs"]["champion"]
    assert world.champion() == f"{model}@2"
    assert registry.resolve(f"{model}@previous").version == "1"

    worse = world.start_shadow(f"{model}@3")
    world.predict_with_feedback(30, 30)
    rejected = world.compare(worse)
    assert rejected["outcome"] == "reject", rejected["reason"]
    assert world.champion() == f"{model}@2"

    listed = world.client.get(
        "/provider/v1/promotion/decisions", params={"agent_type": world.agent}, auth=world.auth
    ).json()["items"]
    assert [d["outcome"] for d in listed] == ["reject", "promote", "wait"]

    with transaction(world.rt.sessions) as session:
        rolled = promotion.rollback(session, agent_type=world.agent, actor="test")
    assert (rolled.champion, rolled.previous) == ("1", "2")
    assert world.champion() == f"{model}@1"

    with transaction(world.rt.sessions) as session:
        evaluated = session.execute(
            select(
                EvaluationRun.id,
                EvaluationRun.model_version,
                EvaluationRun.status,
                EvaluationRun.organization_id,
            )
        ).all()
        stored = session.scalar(
            select(func.count())
            .select_from(EvaluationExampleScore)
            .where(EvaluationExampleScore.run_id == uuid.UUID(runs["challenger"]))
        )
        actions = list(session.scalars(select(AuditLogEntry.action)))
        rows = session.execute(select(Job.organization_id, Job.payload)).all()
        notices = list(session.scalars(select(SystemNotice.title)))
    assert sorted((str(v), status, org) for _, v, status, org in evaluated) == [
        ("1", "completed", world.provider_id),
        ("2", "completed", world.provider_id),
        ("3", "completed", world.provider_id),
    ]
    assert str(runs["challenger"]) in {str(run_id) for run_id, *_ in evaluated}
    assert stored == 40
    for action in (
        "evaluation_run.created",
        "promotion_decision.recorded",
        "model_alias.promoted",
        "model_alias.rolled_back",
        "experiment.stopped",
    ):
        assert action in actions, action
    # The provider gets the evidence; the tenant learns which version now answers its calls.
    links = {
        organization_id: set(payload["data"]["links"])
        for organization_id, payload in rows
        if payload.get("type") == "challenger.promoted"
    }
    assert links == {world.provider_id: {"decision"}, world.tenant_id: {"agents"}}
    assert any("promoted" in title for title in notices)
    assert any("rejected" in title for title in notices)


def test_ab_split_is_sticky_and_checked_for_mismatch_before_the_gate_promotes(world: World) -> None:
    model = f"{world.agent}-model"
    versions = {"champion": f"{model}@1", "challenger": f"{model}@2"}

    # A broken split: 20% of end users were promised to the challenger, half of the traffic
    # went there. The challenger is truly better, but the gate holds on the mismatch first.
    broken = world.start_ab(versions["challenger"], 0.2)
    world.ab_traffic(broken, 0.2, versions)
    held = world.compare(broken)
    assert held["outcome"] == "wait", held["reason"]
    assert "sample-ratio mismatch" in held["reason"]
    live = held["evidence"]["live"]
    assert (live["n_champion"], live["n_challenger"]) == (33, 33)
    assert live["srm"]["mismatch"] is True
    first_check = held["evidence"]["gate"]["checks"][0]
    assert first_check["passed"] is False
    assert "sample-ratio mismatch" in first_check["reason"]
    live_metrics = {m["metric"]: m for m in held["evidence"]["metrics"] if m["source"] == "live"}
    assert live_metrics["quality"]["ci_low"] > 0  # on outcomes alone it would have promoted
    assert world.champion() == versions["champion"]
    stopped = world.client.post(f"/provider/v1/experiments/{broken}/stop", auth=world.auth)
    assert stopped.status_code == 200, stopped.text

    # The same traffic where half was promised: the split matches, the gate promotes.
    fair = world.start_ab(versions["challenger"], 0.5)
    world.ab_traffic(fair, 0.5, versions)
    promoted = world.compare(fair)
    assert promoted["outcome"] == "promote", promoted["reason"]
    assert promoted["evidence"]["live"]["srm"]["mismatch"] is False
    assert promoted["evidence"]["gate"]["checks"][0]["passed"] is True
    golden = next(m for m in promoted["evidence"]["metrics"] if m["source"] == "golden")
    assert golden["ci_low"] > 0
    assert world.champion() == versions["challenger"]


def test_cost_and_critical_slice_guardrails_decide(world: World) -> None:
    """A better challenger that costs far more: the gate waits while a version has no price
    (naming it), then rejects on cost; its critical slice holds on the golden set, and a slice
    the pinned version lacks is refused."""
    model = f"{world.agent}-model"
    champion, challenger = f"{model}@1", f"{model}@2"

    def gate(critical: list[str]) -> None:
        with transaction(world.rt.sessions) as session:
            promotion.set_gate(
                session,
                agent_type=world.agent,
                config={
                    "min_n": 30,
                    "min_duration_seconds": 0,
                    "golden_dataset": f"{world.agent}-golden@2",
                    "guardrails": [{"metric": "cost_per_request", "margin": 100}],
                    "critical_slices": critical,
                    "slice_margin": 0.2,
                },
                actor="test",
                now=datetime.now(UTC),
            )

    # Pinned before the version is imported: only the comparison can check its slices.
    gate(["cancellations"])
    with transaction(world.rt.sessions) as session:
        rows = [
            {
                "id": f"g{i}",
                "input": _text(i),
                "expected": _truth(_text(i)),
                "slice": "refunds" if i % 3 else "plans",
            }
            for i in range(40)
        ]
        add_golden_rows(
            session,
            storage_dir=world.rt.storage.golden_dataset_dir,
            organization_id=world.provider_id,
            name=f"{world.agent}-golden",
            rows=rows,
            task="classification",
        )

    experiment = world.start_shadow(challenger)
    world.predict_with_feedback(0, 30)
    with pytest.raises(Conflict) as missing_slice:
        world.compare(experiment)
    assert missing_slice.value.field == "critical_slices"
    assert "cancellations is not a slice" in str(missing_slice.value)
    # Once the version is stored, setting the gate refuses the slice it lacks.
    with pytest.raises(InvalidInput) as refused:
        gate(["cancellations"])
    assert refused.value.field == "critical_slices"
    assert "its slices: plans, refunds" in str(refused.value)

    gate(["plans"])
    day = world.clock[0].date()
    with transaction(world.rt.sessions) as session:
        set_ai_cost_rate(
            session,
            model_version=champion,
            effective_from=day,
            currency="USD",
            micros_per_1k_tokens_in=0,
            micros_per_1k_tokens_out=0,
            micros_per_request=100,
            actor="test",
            now=datetime.now(UTC),
        )
    waited = world.compare(experiment)
    assert waited["outcome"] == "wait", waited["reason"]
    assert f"no AI cost rate is in force for {challenger}" in waited["reason"]
    plans = waited["evidence"]["golden"]["critical_slices"]["plans"]
    assert plans["n"] == 14
    checks = {c["name"]: c["passed"] for c in waited["evidence"]["gate"]["checks"]}
    assert checks["guardrail quality on slice plans (golden)"] is True

    with transaction(world.rt.sessions) as session:
        set_ai_cost_rate(
            session,
            model_version=challenger,
            effective_from=day,
            currency="USD",
            micros_per_1k_tokens_in=100_000,
            micros_per_1k_tokens_out=0,
            micros_per_request=1_000,
            actor="test",
            now=datetime.now(UTC),
        )
    rejected = world.compare(experiment)
    assert rejected["outcome"] == "reject", rejected["reason"]
    assert "cost_per_request is more than the allowed 100 higher" in rejected["reason"]
    cost = rejected["evidence"]["live"]["sequential"]["cost_per_request"]
    assert cost["n"] == 30
    # 900 more per request, plus 100 per input token: 20 inputs of 6 words and 10 of 5.
    assert cost["estimate"] == pytest.approx(900 + 100 * (20 * 6 + 10 * 5) / 30)
    assert rejected["evidence"]["live"]["cost_micros_per_request_champion"] == 100
