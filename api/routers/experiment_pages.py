"""The experiments' dashboard pages: experiments (live comparison, gate, decision history),
a promotion decision's evidence, and drift reports with their stored Evidently HTML.

Every page reads the services' own read models (`ExperimentDetail`, `DecisionDetail`,
`GateView`, `DriftReportView`), as the provider API does. Analysts read; admins may pause or
stop an experiment (CSRF-checked, audited by the experiments service).

A drift report's HTML is Evidently's: big, with inline scripts and styles, which the pages'
Content-Security-Policy forbids. It is served from its own route with a policy of its own —
`sandbox allow-scripts` (an opaque origin: its scripts run but cannot read the dashboards'
cookies, storage or pages), inline scripts and styles allowed, nothing fetched from anywhere —
and the report page frames it in a sandboxed iframe. A download link gives the same bytes as a
file.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.dashboards.auth import AdminChange, Analyst
from api.dashboards.pages import PageRoute, render
from api.deps import StateDep
from api.routers.promotion import drift_report_html
from models.db.enums import ExperimentStatus
from pipelines.evaluation import charts
from pipelines.experiments import service as experiments
from pipelines.promotion import service as promotion
from pipelines.promotion.evidence import QUALITY
from pipelines.promotion.read_models import DecisionDetail

PAGE_SIZE = 50
LOOKS = 500
"""The experiment page charts up to this many looks (decisions), newest first."""
DRIFT_REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'self'"
)
"""The one relaxed policy: Evidently's inline scripts run in an opaque-origin sandbox, and
nothing is fetched (no network, no same-origin access)."""

router = APIRouter(prefix="/dashboards", include_in_schema=False, route_class=PageRoute)


@router.get("/experiments")
def experiments_list(
    request: Request,
    context: Analyst,
    agent_type: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Experiments newest first, filtered by agent type and status, with planned and observed
    n; HTMX appends the next page."""
    found = experiments.experiments_page(
        context.session,
        agent_type=agent_type or None,
        status=status or None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    observed = experiments.served_counts(context.session, [item.id for item in found.items])
    filters = {"agent_type": agent_type or "", "status": status or ""}
    return render(
        request,
        "experiment_rows.html" if cursor else "experiments.html",
        context,
        section="experiments",
        experiments=found.items,
        observed=observed,
        next_cursor=found.next_cursor,
        filters=filters,
        statuses=[str(s) for s in ExperimentStatus],
    )


def _looks(decisions: list[DecisionDetail], metric: str) -> list[dict[str, Any]]:
    """The always-valid result of `metric` at each look, oldest first."""
    looks = []
    for decision in reversed(decisions):
        result = (decision.evidence.get("live") or {}).get("sequential", {}).get(metric)
        if isinstance(result, dict):
            looks.append({**result, "at": decision.created_at})
    return looks


def _live_rows(decision: DecisionDetail | None) -> list[dict[str, Any]]:
    """The latest look's live metrics (challenger − champion with intervals)."""
    if decision is None:
        return []
    return [m for m in decision.evidence.get("metrics", []) if m.get("source") == "live"]


@router.get("/experiments/{experiment_id}")
def experiment_page(request: Request, context: Analyst, experiment_id: uuid.UUID) -> Response:
    """An experiment: the comparison so far (its latest look), the always-valid interval of the
    primary metric over the looks, the gate in force, and every decision."""
    found = experiments.get_experiment(context.session, experiment_id)
    decisions = promotion.experiment_decisions_page(
        context.session, experiment_id=experiment_id, cursor=None, limit=LOOKS
    ).items
    gate = promotion.gate_view(context.session, found.agent_type)
    primary = str(gate.config.get("primary_metric") or QUALITY)
    metric = primary if primary in {QUALITY, "error_rate"} else QUALITY
    looks = _looks(decisions, metric)
    latest = decisions[0] if decisions else None
    observed = experiments.served_counts(context.session, [found.id]).get(found.id, 0)
    return render(
        request,
        "experiment.html",
        context,
        section="experiments",
        experiment=found,
        observed=observed,
        decisions=decisions,
        latest=latest,
        live=(latest.evidence.get("live") or {}) if latest is not None else {},
        live_metrics=_live_rows(latest),
        gate=gate,
        metric=metric,
        looks=looks,
        chart=charts.sequential_trend(
            looks,
            metric=metric,
            title=f"{metric}: always-valid {1 - float(gate.config.get('alpha', 0.05)):.0%} "
            "interval at each look",
        )
        if looks
        else None,
    )


def _change(state: Any, context: Any, experiment_id: uuid.UUID, action: str) -> Response:
    experiments.change_status(
        context.session, experiment_id, action, actor=context.actor, now=datetime.now(UTC)
    )
    if state.serving is not None:
        state.serving.experiments.forget()
    return RedirectResponse(f"/dashboards/experiments/{experiment_id}", status_code=303)


@router.post("/experiments/{experiment_id}/pause")
def pause_experiment(state: StateDep, context: AdminChange, experiment_id: uuid.UUID) -> Response:
    """Pause a running experiment (admins; audited as `experiment.paused`)."""
    return _change(state, context, experiment_id, "pause")


@router.post("/experiments/{experiment_id}/stop")
def stop_experiment(state: StateDep, context: AdminChange, experiment_id: uuid.UUID) -> Response:
    """Stop an experiment for good (admins; audited as `experiment.stopped`)."""
    return _change(state, context, experiment_id, "stop")


@router.get("/decisions/{decision_id}")
def decision_page(request: Request, context: Analyst, decision_id: uuid.UUID) -> Response:
    """A promotion decision's immutable evidence, readably; the raw JSON is the API's."""
    decision = promotion.decision_detail(context.session, decision_id)
    evidence = decision.evidence
    return render(
        request,
        "decision.html",
        context,
        section="experiments",
        decision=decision,
        checks=(evidence.get("gate") or {}).get("checks", []),
        metrics=evidence.get("metrics", []),
        live=evidence.get("live") or {},
        golden=evidence.get("golden") or {},
        seeds=evidence.get("seeds") or {},
    )


@router.get("/decisions/{decision_id}/evidence.json")
def decision_json(context: Analyst, decision_id: uuid.UUID) -> Response:
    """The decision as the API serves it, as a JSON file."""
    decision = promotion.decision_detail(context.session, decision_id)
    return Response(
        decision.model_dump_json(indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'inline; filename="decision-{decision_id}.json"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/drift")
def drift_reports(
    request: Request,
    context: Analyst,
    agent_type: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Drift reports newest first, optionally of one agent type; HTMX appends the next page."""
    found = promotion.drift_reports_page(
        context.session, agent_type=agent_type or None, cursor=cursor, limit=PAGE_SIZE
    )
    return render(
        request,
        "drift_report_rows.html" if cursor else "drift_reports.html",
        context,
        section="drift",
        reports=found.items,
        next_cursor=found.next_cursor,
        agent_type=agent_type or "",
    )


@router.get("/drift/{report_id}")
def drift_report(request: Request, context: Analyst, report_id: uuid.UUID) -> Response:
    """A drift report's summary and its Evidently HTML in a sandboxed frame."""
    report = promotion.drift_report_view(context.session, report_id)
    return render(request, "drift_report.html", context, section="drift", report=report)


@router.get("/drift/{report_id}/html")
def drift_report_file(
    state: StateDep, context: Analyst, report_id: uuid.UUID, download: bool = False
) -> Response:
    """The stored Evidently HTML (while it matches its digest), under its own sandboxing CSP."""
    data, sha256 = drift_report_html(state, context.session, report_id)
    disposition = "attachment" if download else "inline"
    return Response(
        data,
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": DRIFT_REPORT_CSP,
            "Content-Disposition": f'{disposition}; filename="drift-{report_id}.html"',
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, max-age=3600",
            "ETag": f'"{sha256}"',
        },
    )
