"""Seeded simulations behind the claims of docs/experiments-statistics.md, with fewer
experiments than `bench.experiments_statistics` (which publishes the table).

Every simulated experiment is looked at every hour for a week (168 looks).
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.experiments_statistics import (
    LOOKS,
    MIN_N,
    Draw,
    discordant,
    normal,
    power_at_plan,
    simulate_ab_binary,
    simulate_paired,
    skewed,
    srm_rates,
)
from pipelines.experiments.sequential import (
    SampleStats,
    SequentialResult,
    paired_test,
    two_sample_test,
)

pytestmark = pytest.mark.slow

EXPERIMENTS = 2_000


def test_the_vectorised_simulation_decides_like_paired_test() -> None:
    """The simulation's arithmetic is `paired_test` with `previous`, look for look."""
    experiments, per_look, effect, seed = 25, 10, 0.12, 41
    fast = simulate_paired(
        normal, experiments=experiments, per_look=per_look, effect=effect, seed=seed
    )
    rng = np.random.Generator(np.random.PCG64(seed))
    values = normal(rng, (experiments, LOOKS, per_look), effect)
    first_looks = []
    for e in range(experiments):
        stats, previous = SampleStats(0, 0.0, 0.0), None
        first: int = LOOKS
        covered = True
        for look in range(LOOKS):
            stats = stats.merge(SampleStats.from_values(values[e, look]))
            result: SequentialResult = paired_test(stats, previous=previous, min_n=MIN_N)
            previous = result
            covered &= result.ci_low <= effect <= result.ci_high
            if result.decision != "inconclusive" and first == LOOKS:
                first = look
        first_looks.append(first)
        assert covered == bool(fast.covered[e])
    assert first_looks == fast.first_look.tolist()
    assert 0 < int(fast.called.sum()) < experiments  # both outcomes exercised


def test_the_vectorised_ab_simulation_decides_like_two_sample_test() -> None:
    experiments, per_look, rate, lift, seed = 15, 10, 0.3, 0.04, 42
    fast = simulate_ab_binary(
        experiments=experiments, per_look=per_look, rate=rate, lift=lift, seed=seed
    )
    rng = np.random.Generator(np.random.PCG64(seed))
    control = np.cumsum(rng.binomial(per_look, rate, size=(experiments, LOOKS)), axis=1)
    treatment = np.cumsum(rng.binomial(per_look, rate + lift, size=(experiments, LOOKS)), axis=1)
    first_looks = []
    for e in range(experiments):
        previous, first = None, LOOKS
        for look in range(LOOKS):
            n = per_look * (look + 1)
            c = np.repeat([1.0, 0.0], [control[e, look], n - control[e, look]])
            t = np.repeat([1.0, 0.0], [treatment[e, look], n - treatment[e, look]])
            previous = two_sample_test(c, t, binary=True, previous=previous, min_n=MIN_N)
            if previous.decision != "inconclusive" and first == LOOKS:
                first = look
        first_looks.append(first)
    assert first_looks == fast.first_look.tolist()
    assert 0 < int(fast.called.sum()) < experiments


@pytest.mark.parametrize(
    ("name", "draw", "binary"),
    [("normal", normal, False), ("skewed", skewed, False), ("binary", discordant, True)],
)
def test_false_positive_rate_under_hourly_looks_for_a_week(
    name: str, draw: Draw, binary: bool
) -> None:
    """No true difference: at most 5% of experiments ever call one; naive peeking inflates."""
    result = simulate_paired(
        draw,
        experiments=EXPERIMENTS,
        per_look=20,
        effect=0.0,
        seed=7,
        binary=binary,
    )
    assert float(np.mean(result.called)) <= 0.05, name
    assert float(np.mean(result.naive_called)) > 0.2, name  # the reference: z-test every hour


def test_false_positive_rate_of_an_ab_split_on_a_binary_outcome() -> None:
    result = simulate_ab_binary(experiments=EXPERIMENTS, per_look=50, rate=0.1, lift=0.0, seed=8)
    assert float(np.mean(result.called)) <= 0.05


def test_confidence_sequence_covers_the_true_effect_at_every_look() -> None:
    for index, (draw, effect, binary) in enumerate(
        [(normal, 0.1, False), (skewed, 0.1, False), (discordant, 0.02, True)]
    ):
        result = simulate_paired(
            draw,
            experiments=EXPERIMENTS,
            per_look=20,
            effect=effect,
            seed=20 + index,
            binary=binary,
        )
        assert float(np.mean(result.covered)) >= 0.95


def test_power_at_the_planned_sample_size() -> None:
    """True effect 0.2 sd: the plan's sequential n reaches 80% power with hourly looks, and
    stops on average before the planned n."""
    power = power_at_plan(mde=0.2, experiments=EXPERIMENTS, seed=30)
    assert power.sequential_n >= power.fixed_n
    assert power.power >= 0.8
    assert power.mean_stop_n < power.sequential_n


def test_srm_detects_a_52_48_split_at_20000_and_not_a_fair_one() -> None:
    assert srm_rates(simulations=200, n=20_000, share=0.52, seed=50) >= 0.95
    assert srm_rates(simulations=200, n=20_000, share=0.5, seed=51) <= 0.01
