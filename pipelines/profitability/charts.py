"""Vega-Lite specifications of the profitability charts, built from the read models.

Amounts are drawn in currency units (micro-units ÷ 1,000,000); the tables beside the charts
show the exact figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipelines.profitability.read_models import PeriodProfitability

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
MICROS = 1_000_000


def margin_ranking(periods: Sequence[PeriodProfitability], *, title: str) -> dict[str, Any]:
    """Each tenant's margin in one month, highest first, negative margins in red."""
    rows = [
        {
            "tenant": p.tenant,
            "margin": p.margin_micros / MICROS,
            "revenue": p.revenue_micros / MICROS,
            "currency": p.currency,
        }
        for p in periods
    ]
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": "container",
        "height": {"step": 20},
        "data": {"values": rows},
        "mark": {"type": "bar"},
        "encoding": {
            "y": {"field": "tenant", "type": "nominal", "sort": None, "title": None},
            "x": {"field": "margin", "type": "quantitative", "title": "margin"},
            "color": {
                "condition": {"test": "datum.margin < 0", "value": "#b3261e"},
                "value": "#1f4e99",
            },
            "tooltip": [
                {"field": "tenant", "type": "nominal"},
                {"field": "revenue", "type": "quantitative", "format": ",.2f"},
                {"field": "margin", "type": "quantitative", "format": ",.2f"},
                {"field": "currency", "type": "nominal"},
            ],
        },
    }


def tenant_trend(periods: Sequence[PeriodProfitability], *, title: str) -> dict[str, Any]:
    """A tenant's revenue, cost (AI and infrastructure) and margin per period."""
    rows = []
    for p in periods:
        for series, micros in (
            ("revenue", p.revenue_micros),
            ("cost", p.ai_cost_micros + p.infra_cost_micros),
            ("margin", p.margin_micros),
        ):
            rows.append(
                {"period": p.period_start.isoformat(), "series": series, "amount": micros / MICROS}
            )
    return {
        "$schema": SCHEMA,
        "title": title,
        "width": "container",
        "height": 240,
        "data": {"values": rows},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {
                "field": "period",
                "type": "temporal",
                "title": "period",
                "axis": {"format": "%Y-%m"},
            },
            "y": {"field": "amount", "type": "quantitative", "title": "amount"},
            "color": {
                "field": "series",
                "type": "nominal",
                "scale": {
                    "domain": ["revenue", "cost", "margin"],
                    "range": ["#1f4e99", "#8a5a00", "#1e6b34"],
                },
                "legend": {"orient": "bottom", "title": None},
            },
            "tooltip": [
                {"field": "period", "type": "temporal", "format": "%Y-%m"},
                {"field": "series", "type": "nominal"},
                {"field": "amount", "type": "quantitative", "format": ",.2f"},
            ],
        },
    }
