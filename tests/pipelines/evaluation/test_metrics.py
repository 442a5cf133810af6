"""Mean and text suites: finalize(counts @ statistics) equals the reference on each resample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sacrebleu

from bench.metrics_bench import generate_pairs
from pipelines.evaluation import metrics
from pipelines.evaluation.metrics import MeanSuite, TextGenerationSuite, score_text_generation
from pipelines.evaluation.suite import MetricSuite

TOLERANCE = 1e-9


def _resample_counts(n: int, replicates: int, seed: int) -> np.ndarray:
    """Bootstrap multiplicities of n examples, one row per replicate."""
    return np.random.default_rng(seed).multinomial(n, [1 / n] * n, size=replicates).astype(float)


class TestMeanSuite:
    """Means of score columns."""

    def test_names_are_the_columns(self) -> None:
        """A mean suite is named after its columns, in order."""
        assert MeanSuite(["rouge1_f", "exact_match"]).names == ("rouge1_f", "exact_match")

    def test_statistics_are_the_columns_and_a_count(self) -> None:
        """Statistics are the chosen columns followed by a constant 1."""
        frame = pd.DataFrame({"a": [0.5, 1.0], "b": [2.0, 3.0], "c": [9.0, 9.0]})
        assert MeanSuite(["b", "a"]).statistics(frame).tolist() == [
            [2.0, 0.5, 1.0],
            [3.0, 1.0, 1.0],
        ]

    def test_each_resample_row_is_that_resamples_mean(self) -> None:
        """finalize(counts @ statistics) equals the pandas mean of each resampled frame."""
        rng = np.random.default_rng(0)
        frame = pd.DataFrame({"x": rng.random(50), "y": rng.integers(0, 2, 50).astype(float)})
        suite = MeanSuite(["x", "y"])
        counts = _resample_counts(len(frame), 30, seed=1)
        values = suite.finalize(counts @ suite.statistics(frame))
        assert values.shape == (30, 2)
        for row, count in enumerate(counts):
            resampled = frame.loc[frame.index.repeat(count.astype(int))]
            expected = resampled[["x", "y"]].mean().to_numpy()
            np.testing.assert_allclose(values[row], expected, rtol=0, atol=TOLERANCE)

    def test_a_replicate_without_examples_is_nan(self) -> None:
        """With a zero count the mean is undefined (NaN), like the mean of an empty column."""
        values = MeanSuite(["x"]).finalize(np.array([[0.0, 0.0], [3.0, 2.0]]))
        assert np.isnan(values[0, 0])
        assert values[1, 0] == 1.5

    def test_duplicate_columns_are_rejected(self) -> None:
        """Naming a column twice is a caller error."""
        with pytest.raises(ValueError, match="distinct"):
            MeanSuite(["x", "x"])


class TestTextGenerationSuite:
    """Means plus corpus BLEU and chrF."""

    def test_names_are_means_then_bleu_and_chrf(self) -> None:
        """Names are the mean columns followed by bleu and chrf."""
        assert TextGenerationSuite(["exact_match"]).names == ("exact_match", "bleu", "chrf")

    def test_full_sample_equals_sacrebleu_and_means(self) -> None:
        """On all 500 examples the suite gives the column means and sacrebleu's corpus scores."""
        predictions, references = generate_pairs(500, seed=31)
        frame = score_text_generation(predictions, references)
        suite = TextGenerationSuite(["exact_match"])
        values = suite.finalize(suite.statistics(frame).sum(axis=0, keepdims=True))[0]
        assert abs(values[0] - frame["exact_match"].mean()) <= TOLERANCE
        assert abs(values[1] - sacrebleu.corpus_bleu(predictions, [references]).score) <= TOLERANCE
        assert abs(values[2] - sacrebleu.corpus_chrf(predictions, [references]).score) <= TOLERANCE

    def test_each_resample_row_equals_the_references_on_that_resample(self) -> None:
        """finalize(counts @ statistics) equals means and sacrebleu on each of 20 resamples."""
        predictions, references = generate_pairs(150, seed=37)
        frame = score_text_generation(predictions, references)
        frame["sentence_bleu"] = frame["bleu"]
        suite = TextGenerationSuite(["exact_match", "sentence_bleu"])
        counts = _resample_counts(len(frame), 20, seed=2)
        values = suite.finalize(counts @ suite.statistics(frame))
        assert values.shape == (20, 4)
        for row, count in enumerate(counts):
            index = np.repeat(np.arange(len(frame)), count.astype(int))
            hyps = [predictions[i] for i in index]
            refs = [references[i] for i in index]
            expected = [
                frame["exact_match"].to_numpy()[index].mean(),
                frame["sentence_bleu"].to_numpy()[index].mean(),
                sacrebleu.corpus_bleu(hyps, [refs]).score,
                sacrebleu.corpus_chrf(hyps, [refs]).score,
            ]
            np.testing.assert_allclose(values[row], expected, rtol=0, atol=TOLERANCE)

    def test_corpus_metric_names_cannot_be_mean_columns(self) -> None:
        """bleu and chrf name the corpus metrics, so they cannot also be averaged columns."""
        with pytest.raises(ValueError, match="corpus metrics"):
            TextGenerationSuite(["bleu"])


class TestSuiteProtocol:
    """The suites are MetricSuites."""

    @pytest.mark.parametrize(
        "suite",
        [
            MeanSuite(["exact_match"]),
            TextGenerationSuite(["exact_match"]),
            metrics.ClassificationSuite(["a", "b"]),
        ],
        ids=["mean", "text", "classification"],
    )
    def test_finalize_returns_one_column_per_name(self, suite: MetricSuite) -> None:
        """finalize maps (R, s) sums to (R, len(names)) values for any R."""
        if isinstance(suite, metrics.ClassificationSuite):
            frame = metrics.score_classification(["a", "b", "b"], ["a", "a", "b"])
        else:
            frame = score_text_generation(["a b c", "d"], ["a b c", "e"])
        stats = suite.statistics(frame)
        assert stats.shape[0] == len(frame)
        assert stats.dtype == np.float64
        sums = np.vstack([stats.sum(axis=0)] * 3)
        assert suite.finalize(sums).shape == (3, len(suite.names))

    def test_metrics_re_exports_the_public_api(self) -> None:
        """Callers import every scorer and suite from pipelines.evaluation.metrics."""
        from pipelines.evaluation import classification, text_metrics

        for name in metrics.__all__:
            source = classification if hasattr(classification, name) else text_metrics
            if hasattr(source, name):
                assert getattr(metrics, name) is getattr(source, name)
        assert {
            "score_text_generation",
            "score_classification",
            "classes_of",
            "confusion_matrix",
            "MeanSuite",
            "TextGenerationSuite",
            "ClassificationSuite",
        } <= set(metrics.__all__)
