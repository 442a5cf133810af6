"""`streamflow demo`: the main job end to end on the embedded default."""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console

from flows.evaluation import run_evaluation
from flows.models import BUILTIN_AGENTS, BuiltAgent, move_alias, register_agent, train_builtin
from flows.reporting import comparison_payload, print_comparison
from flows.runtime import report_progress, runtime
from models.db.engine import transaction
from models.registry import client as registry
from pipelines.evaluation import service, views
from pipelines.evaluation.read_models import RunComparison
from pipelines.golden_datasets.schema import GoldenDatasetTask
from pipelines.golden_datasets.service import import_golden_dataset
from pipelines.golden_datasets.validation import read_golden_file
from pipelines.model_versions import service as model_versions
from pipelines.organizations import ensure_organization, get_organization

log = structlog.get_logger()

DATASETS_DIR = Path(__file__).resolve().parent.parent / "datasets"
ACTOR = "demo"
PROVIDER = "provider"
TENANTS = {"northwind-hvac": "Northwind HVAC", "bluepeak-plumbing": "Bluepeak Plumbing"}

DEMO = (
    {
        "task": "classification",
        "dataset": "support-ticket-intents",
        "golden": "golden/support_ticket_intents.csv",
        "training": "training/support_ticket_intents_train.csv",
        "model": "intent-classifier",
        "champion": "tfidf-logreg",
        "challenger": "char-naive-bayes",
    },
    {
        "task": "text_generation",
        "dataset": "job-note-summaries",
        "golden": "golden/job_note_summaries.jsonl",
        "training": "training/job_note_summaries_train.jsonl",
        "model": "job-note-summarizer",
        "champion": "lead-sentence",
        "challenger": "scored-sentence",
    },
)


def _register_builtin(
    name: str, builtin: str, training: Path, alias: str
) -> registry.ModelVersionRef:
    """A version of `name` trained from this recipe and data: the existing one, or a new one."""
    data = training.read_bytes()
    recipe = {
        "streamflow.builtin": builtin,
        "streamflow.training_sha256": hashlib.sha256(data).hexdigest(),
    }
    existing = model_versions.find_version(name, recipe)
    if existing is not None:
        move_alias(name, alias, existing.version, actor=ACTOR)
        return existing
    agent_type, task = BUILTIN_AGENTS[builtin]
    rows = read_golden_file(data, filename=training.name, task=GoldenDatasetTask(task)).frame
    agent = train_builtin(builtin, rows["input"].tolist(), rows["expected"].tolist())
    return register_agent(
        name,
        BuiltAgent(agent, agent_type, task),
        description=f"built-in {builtin}, trained on {training.name}",
        alias=alias,
        actor=ACTOR,
        tags=recipe,
    )


def _profitability(rt: Any, say: Any) -> list[dict[str, Any]]:
    """The tenants' last 30 days of usage (synthetic, seeded), prices, and the rollup flow."""
    from datetime import UTC, date, datetime, timedelta

    from flows.profitability import run_rollup
    from pipelines.profitability import service as profitability
    from pipelines.profitability.pricing import Tier, as_units
    from pipelines.profitability.views import periods_page
    from pipelines.usage.service import ingest_usage
    from pipelines.usage.synthetic import AGENTS, synthetic_usage

    now = datetime.now(UTC)
    first_day = now.date() - timedelta(days=29)
    since = first_day.replace(day=1)
    with transaction(rt.sessions) as session:
        for model_version in AGENTS.values():
            profitability.set_ai_cost_rate(
                session,
                model_version=model_version,
                effective_from=date(2026, 1, 1),
                currency="USD",
                micros_per_1k_tokens_in=150,
                micros_per_1k_tokens_out=600,
                micros_per_request=100,
                actor=ACTOR,
                now=now,
            )
        profitability.set_infrastructure_rule(
            session,
            effective_from=date(2026, 1, 1),
            currency="USD",
            micros_per_request=200,
            micros_per_1k_tokens=0,
            micros_per_tenant_month=20_000_000,
            actor=ACTOR,
            now=now,
        )
        profitability.set_adoption_tiers(
            session,
            effective_from=date(2026, 1, 1),
            basis="jobs",
            tiers=[Tier("starter", 0, 0), Tier("silver", 7000, 500), Tier("gold", 9000, 1500)],
            actor=ACTOR,
            now=now,
        )
        for position, slug in enumerate(TENANTS):
            profitability.set_tenant_plan(
                session,
                tenant=slug,
                effective_from=date(2026, 1, 1),
                currency="USD",
                monthly_fee_micros=(400 + 200 * position) * 1_000_000,
                included_tokens=3_000_000,
                overage_micros_per_1k_tokens=4_000,
                actor=ACTOR,
                now=now,
            )
        events = synthetic_usage(
            list(TENANTS), first_day=first_day, days=30, per_tenant_day=60, seed=7
        )
        ingested = ingest_usage(session, [events], actor=ACTOR, now=now, source="demo")
    say(f"usage: {ingested.inserted} new events of {ingested.received} for {len(TENANTS)} tenants")
    run_rollup(since=since, until=(now.date().replace(day=28) + timedelta(days=4)).replace(day=1))
    with rt.sessions() as session:
        months = periods_page(session, period_kind="month", since=since, cursor=None, limit=20)
    rows: list[dict[str, Any]] = [
        {
            "tenant": p.tenant,
            "month": p.period_start.isoformat(),
            "revenue": f"{as_units(p.revenue_micros):.2f}",
            "discount": f"{as_units(p.discount_micros):.2f}",
            "ai_cost": f"{as_units(p.ai_cost_micros):.2f}",
            "infra_cost": f"{as_units(p.infra_cost_micros):.2f}",
            "margin": "–" if p.margin_bps is None else f"{p.margin_bps / 100:.1f}%",
            "tier": p.tier,
        }
        for p in months.items
    ]
    for row in rows:
        say(
            f"profitability {row['tenant']} {row['month'][:7]}: revenue {row['revenue']} "
            f"(discount {row['discount']}, tier {row['tier']}), AI cost {row['ai_cost']}, "
            f"infra {row['infra_cost']}, margin {row['margin']}"
        )
    return rows


def run_demo(console: Console | None, *, started: float | None = None) -> dict[str, Any]:
    """Create orgs, import datasets, train and register models, evaluate, compare.

    `started` is the `time.perf_counter()` reading the reported duration counts from; the CLI
    passes the moment the command began, so the orchestrator's start-up is counted too.
    """
    if started is None:
        started = time.perf_counter()
    rt = runtime()
    say = console.print if console else (lambda *_a, **_k: None)
    with transaction(rt.sessions) as session:
        ensure_organization(
            session, slug=PROVIDER, name="StreamFlow provider", kind="provider", actor=ACTOR
        )
        for slug, name in TENANTS.items():
            ensure_organization(session, slug=slug, name=name, kind="tenant", actor=ACTOR)
        for spec in DEMO:
            path = DATASETS_DIR / spec["golden"]
            provider_id = get_organization(session, PROVIDER).id
            result = import_golden_dataset(
                session,
                organization_id=provider_id,
                actor=ACTOR,
                name=spec["dataset"],
                task=spec["task"],
                data=path.read_bytes(),
                filename=path.name,
                storage_dir=rt.storage.golden_dataset_dir,
            )
            say(
                f"golden dataset {result.dataset.name}@{result.version.version}: "
                f"{result.version.row_count} rows"
            )
    report: dict[str, Any] = {"comparisons": []}
    steps = len(DEMO) * 4
    step = 0
    for spec in DEMO:
        refs = {}
        for alias in ("champion", "challenger"):
            report_progress("demo", step, steps)
            refs[alias] = _register_builtin(
                spec["model"], spec[alias], DATASETS_DIR / spec["training"], alias
            )
            step += 1
            say(f"model version {refs[alias]} ({spec[alias]}) is {alias}")
        outcomes = {}
        for alias in ("champion", "challenger"):
            report_progress("demo", step, steps)
            outcomes[alias] = run_evaluation(
                PROVIDER,
                ACTOR,
                dataset=spec["dataset"],
                model=f"{spec['model']}@{alias}",
            )
            step += 1
        report_progress("demo", step, steps)
        with rt.sessions() as session:
            provider_id = get_organization(session, PROVIDER).id
            run_a, run_b = outcomes["champion"].run_id, outcomes["challenger"].run_id
            # The challenger's flow compared it with the champion's run and stored the result.
            document = views.stored_comparison(
                session,
                organization_id=provider_id,
                run_a=uuid.UUID(run_a),
                run_b=uuid.UUID(run_b),
            ) or comparison_payload(
                service.compare_runs(session, organization_id=provider_id, run_a=run_a, run_b=run_b)
            )
        if console:
            console.print()
            print_comparison(console, RunComparison.model_validate(document))
        report["comparisons"].append(document)
        report.setdefault("compare_pages", []).append(
            "/dashboards/compare"
            f"?run_a={outcomes['champion'].run_id}&run_b={outcomes['challenger'].run_id}"
        )
    # Each tenant gets a run of its own to read through /v1: the summariser champion on the
    # provider's shared golden dataset, evaluated as the tenant.
    report["tenant_runs"] = {}
    for slug in TENANTS:
        summaries = DEMO[-1]
        outcome = run_evaluation(
            slug, ACTOR, dataset=summaries["dataset"], model=f"{summaries['model']}@champion"
        )
        report["tenant_runs"][slug] = outcome.run_id
        say(f"tenant {slug}: its own run {outcome.run_id[:8]} ({summaries['model']}@champion)")
    report["profitability"] = _profitability(rt, say)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["database"] = rt.engine.url.render_as_string(hide_password=True)
    report["mlflow_tracking_uri"] = rt.registry.resolved_tracking_uri()
    if console:
        console.print()
        console.print(f"done in {report['seconds']} s. Results live in:")
        console.print(f"  database       {report['database']}")
        uri = report["mlflow_tracking_uri"]
        console.print(f"  MLflow         {uri}  (browse: mlflow ui --backend-store-uri {uri})")
        console.print(f"  golden data    {rt.storage.golden_dataset_dir.resolve()}")
        console.print("Try next:")
        console.print("  streamflow eval list")
        console.print("  streamflow eval show RUN            per-slice metrics with CIs")
        console.print("  streamflow eval examples RUN --json per-example scores")
        console.print("  streamflow datasets show support-ticket-intents")
        console.print("  streamflow models list")
        console.print("  streamflow profitability list --period day   revenue, costs, margin")
        tenant = next(iter(TENANTS))
        console.print(
            f"  streamflow keys create {tenant} --name demo --scope results:read"
            "   then GET /v1/evaluations with it"
        )
        console.print(
            "  streamflow users create you@example.com --name You   then streamflow serve"
            " and open, signed in:"
        )
        for page in report["compare_pages"]:
            console.print(f"    http://127.0.0.1:8000{page}", highlight=False, soft_wrap=True)
    return report
