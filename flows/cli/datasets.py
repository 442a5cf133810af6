"""`streamflow datasets`: golden datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import org_id, session
from flows.cli.output import JsonOption, OrgOption, emit, short
from models.db.enums import Task

app = typer.Typer(
    help="Golden datasets: import, from-feedback, list, show, diff.", no_args_is_help=True
)


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, JSONL or Parquet.")
    ],
    name: Annotated[str, typer.Option(help="Golden dataset name.")],
    task: Annotated[Task, typer.Option(help="What the dataset evaluates.")],
    labels: Annotated[
        str | None,
        typer.Option(
            help="Classification: the label set, comma-separated (default: the expected "
            "values); every expected value must be one of them."
        ),
    ] = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import a file as a new immutable version (the same content returns the existing one)."""
    from flows.runtime import DatasetSettings, cli_actor, runtime
    from pipelines.golden_datasets.service import import_golden_dataset

    declared = None if labels is None else labels.split(",")
    with session() as opened:
        imported = import_golden_dataset(
            opened,
            organization_id=org_id(opened, org),
            actor=cli_actor(),
            name=name,
            task=task,
            data=file.read_bytes(),
            filename=file.name,
            storage_dir=runtime().storage.golden_dataset_dir,
            labels=declared,
            max_row_bytes=DatasetSettings().max_row_bytes,
        )
        result: dict[str, Any] = {
            "dataset": imported.dataset.name,
            "version": imported.version.version,
            "rows": imported.version.row_count,
            "content_hash": imported.version.content_hash,
            "labels": imported.version.label_set,
            "created": imported.created,
        }
    emit(result, as_json=as_json, render=_imported)


def _imported(console: Console, r: dict[str, Any]) -> None:
    verb = "imported" if r["created"] else "unchanged, existing"
    console.print(
        f"{verb} {r['dataset']}@{r['version']}: {r['rows']} rows, sha256 {r['content_hash'][:12]}"
    )
    if r.get("labels"):
        console.print(f"label set ({len(r['labels'])}): {', '.join(r['labels'])}")


@app.command("from-feedback")
def from_feedback(
    agent: Annotated[str, typer.Option(help="The agent type whose feedback to export.")],
    name: Annotated[str, typer.Option(help="Golden dataset name (a new version of it).")],
    task: Annotated[
        Task,
        typer.Option(help="classification: correct labels; text_generation: corrected outputs."),
    ],
    tenant: Annotated[
        str | None, typer.Option(help="Only this tenant's feedback (slug); default every tenant's.")
    ] = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export tenants' corrections, with the inputs they were given for, as a golden dataset
    version (example ids are request ids; the same feedback returns the same version)."""
    from flows.runtime import cli_actor, runtime
    from pipelines.feedback.service import export_feedback_dataset

    with session() as opened:
        imported = export_feedback_dataset(
            opened,
            organization_id=org_id(opened, org),
            agent_type=agent,
            task=task,
            name=name,
            storage_dir=runtime().storage.golden_dataset_dir,
            actor=cli_actor(),
            tenant=None if tenant is None else org_id(opened, tenant),
        )
        result: dict[str, Any] = {
            "dataset": imported.dataset.name,
            "version": imported.version.version,
            "rows": imported.version.row_count,
            "content_hash": imported.version.content_hash,
            "labels": imported.version.label_set,
            "created": imported.created,
        }
    emit(result, as_json=as_json, render=_imported)


@app.command("list")
def list_(
    org: OrgOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    after: Annotated[str | None, typer.Option(help="Cursor: list names after this one.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List golden datasets this organisation may use, with their latest version."""
    from pipelines.golden_datasets.service import list_datasets

    with session() as opened:
        own = org_id(opened, org)
        found = list_datasets(opened, organization_id=own, after=after, limit=limit + 1)
        rows = [
            {
                "name": d.name,
                "task": d.task,
                "latest_version": v.version if v else None,
                "rows": v.row_count if v else 0,
                "content_hash": v.content_hash if v else None,
                "shared": d.organization_id != own,
            }
            for d, v in found[:limit]
        ]
    cursor = rows[-1]["name"] if len(found) > limit else None
    emit({"items": rows, "next_cursor": cursor}, as_json=as_json, render=_datasets_table)


def _datasets_table(console: Console, page: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("name", "task", "latest", "rows", "sha256", "owner")
    for row in page["items"]:
        table.add_row(
            row["name"],
            row["task"],
            str(row["latest_version"]),
            str(row["rows"]),
            str(row["content_hash"])[:12],
            "provider (shared)" if row["shared"] else "own",
        )
    console.print(table)
    if page["next_cursor"]:
        console.print(f"more: streamflow datasets list --after {page['next_cursor']}")


@app.command("show")
def show(
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
    with session() as opened:
        own = org_id(opened, org)
        dataset, versions = list_versions(opened, organization_id=own, name=parsed.name)
        _, chosen = resolve_version(opened, organization_id=own, reference=reference)
        frame = load_version_frame(runtime().storage.golden_dataset_dir, chosen)
        result: dict[str, Any] = {
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
            "labels": _labels(dataset.task, chosen, frame),
            "slices": chosen.slice_counts,
            "head": frame.head(5).to_dict(orient="records"),
        }
    emit(result, as_json=as_json, render=_dataset)


def _dataset(console: Console, r: dict[str, Any]) -> None:
    from rich.table import Table

    versions = Table(
        "version", "rows", "sha256", "file", "created", title=f"{r['name']} ({r['task']})"
    )
    for v in r["versions"]:
        versions.add_row(
            str(v["version"]),
            str(v["rows"]),
            v["content_hash"][:12],
            v["source_filename"],
            short(v["created_at"]),
        )
    console.print(versions)
    slices = Table("slice", "rows", title=f"slices of {r['name']}@{r['shown_version']}")
    for name, count in sorted(r["slices"].items()):
        slices.add_row(name, str(count))
    console.print(slices)
    if r.get("labels"):
        console.print(f"label set ({len(r['labels'])}): {', '.join(r['labels'])}")
    head = Table("id", "input", "expected", title="first rows")
    for row in r["head"]:
        head.add_row(str(row["id"]), str(row["input"])[:80], str(row["expected"])[:60])
    console.print(head)


def _labels(task: str, version: Any, frame: Any) -> list[str] | None:
    """A classification version's label set (stored, or its expected values)."""
    from pipelines.golden_datasets.service import version_labels

    if task != "classification":
        return None
    return list(version_labels(version, frame["expected"].astype(str).tolist()))


@app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="NAME@A")],
    new: Annotated[str, typer.Argument(help="NAME@B")],
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Example ids added, removed and changed between two versions."""
    from flows.runtime import runtime
    from pipelines.golden_datasets.service import diff as diff_versions

    with session() as opened:
        found = diff_versions(
            opened,
            organization_id=org_id(opened, org),
            storage_dir=runtime().storage.golden_dataset_dir,
            old=old,
            new=new,
        )
    result = {
        "added": list(found.added),
        "removed": list(found.removed),
        "changed": list(found.changed),
    }
    emit(result, as_json=as_json, render=_diff)


def _diff(console: Console, r: dict[str, list[str]]) -> None:
    for label, ids in r.items():
        shown = ", ".join(ids[:20]) + (f" … and {len(ids) - 20} more" if len(ids) > 20 else "")
        console.print(f"[bold]{label}[/bold] ({len(ids)}): {shown}")
