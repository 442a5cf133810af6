"""Rich tables of evaluation comparisons for the CLI and the demo (JSON payloads: views)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from models.db.tables import EvaluationMetric
from pipelines.evaluation.scoring import MetricDifference
from pipelines.evaluation.service import RunComparison
from pipelines.evaluation.views import comparison_payload, subject

__all__ = ["HEADLINE", "comparison_payload", "print_comparison", "subject"]

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


def _with_ci(metric: EvaluationMetric | None) -> str:
    if metric is None:
        return "–"
    return f"{fmt(metric.value)} [{fmt(metric.ci_low)}, {fmt(metric.ci_high)}]"


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


def print_comparison(console: Console, result: RunComparison) -> None:
    """Champion vs challenger: each metric with its CI in both runs and the paired difference."""
    comparison = result.comparison
    console.print(
        f"[bold]A[/bold] = {subject(result.run_a)}   [bold]B[/bold] = {subject(result.run_b)}   "
        f"n = {comparison.n} paired examples"
    )
    table = Table("metric", "A [95% CI]", "B [95% CI]", "B − A [95% CI]", "p", "")
    wanted = (*HEADLINE.get(result.run_a.task, ()), "quality_score")
    rows = {row.name: row for row in comparison.overall}
    for name in wanted:
        row = rows.get(name)
        if row is None:
            continue
        table.add_row(
            name,
            _with_ci(result.metrics_a.get(name)),
            _with_ci(result.metrics_b.get(name)),
            f"{fmt(row.difference)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}]",
            _p(row.p_value),
            _verdict(row),
        )
    console.print(table)
    for test in comparison.mcnemar:
        console.print(
            f"McNemar on {test.metric}: only A right {test.only_a_correct}, only B right "
            f"{test.only_b_correct}, exact p = {test.p_value:.3g}"
        )
    per_slice = [row for row in comparison.slices if row.name == "quality_score"]
    if per_slice:
        slices = Table(
            "slice", "n", "B − A [95% CI]", "p", "p (Holm)", title="quality_score by slice"
        )
        for row in per_slice:
            slices.add_row(
                row.slice,
                str(row.n),
                f"{fmt(row.difference)} [{fmt(row.ci_low)}, {fmt(row.ci_high)}]",
                _p(row.p_value),
                _p(row.p_value_holm),
            )
        console.print(slices)
