"""The dashboards: server-rendered pages for provider analysts (and tenants' own pages).

Pages call the same services and read models as the JSON API and render them with Jinja2;
HTMX swaps fragments (a filtered table, the next page) and vega-embed draws the charts from
specs built in `pipelines/evaluation/charts.py`. Pages are not part of the API document.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.cache import cached_comparison, cached_run_detail, platform_session
from api.dashboards.auth import (
    SIGN_IN_PATH,
    Analyst,
    DashboardContext,
    SignedInChange,
    cookie_name,
)
from api.dashboards.pages import SECURITY_HEADERS, PageRoute, render
from api.deps import StateDep, failed_authentication, refuse_blocked_address
from api.state import ApiState
from models.cache.cache import ResultCache
from pipelines.access.service import Unauthenticated, authenticate
from pipelines.errors import InvalidInput
from pipelines.evaluation import charts
from pipelines.evaluation.read_models import EvaluationDetail, Metric, RunComparison
from pipelines.evaluation.views import (
    alias_moves,
    pair_owner,
    paired_counts,
    paired_examples_page,
    per_example_metrics,
    quality_scores_page,
    run_owner,
    run_summary,
    runs_across_organizations_page,
)
from pipelines.organizations import all_organizations, get_organization
from pipelines.provider_users.service import sign_in, sign_out, tenant_sign_in

HEADLINE_METRICS = (
    "quality_score",
    "accuracy",
    "f1_macro",
    "rougeL",
    "bleu",
    "chrf",
    "exact_match",
)
"""The metrics slice tables show (every metric is in the run's overall table and in the API)."""
PAGE_SIZE = 50
TREND_POINTS = 500


router = APIRouter(prefix="/dashboards", include_in_schema=False, route_class=PageRoute)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: only a path of the dashboards, never another site."""
    if value and value.startswith("/dashboards") and "//" not in value and "\\" not in value:
        return value
    return "/dashboards/evaluations"


def _signed_in_response(state: ApiState, token: str, expires: datetime, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        cookie_name(state),
        token,
        max_age=int((expires - datetime.now(UTC)).total_seconds()),
        path="/",
        secure=state.api.dashboard_secure_cookies,
        httponly=True,
        samesite="lax",
    )
    response.headers.update(SECURITY_HEADERS)
    return response


@router.get("")
def home(_: Analyst) -> Response:
    """The dashboards' front page is the evaluations list."""
    return RedirectResponse("/dashboards/evaluations", status_code=303)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str | None = None) -> Response:
    """The sign-in form: provider users with e-mail and password, tenants with an API key."""
    return render(request, "sign_in.html", None, next=_safe_next(next), error=None)


@router.post("/sign-in")
async def sign_in_submit(
    request: Request,
    state: StateDep,
    email: Annotated[str, Form(max_length=254)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Open a provider user's session; a wrong e-mail or password counts against the address."""
    refuse_blocked_address(request, state)
    lifetime = timedelta(hours=state.api.dashboard_session_hours)

    def open_session() -> Any:
        with state.sessions() as session, session.begin():
            return sign_in(
                session, email=email, password=password, now=datetime.now(UTC), lifetime=lifetime
            )

    try:
        opened = await anyio.to_thread.run_sync(open_session)
    except Unauthenticated as error:
        await failed_authentication(request, state)
        return render(
            request, "sign_in.html", None, status_code=401, next=_safe_next(next), error=str(error)
        )
    return _signed_in_response(state, opened.token, opened.signed_in.expires_at, _safe_next(next))


@router.post("/tenant-sign-in")
async def tenant_sign_in_submit(
    request: Request,
    state: StateDep,
    api_key: Annotated[str, Form(max_length=200)],
) -> Response:
    """Open a tenant's session in exchange for one of its API keys."""
    refuse_blocked_address(request, state)
    lifetime = timedelta(hours=state.api.dashboard_session_hours)

    def open_session() -> Any:
        now = datetime.now(UTC)
        # The key is checked on the tenant's own login (as every tenant request is); the
        # session it opens is the platform's to store.
        with state.tenant_sessions() as session, session.begin():
            principal = authenticate(session, api_key, now=now)
        with state.sessions() as session, session.begin():
            return tenant_sign_in(session, principal=principal, now=now, lifetime=lifetime)

    try:
        opened = await anyio.to_thread.run_sync(open_session)
    except Unauthenticated as error:
        await failed_authentication(request, state)
        return render(request, "sign_in.html", None, status_code=401, next=None, error=str(error))
    return _signed_in_response(
        state, opened.token, opened.signed_in.expires_at, "/dashboards/tenant"
    )


@router.post("/sign-out")
def sign_out_submit(request: Request, state: StateDep, context: SignedInChange) -> Response:
    """End this browser's session."""
    sign_out(
        context.session, token=request.cookies.get(cookie_name(state), ""), actor=context.actor
    )
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    response.delete_cookie(cookie_name(state), path="/")
    return response


def _organization_id(context: DashboardContext, slug: str | None) -> Any:
    return get_organization(context.session, slug).id if slug else None


@router.get("/evaluations")
def evaluations(
    request: Request,
    context: Analyst,
    organization: Annotated[str | None, Query(max_length=63)] = None,
    agent_type: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=200)] = None,
    dataset: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Runs of every organisation, newest first, filtered by organisation, agent, model, data."""
    found = runs_across_organizations_page(
        context.session,
        organization_id=_organization_id(context, organization),
        agent_type=agent_type or None,
        model_name=model or None,
        dataset_name=dataset or None,
        status=status or None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    filters = {
        "organization": organization or "",
        "agent_type": agent_type or "",
        "model": model or "",
        "dataset": dataset or "",
        "status": status or "",
    }
    template = "evaluation_rows.html" if cursor else "evaluations.html"
    return render(
        request,
        template,
        context,
        runs=found.items,
        next_cursor=found.next_cursor,
        filters=filters,
        organizations=[] if cursor else all_organizations(context.session),
    )


def _results_cache(state: ApiState) -> ResultCache | None:
    """The API's cache of completed results: pages read what the API would answer."""
    return state.immutable_cache if state.api.cache_results else None


@router.get("/evaluations/{run_id}")
async def evaluation(request: Request, state: StateDep, context: Analyst, run_id: str) -> Response:
    """A run: every metric with its interval, the slices with their n, links out."""
    owner = await anyio.to_thread.run_sync(run_owner, context.session, run_id)
    body = await cached_run_detail(
        lambda: context.session,
        _results_cache(state),
        organization_id=owner,
        run_id=uuid.UUID(run_id),
    )
    detail = EvaluationDetail.model_validate_json(body)
    overall = [metric for metric in detail.metrics if metric.label is None]
    chart = charts.metric_intervals(overall, title="Overall metrics with 95% intervals")
    return render(
        request,
        "evaluation.html",
        context,
        run=detail,
        chart=chart,
        overall=overall,
        per_class=_per_class(detail.metrics),
        headline=HEADLINE_METRICS,
        mlflow_url=_mlflow_link(state, detail.mlflow_run_id),
        flow_run_url=_flow_run_link(state, detail.flow_run_id),
    )


def _per_class(metrics: list[Metric]) -> dict[str, dict[str, Metric]]:
    """Per-class metrics as class → metric name → metric, for a class × metric table."""
    table: dict[str, dict[str, Metric]] = {}
    for metric in metrics:
        if metric.label is not None:
            table.setdefault(metric.label, {})[metric.name] = metric
    return dict(sorted(table.items()))


def _mlflow_link(state: ApiState, mlflow_run_id: str | None) -> str | None:
    tracking = state.registry.resolved_tracking_uri()
    if mlflow_run_id is None or not tracking.startswith("http"):
        return None
    return f"{tracking.rstrip('/')}/#/runs/{mlflow_run_id}"


def _flow_run_link(state: ApiState, flow_run_id: str | None) -> str | None:
    """The flow run's page in the Prefect UI (`STREAMFLOW_PREFECT_UI_URL`)."""
    base = state.api.prefect_ui_url
    if flow_run_id is None or not base:
        return None
    return f"{base.rstrip('/')}/runs/flow-run/{flow_run_id}"


@router.get("/compare")
def compare(
    request: Request,
    context: Analyst,
    run_a: Annotated[str, Query(max_length=36)],
    run_b: Annotated[str, Query(max_length=36)],
) -> Response:
    """Run B against run A on the same examples: the page, with its example table at once; the
    paired statistics arrive as a fragment (computed once, then read from the result cache)."""
    owner = pair_owner(context.session, run_a, run_b)
    first = run_summary(context.session, organization_id=owner, run_id=run_a)
    second = run_summary(context.session, organization_id=owner, run_id=run_b)
    if first.golden_dataset != second.golden_dataset:
        raise InvalidInput(
            "the two runs evaluated different golden dataset versions; pick runs on the same one",
            field="run_b",
        )
    metrics = per_example_metrics(context.session, organization_id=owner, run_id=first.id)
    metric = _default_example_metric(metrics)
    counts = (
        paired_counts(
            context.session, organization_id=owner, run_a=first.id, run_b=second.id, metric=metric
        )
        if metric
        else None
    )
    return render(
        request,
        "compare.html",
        context,
        run_a=first,
        run_b=second,
        example_metrics=metrics,
        metric=metric,
        counts=counts,
    )


@router.get("/compare/differences")
async def compare_differences(
    request: Request,
    state: StateDep,
    context: Analyst,
    run_a: Annotated[str, Query(max_length=36)],
    run_b: Annotated[str, Query(max_length=36)],
) -> Response:
    """The paired differences of B against A, overall and per slice (an HTMX fragment)."""
    owner = await anyio.to_thread.run_sync(pair_owner, context.session, run_a, run_b)
    body = await cached_comparison(
        state.expensive_reads,
        state.comparison_cache if state.api.cache_results else None,
        platform_session(state.sessions),
        organization_id=owner,
        run_a=uuid.UUID(run_a),
        run_b=uuid.UUID(run_b),
    )
    result = RunComparison.model_validate_json(body)
    overall = [row for row in result.overall if row.label is None]
    return render(
        request,
        "compare_differences.html",
        context,
        result=result,
        overall=overall,
        per_class=[row for row in result.overall if row.label is not None],
        headline=HEADLINE_METRICS,
        overall_chart=charts.difference_intervals(overall, title="B − A with 95% paired intervals"),
    )


def _default_example_metric(metrics: list[str]) -> str:
    for preferred in ("correct", "rougeL", "rouge_l", "exact_match"):
        if preferred in metrics:
            return preferred
    return metrics[0] if metrics else ""


@router.get("/compare/examples")
def compare_examples(
    request: Request,
    state: StateDep,
    context: Analyst,
    run_a: Annotated[str, Query(max_length=36)],
    run_b: Annotated[str, Query(max_length=36)],
    metric: Annotated[str, Query(max_length=64)],
    show: Annotated[str, Query(pattern="^(all|regressed|improved|below)$")] = "regressed",
    threshold: Annotated[float | None, Query(ge=-1e6, le=1e6)] = None,
    task: Annotated[str, Query(pattern="^(classification|text_generation)$")] = "classification",
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """One page of the paired example table (an HTMX fragment), filtered and paged."""
    owner = pair_owner(context.session, run_a, run_b)
    found = paired_examples_page(
        context.session,
        organization_id=owner,
        run_a=run_a,
        run_b=run_b,
        storage_dir=state.storage.golden_dataset_dir,
        metric=metric,
        show=show,
        threshold=threshold,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    query = {"run_a": run_a, "run_b": run_b, "metric": metric, "show": show, "task": task}
    if threshold is not None:
        query["threshold"] = str(threshold)
    return render(
        request,
        "compare_examples.html",
        context,
        examples=found.items,
        next_cursor=found.next_cursor,
        query=query,
        metric=metric,
        word_diffs=task == "text_generation",
        appending=cursor is not None,
    )


@router.get("/trends")
def trends(
    request: Request,
    context: Analyst,
    organization: Annotated[str | None, Query(max_length=63)] = None,
    agent_type: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The quality score per agent type over time, with intervals and alias moves marked."""
    organizations = all_organizations(context.session)
    chosen = (
        get_organization(context.session, organization)
        if organization
        else next((o for o in organizations if o.kind == "provider"), None)
    )
    points = (
        quality_scores_page(
            context.session,
            organization_id=chosen.id,
            agent_type=agent_type or None,
            cursor=None,
            limit=TREND_POINTS,
        ).items
        if chosen is not None
        else []
    )
    by_agent: dict[str, list[Any]] = {}
    for point in points:
        by_agent.setdefault(point.agent_type, []).append(point)
    model_names = {point.model.name for point in points if point.model is not None}
    moves = alias_moves(context.session, model_names=model_names)
    agent_charts = []
    for agent, series in sorted(by_agent.items()):
        names = {point.model.name for point in series if point.model is not None}
        own_moves = [move for move in moves if move.model in names]
        title = f"{agent}: quality score (95% interval)"
        agent_charts.append(
            (agent, charts.quality_trend(series, own_moves, title=title), series, own_moves)
        )
    return render(
        request,
        "trends.html",
        context,
        organizations=organizations,
        organization=chosen.slug if chosen is not None else "",
        agent_type=agent_type or "",
        agent_charts=agent_charts,
    )
