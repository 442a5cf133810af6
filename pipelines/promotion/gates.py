"""A promotion gate's stored, pre-registered configuration: JSON in, `GateConfig` out (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pipelines.errors import InvalidInput
from pipelines.experiments.gate import GateConfig, Guardrail

METRICS = ("quality", "latency_p95_ms", "error_rate", "cost_per_request", "agreement")
"""What the comparison measures (challenger minus champion), by name."""
LOWER_IS_BETTER = {"latency_p95_ms", "error_rate", "cost_per_request"}

DEFAULT_GATE: dict[str, Any] = {
    "primary_metric": "quality",
    "higher_is_better": True,
    "guardrails": [
        {"metric": "latency_p95_ms", "margin": 50.0, "higher_is_better": False},
        {"metric": "error_rate", "margin": 0.01, "higher_is_better": False},
    ],
    "min_n": 1000,
    "min_duration_seconds": 86_400,
    "alpha": 0.05,
    "golden_dataset": None,
    "sample_seed": 0,
    "critical_slices": [],
    "slice_margin": None,
}
"""The gate of an agent type nobody configured: quality up, latency and errors held."""


def slice_metric(primary_metric: str, slice_name: str) -> str:
    """The guardrail name of the primary metric on one critical slice of the golden set."""
    return f"{primary_metric} on slice {slice_name}"


def _critical_slices(merged: Mapping[str, Any]) -> tuple[list[str], float | None]:
    raw = merged["critical_slices"] or []
    if not isinstance(raw, list | tuple) or not all(
        isinstance(name, str) and 0 < len(name.strip()) <= 200 for name in raw
    ):
        raise InvalidInput(
            "critical_slices: give a list of slice names of the golden dataset",
            field="critical_slices",
        )
    names = sorted({name.strip() for name in raw})
    if not names:
        return [], None
    if merged["golden_dataset"] is None:
        raise InvalidInput(
            "critical_slices: slices are checked on the golden set; "
            "pin a golden dataset version too",
            field="critical_slices",
        )
    if merged.get("slice_margin") is None:
        raise InvalidInput(
            "slice_margin: give how much the primary metric may drop on a critical slice "
            "(in its units, e.g. 0.02 of accuracy)",
            field="slice_margin",
        )
    return names, _number(merged, "slice_margin", low=0.0, high=1e9)


def _number(document: Mapping[str, Any], name: str, *, low: float, high: float) -> float:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name}: give a number", field=name)
    if not low <= float(value) <= high:
        raise InvalidInput(f"{name}: {value} must be between {low:g} and {high:g}", field=name)
    return float(value)


def _metric(value: Any, field: str) -> str:
    if value not in METRICS:
        raise InvalidInput(f"{field}: {value!r} is not one of {', '.join(METRICS)}", field=field)
    return str(value)


def normalise_gate(document: Mapping[str, Any]) -> dict[str, Any]:
    """A complete, checked gate document: given fields over the defaults."""
    merged = {**DEFAULT_GATE, **dict(document)}
    unknown = sorted(set(merged) - set(DEFAULT_GATE))
    if unknown:
        raise InvalidInput(
            f"{unknown[0]}: not a gate field; the fields are {', '.join(DEFAULT_GATE)}",
            field=unknown[0],
        )
    primary = _metric(merged["primary_metric"], "primary_metric")
    guardrails = []
    for position, raw in enumerate(merged["guardrails"] or []):
        if not isinstance(raw, Mapping):
            raise InvalidInput(
                "guardrails: give objects with metric and margin", field="guardrails"
            )
        metric = _metric(raw.get("metric"), f"guardrails/{position}/metric")
        margin = _number(raw, "margin", low=0.0, high=1e9)
        better = raw.get("higher_is_better", metric not in LOWER_IS_BETTER)
        guardrails.append({"metric": metric, "margin": margin, "higher_is_better": bool(better)})
    golden = merged["golden_dataset"]
    if golden is not None and (not isinstance(golden, str) or "@" not in golden):
        raise InvalidInput(
            "golden_dataset: pin a version as NAME@VERSION (or leave it out)",
            field="golden_dataset",
        )
    critical, slice_margin = _critical_slices(merged)
    return {
        "primary_metric": primary,
        "higher_is_better": bool(merged["higher_is_better"]),
        "guardrails": guardrails,
        "min_n": int(_number(merged, "min_n", low=1, high=1e9)),
        "min_duration_seconds": int(_number(merged, "min_duration_seconds", low=0, high=1e9)),
        "alpha": _number(merged, "alpha", low=1e-6, high=0.5),
        "golden_dataset": golden,
        "sample_seed": int(_number(merged, "sample_seed", low=0, high=2**31)),
        "critical_slices": critical,
        "slice_margin": slice_margin,
    }


def gate_config(document: Mapping[str, Any]) -> GateConfig:
    """The statistics' `GateConfig` of a stored gate document: each critical slice is one more
    guardrail, the primary metric on that slice within `slice_margin`."""
    checked = normalise_gate(document)
    return GateConfig(
        primary_metric=checked["primary_metric"],
        higher_is_better=checked["higher_is_better"],
        guardrails=(
            *(
                Guardrail(g["metric"], g["margin"], g["higher_is_better"])
                for g in checked["guardrails"]
            ),
            *(
                Guardrail(
                    slice_metric(checked["primary_metric"], name),
                    checked["slice_margin"],
                    checked["higher_is_better"],
                )
                for name in checked["critical_slices"]
            ),
        ),
        min_n=checked["min_n"],
        min_duration=timedelta(seconds=checked["min_duration_seconds"]),
        alpha=checked["alpha"],
    )
