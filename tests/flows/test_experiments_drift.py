"""The drift path with the real Evidently: a `DataDriftPreset` report of recent served inputs'
text descriptors against the pinned golden dataset version. Inputs like the golden set's leave
everything alone; inputs that moved (longer, German, words the golden set never used) store the
report's HTML, tell the provider and re-evaluate the champion on the golden set through the
evaluation flow's steps.

Tiny on purpose: 24 golden rows and 24 served rows per window. Evidently's import (seconds,
once per test process) is shared with tests/test_stack.py.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from flows.experiments import check_drift_now
from flows.models import BuiltAgent, register_agent
from flows.runtime import Runtime
from models.db.engine import transaction
from models.db.tables import EvaluationRun, SystemNotice, TrafficLogEntry
from pipelines.organizations import ensure_organization
from pipelines.promotion import service as promotion
from pipelines.promotion.read_models import DriftReportView
from tests.flows.conftest import add_golden_rows

pytestmark = [
    # Raised while evidently imports (its numpy.core patch, litestar's deprecated Dependency),
    # as in tests/test_stack.py; neither is StreamFlow's to fix.
    pytest.mark.filterwarnings("ignore:numpy.core is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*Deprecated in litestar:DeprecationWarning"),
]

GOLDEN = [
    "give my money back please",
    "i want a refund for this order",
    "stop my plan today",
    "cancel the subscription now",
    "refund the money for my order",
    "please cancel my plan",
]
MOVED = [
    "Ich möchte bitte mein Geld zurück, die Bestellung war leider beschädigt und unvollständig",
    "Kündigen Sie bitte sofort mein Abonnement, ich bin mit dem Service überhaupt nicht zufrieden",
]


def _label(text: str) -> str:
    return "refund" if any(w in text.lower() for w in ("money", "refund", "geld")) else "cancel"


class Keywords:
    """Refund when the text mentions money, else cancel."""

    def predict(self, texts: list[str]) -> list[str]:
        return [_label(t) for t in texts]


def _serve(rt: Runtime, agent: str, tenant: uuid.UUID, texts: list[str], at: datetime) -> None:
    with transaction(rt.sessions) as session:
        for position, text in enumerate(texts):
            session.add(
                TrafficLogEntry(
                    request_id=uuid.uuid4().hex,
                    organization_id=tenant,
                    agent_type=agent,
                    role="served",
                    model_version=f"{agent}-model@1",
                    input_hash=hashlib.sha256(text.encode()).hexdigest(),
                    input_text=text,
                    output_text=_label(text),
                    input_chars=len(text),
                    latency_ms=5.0,
                    created_at=at + timedelta(seconds=position),
                )
            )


def test_drift_stores_the_report_tells_the_provider_and_re_evaluates(streamflow: Runtime) -> None:
    rt = streamflow
    agent = f"drift-{uuid.uuid4().hex[:6]}"
    with transaction(rt.sessions) as session:
        provider, _ = ensure_organization(
            session, slug="provider", name="P", kind="provider", actor="test"
        )
        tenant, _ = ensure_organization(
            session, slug="tenant-drift", name="T", kind="tenant", actor="test"
        )
        provider_id, tenant_id = provider.id, tenant.id
        rows = [
            {"id": f"g{i:02d}", "input": f"{text} {i}", "expected": _label(text)}
            for i, text in enumerate(GOLDEN * 4)
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
            config={"golden_dataset": f"{agent}-golden@1"},
            actor="test",
            now=datetime.now(UTC),
        )
    register_agent(
        f"{agent}-model",
        BuiltAgent(Keywords(), agent, "classification"),
        alias="champion",
        actor="test",
    )
    now = datetime.now(UTC)

    def check(at: datetime) -> DriftReportView | None:
        return check_drift_now(
            rt.sessions,
            agent_type=agent,
            storage_dir=rt.storage.golden_dataset_dir,
            home=rt.storage.home,
            clock=lambda: at,
            actor="test",
            resamples=100,
        )

    # Inputs like the golden set's: a report, no drift, no notice, no evaluation.
    _serve(rt, agent, tenant_id, [r["input"] for r in rows], now - timedelta(hours=2))
    calm = check(now)
    assert calm is not None
    assert calm.drifted is False, calm.drifted_columns
    assert (calm.n_current, calm.n_reference) == (24, 24)

    # A day later the inputs moved: German, twice as long, words the golden set never used.
    later = now + timedelta(days=2)
    _serve(rt, agent, tenant_id, MOVED * 12, later - timedelta(hours=2))
    moved = check(later)
    assert moved is not None
    assert moved.drifted is True
    assert moved.drift_share >= moved.threshold
    assert {"language", "oov_rate", "length_chars"} <= set(moved.drifted_columns)
    assert moved.window_start == later - timedelta(days=1)

    with transaction(rt.sessions) as session:
        path, sha256 = promotion.drift_report_file(session, moved.id)
        notices = list(session.scalars(select(SystemNotice.title)))
        evaluated = session.execute(
            select(
                EvaluationRun.registered_model_name,
                EvaluationRun.model_version,
                EvaluationRun.status,
                EvaluationRun.organization_id,
                EvaluationRun.golden_dataset_version_id,
            )
        ).all()
        calm_has_html = promotion.drift_report_view(session, calm.id).html_sha256 is not None
    html = (rt.storage.home / path).read_bytes()
    assert hashlib.sha256(html).hexdigest() == sha256 == moved.html_sha256
    assert b"<html" in html.lower()
    assert calm_has_html
    assert notices == [f"Input drift on {agent}"]
    # No experiment runs, so the champion was re-evaluated on the pinned golden set: one
    # completed evaluation run of the provider, like any other.
    assert [tuple(row) for row in evaluated] == [
        (f"{agent}-model", "1", "completed", provider_id, moved.dataset_version_id)
    ]
