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
            _with_ci(metrics_a.get(name)) if name in metrics_a else fmt(row.a),
            _with_ci(metrics_b.get(name)) if name in metrics_b else fmt(row.b),
            f"{fmt(row.difference)} {_ci(row.ci_low, row.ci_high)}",
            _p(row.p_value),
            _verdict(row),
        )
    console.print(table)
    if result.quality_weights is not None:
        weights = ", ".join(f"{k}={v:g}" for k, v in result.quality_weights.weights.items())
        origin = (
            "both runs' weights"
            if result.quality_weights.source == "runs"
            else f"declared weights of {result.quality_weights.agent_type} (the runs' differ)"
        )
        console.print(f"quality_score for both runs: {weights} ({origin})")
    if result.labels:
        console.print(
            f"classes: the dataset version's label set ({len(result.labels)}), the same for both"
        )
    for test in result.mcnemar:
        where = f" in slice {test.slice}" if test.slice else ""
        holm = f", Holm p = {test.p_value_holm:.3g}" if test.p_value_holm is not None else ""
        console.print(
            f"McNemar on {test.metric}{where}: only A right {test.only_a_correct}, only B right "
            f"{test.only_b_correct}, exact p = {test.p_value:.3g}{holm}"
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
        total = len(run.labels or [])
        for group in run.slices:
            present = group.averaged_over
            if present is not None and len(present) < total:
                console.print(
                    f"slice {group.slice}: macro averages over the {len(present)} of {total}"
                    f" labels present in it ({', '.join(present)})"
                )
    if slices and run.confusion_matrix is not None:
        print_confusion(console, run)
    if slices and run.scoring_signatures:
        for name, signature in sorted(run.scoring_signatures.items()):
            console.print(f"{name}: {signature}", highlight=False)


def print_confusion(console: Console, run: EvaluationDetail) -> None:
    """The confusion matrix over the label set: rows expected, columns predicted."""
    matrix = run.confusion_matrix
    if matrix is None:
        return
    strays = any(matrix.out_of_set)
    table = Table(
        "expected \\ predicted",
        *matrix.labels,
        *(["out of set"] if strays else []),
        title="confusion matrix (label set × label set)",
    )
    for label, row, outside in zip(matrix.labels, matrix.matrix, matrix.out_of_set, strict=True):
        table.add_row(label, *map(str, row), *([str(outside)] if strays else []))
    console.print(table)
    if matrix.out_of_set_values:
        values = ", ".join(
            f"{value!r} ×{count}" for value, count in matrix.out_of_set_values.items()
        )
        console.print(f"predictions outside the label set (counted as errors): {values}")
