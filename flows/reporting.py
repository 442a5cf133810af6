"""Rich renderings of evaluation read models for the CLI and the demo.

Each function draws one read model of `pipelines.evaluation.read_models`; `--json` prints the
same model as JSON, so the table and the document never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pipelines.evaluation.read_models import (
        EvaluationDetail,
        Metric,
        MetricDifference,
        RunComparison,
    )
    from pipelines.evaluation.service import RunComparison as StoredComparison

__all__ = ["HEADLINE", "comparison_payload", "fmt", "print_comparison", "print_run"]

HEADLINE = {
    "classification": ("accuracy", "f1_macro", "precision_macro", "recall_macro", "f1_weighted"),
    "text_generation": (
        "rouge1_f",
        "rouge2_f",
        "rougeL_f",
        "rougeLsum_f",
        "bleu",
        "chrf",
        "exact_match",
    ),
}
"""Metrics the comparison table shows; `--json` carries every metric."""


def fmt(value: float | None, digits: int = 4) -> str:
    """A metric value for tables; '–' when undefined."""
    return "–" if value is None else f"{value:.{digits}f}"


def _ci(low: float | None, high: float | None) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def _with_ci(metric: Metric | None) -> str:
    if metric is None:
        return "–"
    return f"{fmt(metric.value)} {_ci(metric.ci_low, metric.ci_high)}"


def _p(value: float | None) -> str:
    return "–" if value is None else ("<0.001" if value <= 0.001 else f"{value:.3f}")


def _verdict(row: MetricDifference) -> str:
    if row.ci_low is None or row.ci_high is None:
        return ""
    if row.ci_low > 0:
        return "[green]B higher[/green]"
    if row.ci_high < 0:
        return "[red]A higher[/red]"
    return "no clear difference"


def comparison_payload(result: StoredComparison) -> dict[str, object]:
    """A comparison as the JSON document the API serves."""
    from pipelines.evaluation.views import comparison_payload as payload

    return payload(result)


def print_comparison(console: Console, result: RunComparison | StoredComparison) -> None:
    """Champion vs challenger: each metric with its CI in both runs and the paired difference."""
    from pipelines.evaluation.read_models import RunComparison as View

    if not isinstance(result, View):
        from pipelines.evaluation.views import comparison

        result = comparison(result)
    console.print(
        f"[bold]A[/bold] = {result.run_a.subject}   [bold]B[/bold] = {result.run_b.subject}   "
        f"n = {result.n} paired examples"
    )
    table = Table("metric", "A [95% CI]", "B [95% CI]", "B − A [95% CI]", "p", "")
    metrics_a = {m.name: m for m in result.run_a.metrics if m.label is None}
    metrics_b = {m.name: m for m in result.run_b.metrics if m.label is None}
    rows = {row.name: row for row in result.overall if row.label is None}
    for name in (*HEADLINE.get(result.task, ()), "quality_score"):
        row = rows.get(name)
        if row is None:
            continue
        table.add_row(
            name,
            _with_ci(metrics_a.get(name)),
            _with_ci(metrics_b.get(name)),
            f"{fmt(row.difference)} {_ci(row.ci_low, row.ci_high)}",
            _p(row.p_value),
            _verdict(row),
        )
    console.print(table)
    for test in result.mcnemar:
        console.print(
            f"McNemar on {test.metric}: only A right {test.only_a_correct}, only B right "
            f"{test.only_b_correct}, exact p = {test.p_value:.3g}"
        )
    per_slice = [row for row in result.slices if row.name == "quality_score"]
    if per_slice:
        slices = Table(
            "slice", "n", "B − A [95% CI]", "p", "p (Holm)", title="quality_score by slice"
        )
        for row in per_slice:
            slices.add_row(
                row.slice,
                str(row.n),
                f"{fmt(row.difference)} {_ci(row.ci_low, row.ci_high)}",
                _p(row.p_value),
                _p(row.p_value_holm),
            )
        console.print(slices)


def print_run(console: Console, run: EvaluationDetail, *, slices: bool = False) -> None:
    """A run's overall metrics with CIs, optionally per slice (per-class ones: `--json`)."""
    table = Table(
        "metric",
        "value",
        "95% CI",
        "n",
        title=(
            f"run {str(run.id)[:8]}: {run.subject} on "
            f"{run.golden_dataset.name}@{run.golden_dataset.version} [{run.status}]"
        ),
    )
    for m in run.metrics:
        if m.label is None:
            table.add_row(m.name, fmt(m.value), _ci(m.ci_low, m.ci_high), str(m.n))
    console.print(table)
    if slices and run.slices:
        by_slice = Table("slice", "metric", "value", "95% CI", "n", title="per slice")
        for group in run.slices:
            for m in group.metrics:
                if m.label is None:
                    by_slice.add_row(
                        group.slice, m.name, fmt(m.value), _ci(m.ci_low, m.ci_high), str(m.n)
                    )
        console.print(by_slice)
