"""A shadow experiment of a toy intent agent with labelled traffic, as the comparison tests
need it: champion v1 right on even-numbered texts, challenger v2 always right."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.enums import ExperimentKind
from models.db.tables import Feedback, TrafficLogEntry
from pipelines.experiments.service import ExperimentRequest, change_status, create_experiment
from pipelines.organizations import ensure_organization
from pipelines.promotion import service as promotion
from tests.flows.conftest import add_golden_rows


def truth(text: str) -> str:
    return "refund" if "money" in text else "cancel"


def text_of(i: int) -> str:
    return f"{'give my money back' if i % 3 else 'stop my plan'} please {i}"


class Half:
    """Right on even-numbered texts only."""

    def predict(self, texts: list[str]) -> list[str]:
        return [truth(t) if int(t.rsplit(" ", 1)[-1]) % 2 == 0 else "wrong" for t in texts]


class Perfect:
    """Always right."""

    def predict(self, texts: list[str]) -> list[str]:
        return [truth(t) for t in texts]


def add_shadow_traffic(rt: Runtime, agent: str, experiment_id: uuid.UUID, tenant: uuid.UUID,
             numbers: range, at: datetime) -> None:  # fmt: skip
    """Served (champion) and shadow (challenger) rows of requests, each with its label."""
    with transaction(rt.sessions) as session:
        for i in numbers:
            request_id, text = uuid.uuid4().hex, text_of(i)
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
                    value=truth(text),
                    created_by="test",
                    created_at=at + timedelta(milliseconds=i),
                )
            )


def running_shadow(
    rt: Runtime, agent: str, started: datetime, *, tenant_slug: str
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """Champion v1 (half right) and challenger v2 (always right) of `agent`, a golden dataset,
    a gate wanting 30 requests, and a running shadow experiment: (experiment id, provider id,
    tenant id)."""
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
            session, slug=tenant_slug, name="T", kind="tenant", actor="test"
        )
        add_golden_rows(
            session,
            storage_dir=rt.storage.golden_dataset_dir,
            organization_id=provider.id,
            name=f"{agent}-golden",
            rows=[
                {"id": f"g{i:02d}", "input": text_of(i), "expected": truth(text_of(i))}
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
        return experiment_id, provider.id, tenant.id
