"""Coverage of every metric family's interval where the product shows it without a flag, and the
verdict's false-positive rates under the null: the claims of docs/statistics.md, re-checked.

Few simulated datasets keep this quick, so each bound is widened by two binomial standard errors
of the simulated rate (the published table, from `bench.statistics_coverage`, uses 600).
"""

from __future__ import annotations

import math

import pytest

from bench.statistics_coverage import SCENARIOS, Scenario, coverage, null_rates, wilson_coverage
from pipelines.evaluation import intervals

pytestmark = pytest.mark.slow

DATASETS = 300
RESAMPLES = 200


def tolerance(rate: float, datasets: int) -> float:
    """Two binomial standard errors of a simulated rate near `rate`."""
    return 2.0 * math.sqrt(rate * (1.0 - rate) / datasets)


@pytest.mark.parametrize("p", [0.5, 0.8, 0.95])
@pytest.mark.parametrize("n", [intervals.DEFAULT_MIN_N, 100])
def test_wilson_covers_proportions_from_min_n(p: float, n: int) -> None:
    """Exact binomial coverage of the Wilson interval: within [93%, 97%], no simulation error."""
    assert 0.93 <= wilson_coverage(p, n) <= 0.97


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_interval_covers_about_95_percent_where_it_is_shown_without_a_flag(
    scenario: Scenario,
) -> None:
    """Bootstrap-t coverage at the first unflagged n is within [93%, 97%] (± 2 SE)."""
    n = scenario.unflagged_n()
    assert scenario.flags(n) == []
    result = coverage(scenario, n, datasets=DATASETS, n_resamples=RESAMPLES, seed=77)
    slack = tolerance(0.95, DATASETS)
    assert 0.93 - slack <= result.product <= 0.97 + slack, (scenario.name, n, result)
    assert result.no_interval == 0.0


def test_verdict_false_positives_under_the_null() -> None:
    """Two exchangeable systems: the primary verdict calls a difference at most 5% (+ 2 SE) of
    the time, any of 24 secondaries after Holm at most 5% (+ 2 SE); the interval and the test
    never disagree."""
    datasets = 300
    rates = null_rates(50, datasets=datasets, seed=11)
    assert rates.family_size == 24
    assert rates.primary <= 0.05 + tolerance(0.05, datasets)
    assert rates.family_wise <= 0.05 + tolerance(0.05, datasets)
    assert rates.interval_disagreements == 0
