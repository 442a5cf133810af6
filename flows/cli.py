"""The `streamflow` command: datasets, model versions, evaluations, the demo, the database."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.cli_server import server_app, up, worker
from flows.reporting import fmt
from pipelines.logging import configure_logging

app = typer.Typer(
    help="StreamFlow: evaluate, roll out and pay for AI features in a multi-tenant SaaS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The StreamFlow database.", no_args_is_help=True)
orgs_app = typer.Typer(help="The provider and its tenants.", no_args_is_help=True)
datasets_app = typer.Typer(help="Golden datasets: import, list, show, diff.", no_args_is_help=True)
models_app = typer.Typer(help="Model versions in the MLflow registry.", no_args_is_help=True)
keys_app = typer.Typer(help="Tenants' API keys: issue, list, revoke.", no_args_is_help=True)
eval_app = typer.Typer(
    help="Evaluations of model versions on golden datasets.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(datasets_app, name="datasets")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(server_app, name="server")
app.command("worker")(worker)
app.command("up")(up)

console = Console()
errors = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OrgOption = Annotated[
    str | None,
    typer.Option(
        "--org",
        help="Organisation slug to act as (default: STREAMFLOW_EVAL_ORGANIZATION or 'provider').",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def main(
    log_level: Annotated[
        str, typer.Option(help="Log level of the JSON logs on stderr.")
    ] = "WARNING",
) -> None:
    """StreamFlow's command line."""
    configure_logging(level=log_level.upper())


def handles_errors(command: F) -> F:
    """Turn domain errors into one clear line on stderr and exit code 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from models.registry.client import InvalidModelReference, ModelVersionNotFound
        from pipelines.errors import StreamflowError
        from pipelines.golden_datasets.errors import GoldenDatasetInvalid

        try:
            return command(*args, **kwargs)
        except (
            StreamflowError,
            GoldenDatasetInvalid,
            ModelVersionNotFound,
            InvalidModelReference,
        ) as error:
            errors.print(f"[red]error:[/red] {error}", highlight=False, markup=True, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


def _org_slug(org: str | None) -> str:
    from flows.runtime import runtime

    return org or runtime().evaluation.organization


@contextmanager
def _session() -> Iterator[Any]:
    from flows.runtime import runtime
    from models.db.engine import transaction

    with transaction(runtime().sessions) as session:
        yield session


def _org_id(session: Any, org: str | None) -> Any:
    from pipelines.organizations import get_organization

    return get_organization(session, _org_slug(org)).id


# --- db -------------------------------------------------------------------------------------


@db_app.command("upgrade")
@handles_errors
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    from flows.orchestrator import migrate_orchestrator_database
    from flows.runtime import runtime
    from models.db.migrate import current_revision

    rt = runtime()
    console.print(
        f"database at revision [bold]{current_revision(rt.engine)}[/bold] "
        f"({rt.engine.url.render_as_string(hide_password=True)})"
    )
    migrate_orchestrator_database()
    console.print("orchestrator database migrated")


# --- orgs -----------------------------------------------------------------------------------


@orgs_app.command("create")
@handles_errors
def orgs_create(
    slug: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    kind: Annotated[str, typer.Option(help="provider or tenant.")] = "tenant",
    as_json: JsonOption = False,
) -> None:
    """Create an organisation (the provider once, then tenants)."""
    from flows.runtime import cli_actor
    from pipelines.organizations import ensure_organization

    with _session() as session:
        org, created = ensure_organization(
            session, slug=slug, name=name or slug, kind=kind, actor=cli_actor()
        )
        payload = {"id": str(org.id), "slug": org.slug, "kind": org.kind, "created": created}
    if as_json:
        _emit_json(payload)
    else:
        console.print(f"{'created' if created else 'exists'}: {slug} ({kind})")


@orgs_app.command("list")
@handles_errors
def orgs_list(as_json: JsonOption = False) -> None:
    """List organisations."""
    from models.db.repositories.organizations import OrganizationRepository

    with _session() as session:
        rows = [
            {"slug": o.slug, "name": o.name, "kind": o.kind, "status": o.status}
            for o in OrganizationRepository(session).list()
        ]
    if as_json:
        _emit_json(rows)
        return
    table = Table("slug", "name", "kind", "status")
    for row in rows:
        table.add_row(*row.values())
    console.print(table)


# --- datasets -------------------------------------------------------------------------------


@datasets_app.command("import")
@handles_errors
def datasets_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, JSONL or Parquet.")
    ],
    name: Annotated[str, typer.Option(help="Golden dataset name.")],
    task: Annotated[str, typer.Option(help="classification or text_generation.")],
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a file as a new immutable version (the same content returns the existing one)."""
    from flows.runtime import cli_actor, runtime
    from pipelines.golden_datasets.service import import_golden_dataset

    with _session() as session:
        result = import_golden_dataset(
            session,
            organization_id=_org_id(session, org),
            actor=cli_actor(),
            name=name,
            task=task,
            data=file.read_bytes(),
            filename=file.name,
            storage_dir=runtime().storage.golden_dataset_dir,
        )
        payload: dict[str, Any] = {
            "dataset": result.dataset.name,
            "version": result.version.version,
            "rows": result.version.row_count,
            "content_hash": result.version.content_hash,
            "created": result.created,
        }
    if as_json:
        _emit_json(payload)
    else:
        verb = "imported" if result.created else "unchanged, existing"
        console.print(
            f"{verb} {payload['dataset']}@{payload['version']}: {payload['rows']} rows, "
            f"sha256 {str(payload['content_hash'])[:12]}"
        )


@datasets_app.command("list")
@handles_errors
def datasets_list(
    org: OrgOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    after: Annotated[str | None, typer.Option(help="Cursor: list names after this one.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List golden datasets this organisation may use, with their latest version."""
    from pipelines.golden_datasets.service import list_datasets

    with _session() as session:
        rows = [
            {
                "name": d.name,
                "task": d.task,
                "latest_version": v.version if v else None,
                "rows": v.row_count if v else 0,
                "content_hash": v.content_hash if v else None,
                "shared": d.organization_id != _org_id(session, org),
            }
            for d, v in list_datasets(
                session, organization_id=_org_id(session, org), after=after, limit=limit
            )
        ]
    if as_json:
        _emit_json({"items": rows, "next_cursor": rows[-1]["name"] if len(rows) == limit else None})
        return
    table = Table("name", "task", "latest", "rows", "sha256", "owner")
    for row in rows:
        table.add_row(
            row["name"],
            row["task"],
            str(row["latest_version"]),
            str(row["rows"]),
            str(row["content_hash"])[:12],
            "provider (shared)" if row["shared"] else "own",
        )
    console.print(table)


@datasets_app.command("show")
@handles_errors
def datasets_show(
    reference: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a dataset's versions, or one version with its slices and first rows."""
    from flows.runtime import runtime
    from pipelines.golden_datasets.service import (
        DatasetReference,
        list_versions,
        load_version_frame,
        resolve_version,
    )

    parsed = DatasetReference.parse(reference)
    with _session() as session:
        org_id = _org_id(session, org)
        dataset, versions = list_versions(session, organization_id=org_id, name=parsed.name)
        _, chosen = resolve_version(session, organization_id=org_id, reference=reference)
        frame = load_version_frame(runtime().storage.golden_dataset_dir, chosen)
        payload: dict[str, Any] = {
            "name": dataset.name,
            "task": dataset.task,
            "versions": [
                {
                    "version": v.version,
                    "rows": v.row_count,
                    "content_hash": v.content_hash,
                    "source_filename": v.source_filename,
                    "created_at": v.created_at.isoformat(),
                }
                for v in versions
            ],
            "shown_version": chosen.version,
            "slices": chosen.slice_counts,
            "head": frame.head(5).to_dict(orient="records"),
        }
    if as_json:
        _emit_json(payload)
        return
    table = Table(
        "version", "rows", "sha256", "file", "created", title=f"{dataset.name} ({dataset.task})"
    )
    for v in payload["versions"]:
        table.add_row(
            str(v["version"]),
            str(v["rows"]),
            v["content_hash"][:12],
            v["source_filename"],
            v["created_at"][:19],
        )
    console.print(table)
    slices = Table("slice", "rows", title=f"slices of {dataset.name}@{chosen.version}")
    for name, count in sorted(chosen.slice_counts.items()):
        slices.add_row(name, str(count))
    console.print(slices)
    head = Table("id", "input", "expected", title="first rows")
    for row in payload["head"]:
        head.add_row(str(row["id"]), str(row["input"])[:80], str(row["expected"])[:60])
    console.print(head)


@datasets_app.command("diff")
@handles_errors
def datasets_diff(
    old: Annotated[str, typer.Argument(help="NAME@A")],
    new: Annotated[str, typer.Argument(help="NAME@B")],
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Example ids added, removed and changed between two versions."""
    from flows.runtime import runtime
    from pipelines.golden_datasets.service import diff

    with _session() as session:
        result = diff(
            session,
            organization_id=_org_id(session, org),
            storage_dir=runtime().storage.golden_dataset_dir,
            old=old,
            new=new,
        )
    payload = {
        "added": list(result.added),
        "removed": list(result.removed),
        "changed": list(result.changed),
    }
    if as_json:
        _emit_json(payload)
        return
    for label, ids in payload.items():
        shown = ", ".join(ids[:20]) + (f" … and {len(ids) - 20} more" if len(ids) > 20 else "")
        console.print(f"[bold]{label}[/bold] ({len(ids)}): {shown}")


# --- models ---------------------------------------------------------------------------------


@models_app.command("register")
@handles_errors
def models_register(
    name: Annotated[str, typer.Option(help="Registered model name, e.g. intent-classifier.")],
    builtin: Annotated[
        str | None,
        typer.Option(
            help="Built-in agent to train: tfidf-logreg, char-naive-bayes, lead-sentence, "
            "scored-sentence."
        ),
    ] = None,
    train: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Training file for --builtin (CSV/JSONL with input, expected).",
        ),
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option(
            help="module:callable returning an object with predict(list[str]) -> list[str]."
        ),
    ] = None,
    agent_type: Annotated[str | None, typer.Option(help="Agent type tag, e.g. summarizer.")] = None,
    task: Annotated[
        str | None, typer.Option(help="Task tag: classification or text_generation.")
    ] = None,
    description: str = "",
    alias: Annotated[
        str | None, typer.Option(help="Also point this alias (champion/challenger) at it.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Log an MLflow pyfunc model version with agent_type and task tags."""
    from flows.models import build_agent, register_agent

    built = build_agent(
        builtin=builtin, train=train, factory=agent, agent_type=agent_type, task=task
    )
    ref = register_agent(name, built, description=description, alias=alias)
    payload = {
        "name": ref.name,
        "version": ref.version,
        "agent_type": built.agent_type,
        "task": built.task,
        "alias": alias,
    }
    if as_json:
        _emit_json(payload)
    else:
        console.print(
            f"registered {ref.name}@{ref.version} ({built.agent_type}, {built.task})"
            + (f" as {alias}" if alias else "")
        )


@models_app.command("list")
@handles_errors
def models_list(
    name: Annotated[str | None, typer.Option(help="Only this registered model.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List registered model versions with their tags and aliases."""
    from dataclasses import asdict

    from flows.runtime import runtime
    from models.registry.client import list_model_versions

    runtime()
    versions = list_model_versions(name)
    if as_json:
        _emit_json([asdict(v) for v in versions])
        return
    table = Table("name", "version", "agent_type", "task", "aliases", "description")
    for v in versions:
        table.add_row(
            v.name, v.version, v.agent_type, v.task, ", ".join(v.aliases), v.description[:50]
        )
    console.print(table)


@models_app.command("alias")
@handles_errors
def models_alias(
    name: str,
    alias: Annotated[str, typer.Argument(help="champion or challenger")],
    version: str,
) -> None:
    """Point an alias of a registered model at a version."""
    from flows.models import move_alias

    move_alias(name, alias, version)
    console.print(f"{name}@{alias} → version {version}")


# --- eval -----------------------------------------------------------------------------------


def _announce(message: str) -> None:
    errors.print(message, highlight=False)


@contextmanager
def _progress(enabled: bool) -> Iterator[None]:
    from flows.runtime import add_progress_listener, remove_progress_listener

    if not enabled:
        yield
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bars: dict[str, Any] = {}

    def listener(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress.add_task(stage, total=total)
        progress.update(bars[stage], completed=done, total=total)

    add_progress_listener(listener)
    try:
        with progress:
            yield
    finally:
        remove_progress_listener(listener)


@eval_app.command("run")
@handles_errors
def eval_run(
    dataset: Annotated[str, typer.Option(help="Golden dataset NAME or NAME@VERSION.")],
    model: Annotated[str | None, typer.Option(help="NAME@VERSION or NAME@ALIAS.")] = None,
    predictions: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="File with id, prediction.")
    ] = None,
    agent_type: Annotated[
        str | None,
        typer.Option(
            help="Agent type of a predictions file (else from earlier runs on the dataset)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompute even if the same run exists.")] = False,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Examples per batch task.")] = None,
    stemmer: Annotated[bool, typer.Option(help="Porter stemming for ROUGE.")] = True,
    quality_weights: Annotated[
        str | None, typer.Option(help="e.g. 'rougeL_f=0.5,chrf=0.5'.")
    ] = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a model version or a predictions file on a golden dataset (a Prefect flow)."""
    from flows.evaluation import check_evaluation, evaluate_model_version
    from flows.orchestrator import orchestrated
    from flows.runtime import cli_actor

    if (model is None) == (predictions is None):
        errors.print(
            "[red]error:[/red] give exactly one of --model NAME@VERSION or --predictions FILE"
        )
        raise typer.Exit(2)
    parameters: dict[str, Any] = {
        "dataset": dataset,
        "model": model,
        "predictions_path": str(predictions.resolve()) if predictions else None,
        "agent_type": agent_type,
        "force": force,
        "batch_size": batch_size,
        "use_stemmer": stemmer,
        "quality_weights": quality_weights,
    }
    # Checked in milliseconds before the orchestrator starts: a refused request leaves no run.
    check_evaluation(_org_slug(org), **parameters)
    with orchestrated(announce=_announce), _progress(not as_json):
        outcome = evaluate_model_version(
            organization=_org_slug(org), actor=cli_actor(), **parameters
        )
    if as_json:
        _emit_json(
            _run_payload(outcome.run_id, org)
            | {"reused": outcome.reused, "resumed": outcome.resumed}
        )
        return
    if outcome.reused:
        console.print(
            "same model version, dataset version and config already evaluated: "
            f"run {outcome.run_id[:8]} (use --force to redo)"
        )
    _print_run(outcome.run_id, org)


def _run_payload(run_id: str, org: str | None) -> dict[str, Any]:
    from models.db.repositories.evaluations import EvaluationRepository
    from pipelines.evaluation import service
    from pipelines.evaluation.views import metric_document

    with _session() as session:
        org_id = _org_id(session, org)
        run = service.get_run(session, organization_id=org_id, run_id=run_id)
        dataset, version = service.run_dataset(session, organization_id=org_id, run=run)
        metrics = EvaluationRepository(session).metrics(run.id)
        return {
            "id": str(run.id),
            "status": run.status,
            "task": run.task,
            "agent_type": run.agent_type,
            "model": f"{run.registered_model_name}@{run.model_version}"
            if run.registered_model_name
            else None,
            "model_alias": run.model_alias,
            "predictions_file": run.predictions_filename,
            "golden_dataset": f"{dataset.name}@{version.version}",
            "golden_dataset_sha256": version.content_hash,
            "examples": run.example_count,
            "config": run.config,
            "mlflow_run_id": run.mlflow_run_id,
            "flow_run_id": run.flow_run_id,
            "error": run.error,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "metrics": [{"slice": m.slice, **metric_document(m)} for m in metrics],
        }


def _print_run(run_id: str, org: str | None, *, slices: bool = False) -> None:
    payload = _run_payload(run_id, org)
    subject = payload["model"] or f"predictions {payload['predictions_file']}"
    table = Table(
        "metric",
        "value",
        "95% CI",
        "n",
        title=(
            f"run {payload['id'][:8]}: {subject} on {payload['golden_dataset']} "
            f"[{payload['status']}]"
        ),
    )
    for m in payload["metrics"]:
        if m["slice"] == "" and "[" not in m["name"]:
            table.add_row(
                m["name"],
                fmt(m["value"]),
                f"[{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]",
                str(m["n"]),
            )
    console.print(table)
    if slices:
        by_slice = Table("slice", "metric", "value", "95% CI", "n", title="per slice")
        for m in payload["metrics"]:
            if m["slice"] and "[" not in m["name"]:
                by_slice.add_row(
                    m["slice"],
                    m["name"],
                    fmt(m["value"]),
                    f"[{fmt(m['ci_low'])}, {fmt(m['ci_high'])}]",
                    str(m["n"]),
                )
        console.print(by_slice)
    if payload["error"]:
        errors.print(f"[red]error:[/red] {payload['error']}")


@eval_app.command("show")
@handles_errors
def eval_show(run: str, org: OrgOption = None, as_json: JsonOption = False) -> None:
    """Show a run: subject, dataset, metrics with CIs, per slice."""
    if as_json:
        _emit_json(_run_payload(run, org))
    else:
        _print_run(run, org, slices=True)


@eval_app.command("list")
@handles_errors
def eval_list(
    org: OrgOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    before: Annotated[str | None, typer.Option(help="Cursor from a previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List evaluation runs, newest first, a page at a time."""
    from models.db.repositories.evaluations import EvaluationRepository
    from pipelines.pagination import decode_run_cursor, encode_run_cursor

    with _session() as session:
        runs = [
            run
            for run, _, _ in EvaluationRepository(session).page_with_datasets(
                _org_id(session, org),
                before=decode_run_cursor(before) if before else None,
                limit=limit,
            )
        ]
        rows: list[dict[str, Any]] = [
            {
                "id": str(r.id),
                "status": r.status,
                "subject": f"{r.registered_model_name}@{r.model_version}"
                if r.registered_model_name
                else f"predictions:{r.predictions_filename}",
                "task": r.task,
                "examples": r.example_count,
                "created_at": r.created_at.isoformat(),
            }
            for r in runs
        ]
        cursor = encode_run_cursor(runs[-1].created_at, runs[-1].id) if len(runs) == limit else None
    if as_json:
        _emit_json({"items": rows, "next_cursor": cursor})
        return
    table = Table("run", "status", "subject", "task", "examples", "created")
    for row in rows:
        table.add_row(
            row["id"][:8],
            row["status"],
            row["subject"],
            row["task"],
            str(row["examples"]),
            row["created_at"][:19],
        )
    console.print(table)
    if cursor:
        console.print(f"more: streamflow eval list --before {cursor}")


@eval_app.command("examples")
@handles_errors
def eval_examples(
    run: str,
    org: OrgOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    after: Annotated[str | None, typer.Option(help="Cursor: example id to start after.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Per-example scores of a run, ordered by example id, a page at a time."""
    from models.db.repositories.evaluations import EvaluationRepository
    from pipelines.evaluation import service

    with _session() as session:
        found = service.get_run(session, organization_id=_org_id(session, org), run_id=run)
        rows = EvaluationRepository(session).scores(found.id, after=after, limit=limit)
        items: list[dict[str, Any]] = [
            {
                "example_id": r.example_id,
                "slice": r.slice,
                "prediction": r.prediction,
                "scores": r.scores,
            }
            for r in rows
        ]
    cursor = items[-1]["example_id"] if len(items) == limit else None
    if as_json:
        _emit_json({"items": items, "next_cursor": cursor})
        return
    headline = (
        ["correct"]
        if found.task == "classification"
        else ["rougeL_f", "bleu", "chrf", "exact_match"]
    )
    table = Table("example", "slice", "prediction", *headline)
    for item in items:
        table.add_row(
            item["example_id"],
            item["slice"],
            item["prediction"][:60],
            *[fmt(_num(item["scores"].get(h)), 3) for h in headline],
        )
    console.print(table)
    if cursor:
        console.print(f"more: streamflow eval examples {run} --after {cursor}")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@eval_app.command("compare")
@handles_errors
def eval_compare(
    run_a: str,
    run_b: str,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Paired comparison of run B against run A: bootstrap CIs, McNemar, per-slice Holm."""
    from flows.reporting import comparison_payload, print_comparison
    from pipelines.evaluation import service

    with _session() as session:
        result = service.compare_runs(
            session, organization_id=_org_id(session, org), run_a=run_a, run_b=run_b
        )
    if as_json:
        _emit_json(comparison_payload(result))
    else:
        print_comparison(console, result)


# --- keys -----------------------------------------------------------------------------------


@keys_app.command("create")
@handles_errors
def keys_create(
    tenant: Annotated[str, typer.Argument(help="Tenant slug.")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'reporting job'.")],
    scope: Annotated[
        list[str], typer.Option(help="Scope to grant (repeat): results:read, predict, …")
    ],
    as_json: JsonOption = False,
) -> None:
    """Issue an API key to a tenant; the key is printed once and only its hash is stored."""
    from datetime import UTC, datetime

    from flows.runtime import cli_actor
    from pipelines.access.service import issue_tenant_api_key

    with _session() as session:
        issued = issue_tenant_api_key(
            session, slug=tenant, name=name, scopes=scope, actor=cli_actor(), now=datetime.now(UTC)
        )
        payload = {
            "id": str(issued.key.id),
            "prefix": issued.key.prefix,
            "api_key": issued.plaintext,
        }
    if as_json:
        _emit_json(payload)
    else:
        console.print(f"API key {payload['id']} for {tenant} (shown once, store it now):")
        console.print(issued.plaintext, highlight=False, markup=False)


@keys_app.command("list")
@handles_errors
def keys_list(
    tenant: Annotated[str, typer.Argument(help="Tenant slug.")], as_json: JsonOption = False
) -> None:
    """List a tenant's API keys (never the secrets)."""
    from pipelines.access.service import list_api_keys
    from pipelines.organizations import get_organization

    with _session() as session:
        organization = get_organization(session, tenant)
        rows: list[dict[str, Any]] = [
            {
                "id": str(k.id),
                "name": k.name,
                "prefix": k.prefix,
                "scopes": k.scopes,
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in list_api_keys(session, organization_id=organization.id, limit=500)
        ]
    if as_json:
        _emit_json(rows)
        return
    table = Table("id", "name", "prefix", "scopes", "last used", "revoked")
    for row in rows:
        table.add_row(
            row["id"],
            row["name"],
            row["prefix"],
            ", ".join(row["scopes"]),
            str(row["last_used_at"] or "–")[:19],
            str(row["revoked_at"] or "–")[:19],
        )
    console.print(table)


@keys_app.command("revoke")
@handles_errors
def keys_revoke(
    tenant: Annotated[str, typer.Argument(help="Tenant slug.")],
    key_id: Annotated[str, typer.Argument(help="Key id from `streamflow keys list`.")],
) -> None:
    """Revoke a tenant's API key (API processes stop accepting it within seconds)."""
    import uuid
    from datetime import UTC, datetime

    from flows.runtime import cli_actor
    from pipelines.access.service import revoke_api_key
    from pipelines.errors import InvalidInput
    from pipelines.organizations import get_organization

    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        raise InvalidInput(f"key id {key_id!r} is not a UUID; copy it from `keys list`") from None
    with _session() as session:
        organization = get_organization(session, tenant)
        revoke_api_key(
            session,
            organization_id=organization.id,
            key_id=parsed,
            actor=cli_actor(),
            now=datetime.now(UTC),
        )
    console.print(f"revoked {parsed}")


# --- serve ----------------------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (production: >1).")] = 1,
) -> None:
    """Serve the tenant and provider APIs with uvicorn."""
    import uvicorn

    # By import string: the CLI never imports the API (dependencies point one way).
    uvicorn.run(
        "api.app:create_app", factory=True, host=host, port=port, workers=workers, access_log=False
    )


# --- demo -----------------------------------------------------------------------------------


@app.command("demo")
@handles_errors
def demo(
    as_json: JsonOption = False,
) -> None:
    """Run the whole main job on the embedded default: data, models, evaluations, comparison."""
    from flows.demo import run_demo
    from flows.orchestrator import orchestrated

    with orchestrated(announce=_announce) as api_url, _progress(not as_json):
        report = run_demo(console=None if as_json else console)
    ui_url = api_url.removesuffix("/").removesuffix("/api")
    if as_json:
        _emit_json(report | {"orchestrator_ui": ui_url})
    else:
        console.print(f"  flow runs      {ui_url}  (Prefect UI)", highlight=False)


if __name__ == "__main__":
    app()
