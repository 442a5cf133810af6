"""Error rates of the experiments' always-valid tests when the flow looks every hour for a week.

    uv run python -m bench.experiments_statistics            # writes docs/experiments-statistics.md
    uv run python -m bench.experiments_statistics --quick    # fewer experiments, prints only

Seeded simulations of whole experiments: each one receives `per_look` requests an hour for a
week and is looked at after every hour (168 looks), exactly as the comparison flow would. For
each experiment the always-valid test of `pipelines.experiments.sequential` (mSPRT normal
mixture / confidence sequence, default tuning) is run at every look, and, as the reference in
the same run, the naive approach: a fixed-horizon z-test repeated at every look (and once at the
end only, its intended use). Under the null (no difference) the share of experiments that ever
call a difference is the false-positive rate; under an effect, the share of experiments whose
every interval covered the true effect is the coverage of the confidence sequence, and the
share that called "better" by the planned n is the power.

The tests (`tests/pipelines/experiments/`) run the same functions with fewer experiments. The
per-look arithmetic is vectorised over experiments with `sequence_bounds`, the core of
`paired_test` / `two_sample_test`; a test checks that it decides exactly like those functions.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

from pipelines.experiments.planning import plan_sample_size
from pipelines.experiments.sequential import sequence_bounds
from pipelines.experiments.srm import sample_ratio_mismatch

FloatArray = npt.NDArray[np.float64]
Draw = Callable[[np.random.Generator, tuple[int, ...], float], FloatArray]

ALPHA = 0.05
LOOKS = 168  # every hour for a week
MIN_N = 30
BLOCK = 250  # experiments simulated at once
OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "experiments-statistics.md"


# -- per-request paired differences (challenger minus champion), sd about 1 except binary ------


def normal(rng: np.random.Generator, shape: tuple[int, ...], effect: float) -> FloatArray:
    return rng.normal(effect, 1.0, size=shape)


def skewed(rng: np.random.Generator, shape: tuple[int, ...], effect: float) -> FloatArray:
    """Centred exponential (skewness 2), like latency or cost differences."""
    return rng.exponential(1.0, size=shape) - 1.0 + effect


def discordant(rng: np.random.Generator, shape: tuple[int, ...], effect: float) -> FloatArray:
    """Difference of two binary outcomes: ±1 on 10% of requests, 0 elsewhere."""
    u = rng.random(size=shape)
    up, down = 0.05 + effect / 2.0, 0.05 - effect / 2.0
    return np.where(u < up, 1.0, np.where(u < up + down, -1.0, 0.0))


DRAWS: dict[str, Draw] = {"normal": normal, "skewed": skewed, "binary difference": discordant}


@dataclass(frozen=True)
class Looks:
    """Per experiment: ever called a difference (and which way), at which look, coverage."""

    called: npt.NDArray[np.bool_]
    called_better: npt.NDArray[np.bool_]
    first_look: npt.NDArray[np.int64]  # LOOKS when never
    covered: npt.NDArray[np.bool_]
    naive_called: npt.NDArray[np.bool_]
    final_z_called: npt.NDArray[np.bool_]

    @staticmethod
    def concat(parts: Sequence[Looks]) -> Looks:
        names = [field.name for field in fields(Looks)]
        return Looks(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in names})


def sequential_looks(
    estimate: FloatArray,
    v: FloatArray,
    units: FloatArray,
    counted: npt.NDArray[np.bool_],
    truth: float,
) -> Looks:
    """Run the always-valid test over looks (axis 1) as `paired_test` does with `previous`."""
    ok = counted & np.isfinite(v) & (v > 0.0)
    safe_v = np.where(ok, v, 1.0)
    width, log_e = sequence_bounds(estimate, safe_v, np.maximum(units, 1.0), alpha=ALPHA)
    low = np.where(ok, estimate - width, -np.inf)
    high = np.where(ok, estimate + width, np.inf)
    p = np.where(ok & (log_e > 0.0), np.exp(-np.clip(log_e, 0.0, 700.0)), 1.0)
    p_run = np.minimum.accumulate(p, axis=1)
    low_run = np.maximum.accumulate(low, axis=1)
    high_run = np.minimum.accumulate(high, axis=1)
    called_at = (p_run <= ALPHA) & ((low_run > 0.0) | (high_run < 0.0) | (low_run > high_run))
    called = called_at.any(axis=1)
    first = np.where(called, called_at.argmax(axis=1), estimate.shape[1])
    # Direction at the first call (the intersection keeps it afterwards unless it empties).
    rows = np.arange(estimate.shape[0])
    first_c = np.minimum(first, estimate.shape[1] - 1)
    better = called & (low_run[rows, first_c] > 0.0)
    covered = np.all((low <= truth) & (truth <= high), axis=1)
    z = np.where(ok, np.abs(estimate) / np.sqrt(safe_v), 0.0)
    critical = float(scipy_stats.norm.ppf(1.0 - ALPHA / 2.0))
    naive = np.any(z > critical, axis=1)
    final = np.asarray(z[:, -1] > critical)
    return Looks(
        np.asarray(called, dtype=np.bool_),
        np.asarray(better, dtype=np.bool_),
        first.astype(np.int64),
        np.asarray(covered, dtype=np.bool_),
        np.asarray(naive, dtype=np.bool_),
        final,
    )


def simulate_paired(
    draw: Draw,
    *,
    experiments: int,
    per_look: int,
    effect: float,
    seed: int,
    looks: int = LOOKS,
    binary: bool = False,
) -> Looks:
    """Paired shadow experiments: `per_look` per-request differences per look."""
    rng = np.random.Generator(np.random.PCG64(seed))
    parts = []
    for start in range(0, experiments, BLOCK):
        size = min(BLOCK, experiments - start)
        x = draw(rng, (size, looks, per_look), effect)
        n = per_look * np.arange(1, looks + 1, dtype=np.float64)
        sums = np.cumsum(x.sum(axis=2), axis=1)
        squares = np.cumsum((x * x).sum(axis=2), axis=1)
        mean = sums / n
        variance = np.maximum(squares - n * mean * mean, 0.0) / np.maximum(n - 1.0, 1.0)
        if binary:
            # paired_test(binary=True): one pseudo-pair each way.
            floor = (squares + 2.0 - (n + 2.0) * (sums / (n + 2.0)) ** 2) / (n + 1.0)
            variance = np.maximum(variance, floor)
        counted = np.broadcast_to(n >= MIN_N, mean.shape)
        units = np.broadcast_to(n, mean.shape)
        parts.append(sequential_looks(mean, variance / units, units, counted, effect))
    return Looks.concat(parts)


def simulate_ab_binary(
    *,
    experiments: int,
    per_look: int,
    rate: float,
    lift: float,
    seed: int,
    looks: int = LOOKS,
) -> Looks:
    """A/B on a binary outcome: `per_look` units per arm per look, control rate `rate`."""
    rng = np.random.Generator(np.random.PCG64(seed))
    parts = []
    for start in range(0, experiments, BLOCK):
        size = min(BLOCK, experiments - start)
        c = np.cumsum(rng.binomial(per_look, rate, size=(size, looks)), axis=1)
        t = np.cumsum(rng.binomial(per_look, rate + lift, size=(size, looks)), axis=1)
        n = per_look * np.arange(1, looks + 1, dtype=np.float64)
        pc, pt = c / n, t / n
        # two_sample_test(binary=True): each arm's variance floored at p~(1 - p~).
        sc, st = (c + 1.0) / (n + 2.0), (t + 1.0) / (n + 2.0)
        vc = np.maximum(pc * (1 - pc) * n / np.maximum(n - 1, 1), sc * (1 - sc))
        vt = np.maximum(pt * (1 - pt) * n / np.maximum(n - 1, 1), st * (1 - st))
        v = vc / n + vt / n
        counted = np.broadcast_to(n >= MIN_N, pc.shape)
        parts.append(
            sequential_looks(pt - pc, v, np.broadcast_to(2.0 * n, pc.shape), counted, lift)
        )
    return Looks.concat(parts)


@dataclass(frozen=True)
class Power:
    mde: float
    fixed_n: int
    sequential_n: int
    power: float
    mean_stop_n: float
    median_stop_n: float


def power_at_plan(*, mde: float, experiments: int, seed: int, power: float = 0.8) -> Power:
    """Paired normal differences (sd 1) with true effect `mde`, 168 looks up to the planned n."""
    plan = plan_sample_size(mde=mde, sd=1.0, alpha=ALPHA, power=power)
    per_look = max(1, math.ceil(plan.sequential_n / LOOKS))
    result = simulate_paired(
        normal, experiments=experiments, per_look=per_look, effect=mde, seed=seed
    )
    stop = np.where(result.called, result.first_look + 1, LOOKS) * per_look
    return Power(
        mde,
        plan.fixed_n,
        plan.sequential_n,
        float(np.mean(result.called_better)),
        float(np.mean(stop)),
        float(np.median(stop)),
    )


def srm_rates(*, simulations: int, n: int, share: float, seed: int) -> float:
    """Share of simulated splits of `n` units (treatment share `share`) flagged as SRM."""
    rng = np.random.Generator(np.random.PCG64(seed))
    treatment = rng.binomial(n, share, size=simulations)
    flagged = [
        sample_ratio_mismatch(
            {"control": n - int(t), "treatment": int(t)}, {"control": 0.5, "treatment": 0.5}
        ).mismatch
        for t in treatment
    ]
    return float(np.mean(flagged))


def _pct(value: float) -> str:
    return f"{100.0 * value:.2f}%"


def _se(rate: float, count: int) -> str:
    return f"± {100.0 * math.sqrt(max(rate * (1 - rate), 1e-12) / count):.2f}"


def run(*, experiments: int, seed: int) -> str:
    started = time.perf_counter()
    load = os.getloadavg()
    lines = [
        "# Experiments: error rates of the always-valid tests under hourly looks",
        "",
        "Generated by `nice -n 10 uv run python -m bench.experiments_statistics`; do not edit by "
        "hand.",
        f"{experiments:,} simulated experiments per row, {LOOKS} looks each (every hour for a "
        f"week), alpha = {ALPHA}, minimum n = {MIN_N}, seed {seed}. The always-valid test is "
        "`pipelines.experiments.sequential` with its default tuning (mSPRT normal mixture, "
        "Eppo's ρ for 10,000 observations); the reference is a fixed-horizon two-sided z-test "
        "repeated at every look (naive peeking) and the same z-test once at the end.",
        "",
        "## False-positive rate under the null (no difference), paired shadow traffic",
        "",
        "Share of experiments that ever called a difference (± one Monte Carlo standard error).",
        "",
        "| differences | requests / hour | always-valid (168 looks) | naive z (168 looks) "
        "| z once at the end |",
        "|---|---|---|---|---|",
    ]
    for index, (name, draw) in enumerate(DRAWS.items()):
        for per_look in (10, 100):
            r = simulate_paired(
                draw,
                experiments=experiments,
                per_look=per_look,
                effect=0.0,
                seed=seed + 10 * index + per_look,
                binary=name == "binary difference",
            )
            fpr, naive, final = (
                float(np.mean(a)) for a in (r.called, r.naive_called, r.final_z_called)
            )
            lines.append(
                f"| {name} | {per_look} | {_pct(fpr)} {_se(fpr, experiments)} | "
                f"{_pct(naive)} {_se(naive, experiments)} | {_pct(final)} |"
            )
    lines += [
        "",
        "## False-positive rate under the null, A/B split on a binary outcome",
        "",
        "| control rate | units / arm / hour | always-valid (168 looks) | naive z (168 looks) "
        "| z once at the end |",
        "|---|---|---|---|---|",
    ]
    for rate in (0.1, 0.5):
        r = simulate_ab_binary(
            experiments=experiments, per_look=100, rate=rate, lift=0.0, seed=seed + 500
        )
        fpr, naive, final = (
            float(np.mean(a)) for a in (r.called, r.naive_called, r.final_z_called)
        )
        lines.append(
            f"| {rate} | 100 | {_pct(fpr)} {_se(fpr, experiments)} | "
            f"{_pct(naive)} {_se(naive, experiments)} | {_pct(final)} |"
        )
    lines += [
        "",
        "## Coverage of the confidence sequence",
        "",
        "Share of experiments whose interval contained the true effect at every one of the "
        "168 looks at once (the claim is >= 95%).",
        "",
        "| differences | true effect | requests / hour | covered at every look |",
        "|---|---|---|---|",
    ]
    for index, (name, draw) in enumerate(DRAWS.items()):
        effect = 0.02 if name == "binary difference" else 0.1
        r = simulate_paired(
            draw,
            experiments=experiments,
            per_look=50,
            effect=effect,
            seed=seed + 700 + index,
            binary=name == "binary difference",
        )
        cov = float(np.mean(r.covered))
        lines.append(f"| {name} | {effect} | 50 | {_pct(cov)} {_se(cov, experiments)} |")
    lines += [
        "",
        "## Power and stopping time at the planned sample size",
        "",
        "Paired normal differences with sd 1 and the true effect equal to the minimum detectable "
        "effect; `plan_sample_size(mde, sd=1)` gives the fixed-horizon n and the (closed-form, "
        "conservative) sequential n; the experiment is looked at 168 times up to the sequential "
        "n and stops at the first call (an experiment that never calls counts at the sequential "
        "n). Power = share that called 'better' by then (target 80%).",
        "",
        "| mde | fixed-horizon n | sequential n | power | mean n at stop | median n at stop |",
        "|---|---|---|---|---|---|",
    ]
    for index, mde in enumerate((0.05, 0.1, 0.2)):
        p = power_at_plan(mde=mde, experiments=experiments, seed=seed + 900 + index)
        lines.append(
            f"| {mde} | {p.fixed_n:,} | {p.sequential_n:,} | {_pct(p.power)} "
            f"{_se(p.power, experiments)} | {p.mean_stop_n:,.0f} | {p.median_stop_n:,.0f} |"
        )
    lines += [
        "",
        "## Sample-ratio mismatch (chi-square, alpha = 0.001), 20,000 units",
        "",
        "| true treatment share | flagged |",
        "|---|---|",
    ]
    for index, share in enumerate((0.5, 0.51, 0.52)):
        rate = srm_rates(simulations=experiments, n=20_000, share=share, seed=seed + 1000 + index)
        lines.append(f"| {share} | {_pct(rate)} |")
    elapsed = time.perf_counter() - started
    lines += [
        "",
        f"Run time {elapsed:.0f} s; load average at start {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} on {os.cpu_count()} cores (machine shared with other work).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="500 experiments, print only")
    parser.add_argument("--experiments", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    document = run(experiments=500 if args.quick else args.experiments, seed=args.seed)
    print(document)
    if not args.quick:
        args.output.write_text(document, encoding="utf-8")


if __name__ == "__main__":
    main()
