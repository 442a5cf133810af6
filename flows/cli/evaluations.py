"""`streamflow eval`: evaluations of model versions on golden datasets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from flows.cli.context import org_id, org_slug, session
from flows.cli.output import JsonOption, OrgOption, console, emit, fail, fmt, progress, short

if TYPE_CHECKING:
    from pipelines.evaluation.read_models import EvaluationDetail, EvaluationSummary, ExampleScore
    from pipelines.pagination import Paged

app = typer.Typer(help="Evaluations of model versions on golden datasets.", no_args_is_help=True)

Run = Annotated[str, typer.Argument(help="Run id or a unique prefix of it (at least 4 chars).")]
Cursor = Annotated[str | None, typer.Option(help="`next_cursor` of the previous page.")]


@app.command("run")
def run(
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
    bleu_tokenize: Annotated[
        str, typer.Option(help="sacrebleu tokenizer for BLEU: 13a, intl, char, zh or none.")
    ] = "13a",
    bleu_lowercase: Annotated[bool, typer.Option(help="Lowercase texts for BLEU.")] = False,
    chrf_char_order: Annotated[int, typer.Option(help="chrF character n-gram order.")] = 6,
    chrf_word_order: Annotated[
        int, typer.Option(help="chrF word n-gram order (2 gives chrF++).")
    ] = 0,
    quality_weights: Annotated[
        str | None, typer.Option(help="e.g. 'rougeL_f=0.5,chrf=0.5'.")
    ] = None,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate a model version or a predictions file on a golden dataset (a Prefect flow)."""
    if (model is None) == (predictions is None):
        raise typer.BadParameter(
            "give exactly one of --model NAME@VERSION or --predictions FILE",
            param_hint="'--model' / '--predictions'",
        )
    from flows.cli.server import announce
    from flows.evaluation import run_evaluation
    from flows.runtime import cli_actor

    with progress(not as_json):
        outcome = run_evaluation(
            org_slug(org),
            cli_actor(),
            dataset=dataset,
            model=model,
            predictions_path=str(predictions.resolve()) if predictions else None,
            agent_type=agent_type,
            force=force,
            batch_size=batch_size,
            use_stemmer=stemmer,
            bleu_tokenize=bleu_tokenize,
            bleu_lowercase=bleu_lowercase,
            chrf_char_order=chrf_char_order,
            chrf_word_order=chrf_word_order,
            quality_weights=quality_weights,
            announce=announce,
        )
    detail = _detail(outcome.run_id, org)
    if as_json:
        emit(
            detail.model_dump(mode="json") | {"reused": outcome.reused, "resumed": outcome.resumed},
            as_json=True,
            render=_nothing,
        )
        return
    if outcome.reused:
        console.print(
            "same model version, dataset version and config already evaluated: "
            f"run {str(detail.id)[:8]} (use --force to redo)"
        )
    _print_detail(console, detail, slices=False)


def _nothing(_console: Console, _result: object) -> None:
    """Rendering of results only printed as JSON."""


def _detail(run: str, org: str | None) -> EvaluationDetail:
    from pipelines.evaluation.views import evaluation_detail

    with session() as opened:
        return evaluation_detail(opened, organization_id=org_id(opened, org), run_id=run)


def _print_detail(console: Console, detail: EvaluationDetail, *, slices: bool) -> None:
    from flows.reporting import print_run

    print_run(console, detail, slices=slices)
    if detail.error:
        fail(f"run {str(detail.id)[:8]} failed: {detail.error}")


@app.command("show")
def show(run: Run, org: OrgOption = None, as_json: JsonOption = False) -> None:
    """Show a run: metrics with CIs, per slice, the confusion matrix (`--json`: the API's
    document)."""
    emit(
        _detail(run, org),
        as_json=as_json,
        render=lambda console, detail: _print_detail(console, detail, slices=True),
    )


@app.command("list")
def list_(
    org: OrgOption = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    cursor: Cursor = None,
    as_json: JsonOption = False,
) -> None:
    """List evaluation runs, newest first, a page at a time."""
    from pipelines.evaluation.views import runs_page

    with session() as opened:
        page = runs_page(opened, organization_id=org_id(opened, org), cursor=cursor, limit=limit)
    emit(page, as_json=as_json, render=_runs_table)


def _runs_table(console: Console, page: Paged[EvaluationSummary]) -> None:
    from rich.table import Table

    table = Table("run", "status", "subject", "task", "dataset", "examples", "created")
    for run in page.items:
        table.add_row(
            str(run.id)[:8],
            run.status,
            run.subject,
            run.task,
            f"{run.golden_dataset.name}@{run.golden_dataset.version}",
            str(run.examples),
            short(run.created_at),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: streamflow eval list --cursor {page.next_cursor}")


@app.command("examples")
def examples(
    run: Run,
    org: OrgOption = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    cursor: Cursor = None,
    as_json: JsonOption = False,
) -> None:
    """Per-example scores of a run, ordered by example id, a page at a time."""
    from pipelines.evaluation.runs import get_run
    from pipelines.evaluation.views import run_examples_page

    with session() as opened:
        own = org_id(opened, org)
        task = get_run(opened, organization_id=own, run_id=run).task
        page = run_examples_page(
            opened, organization_id=own, run_id=run, cursor=cursor, limit=limit
        )
    emit(page, as_json=as_json, render=lambda console, p: _examples_table(console, p, task, run))


def _examples_table(console: Console, page: Paged[ExampleScore], task: str, run: str) -> None:
    from rich.table import Table

    headline = (
        ["correct"] if task == "classification" else ["rougeL_f", "bleu", "chrf", "exact_match"]
    )
    table = Table("example", "slice", "prediction", *headline)
    for item in page.items:
        table.add_row(
            item.example_id,
            item.slice,
            item.prediction[:60],
            *[fmt(_num(item.scores.get(h)), 3) for h in headline],
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: streamflow eval examples {run} --cursor {page.next_cursor}")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


@app.command("compare")
def compare(
    run_a: Run,
    run_b: Run,
    org: OrgOption = None,
    as_json: JsonOption = False,
) -> None:
    """Paired comparison of run B against run A: bootstrap CIs, McNemar, per-slice Holm.

    Refused when the runs were scored with different options or label sets."""
    from flows.reporting import print_comparison
    from pipelines.evaluation.views import compare_runs, comparison

    with session() as opened:
        result = comparison(
            compare_runs(opened, organization_id=org_id(opened, org), run_a=run_a, run_b=run_b)
        )
    emit(result, as_json=as_json, render=print_comparison)
