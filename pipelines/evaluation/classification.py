"""Per-example classification scores and the suite of accuracy / precision / recall / F1.

The classes are the dataset version's label set, the same for every run on it; a prediction
outside the set is wrong and is nobody's prediction (it never adds a class). Values match
scikit-learn:

* accuracy: `accuracy_score(labels, predictions)`;
* per class: `precision_recall_fscore_support(labels, predictions, labels=classes,
  average=None, zero_division=np.nan)`: a value whose denominator is zero is undefined (NaN,
  shown as null): precision of a class never predicted, recall of a class with no support, F1
  of a class neither present nor predicted;
* macro: the same with `labels=` the classes *with support* in the examples scored (a slice, a
  resample) and `zero_division=0`, so a class absent from a slice does not count as F1 = 0;
* micro and weighted: `labels=classes`, `zero_division=0` (classes without support weigh 0).

The sufficient statistics per example are one-hot indicators of its true class, its predicted
class and a hit on the diagonal (the confusion matrix's margins and diagonal, O(classes) rather
than O(classes²) columns).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipelines.evaluation.suite import FloatArray

SUMMARY_METRICS: tuple[str, ...] = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
)


def classes_of(labels: Sequence[str], predictions: Sequence[str]) -> tuple[str, ...]:
    """The sorted union of the labels and the predictions."""
    return tuple(sorted(set(labels) | set(predictions)))


def _indices(values: Sequence[str] | pd.Series, classes: Sequence[str]) -> npt.NDArray[np.intp]:
    """Position of each value in `classes`, -1 for values outside them."""
    return pd.Index(list(classes)).get_indexer(pd.Index(list(values))).astype(np.intp)


def _check_classes(classes: Sequence[str]) -> tuple[str, ...]:
    classes = tuple(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {classes!r}")
    return classes


def score_classification(predictions: Sequence[str], labels: Sequence[str]) -> pd.DataFrame:
    """One row per example: `label`, `prediction` and `correct` (1.0 if they are equal)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels; need one each")
    label = pd.Series(list(labels), dtype=object)
    prediction = pd.Series(list(predictions), dtype=object)
    return pd.DataFrame(
        {
            "label": label,
            "prediction": prediction,
            "correct": (label == prediction).to_numpy(dtype=np.float64),
        }
    )


def confusion_matrix(
    labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]
) -> npt.NDArray[np.int64]:
    """Counts of (true class, predicted class), rows and columns ordered as `classes`.

    Examples whose label or prediction is outside `classes` are left out, as in scikit-learn.
    """
    classes = _check_classes(classes)
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions but {len(labels)} labels; need one each")
    k = len(classes)
    true, pred = _indices(labels, classes), _indices(predictions, classes)
    inside = (true >= 0) & (pred >= 0)
    cells = np.bincount(true[inside] * k + pred[inside], minlength=k * k)
    return cells.reshape(k, k).astype(np.int64)


def out_of_set_counts(
    labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]
) -> tuple[list[int], dict[str, int]]:
    """Predictions outside `classes`: how many per true class (in `classes` order), and how
    often each stray value was predicted."""
    classes = _check_classes(classes)
    true, pred = _indices(labels, classes), _indices(predictions, classes)
    outside = pred < 0
    per_class = np.bincount(true[outside & (true >= 0)], minlength=len(classes))
    strays: dict[str, int] = {}
    for value, is_outside in zip(predictions, outside.tolist(), strict=True):
        if is_outside:
            strays[value] = strays.get(value, 0) + 1
    return [int(count) for count in per_class], strays


def _divide(numerator: FloatArray, denominator: FloatArray, undefined: float = 0.0) -> FloatArray:
    """numerator / denominator, `undefined` where the denominator is 0 (zero_division)."""
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, undefined, numerator / safe)


class ClassificationSuite:
    """Accuracy and macro / micro / weighted / per-class precision, recall and F1."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = _check_classes(classes)
        self._names = (
            *SUMMARY_METRICS,
            *(f"{metric}[{c}]" for c in self.classes for metric in ("precision", "recall", "f1")),
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Summary metric names, then precision[c], recall[c], f1[c] for each class c."""
        return self._names

    def averaged_over(self, scores: pd.DataFrame) -> tuple[str, ...]:
        """The classes macro averages of `scores` run over: those with support in them."""
        present = set(scores["label"].astype(str))
        return tuple(c for c in self.classes if c in present)

    def statistics(self, scores: pd.DataFrame) -> FloatArray:
        """Per example: [1, correct, true one-hot (K), predicted one-hot (K), hit one-hot (K)]."""
        k = len(self.classes)
        n = len(scores)
        true = _indices(scores["label"], self.classes)
        pred = _indices(scores["prediction"], self.classes)
        rows = np.arange(n)
        stats = np.zeros((n, 2 + 3 * k))
        stats[:, 0] = 1.0
        stats[:, 1] = scores["correct"].to_numpy(dtype=np.float64)
        stats[rows[true >= 0], 2 + true[true >= 0]] = 1.0
        stats[rows[pred >= 0], 2 + k + pred[pred >= 0]] = 1.0
        hit = (true >= 0) & (true == pred)
        stats[rows[hit], 2 + 2 * k + true[hit]] = 1.0
        return stats

    def finalize(self, sums: FloatArray) -> FloatArray:
        """Metrics of each row of summed statistics: (R, 2 + 3K) -> (R, len(names))."""
        sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
        k = len(self.classes)
        n, correct = sums[:, 0], sums[:, 1]
        true, pred, hit = sums[:, 2 : 2 + k], sums[:, 2 + k : 2 + 2 * k], sums[:, 2 + 2 * k :]
        precision = _divide(hit, pred)
        recall = _divide(hit, true)
        f1 = _divide(2.0 * hit, true + pred)
        undefined = np.nan
        per_class = np.stack(
            [
                _divide(hit, pred, undefined),
                _divide(hit, true, undefined),
                _divide(2.0 * hit, true + pred, undefined),
            ],
            axis=2,
        )  # (R, K, 3)

        # Macro averages run over the classes with support in these examples.
        present = true > 0
        counted = present.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            macro = np.stack(
                [(m * present).sum(axis=1) / counted for m in (precision, recall, f1)], axis=1
            )
        macro[counted == 0] = np.nan

        zeroed = np.stack([precision, recall, f1], axis=2)
        support = true.sum(axis=1, keepdims=True)
        # scikit-learn falls back to the unweighted mean when every support is zero.
        weights = np.where(support > 0, true, 1.0)
        weighted = (zeroed * weights[:, :, None]).sum(axis=1) / weights.sum(axis=1)[:, None]

        hit_all, true_all, pred_all = hit.sum(axis=1), true.sum(axis=1), pred.sum(axis=1)
        micro = np.stack(
            [
                _divide(hit_all, pred_all),
                _divide(hit_all, true_all),
                _divide(2.0 * hit_all, true_all + pred_all),
            ],
            axis=1,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            accuracy = correct / n
        return np.column_stack(
            [
                accuracy,
                macro,
                micro,
                weighted,
                per_class.reshape(len(sums), 3 * k),
            ]
        )
