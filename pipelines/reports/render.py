"""An evaluation report as HTML and CSV, from the run's facts and stored metrics. Pure."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricLine:
    """One stored metric of a run: overall (slice "") or per slice, with its CI."""

    slice: str
    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class ReportFacts:
    """What the report's heading states."""

    run_id: str
    subject: str
    dataset: str
    agent_type: str
    task: str
    status: str
    finished_at: str
    generated_at: str


CSV_COLUMNS = ("slice", "metric", "value", "ci_low", "ci_high", "n")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def render_csv(metrics: Sequence[MetricLine]) -> str:
    """Every metric, one row each, overall first then by slice and name."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in sorted(metrics, key=lambda m: (m.slice != "", m.slice, m.name)):
        writer.writerow(
            [
                line.slice or "(all)",
                line.name,
                _number(line.value),
                _number(line.ci_low),
                _number(line.ci_high),
                line.n,
            ]
        )
    return buffer.getvalue()


def render_html(facts: ReportFacts, metrics: Sequence[MetricLine]) -> str:
    """A self-contained HTML page: the facts, then a table per slice (overall first)."""
    e = html.escape
    slices = sorted({m.slice for m in metrics}, key=lambda s: (s != "", s))
    sections = []
    for name in slices:
        rows = "".join(
            f"<tr><td>{e(m.name)}</td><td>{_number(m.value)}</td>"
            f"<td>{_number(m.ci_low)} – {_number(m.ci_high)}</td><td>{m.n}</td></tr>"
            for m in sorted((m for m in metrics if m.slice == name), key=lambda m: m.name)
        )
        title = "All examples" if name == "" else f"Slice {e(name)}"
        sections.append(
            f"<h2>{title}</h2><table><thead><tr><th>metric</th><th>value</th>"
            f"<th>95% CI</th><th>n</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    facts_rows = "".join(
        f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>"
        for label, value in (
            ("run", facts.run_id),
            ("subject", facts.subject),
            ("golden dataset", facts.dataset),
            ("agent type", facts.agent_type),
            ("task", facts.task),
            ("status", facts.status),
            ("finished", facts.finished_at),
            ("generated", facts.generated_at),
        )
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Evaluation {e(facts.run_id)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}</style></head><body>"
        f"<h1>Evaluation report</h1><table>{facts_rows}</table>{''.join(sections)}"
        "</body></html>\n"
    )
