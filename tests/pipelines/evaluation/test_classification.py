"""Classification metrics from summed one-hot statistics equal scikit-learn's."""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from pipelines.evaluation.classification import (
    SUMMARY_METRICS,
    ClassificationSuite,
    classes_of,
    confusion_matrix,
    score_classification,
)

TOLERANCE = 1e-9
AVERAGES = ("macro", "micro", "weighted")


def _reference(labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]) -> dict:
    """scikit-learn's values under the suite's names.

    Macro averages run over the classes with support; per-class values are undefined (NaN)
    where their denominator is zero.
    """
    supported = [c for c in classes if c in set(labels)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about classes absent from the labels
        values = {"accuracy": sk.accuracy_score(labels, predictions)}
        for average in AVERAGES:
            chosen = supported if average == "macro" else list(classes)
            if not chosen:
                p = r = f = np.nan
            else:
                p, r, f, _ = sk.precision_recall_fscore_support(
                    labels, predictions, labels=chosen, average=average, zero_division=0
                )
            values |= {f"precision_{average}": p, f"recall_{average}": r, f"f1_{average}": f}
        p, r, f, _ = sk.precision_recall_fscore_support(
            labels, predictions, labels=list(classes), average=None, zero_division=np.nan
        )
    for i, c in enumerate(classes):
        values |= {f"precision[{c}]": p[i], f"recall[{c}]": r[i], f"f1[{c}]": f[i]}
    return values


def _suite_values(
    labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]
) -> dict:
    suite = ClassificationSuite(classes)
    sums = suite.statistics(score_classification(predictions, labels)).sum(axis=0)
    return dict(zip(suite.names, suite.finalize(sums[None, :])[0], strict=True))


def _assert_matches_sklearn(
    labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]
) -> None:
    ours, expected = (
        _suite_values(labels, predictions, classes),
        _reference(labels, predictions, classes),
    )
    assert ours.keys() == expected.keys()
    for name, value in expected.items():
        _assert_close(ours[name], value, name)


def _assert_close(ours: float, expected: float, name: str) -> None:
    if np.isnan(expected):
        assert np.isnan(ours), name
    else:
        assert abs(ours - expected) <= TOLERANCE, name


def _random_case(rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """Labels, predictions and classes of one random scenario."""
    n_classes = rng.randint(1, 7)
    alphabet = [f"c{i}" for i in range(n_classes)]
    weights = [rng.random() ** 3 for _ in alphabet]  # often very imbalanced
    n = rng.randint(1, 80)
    labels = rng.choices(alphabet, weights=weights, k=n)
    accuracy = rng.random()
    predictions = [
        label if rng.random() < accuracy else rng.choice([*alphabet, "unknown"]) for label in labels
    ]
    classes = list(classes_of(labels, predictions))
    roll = rng.random()
    if roll < 0.2:
        classes.append("never-seen")  # a class with no labels and no predictions
    elif roll < 0.4 and len(classes) > 1:
        classes.remove(rng.choice(classes))  # labels / predictions outside the classes
    rng.shuffle(classes)
    return labels, predictions, classes


class TestClassesOf:
    """The default class list."""

    def test_classes_are_the_sorted_union(self) -> None:
        """Classes are every label and prediction, sorted, each once."""
        assert classes_of(["b", "a", "b"], ["c", "a"]) == ("a", "b", "c")


class TestScoreClassification:
    """The per-example classification frame."""

    def test_frame_has_label_prediction_and_correct(self) -> None:
        """Each row holds the label, the prediction and 1.0 when they are equal."""
        frame = score_classification(["a", "b", "x"], ["a", "c", "x"])
        assert list(frame.columns) == ["label", "prediction", "correct"]
        assert frame["label"].tolist() == ["a", "c", "x"]
        assert frame["prediction"].tolist() == ["a", "b", "x"]
        assert frame["correct"].tolist() == [1.0, 0.0, 1.0]

    def test_mismatched_lengths_are_rejected(self) -> None:
        """One label per prediction is required."""
        with pytest.raises(ValueError, match="1 predictions but 2 labels"):
            score_classification(["a"], ["a", "b"])


class TestConfusionMatrix:
    """The confusion matrix via bincount."""

    def test_random_cases_equal_sklearn(self) -> None:
        """200 random cases, including classes subsets and unknown predictions, equal sklearn's."""
        rng = random.Random(1)
        for _ in range(200):
            labels, predictions, classes = _random_case(rng)
            if not set(labels) & set(classes):
                continue  # sklearn refuses label lists that miss every true label
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn warns when one label is all it sees
                expected = sk.confusion_matrix(labels, predictions, labels=classes)
            ours = confusion_matrix(labels, predictions, classes)
            assert ours.dtype == np.int64
            assert np.array_equal(ours, expected)

    def test_rows_are_true_classes_and_columns_predictions(self) -> None:
        """Cell (i, j) counts examples of class i predicted as class j."""
        matrix = confusion_matrix(["a", "a", "b"], ["b", "a", "b"], ["a", "b"])
        assert matrix.tolist() == [[1, 1], [0, 1]]

    def test_classes_must_be_distinct_and_present(self) -> None:
        """Duplicate or no classes are caller errors."""
        with pytest.raises(ValueError, match="distinct"):
            confusion_matrix(["a"], ["a"], ["a", "a"])
        with pytest.raises(ValueError, match="empty"):
            confusion_matrix(["a"], ["a"], [])


class TestClassificationSuite:
    """Accuracy, precision, recall and F1 from summed statistics."""

    def test_names_are_summaries_then_per_class(self) -> None:
        """Names list the ten summaries, then precision, recall and f1 for each class in order."""
        suite = ClassificationSuite(["neg", "pos"])
        assert suite.names == (
            *SUMMARY_METRICS,
            "precision[neg]",
            "recall[neg]",
            "f1[neg]",
            "precision[pos]",
            "recall[pos]",
            "f1[pos]",
        )

    def test_random_cases_equal_sklearn(self) -> None:
        """300 random label sets (imbalanced, missing and unknown classes) equal sklearn's."""
        rng = random.Random(7)
        for _ in range(300):
            _assert_matches_sklearn(*_random_case(rng))

    def test_a_single_class_equals_sklearn(self) -> None:
        """One class, always predicted, equals sklearn."""
        _assert_matches_sklearn(["spam"] * 5, ["spam"] * 5, ["spam"])

    def test_predictions_outside_classes_count_as_wrong(self) -> None:
        """A prediction outside the classes is a miss for its true class and a hit for nobody."""
        values = _suite_values(["a", "a", "b"], ["a", "zzz", "b"], ["a", "b"])
        assert values["recall[a]"] == 0.5
        assert values["precision[a]"] == 1.0
        assert abs(values["accuracy"] - 2 / 3) <= TOLERANCE
        _assert_matches_sklearn(["a", "a", "b"], ["a", "zzz", "b"], ["a", "b"])

    def test_labels_outside_the_classes_equal_sklearn(self) -> None:
        """Examples labelled outside the classes count only as false positives, as in sklearn."""
        _assert_matches_sklearn(["x", "x", "a"], ["a", "x", "a"], ["a"])

    def test_no_supported_class_falls_back_to_unweighted_means(self) -> None:
        """With zero support everywhere, weighted averages are plain means, as in sklearn."""
        _assert_matches_sklearn(["x", "y"], ["a", "b"], ["a", "b"])

    def test_each_resample_row_equals_sklearn_on_that_resample(self) -> None:
        """finalize(counts @ statistics) equals sklearn on each of 40 bootstrap resamples."""
        rng = random.Random(3)
        labels, predictions, _ = _random_case(rng)
        while len(labels) < 20:
            labels, predictions, _ = _random_case(rng)
        classes = classes_of(labels, predictions)
        suite = ClassificationSuite(classes)
        stats = suite.statistics(score_classification(predictions, labels))
        np_rng = np.random.default_rng(5)
        counts = np_rng.multinomial(len(labels), [1 / len(labels)] * len(labels), size=40)
        values = suite.finalize(counts @ stats)
        assert values.shape == (40, len(suite.names))
        for row, count in enumerate(counts):
            resampled_labels = np.repeat(labels, count).tolist()
            resampled_predictions = np.repeat(predictions, count).tolist()
            expected = _reference(resampled_labels, resampled_predictions, classes)
            for column, name in enumerate(suite.names):
                _assert_close(values[row, column], expected[name], name)

    @settings(max_examples=200, deadline=None)
    @given(
        pairs=st.lists(
            st.tuples(st.sampled_from("abcd"), st.sampled_from("abcde")), min_size=1, max_size=40
        ),
        classes=st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6, unique=True),
    )
    def test_arbitrary_label_sets_equal_sklearn(
        self, pairs: list[tuple[str, str]], classes: list[str]
    ) -> None:
        """Any labels, predictions and class list give sklearn's values."""
        labels, predictions = [label for label, _ in pairs], [p for _, p in pairs]
        _assert_matches_sklearn(labels, predictions, classes)

    def test_statistics_are_one_hot(self) -> None:
        """Each example has a 1 for itself, its correctness, its true, predicted and hit class."""
        suite = ClassificationSuite(["a", "b"])
        stats = suite.statistics(score_classification(["a", "b", "q"], ["a", "a", "b"]))
        assert stats.tolist() == [
            [1, 1, 1, 0, 1, 0, 1, 0],
            [1, 0, 1, 0, 0, 1, 0, 0],
            [1, 0, 0, 1, 0, 0, 0, 0],
        ]
