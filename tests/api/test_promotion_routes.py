"""The provider's promotion routes: gates (set is audited), decisions and drift reports, paged;
a drift report's HTML is served only while it matches its stored digest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from models.db.engine import make_engine, make_sessionmaker, transaction
from models.db.repositories.promotion import PromotionRepository
from models.db.tables import AuditLogEntry, PromotionDecision
from pipelines.promotion.drift import summarize_drift
from pipelines.promotion.service import store_drift_report
from tests.api.conftest import World
from tests.api.test_route_coverage import covers

P = "/provider/v1/promotion"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _in_database(world: World, work: Any) -> Any:
    engine = make_engine(world.state.storage.resolved_database_url())
    try:
        with transaction(make_sessionmaker(engine)) as session:
            return work(session)
    finally:
        engine.dispose()


def _seed(world: World) -> str:
    def work(session: Any) -> str:
        repository = PromotionRepository(session)
        for minute in range(3):
            repository.add_decision(
                PromotionDecision(
                    agent_type="summarizer",
                    outcome="wait",
                    reason="Keep waiting.",
                    model_name="summ",
                    champion_version="summ@1",
                    challenger_version="summ@2",
                    window_start=NOW - timedelta(hours=1),
                    window_end=NOW,
                    n=minute,
                    gate_config={"alpha": 0.05},
                    evidence={"metrics": [], "gate": {"checks": []}},
                    actor="test",
                    created_at=NOW + timedelta(minutes=minute),
                )
            )
        metrics = [
            {
                "config": {"type": "x:ValueDrift", "column": "length", "method": "K-S p_value"},
                "value": 0.001,
            }
        ]
        report = store_drift_report(
            session,
            agent_type="summarizer",
            summary=summarize_drift(metrics, threshold=0.5),
            window=(NOW - timedelta(days=1), NOW),
            n_current=10,
            n_reference=20,
            dataset_version_id=None,
            dataset_digest=None,
            html="<html><body>drift</body></html>",
            home=world.state.storage.home,
            actor="test",
            now=NOW,
        )
        return str(report.id)

    return str(_in_database(world, work))


class TestPromotionRoutes:
    @covers(f"PUT {P}/gates/{{agent_type}}", audit=True)
    @covers(f"GET {P}/gates/{{agent_type}}")
    def test_a_gate_is_pre_registered_in_versions_and_audited(self, world: World) -> None:
        auth = world.provider_auth()
        default = world.client.get(f"{P}/gates/summarizer", auth=auth)
        assert default.status_code == 200, default.text
        assert default.json()["version"] == 0
        body = {
            "min_n": 50,
            "golden_dataset": "golden@1",
            "guardrails": [{"metric": "cost_per_request", "margin": 250}],
            "critical_slices": ["refunds"],
            "slice_margin": 0.02,
        }
        for expected in (1, 2):
            put = world.client.put(f"{P}/gates/summarizer", json=body, auth=auth)
            assert put.status_code == 200, put.text
            assert put.json()["version"] == expected
        shown = world.client.get(f"{P}/gates/summarizer", auth=auth).json()
        assert shown["config"]["min_n"] == 50
        assert shown["config"]["guardrails"] == [
            {"metric": "cost_per_request", "margin": 250.0, "higher_is_better": False}
        ]
        assert (shown["config"]["critical_slices"], shown["config"]["slice_margin"]) == (
            ["refunds"],
            0.02,
        )
        bad = world.client.put(f"{P}/gates/summarizer", json={"primary_metric": "vibes"}, auth=auth)
        assert bad.status_code == 422, bad.text
        no_margin = world.client.put(
            f"{P}/gates/summarizer", json={**body, "slice_margin": None}, auth=auth
        )
        assert no_margin.status_code == 422, no_margin.text
        assert "slice_margin" in no_margin.text
        audits = _in_database(
            world,
            lambda session: list(
                session.scalars(
                    select(AuditLogEntry.target_id).where(
                        AuditLogEntry.action == "promotion_gate.set"
                    )
                )
            ),
        )
        assert sorted(audits) == ["summarizer@1", "summarizer@2"]

    @covers(
        f"GET {P}/decisions",
        f"GET {P}/decisions/{{decision_id}}",
        f"GET {P}/drift-reports",
        f"GET {P}/drift-reports/{{report_id}}/html",
    )
    def test_decisions_and_drift_reports_page_and_read(self, world: World) -> None:
        report_id = _seed(world)
        auth = world.provider_auth()
        first = world.client.get(f"{P}/decisions", params={"limit": 2}, auth=auth)
        assert first.status_code == 200, first.text
        assert [d["n"] for d in first.json()["items"]] == [2, 1]
        rest = world.client.get(
            f"{P}/decisions",
            params={"limit": 2, "cursor": first.json()["next_cursor"]},
            auth=auth,
        ).json()
        assert [d["n"] for d in rest["items"]] == [0]
        assert rest["next_cursor"] is None
        one = world.client.get(f"{P}/decisions/{rest['items'][0]['id']}", auth=auth)
        assert one.json()["evidence"] == {"metrics": [], "gate": {"checks": []}}
        missing = world.client.get(f"{P}/decisions/{report_id}", auth=auth)
        assert missing.status_code == 404
        reports = world.client.get(
            f"{P}/drift-reports", params={"agent_type": "summarizer"}, auth=auth
        ).json()
        assert [r["drifted_columns"] for r in reports["items"]] == [["length"]]
        html = world.client.get(f"{P}/drift-reports/{report_id}/html", auth=auth)
        assert html.status_code == 200, html.text
        assert html.headers["content-type"].startswith("text/html")
        assert html.text == "<html><body>drift</body></html>"
        stored = world.state.storage.home / "drift_reports" / f"{report_id}.html"
        stored.write_text("<html>tampered</html>")
        assert world.client.get(f"{P}/drift-reports/{report_id}/html", auth=auth).status_code == 404
