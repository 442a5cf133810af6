"""The decision rule of a comparison: one primary test, a Holm family, effect sizes and power.

Pure core. See `docs/statistics.md` for the rule and the simulations behind it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from pipelines.evaluation import intervals
from pipelines.evaluation.read_models import (
    EvaluationPlan,
    MetricDifference,
    Outcome,
    PairedEffect,
    SecondaryFamily,
    Verdict,
)
from pipelines.evaluation.statistics import holm

DEFAULT_POWER = 0.8
# Plans beyond this many examples are answered with an error, not a number.
_MAX_N = 1e12
# Per-example differences within this share of the largest one count as ties.
_TIE = 1e-9


def significant_after_holm(p_values: Sequence[float | None], alpha: float) -> list[bool]:
    """Which hypotheses of one family Holm rejects at `alpha` (undefined p: not rejected)."""
    values = [math.nan if p is None else float(p) for p in p_values]
    adjusted = holm(values)
    return [not math.isnan(p) and p <= alpha for p in adjusted]


def _z(alpha: float, power: float) -> float:
    return float(scipy_stats.norm.ppf(1.0 - alpha / 2.0) + scipy_stats.norm.ppf(power))


def minimum_detectable_effect(
    paired_sd: float, n: int, *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> float:
    """Smallest |mean paired difference| a two-sided test at `alpha` detects with `power`.

    Normal approximation: (z_(1-alpha/2) + z_power) * sd / sqrt(n).
    """
    _check(alpha, power)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not math.isfinite(paired_sd) or paired_sd < 0:
        raise ValueError(f"the paired standard deviation must be >= 0, got {paired_sd}")
    mde = _z(alpha, power) * paired_sd / math.sqrt(n)
    if not math.isfinite(mde):
        raise ValueError(f"the paired standard deviation {paired_sd:g} is too large")
    return mde


def required_n(
    paired_sd: float, effect: float, *, alpha: float = 0.05, power: float = DEFAULT_POWER
) -> int:
    """Paired examples needed to detect a mean difference `effect` with `power` at `alpha`."""
    _check(alpha, power)
    if not math.isfinite(effect) or effect == 0:
        raise ValueError(f"the target effect must be a non-zero number, got {effect}")
    if not math.isfinite(paired_sd) or paired_sd < 0:
        raise ValueError(f"the paired standard deviation must be >= 0, got {paired_sd}")
    needed = (_z(alpha, power) * paired_sd / abs(effect)) ** 2
    if not math.isfinite(needed) or needed > _MAX_N:
        raise ValueError(
            f"detecting {effect:g} with a paired SD of {paired_sd:g} needs more than {_MAX_N:.0e}"
            " examples; aim for a larger effect"
        )
    return max(2, math.ceil(needed))


def _check(alpha: float, power: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power}")


def paired_effect(
    differences: npt.NDArray[np.float64],
    *,
    difference: float | None,
    a: float | None,
    b: float | None,
    proportion: bool,
) -> PairedEffect:
    """Win / tie / loss counts, paired SD, d_z and (for proportions) Cohen's h.

    `differences` are the per-example (linearised) differences b − a of the primary metric.
    """
    values = np.asarray(differences, dtype=np.float64)
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    tolerance = _TIE * max(1.0, scale)
    wins = int(np.count_nonzero(values > tolerance))
    losses = int(np.count_nonzero(values < -tolerance))
    sd = float(np.std(values, ddof=1)) if values.size > 1 else math.nan
    d_z = difference / sd if difference is not None and math.isfinite(sd) and sd > 0 else None
    h = None
    if proportion and a is not None and b is not None and 0 <= a <= 1 and 0 <= b <= 1:
        h = 2.0 * math.asin(math.sqrt(b)) - 2.0 * math.asin(math.sqrt(a))
    return PairedEffect(
        wins=wins,
        ties=values.size - wins - losses,
        losses=losses,
        paired_sd=sd if math.isfinite(sd) else None,
        d_z=d_z,
        cohen_h=h,
    )


def _row_name(row: MetricDifference) -> str:
    metric = row.name if row.label is None else f"{row.name}[{row.label}]"
    return f"{row.slice or 'overall'}/{metric}"


def decide(
    overall: Sequence[MetricDifference],
    slices: Sequence[MetricDifference],
    *,
    primary: str,
    differences: npt.NDArray[np.float64],
    n: int,
    alpha: float,
    min_n: int,
    swaps: int,
    power: float = DEFAULT_POWER,
) -> tuple[list[MetricDifference], list[MetricDifference], Verdict]:
    """Apply the decision rule: the primary metric alone at alpha, the rest Holm together.

    Returns the overall and slice rows with `primary`, `significant`, `p_value_holm` and
    `flags` filled in, and the verdict.
    """
    head, label = intervals.base_name(primary)
    index = next(
        (i for i, row in enumerate(overall) if (row.name, row.label) == (head, label)), None
    )
    if index is None:
        raise ValueError(f"primary metric {primary!r} is not among the compared metrics")
    family = [(0, i) for i in range(len(overall)) if i != index] + [
        (1, i) for i in range(len(slices))
    ]
    groups = (list(overall), list(slices))
    tested = [(g, i) for g, i in family if groups[g][i].p_value is not None]
    adjusted = holm([float(groups[g][i].p_value or 0.0) for g, i in tested])
    better: list[str] = []
    worse: list[str] = []
    for (g, i), p in zip(tested, adjusted, strict=True):
        row = groups[g][i]
        called = p <= alpha
        if called and row.difference is not None:
            (better if row.difference > 0 else worse).append(_row_name(row))
        groups[g][i] = row.model_copy(update={"p_value_holm": p, "significant": called})
    for rows in groups:
        for i, row in enumerate(rows):
            if row.n < min_n:
                rows[i] = row.model_copy(update={"flags": [intervals.SMALL_N]})
    main = groups[0][index]
    called = main.p_value is not None and main.p_value <= alpha
    groups[0][index] = main = main.model_copy(
        update={
            "primary": True,
            "p_value_holm": None,
            "significant": None if main.p_value is None else called,
        }
    )
    effect = paired_effect(
        differences,
        difference=main.difference,
        a=main.a,
        b=main.b,
        proportion=intervals.family(primary) == "proportion",
    )
    mde = (
        minimum_detectable_effect(effect.paired_sd, n, alpha=alpha, power=power)
        if effect.paired_sd is not None
        else None
    )
    outcome: Outcome
    if main.p_value is None or main.difference is None:
        outcome = "untestable"
    elif called:
        outcome = "better" if main.difference > 0 else "worse"
    else:
        outcome = "no_detectable_difference"
    verdict = Verdict(
        outcome=outcome,
        statement=statement(outcome, primary, main, n=n, alpha=alpha, mde=mde, power=power),
        primary_metric=primary,
        test=(
            f"paired approximate-randomisation (swap) test, two-sided, {swaps} swaps; the"
            " interval is the difference ± the test's critical value, so it excludes 0"
            " exactly when p <= alpha"
        ),
        alpha=alpha,
        a=main.a,
        b=main.b,
        difference=main.difference,
        ci_low=main.ci_low,
        ci_high=main.ci_high,
        p_value=main.p_value,
        n=n,
        min_n=min_n,
        minimum_detectable_effect=mde,
        power=power,
        effect=effect,
        secondary=SecondaryFamily(size=len(tested), alpha=alpha, better=better, worse=worse),
        flags=[intervals.SMALL_N] if n < min_n else [],
    )
    return groups[0], groups[1], verdict


def statement(
    outcome: Outcome,
    primary: str,
    row: MetricDifference,
    *,
    n: int,
    alpha: float,
    mde: float | None,
    power: float,
) -> str:
    """The verdict line, the same in the CLI, the API and the dashboards."""
    if outcome == "untestable":
        return f"no verdict: {primary} has no defined difference on these {n} examples"
    shown = (
        f"{primary} {row.difference:+.4f} [{row.ci_low:+.4f}, {row.ci_high:+.4f}],"
        f" p {_p(row.p_value)}"
    )
    if outcome == "better":
        return f"challenger better: {shown} (paired swap test, n = {n}, alpha = {alpha:g})"
    if outcome == "worse":
        return f"challenger worse: {shown} (paired swap test, n = {n}, alpha = {alpha:g})"
    detectable = (
        f"minimum detectable effect ±{mde:.4f} at {power:.0%} power"
        if mde is not None
        else "minimum detectable effect unknown"
    )
    return f"no detectable difference at this n (n = {n}; {detectable}): {shown}"


def _p(value: float | None) -> str:
    if value is None:
        return "= –"
    return "< 0.001" if value < 0.001 else f"= {value:.3f}"


def plan(
    paired_sd: float,
    *,
    source: str,
    effect: float | None = None,
    n: int | None = None,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
) -> EvaluationPlan:
    """The n needed for `effect` and / or the minimum detectable effect at `n`."""
    if effect is None and n is None:
        raise ValueError("give a target effect, a number of examples, or both")
    return EvaluationPlan(
        paired_sd=paired_sd,
        source=source,
        alpha=alpha,
        power=power,
        effect=effect,
        n_required=None
        if effect is None
        else required_n(paired_sd, effect, alpha=alpha, power=power),
        n=n,
        minimum_detectable_effect=None
        if n is None
        else minimum_detectable_effect(paired_sd, n, alpha=alpha, power=power),
    )
