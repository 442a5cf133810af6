"""The comparison's decision rule: test and interval agree, one primary, a Holm family, power."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from flows.reporting import _verdict
from pipelines.evaluation.decision import (
    decide,
    minimum_detectable_effect,
    paired_effect,
    plan,
    required_n,
    significant_after_holm,
)
from pipelines.evaluation.metrics import MeanSuite, score_text_generation
from pipelines.evaluation.quality import parse_quality_weights
from pipelines.evaluation.read_models import MetricDifference
from pipelines.evaluation.rouge import ROUGE_COLUMNS
from pipelines.evaluation.scoring import (
    CLASSIFICATION,
    TEXT_GENERATION,
    PrimaryMetricUnknown,
    ScoringOptions,
    compare,
    score_examples,
)
from pipelines.evaluation.statistics import compare as compare_paired
from pipelines.evaluation.statistics import holm, paired_replicates


def mean_statistics(values: np.ndarray) -> np.ndarray:
    return np.column_stack([values, np.ones(len(values))])


def row(
    name: str, p: float | None, difference: float = 0.1, slice_name: str = ""
) -> MetricDifference:
    return MetricDifference(
        slice=slice_name,
        name=name,
        a=0.5,
        b=0.5 + difference,
        difference=difference,
        ci_low=difference - 0.05,
        ci_high=difference + 0.05,
        p_value=p,
        p_value_holm=None,
        n=100,
    )


class TestIntervalAgreesWithTest:
    def test_interval_excludes_zero_exactly_when_p_is_at_most_alpha(self) -> None:
        """Over 400 random paired datasets (small n, skewed, shifted or not), at three levels,
        "0 outside the interval" and "p <= alpha" never disagree: the interval inverts the test.
        """
        rng = np.random.default_rng(9)
        checked = called = 0
        for trial in range(400):
            n = int(rng.integers(5, 60))
            a = rng.beta(0.5, 3.0, n)
            b = np.clip(a + rng.normal(rng.choice([0.0, 0.02, 0.08]), 0.1, n), 0, 1)
            paired = paired_replicates(
                mean_statistics(a),
                mean_statistics(b),
                MeanSuite(["score"]),
                n_resamples=5,
                n_permutations=int(rng.choice([19, 99, 499])),
                seed=trial,
            )
            for confidence in (0.9, 0.95, 0.99):
                d = compare_paired(paired, confidence=confidence)["score"]
                excludes = not (d.ci_low <= 0.0 <= d.ci_high)
                assert excludes == (d.p_value <= 1 - confidence), (trial, confidence, d)
                assert d.ci_low <= d.difference <= d.ci_high
                checked += 1
                called += int(excludes)
        assert 0 < called < checked  # both outcomes occurred

    def test_too_few_swaps_to_reach_alpha_give_an_unbounded_interval(self) -> None:
        """With 10 swaps p >= 1/11 > 0.05: nothing can be significant, the interval is infinite."""
        a = np.linspace(0, 0.5, 20)
        paired = paired_replicates(
            mean_statistics(a), mean_statistics(a + 0.3), MeanSuite(["s"]), n_permutations=10
        )
        d = compare_paired(paired)["s"]
        assert d.p_value > 0.05
        assert (d.ci_low, d.ci_high) == (-math.inf, math.inf)

    def test_the_audit_regression_cannot_be_printed(self) -> None:
        """The audit's "B higher" with CI [0.0325, 0.3333] and p = 0.130: the mark comes from the
        decision (p, or Holm p), so a row with p = 0.130 is never marked higher."""
        audit = row("bleu", 0.130).model_copy(
            update={"ci_low": 0.0325, "ci_high": 0.3333, "difference": 0.18}
        )
        overall, _, verdict = decide(
            [row("quality_score", 0.5, 0.0), audit],
            [],
            primary="quality_score",
            differences=np.zeros(100),
            n=100,
            alpha=0.05,
            min_n=30,
            swaps=999,
        )
        bleu = overall[1]
        assert bleu.significant is False
        assert "higher" not in _verdict(bleu)
        assert verdict.outcome == "no_detectable_difference"


class TestDecide:
    def test_primary_alone_at_alpha_the_rest_holm_together(self) -> None:
        """The primary row keeps its raw p (no Holm); four secondary rows are adjusted as one
        family of four; the verdict names what Holm called better or worse."""
        overall = [row("quality_score", 0.04), row("rougeL_f", 0.01), row("bleu", 0.3)]
        slices = [
            row("quality_score", 0.012, -0.2, "hvac"),
            row("rougeL_f", None, 0.0, "hvac"),
            row("bleu", 0.02, 0.1, "hvac"),
        ]
        new_overall, new_slices, verdict = decide(
            overall,
            slices,
            primary="quality_score",
            differences=np.full(100, 0.1),
            n=100,
            alpha=0.05,
            min_n=30,
            swaps=999,
        )
        primary = new_overall[0]
        assert (primary.primary, primary.significant, primary.p_value_holm) == (True, True, None)
        tested = [new_overall[1], new_overall[2], new_slices[0], new_slices[2]]
        expected = holm([0.01, 0.3, 0.012, 0.02])
        assert [r.p_value_holm for r in tested] == expected
        assert [r.significant for r in tested] == [p <= 0.05 for p in expected]
        assert new_slices[1].p_value_holm is None
        assert verdict.secondary.size == 4
        assert verdict.secondary.better == ["overall/rougeL_f", "hvac/bleu"]
        assert verdict.secondary.worse == ["hvac/quality_score"]
        assert verdict.outcome == "better"
        assert verdict.statement.startswith("challenger better: quality_score +0.1000")

    def test_worse_untestable_and_small_n(self) -> None:
        """A significant negative difference is "worse"; a missing p is "untestable"; n < min_n
        flags the verdict and every small slice row."""
        _, slices, worse = decide(
            [row("accuracy", 0.001, -0.1)],
            [row("accuracy", 0.5, 0.0, "tiny").model_copy(update={"n": 5})],
            primary="accuracy",
            differences=np.array([-1.0, 0.0, -1.0, 0.0, 1.0]),
            n=20,
            alpha=0.05,
            min_n=30,
            swaps=999,
        )
        assert worse.outcome == "worse"
        assert worse.statement.startswith("challenger worse")
        assert worse.flags == ["small_n"]
        assert slices[0].flags == ["small_n"]
        assert worse.effect.cohen_h == pytest.approx(
            2 * math.asin(math.sqrt(0.4)) - 2 * math.asin(math.sqrt(0.5))
        )
        _, _, none = decide(
            [row("accuracy", None)],
            [],
            primary="accuracy",
            differences=np.zeros(3),
            n=40,
            alpha=0.05,
            min_n=30,
            swaps=999,
        )
        assert none.outcome == "untestable"
        assert none.flags == []

    def test_no_detectable_difference_states_the_mde(self) -> None:
        """A non-significant verdict states the minimum detectable effect at this n."""
        differences = np.random.default_rng(0).normal(0.0, 0.2, 400)
        _, _, verdict = decide(
            [row("quality_score", 0.4, 0.01)],
            [],
            primary="quality_score",
            differences=differences,
            n=400,
            alpha=0.05,
            min_n=30,
            swaps=999,
        )
        mde = minimum_detectable_effect(float(np.std(differences, ddof=1)), 400)
        assert verdict.minimum_detectable_effect == pytest.approx(mde)
        assert verdict.statement.startswith(
            f"no detectable difference at this n (n = 400; minimum detectable effect ±{mde:.4f}"
        )

    def test_unknown_primary_is_an_error(self) -> None:
        with pytest.raises(ValueError, match="'nope'"):
            decide(
                [row("bleu", 0.1)],
                [],
                primary="nope",
                differences=np.zeros(2),
                n=2,
                alpha=0.05,
                min_n=30,
                swaps=99,
            )


class TestEffects:
    def test_win_tie_loss_and_d_z(self) -> None:
        effect = paired_effect(
            np.array([1.0, 0.0, -1.0, 1.0, 1.0]), difference=0.4, a=0.4, b=0.8, proportion=False
        )
        assert (effect.wins, effect.ties, effect.losses) == (3, 1, 1)
        assert effect.paired_sd == pytest.approx(np.std([1, 0, -1, 1, 1], ddof=1))
        assert effect.d_z == pytest.approx(0.4 / effect.paired_sd)
        assert effect.cohen_h is None

    def test_mde_and_required_n_invert_each_other(self) -> None:
        """n = required_n(sd, MDE(sd, n)) up to rounding; the README's worked numbers hold."""
        assert required_n(0.2, 0.02) == 785
        assert minimum_detectable_effect(0.2, 785) == pytest.approx(0.02, rel=1e-3)
        for n in (30, 123, 1000):
            assert required_n(0.3, minimum_detectable_effect(0.3, n)) in (n, n + 1)
        with pytest.raises(ValueError, match="non-zero"):
            required_n(0.2, 0.0)
        with pytest.raises(ValueError, match="alpha"):
            minimum_detectable_effect(0.2, 10, alpha=1.5)

    def test_plan_needs_an_effect_or_n(self) -> None:
        both = plan(0.2, source="given", effect=0.02, n=400)
        assert (both.n_required, both.n) == (785, 400)
        with pytest.raises(ValueError, match="target effect"):
            plan(0.2, source="given")


class TestSignificantAfterHolm:
    def test_undefined_p_values_are_not_rejected(self) -> None:
        assert significant_after_holm([0.001, None, 0.04, 0.5], 0.05) == [True, False, False, False]


def text_frames(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    words = ["valve", "pump", "filter", "replaced", "tested", "leak", "fixed", "unit"]
    expected = [" ".join(rng.choice(words, 6)) for _ in range(n)]
    a = [" ".join(rng.choice(words, 6)) for _ in range(n)]
    b = [e if rng.random() < 0.5 else " ".join(rng.choice(words, 6)) for e in expected]
    # ROUGE columns drawn at random (ROUGE itself is tested elsewhere and slow to start);
    # BLEU, chrF and exact match scored for real.
    scores_a, scores_b = (
        pd.concat(
            [
                pd.DataFrame({c: rng.random(n) * shift for c in ROUGE_COLUMNS}),
                score_text_generation(predictions, expected),
            ],
            axis=1,
        )
        for predictions, shift in ((a, 0.6), (b, 1.0))
    )
    return scores_a, scores_b, ["x" if i % 2 else "y" for i in range(n)]


class TestCompareRuns:
    def test_default_primary_is_the_quality_score_and_others_are_selectable(self) -> None:
        """The default verdict is on the quality score; `primary` switches it; the family holds
        every other row; the linearised differences of a mean are the score differences."""
        rng = np.random.default_rng(3)
        scores_a, scores_b, slices = text_frames(rng, 40)
        quality = parse_quality_weights("summarizer", "rougeL_f=0.5,chrf=0.5")
        options = ScoringOptions(n_resamples=50)
        default = compare(
            TEXT_GENERATION, scores_a, scores_b, slices=slices, options=options, quality=quality
        )
        assert default.verdict.primary_metric == "quality_score"
        assert default.verdict.outcome == "better"
        rows = [*default.overall, *default.slices]
        assert default.verdict.secondary.size == sum(r.p_value is not None for r in rows) - 1
        assert sum(r.primary for r in rows) == 1
        rouge = compare(
            TEXT_GENERATION,
            scores_a,
            scores_b,
            slices=slices,
            options=options,
            quality=quality,
            primary="rougeL_f",
        )
        differences = scores_b["rougeL_f"] - scores_a["rougeL_f"]
        effect = rouge.verdict.effect
        assert effect.wins == int((differences > 0).sum())
        assert effect.losses == int((differences < 0).sum())
        assert effect.paired_sd == pytest.approx(float(differences.std(ddof=1)), rel=1e-5)
        with pytest.raises(PrimaryMetricUnknown, match="rouge9"):
            compare(
                TEXT_GENERATION,
                scores_a,
                scores_b,
                slices=slices,
                options=options,
                quality=quality,
                primary="rouge9",
            )

    def test_accuracy_differences_are_the_per_example_correctness_differences(self) -> None:
        labels = ["a", "b", "c", "a"] * 10
        a = ["a", "b", "a", "c"] * 10
        b = ["a", "b", "c", "c"] * 10
        scores_a = score_examples(CLASSIFICATION, predictions=a, expected=labels)
        scores_b = score_examples(CLASSIFICATION, predictions=b, expected=labels)
        result = compare(
            CLASSIFICATION,
            scores_a,
            scores_b,
            slices=[""] * 40,
            options=ScoringOptions(n_resamples=50),
            quality=None,
            primary="accuracy",
        )
        effect = result.verdict.effect
        assert (effect.wins, effect.ties, effect.losses) == (10, 30, 0)
        assert result.verdict.outcome == "better"
        assert effect.cohen_h == pytest.approx(
            2 * math.asin(math.sqrt(0.75)) - 2 * math.asin(math.sqrt(0.5))
        )
