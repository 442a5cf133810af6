"""Critical slices of the golden set: gate fields, Holm-adjusted non-inferiority evidence."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest

from pipelines.errors import InvalidInput
from pipelines.experiments.gate import GateEvidence, MetricEvidence, decide
from pipelines.experiments.sequential import holm_across_slices
from pipelines.promotion.evidence import critical_slice_evidence
from pipelines.promotion.gates import gate_config, normalise_gate, slice_metric

GOLDEN = "intents@3"


def _gate(**fields: object) -> dict[str, object]:
    return normalise_gate(
        {
            "golden_dataset": GOLDEN,
            "guardrails": [],
            "min_n": 1,
            "min_duration_seconds": 0,
            **fields,
        }
    )


def test_critical_slices_default_to_none_and_become_guardrails() -> None:
    assert normalise_gate({})["critical_slices"] == []
    assert normalise_gate({})["slice_margin"] is None
    document = _gate(critical_slices=["refunds", " billing", "refunds"], slice_margin=0.02)
    assert document["critical_slices"] == ["billing", "refunds"]
    guardrails = gate_config(document).guardrails
    assert [(g.metric, g.margin, g.higher_is_better) for g in guardrails] == [
        ("quality on slice billing", 0.02, True),
        ("quality on slice refunds", 0.02, True),
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"critical_slices": ["billing"]}, "slice_margin"),
        ({"critical_slices": "billing", "slice_margin": 0.1}, "critical_slices"),
        ({"critical_slices": [""], "slice_margin": 0.1}, "critical_slices"),
        ({"critical_slices": ["billing"], "slice_margin": -1}, "slice_margin"),
        ({"critical_slices": ["billing"], "slice_margin": 0.1, "golden_dataset": None}, None),
    ],
)
def test_critical_slices_are_checked(fields: dict[str, object], field: str | None) -> None:
    with pytest.raises(InvalidInput) as raised:
        _gate(**fields)
    assert raised.value.field == (field or "critical_slices")


def _differences() -> tuple[np.ndarray, list[str]]:
    """Per-example accuracy differences (challenger minus champion): billing a little better,
    refunds clearly worse, shipping about the same."""
    billing = [1.0] * 12 + [0.0] * 86 + [-1.0] * 2
    refunds = [1.0] * 2 + [0.0] * 68 + [-1.0] * 30
    shipping = [1.0] * 5 + [0.0] * 90 + [-1.0] * 5
    values = np.asarray(billing + refunds + shipping)
    return values, ["billing"] * 100 + ["refunds"] * 100 + ["shipping"] * 100


def _evidence(critical: list[str], margin: float) -> list[MetricEvidence]:
    differences, slices = _differences()
    rows, _ = critical_slice_evidence(
        differences,
        slices,
        critical,
        metric="quality",
        margin=margin,
        higher_is_better=True,
        alpha=0.05,
        seed=7,
        resamples=2000,
    )
    return rows


def _decision(critical: list[str], margin: float) -> tuple[str, list[bool | None]]:
    document = _gate(critical_slices=critical, slice_margin=margin)
    primary = [
        MetricEvidence("quality", source, 0.05, 0.01, 0.09, 0.01, 500, "test")
        for source in ("live", "golden")
    ]
    evidence = GateEvidence((*primary, *_evidence(critical, margin)), 500, timedelta(1), None)
    decision = decide(gate_config(document), evidence)
    slice_checks = [c.passed for c in decision.checks if "on slice" in c.name]
    return decision.outcome, slice_checks


def test_the_gate_passes_holds_or_breaches_on_critical_slices() -> None:
    assert _decision(["billing", "shipping"], 0.1) == ("promote", [True, True])
    outcome, checks = _decision(["billing", "shipping"], 0.02)
    assert (outcome, checks[0]) == ("wait", True)
    assert checks[1] is None  # shipping's interval still reaches past a 2-point drop
    assert _decision(["billing", "refunds"], 0.05) == ("reject", [True, False])


def test_slice_intervals_are_bootstrap_bounds_at_holm_levels() -> None:
    differences, slices = _differences()
    rows, document = critical_slice_evidence(
        differences,
        slices,
        ["billing", "refunds", "shipping"],
        metric="quality",
        margin=0.02,
        higher_is_better=True,
        alpha=0.05,
        seed=7,
        resamples=2000,
    )
    assert [row.metric for row in rows] == [
        slice_metric("quality", name) for name in ("billing", "refunds", "shipping")
    ]
    assert [row.n for row in rows] == [100, 100, 100]
    assert math.isclose(rows[1].estimate, -0.28)
    raw = {name: document[name]["p_holds"] for name in ("billing", "refunds", "shipping")}
    assert [row.p_value for row in rows] == list(holm_across_slices(raw).values())
    for row in rows:
        # The interval clears the margin exactly when Holm's adjusted p-value is small enough.
        assert (row.ci_low > -0.02) == (row.p_value is not None and row.p_value <= 0.025)
    # The same bootstrap at a wider family gives a wider lower bound for billing.
    alone = _evidence(["billing"], 0.02)[0]
    assert alone.ci_low >= rows[0].ci_low


def test_a_slice_with_too_few_examples_has_no_interval() -> None:
    rows, _ = critical_slice_evidence(
        np.asarray([1.0, 0.0, 0.0]),
        ["billing", "billing", "rare"],
        ["rare"],
        metric="quality",
        margin=0.1,
        higher_is_better=True,
        alpha=0.05,
        seed=1,
        resamples=100,
    )
    assert (rows[0].ci_low, rows[0].ci_high, rows[0].n) == (-math.inf, math.inf, 1)
