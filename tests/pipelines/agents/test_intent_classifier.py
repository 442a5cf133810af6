from __future__ import annotations

import pickle

import pandas as pd
import pytest

from pipelines.agents.intent_classifier import (
    TRAINERS,
    IntentClassifier,
    IntentTrainer,
    train_char_ngram_naive_bayes,
    train_tfidf_logistic_regression,
)


def accuracy(predictions: list[str], golden: pd.DataFrame) -> float:
    return sum(p == e for p, e in zip(predictions, golden["expected"], strict=True)) / len(golden)


@pytest.fixture(scope="module")
def logistic(ticket_train: pd.DataFrame) -> IntentClassifier:
    return train_tfidf_logistic_regression(ticket_train["input"], ticket_train["expected"], seed=7)


@pytest.fixture(scope="module")
def naive_bayes(ticket_train: pd.DataFrame) -> IntentClassifier:
    return train_char_ngram_naive_bayes(ticket_train["input"], ticket_train["expected"])


@pytest.fixture(scope="module")
def logistic_predictions(logistic: IntentClassifier, ticket_golden: pd.DataFrame) -> list[str]:
    return logistic.predict(ticket_golden["input"].tolist())


@pytest.fixture(scope="module")
def naive_bayes_predictions(
    naive_bayes: IntentClassifier, ticket_golden: pd.DataFrame
) -> list[str]:
    return naive_bayes.predict(ticket_golden["input"].tolist())


@pytest.fixture(scope="module")
def some_texts(ticket_golden: pd.DataFrame) -> list[str]:
    return ticket_golden["input"].iloc[:300].tolist()


class TestTfidfLogisticRegression:
    def test_accuracy_on_golden_is_good_but_not_perfect(
        self, logistic_predictions: list[str], ticket_golden: pd.DataFrame
    ) -> None:
        """Trained on the training split, it is right on most golden tickets but not all of them."""
        assert 0.83 <= accuracy(logistic_predictions, ticket_golden) <= 0.95

    def test_same_seed_gives_same_predictions(
        self, ticket_train: pd.DataFrame, some_texts: list[str]
    ) -> None:
        """Training twice with one seed gives identical predictions."""
        sample = ticket_train.iloc[:600]
        first = train_tfidf_logistic_regression(sample["input"], sample["expected"], seed=3)
        second = train_tfidf_logistic_regression(sample["input"], sample["expected"], seed=3)
        assert first.predict(some_texts) == second.predict(some_texts)

    def test_pickle_round_trip_keeps_predictions(
        self, logistic: IntentClassifier, some_texts: list[str]
    ) -> None:
        """A pickled and restored classifier predicts exactly as the original."""
        restored = pickle.loads(pickle.dumps(logistic))
        assert restored.name == "tfidf_logistic_regression"
        assert restored.predict(some_texts) == logistic.predict(some_texts)


class TestCharNgramNaiveBayes:
    def test_accuracy_on_golden_is_plausible(
        self, naive_bayes_predictions: list[str], ticket_golden: pd.DataFrame
    ) -> None:
        """The compact model is useful but clearly imperfect on golden tickets."""
        assert 0.75 <= accuracy(naive_bayes_predictions, ticket_golden) <= 0.90

    def test_is_deterministic(self, ticket_train: pd.DataFrame, some_texts: list[str]) -> None:
        """Training twice gives identical predictions, whatever the seed."""
        sample = ticket_train.iloc[:600]
        first = train_char_ngram_naive_bayes(sample["input"], sample["expected"], seed=1)
        second = train_char_ngram_naive_bayes(sample["input"], sample["expected"], seed=2)
        assert first.predict(some_texts) == second.predict(some_texts)

    def test_pickle_round_trip_keeps_predictions(
        self, naive_bayes: IntentClassifier, some_texts: list[str]
    ) -> None:
        """A pickled and restored classifier predicts exactly as the original."""
        restored = pickle.loads(pickle.dumps(naive_bayes))
        assert restored.predict(some_texts) == naive_bayes.predict(some_texts)


class TestTheTwoClassifiers:
    def test_score_measurably_differently(
        self,
        logistic_predictions: list[str],
        naive_bayes_predictions: list[str],
        ticket_golden: pd.DataFrame,
    ) -> None:
        """The demo agents differ by several accuracy points and disagree on many tickets."""
        gap = accuracy(logistic_predictions, ticket_golden) - accuracy(
            naive_bayes_predictions, ticket_golden
        )
        disagreements = sum(
            a != b for a, b in zip(logistic_predictions, naive_bayes_predictions, strict=True)
        )
        assert gap >= 0.03
        assert disagreements >= 0.08 * len(ticket_golden)

    def test_registry_names_match_the_classifiers(self) -> None:
        """TRAINERS maps each name to the trainer whose classifier carries that name."""
        texts = ["refund my invoice", "the tech never came", "invoice is wrong", "nobody came"]
        labels = ["billing", "no_show", "billing", "no_show"]
        for name, trainer in TRAINERS.items():
            assert trainer(texts * 2, labels * 2, seed=0).name == name


class TestIntentClassifier:
    def test_predicts_only_known_labels(
        self, naive_bayes: IntentClassifier, ticket_train: pd.DataFrame
    ) -> None:
        """Predictions come from the training labels, which `classes` lists in sorted order."""
        labels = sorted(set(ticket_train["expected"]))
        assert list(naive_bayes.classes) == labels
        assert set(naive_bayes.predict(["hola", "", "?!", "invoice INV-1 is wrong"])) <= set(labels)

    def test_empty_input_gives_no_predictions(self, logistic: IntentClassifier) -> None:
        """Predicting on no texts returns an empty list."""
        assert logistic.predict([]) == []

    @pytest.mark.parametrize("trainer", list(TRAINERS.values()))
    def test_rejects_mismatched_lengths(self, trainer: IntentTrainer) -> None:
        """Texts and labels must pair up one to one."""
        with pytest.raises(ValueError, match="2 texts but 1 labels"):
            trainer(["a b", "c d"], ["x"])

    @pytest.mark.parametrize("trainer", list(TRAINERS.values()))
    def test_rejects_a_single_label(self, trainer: IntentTrainer) -> None:
        """A classifier needs at least two classes to learn anything."""
        with pytest.raises(ValueError, match="two distinct labels"):
            trainer(["a b", "c d"], ["x", "x"])
