"""Vega-Lite specifications of the evaluation charts, built from the read models.

Specs are plain dictionaries; the dashboards embed them as JSON and vega-embed draws them.
Every estimate is drawn with its interval: a rule from `ci_low` to `ci_high` behind the point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.evaluation.quality import default_scale
from pipelines.evaluation.read_models import (
    AliasMove,
    Metric,
    MetricDifference,
    QualityScorePoint,
)

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
"""Names the spec's version; vega-embed reads it and never fetches it."""
WIDTH = "container"
SIGNIFICANT = "significant (decision rule)"
"""Marked by the comparison's decision: the primary test, Holm for the other rows."""
NOT_SIGNIFICANT = "not significant"


def _label(name: str, label: str | None) -> str:
    return f"{name} [{label}]" if label else name


def metric_intervals(metrics: Sequence[Metric], *, title: str) -> dict[str, Any]:
    """Each metric's value with its interval, on one 0–1 axis (0–100 metrics divided by 100)."""
    rows = []
    for metric in metrics:
        if metric.value is None:
            continue
        scale = default_scale(metric.name)
        rows.append(
            {
                "metric": _label(metric.name, metric.label),
                "value": metric.value / scale,
                "low": (metric.ci_low if metric.ci_low is not None else metric.value) / scale,
                "high": (metric.ci_high if metric.ci_high is not None else metric.value) / scale,
                "shown": _shown(metric.value, metric.ci_low, metric.ci_high, scale),
                "n": metric.n,
            }
        )
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": WIDTH,
        "height": {"step": 22},
        "data": {"values": rows},
        "encoding": {
            "y": {"field": "metric", "type": "nominal", "sort": None, "title": None},
            "tooltip": [
                {"field": "metric", "type": "nominal"},
                {"field": "shown", "type": "nominal", "title": "value [95% CI]"},
                {"field": "n", "type": "quantitative"},
            ],
        },
        "layer": [
            {
                "mark": {"type": "rule", "strokeWidth": 2, "color": "#8a94a6"},
                "encoding": {
                    "x": {
                        "field": "low",
                        "type": "quantitative",
                        "scale": {"zero": False, "nice": True},
                        "title": "value (BLEU and chrF ÷ 100)",
                    },
                    "x2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 60, "color": "#1f4e99"},
                "encoding": {"x": {"field": "value", "type": "quantitative"}},
            },
        ],
    }


def difference_intervals(differences: Sequence[MetricDifference], *, title: str) -> dict[str, Any]:
    """Each metric's paired difference B − A with its interval, around a rule at zero."""
    rows = []
    for row in differences:
        if row.difference is None:
            continue
        scale = default_scale(row.name)
        significant = bool(row.significant)
        rows.append(
            {
                "metric": _label(row.name, row.label),
                "difference": row.difference / scale,
                "low": (row.ci_low if row.ci_low is not None else row.difference) / scale,
                "high": (row.ci_high if row.ci_high is not None else row.difference) / scale,
                "shown": _shown(row.difference, row.ci_low, row.ci_high, scale),
                "p": row.p_value,
                "significance": SIGNIFICANT if significant else NOT_SIGNIFICANT,
            }
        )
    colour = {
        "field": "significance",
        "type": "nominal",
        "scale": {"domain": [SIGNIFICANT, NOT_SIGNIFICANT], "range": ["#b3261e", "#8a94a6"]},
        "legend": {"orient": "bottom", "title": None},
    }
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": WIDTH,
        "height": {"step": 22},
        "data": {"values": rows},
        "layer": [
            {
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#444"},
                "data": {"values": [{"zero": 0}]},
                "encoding": {"x": {"field": "zero", "type": "quantitative"}},
            },
            {
                "mark": {"type": "rule", "strokeWidth": 2},
                "encoding": {
                    "y": {"field": "metric", "type": "nominal", "sort": None, "title": None},
                    "x": {
                        "field": "low",
                        "type": "quantitative",
                        "title": "B − A (BLEU and chrF ÷ 100)",
                    },
                    "x2": {"field": "high"},
                    "color": colour,
                },
            },
            {
                "mark": {"type": "point", "filled": True, "size": 60},
                "encoding": {
                    "y": {"field": "metric", "type": "nominal", "sort": None},
                    "x": {"field": "difference", "type": "quantitative"},
                    "color": colour,
                    "tooltip": [
                        {"field": "metric", "type": "nominal"},
                        {"field": "shown", "type": "nominal", "title": "B − A [95% CI]"},
                        {"field": "p", "type": "quantitative", "format": ".3g"},
                    ],
                },
            },
        ],
    }


def quality_trend(
    points: Sequence[QualityScorePoint],
    alias_moves: Sequence[AliasMove],
    *,
    title: str,
) -> dict[str, Any]:
    """The quality score of each completed run over time, an interval band, and alias moves."""
    rows = [
        {
            "finished_at": point.finished_at.isoformat(),
            "value": point.value,
            "low": point.ci_low if point.ci_low is not None else point.value,
            "high": point.ci_high if point.ci_high is not None else point.value,
            "subject": point.subject,
            "run": str(point.run_id),
            "n": point.n,
        }
        for point in points
        if point.value is not None
    ]
    markers = [{"at": move.at.isoformat(), "what": move.label} for move in alias_moves]
    time = {
        "field": "finished_at",
        "type": "temporal",
        "title": "finished (UTC)",
        "axis": {"format": "%b %d %H:%M", "labelOverlap": True},
    }
    layers: list[dict[str, Any]] = [
        {
            "mark": {"type": "area", "opacity": 0.2, "color": "#1f4e99"},
            "encoding": {
                "x": time,
                "y": {"field": "low", "type": "quantitative", "title": "quality score"},
                "y2": {"field": "high"},
            },
        },
        {
            "mark": {"type": "line", "point": True, "color": "#1f4e99"},
            "encoding": {
                "x": time,
                "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}},
                "tooltip": [
                    {"field": "subject", "type": "nominal"},
                    {"field": "value", "type": "quantitative", "format": ".4f"},
                    {"field": "low", "type": "quantitative", "format": ".4f", "title": "CI low"},
                    {"field": "high", "type": "quantitative", "format": ".4f", "title": "CI high"},
                    {"field": "n", "type": "quantitative"},
                ],
            },
        },
    ]
    if markers:
        layers += [
            {
                "data": {"values": markers},
                "mark": {"type": "rule", "strokeDash": [2, 3], "color": "#b3261e"},
                "encoding": {
                    "x": {"field": "at", "type": "temporal"},
                    "tooltip": [{"field": "what", "type": "nominal", "title": "alias moved"}],
                },
            },
        ]
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": WIDTH,
        "height": 260,
        "data": {"values": rows},
        "layer": layers,
    }


def _shown(value: float, low: float | None, high: float | None, scale: float) -> str:
    digits = 2 if scale > 1 else 4
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def sequential_trend(
    looks: Sequence[Mapping[str, Any]], *, metric: str, title: str
) -> dict[str, Any]:
    """An experiment's always-valid interval of one metric (challenger − champion) at each look,
    with its estimate and a rule at zero: the interval leaving zero is the decision.

    `looks` are `{"at": datetime, "n": int, "estimate", "ci_low", "ci_high", "p_value"}` as a
    promotion decision's evidence records them (`evidence.live.sequential[metric]`)."""
    rows = [
        {
            "at": look["at"].isoformat(),
            "n": look["n"],
            "estimate": look["estimate"],
            "low": look["ci_low"],
            "high": look["ci_high"],
            "p": look.get("p_value"),
        }
        for look in looks
        if all(isinstance(look.get(k), int | float) for k in ("estimate", "ci_low", "ci_high"))
        and all(math.isfinite(float(look[k])) for k in ("estimate", "ci_low", "ci_high"))
    ]
    time = {
        "field": "at",
        "type": "temporal",
        "title": "look (UTC)",
        "axis": {"format": "%b %d %H:%M", "labelOverlap": True},
    }
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": WIDTH,
        "height": 260,
        "data": {"values": rows},
        "layer": [
            {
                "mark": {"type": "area", "opacity": 0.2, "color": "#1f4e99"},
                "encoding": {
                    "x": time,
                    "y": {
                        "field": "low",
                        "type": "quantitative",
                        "title": f"{metric}: challenger − champion",
                    },
                    "y2": {"field": "high"},
                },
            },
            {
                "mark": {"type": "line", "point": True, "color": "#1f4e99"},
                "encoding": {
                    "x": time,
                    "y": {"field": "estimate", "type": "quantitative"},
                    "tooltip": [
                        {"field": "at", "type": "temporal", "format": "%Y-%m-%d %H:%M"},
                        {"field": "n", "type": "quantitative"},
                        {"field": "estimate", "type": "quantitative", "format": ".4f"},
                        {
                            "field": "low",
                            "type": "quantitative",
                            "format": ".4f",
                            "title": "CI low",
                        },
                        {
                            "field": "high",
                            "type": "quantitative",
                            "format": ".4f",
                            "title": "CI high",
                        },
                        {
                            "field": "p",
                            "type": "quantitative",
                            "format": ".3g",
                            "title": "p (always valid)",
                        },
                    ],
                },
            },
            {
                "data": {"values": [{"zero": 0}]},
                "mark": {"type": "rule", "strokeDash": [4, 4], "color": "#444"},
                "encoding": {"y": {"field": "zero", "type": "quantitative"}},
            },
        ],
    }
