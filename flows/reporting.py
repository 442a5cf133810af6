"""Rich tables and JSON payloads of evaluation comparisons, shared by the CLI and the demo."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from pipelines.evaluation.scoring import MetricDifference
from pipelines.evaluation.service import RunComparison


def _subject(run: Any) -> str:
    if run.registered_model_name:
        alias = f" ({run.model_alias})" if run.model_alias else ""
        return f"{run.registered_model_name}@{run.model_version}{alias}"
    return f"predictions {run.predictions_filename}"


def comparison_payload(result: RunComparison) -> dict[str, Any]:
    """A comparison as JSON-ready data."""
    return {
        "run_a": {"id": str(result.run_a.id), "subject": _subject(result.run_a)},
        "run_b": {"id": str(result.run_b.id), "subject": _subject(result.run_b)},
        "n": result.comparison.n,
        "overall": [asdict(row) for row in result.comparison.overall],
        "slices": [asdict(row) for row in result.comparison.slices],
        "mcnemar": [asdict(row) for row in result.comparison.mcnemar],
    }


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _headline(rows: tuple[MetricDifference, ...]) -> list[MetricDifference]:
    return [row for row in rows if "[" not in row.name]


def _verdict(row: MetricDifference) -> str:
    if row.ci_low is None or row.ci_high is None:
        return ""
    if row.ci_low > 0:
        return "[green]B better[/green]"
    if row.ci_high < 0:
        return "[red]A better[/red]"
    return "no clear difference"


def print_comparison(console: Console, result: RunComparison) -> None:
    """Champion vs challenger style table: each metric with both CIs and the paired difference."""
    comparison = result.comparison
    table = Table(
        "metric", "A", "B", "B − A", "95% CI of B − A", "p", "",
        title=f"A = {_subject(result.run_a)}  vs  B = {_subject(result.run_b)}  (n = {comparison.n}, paired)",
    )
    for row in _headline(comparison.overall):
        table.add_row(
            row.name, _fmt(row.a), _fmt(row.b), _fmt(row.difference),
            f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]", _fmt(row.p_value, 3), _verdict(row),
        )
    console.print(table)
    for test in comparison.mcnemar:
        console.print(
            f"McNemar on {test.metric}: only A right {test.only_a_correct}, only B right "
            f"{test.only_b_correct}, exact p = {test.p_value:.4g}"
        )
    headline = "quality_score" if any(r.name == "quality_score" for r in comparison.slices) else None
    if comparison.slices and headline:
        slices = Table("slice", "n", "B − A", "95% CI", "p", "p (Holm)", title=f"{headline} per slice")
        for row in comparison.slices:
            if row.name == headline:
                slices.add_row(
                    row.slice, str(row.n), _fmt(row.difference), f"[{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]",
                    _fmt(row.p_value, 3), _fmt(row.p_value_holm, 3),
                )
        console.print(slices)
