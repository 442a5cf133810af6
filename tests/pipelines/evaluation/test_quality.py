"""Unit tests for the per-agent-type quality score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipelines.evaluation.quality import (
    DEFAULT_QUALITY_WEIGHTS,
    QUALITY_SCORE,
    QualityWeights,
    default_scale,
    paired_quality_score,
    parse_quality_weights,
    quality_score,
)
from pipelines.evaluation.statistics import (
    Replicates,
    bootstrap,
    compare,
    confidence_intervals,
    paired_bootstrap,
    paired_replicates,
)
from pipelines.evaluation.suite import FloatArray


class SummaryLikeSuite:
    """rougeL_f as a mean on 0-1 and chrf as a mean on 0-100: statistics (rougeL_f, chrf, 1)."""

    names = ("rougeL_f", "chrf")

    def statistics(self, scores: object) -> FloatArray:
        raise NotImplementedError

    def finalize(self, sums: FloatArray) -> FloatArray:
        return sums[:, :2] / sums[:, 2:]


def summary_statistics(rouge: FloatArray, chrf: FloatArray) -> FloatArray:
    return np.column_stack([rouge, chrf, np.ones_like(rouge)])


def replicates_of(
    names: tuple[str, ...], point: list[float], rows: list[list[float]]
) -> Replicates:
    return Replicates(names, np.array(point), np.array(rows), 10)


class TestQualityWeights:
    def test_weights_summing_to_one_up_to_rounding_are_accepted(self) -> None:
        """0.4 + 0.2 + 0.2 + 0.2 is not exactly 1.0 in floating point but is a valid weighting."""
        weights = QualityWeights("s", {"a": 0.4, "b": 0.2, "c": 0.2, "d": 0.2})
        assert math.fsum(weights.weights.values()) == pytest.approx(1.0)

    def test_weights_not_summing_to_one_are_rejected_with_every_metric_named(self) -> None:
        """The error gives the agent type, the sum and each metric's weight."""
        with pytest.raises(ValueError, match=r"'summarizer' sum to 0\.9.*rougeL_f=0\.5, chrf=0\.4"):
            QualityWeights("summarizer", {"rougeL_f": 0.5, "chrf": 0.4})

    @pytest.mark.parametrize("weight", [-0.5, math.nan, math.inf])
    def test_invalid_weight_names_the_metric(self, weight: float) -> None:
        """Negative or non-finite weights are rejected with the metric's name."""
        with pytest.raises(ValueError, match="weight for metric 'chrf'"):
            QualityWeights("s", {"rougeL_f": 1.0, "chrf": weight})

    def test_empty_weights_are_rejected(self) -> None:
        """A quality score needs at least one metric."""
        with pytest.raises(ValueError, match="empty"):
            QualityWeights("s", {})

    def test_scale_for_an_unweighted_metric_is_rejected(self) -> None:
        """A scale without a weight is almost certainly a typo in the metric name."""
        with pytest.raises(ValueError, match="scale given for metric 'chrF'"):
            QualityWeights("s", {"chrf": 1.0}, {"chrF": 100.0})

    @pytest.mark.parametrize("scale", [0.0, -1.0, math.inf])
    def test_scale_must_be_positive_and_finite(self, scale: float) -> None:
        """A zero, negative or infinite scale is rejected with the metric's name."""
        with pytest.raises(ValueError, match="scale for metric 'x'"):
            QualityWeights("s", {"x": 1.0}, {"x": scale})

    def test_known_scales_apply_unless_overridden(self) -> None:
        """chrF and BLEU are on 0-100 by name, others on 0-1; an explicit scale wins."""
        weights = QualityWeights("s", {"chrf": 0.25, "bleu": 0.25, "f": 0.25, "g": 0.25}, {"g": 5})
        assert [weights.scale(m) for m in ("chrf", "bleu", "f", "g")] == [100, 100, 1, 5]
        assert (default_scale("chrf"), default_scale("rougeL_f")) == (100.0, 1.0)

    def test_weights_cannot_be_mutated_after_validation(self) -> None:
        """The validated mappings are read-only, so a weighting stays valid."""
        source = {"a": 1.0}
        weights = QualityWeights("s", source)
        source["b"] = 5.0
        assert dict(weights.weights) == {"a": 1.0}
        with pytest.raises(TypeError):
            weights.weights["a"] = 0.5  # type: ignore[index]


class TestDefaults:
    def test_summarizer_and_classifier_are_declared(self) -> None:
        """The defaults cover both agent types with the documented weights."""
        summarizer = DEFAULT_QUALITY_WEIGHTS["summarizer"]
        classifier = DEFAULT_QUALITY_WEIGHTS["intent_classifier"]
        assert dict(summarizer.weights) == {
            "rougeL_f": 0.4,
            "rouge2_f": 0.2,
            "rougeLsum_f": 0.2,
            "chrf": 0.2,
        }
        assert dict(classifier.weights) == {"f1_macro": 0.5, "accuracy": 0.3, "f1_weighted": 0.2}
        assert summarizer.scale("chrf") == 100.0

    def test_each_default_is_keyed_by_its_agent_type(self) -> None:
        """The mapping key and the weights' agent_type agree."""
        assert all(key == weights.agent_type for key, weights in DEFAULT_QUALITY_WEIGHTS.items())


class TestParseQualityWeights:
    def test_parses_a_config_string(self) -> None:
        """ "rougeL_f=0.5,chrf=0.5" gives those weights, with chrf on the 0-100 scale."""
        weights = parse_quality_weights("summarizer", "rougeL_f=0.5,chrf=0.5")
        assert weights.agent_type == "summarizer"
        assert dict(weights.weights) == {"rougeL_f": 0.5, "chrf": 0.5}
        assert weights.scale("chrf") == 100.0

    def test_tolerates_spaces_and_a_trailing_comma(self) -> None:
        """Whitespace around items and an empty trailing item are ignored."""
        weights = parse_quality_weights("c", " accuracy = 0.25 , f1_macro=0.75, ")
        assert dict(weights.weights) == {"accuracy": 0.25, "f1_macro": 0.75}

    @pytest.mark.parametrize("spec", ["accuracy", "=0.5", "accuracy="])
    def test_item_without_metric_or_weight_is_rejected(self, spec: str) -> None:
        """Every item must be metric=weight."""
        with pytest.raises(ValueError, match="is not metric=weight"):
            parse_quality_weights("c", spec)

    def test_non_numeric_weight_names_the_metric(self) -> None:
        """A weight that is not a number is reported with its metric."""
        with pytest.raises(ValueError, match=r"weight for metric 'chrf'.*'half'"):
            parse_quality_weights("s", "rougeL_f=0.5,chrf=half")

    def test_duplicate_metric_is_rejected(self) -> None:
        """Weighting a metric twice is ambiguous."""
        with pytest.raises(ValueError, match="'chrf' is weighted twice"):
            parse_quality_weights("s", "chrf=0.5,chrf=0.5")

    def test_weights_must_sum_to_one(self) -> None:
        """Parsed weights go through the same validation as declared ones."""
        with pytest.raises(ValueError, match=r"sum to 0\.8"):
            parse_quality_weights("s", "rougeL_f=0.5,chrf=0.3")


class TestQualityScore:
    def test_hand_computed_point_and_replicates(self) -> None:
        """0.5 * rougeL_f + 0.5 * chrf / 100, on the point and on each replicate row."""
        replicates = replicates_of(
            ("rougeL_f", "chrf"), [0.5, 40.0], [[0.4, 30.0], [0.6, 50.0], [0.5, 60.0]]
        )
        weights = parse_quality_weights("summarizer", "rougeL_f=0.5,chrf=0.5")
        score = quality_score(replicates, weights)
        assert score.names == (QUALITY_SCORE,)
        assert score.point == pytest.approx([0.45])
        assert score.replicates[:, 0] == pytest.approx([0.35, 0.55, 0.55])
        assert score.n == replicates.n

    def test_interval_is_joint_not_assembled_from_the_parts(self) -> None:
        """Parts that move in opposite directions cancel in every replicate: a zero-width CI."""
        x = np.linspace(0.2, 0.8, 101)
        replicates = Replicates(("a", "b"), np.array([0.5, 0.5]), np.column_stack([x, 1 - x]), 9)
        score = quality_score(replicates, QualityWeights("t", {"a": 0.5, "b": 0.5}))
        estimate = confidence_intervals(score)[QUALITY_SCORE]
        parts = confidence_intervals(replicates)
        assert parts["a"].ci_high - parts["a"].ci_low > 0.5
        assert (estimate.ci_low, estimate.ci_high) == (pytest.approx(0.5), pytest.approx(0.5))

    def test_missing_metric_names_it_and_the_available_ones(self) -> None:
        """Asking for a metric the suite does not report is a clear error."""
        replicates = replicates_of(("rougeL_f", "chrf"), [0.5, 40.0], [[0.5, 40.0]])
        weights = QualityWeights("summarizer", {"rouge2_f": 0.5, "chrf": 0.5})
        with pytest.raises(ValueError, match="rouge2_f; available: rougeL_f, chrf"):
            quality_score(replicates, weights)

    def test_metric_outside_its_scale_is_reported(self) -> None:
        """A 0-100 metric declared on 0-1 is caught instead of dominating the score."""
        replicates = replicates_of(("ter",), [35.0], [[35.0]])
        with pytest.raises(ValueError, match=r"'ter' is 35, outside \[0, 1\].*scale 1"):
            quality_score(replicates, QualityWeights("t", {"ter": 1.0}))

    def test_undefined_part_makes_the_score_undefined(self) -> None:
        """A NaN metric value gives a NaN quality score for that replicate only."""
        replicates = replicates_of(("a", "b"), [0.5, 0.5], [[0.5, math.nan], [0.2, 0.4]])
        score = quality_score(replicates, QualityWeights("t", {"a": 0.5, "b": 0.5}))
        assert math.isnan(score.replicates[0, 0])
        assert score.replicates[1, 0] == pytest.approx(0.3)

    def test_score_of_a_real_bootstrap(self) -> None:
        """On a bootstrap, the point is the weighted point and the interval brackets it."""
        rng = np.random.default_rng(0)
        stats = summary_statistics(rng.random(200), 100 * rng.random(200))
        replicates = bootstrap(stats, SummaryLikeSuite(), n_resamples=500)
        weights = parse_quality_weights("summarizer", "rougeL_f=0.6,chrf=0.4")
        estimate = confidence_intervals(quality_score(replicates, weights))[QUALITY_SCORE]
        expected = 0.6 * stats[:, 0].mean() + 0.4 * stats[:, 1].mean() / 100
        assert estimate.value == pytest.approx(expected)
        assert estimate.ci_low < estimate.value < estimate.ci_high


class TestPairedQualityScore:
    def test_identical_systems_have_equal_quality(self) -> None:
        """A system compared with itself has quality difference 0 and p = 1."""
        stats = summary_statistics(np.linspace(0, 1, 30), np.linspace(20, 80, 30))
        paired = paired_replicates(stats, stats.copy(), SummaryLikeSuite(), n_resamples=100)
        weights = parse_quality_weights("summarizer", "rougeL_f=0.5,chrf=0.5")
        difference = compare(paired_quality_score(paired, weights))[QUALITY_SCORE]
        assert difference.difference == 0
        # Every swap differs by 0 too: the test's critical value is 0 (plus its tie tolerance).
        assert -1e-9 < difference.ci_low < 0 < difference.ci_high < 1e-9
        assert difference.p_value == 1.0

    def test_matches_the_quality_option_of_paired_bootstrap(self) -> None:
        """paired_bootstrap(quality=...) reports exactly compare(paired_quality_score(...))."""
        rng = np.random.default_rng(1)
        a = summary_statistics(rng.random(80), 100 * rng.random(80))
        b = summary_statistics(rng.random(80), 100 * rng.random(80))
        suite = SummaryLikeSuite()
        weights = parse_quality_weights("summarizer", "rougeL_f=0.5,chrf=0.5")
        direct = compare(paired_quality_score(paired_replicates(a, b, suite, seed=3), weights))
        via_option = paired_bootstrap(a, b, suite, seed=3, quality=weights)
        assert via_option[QUALITY_SCORE] == direct[QUALITY_SCORE]
        assert via_option[QUALITY_SCORE].difference == pytest.approx(
            0.5 * (b[:, 0].mean() - a[:, 0].mean()) + 0.005 * (b[:, 1].mean() - a[:, 1].mean())
        )
