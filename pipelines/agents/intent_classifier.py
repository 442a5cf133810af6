"""Demo intent classifiers for support tickets: small local scikit-learn models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class IntentClassifier:
    """A fitted text pipeline that maps ticket texts to intent labels."""

    name: str
    pipeline: Any  # a fitted sklearn Pipeline; sklearn ships no type stubs

    @property
    def classes(self) -> tuple[str, ...]:
        """The labels this classifier can predict, sorted."""
        return tuple(str(label) for label in self.pipeline.classes_)

    def predict(self, texts: Sequence[str]) -> list[str]:
        """One predicted label per text."""
        if len(texts) == 0:
            return []
        return [str(label) for label in self.pipeline.predict(list(texts))]


class IntentTrainer(Protocol):
    """A function that fits an intent classifier on labelled texts."""

    def __call__(
        self, texts: Sequence[str], labels: Sequence[str], *, seed: int = 0
    ) -> IntentClassifier: ...


def _fit(name: str, pipeline: Any, texts: Sequence[str], labels: Sequence[str]) -> IntentClassifier:
    if len(texts) != len(labels):
        raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
    if len(set(labels)) < 2:
        raise ValueError("need at least two distinct labels to train a classifier")
    # Single-threaded BLAS: the models are small, and on few cores extra threads only contend
    # with each other (lbfgs ran up to 10x slower with two BLAS threads on a two-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        pipeline.fit(list(texts), list(labels))
    return IntentClassifier(name=name, pipeline=pipeline)


def train_tfidf_logistic_regression(
    texts: Sequence[str], labels: Sequence[str], *, seed: int = 0
) -> IntentClassifier:
    """Word uni- and bigram TF-IDF features with a multinomial logistic regression."""
    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
            ("model", LogisticRegression(C=5.0, max_iter=2_000, random_state=seed)),
        ]
    )
    return _fit("tfidf_logistic_regression", pipeline, texts, labels)


def train_char_ngram_naive_bayes(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    seed: int = 0,
    max_features: int | None = 2_000,
) -> IntentClassifier:
    """A compact model: Complement Naive Bayes over the most frequent character 1-3-grams.

    The default vocabulary of 2,000 n-grams keeps the model tiny and cheap to serve, at a cost
    in accuracy; `max_features=None` keeps every n-gram.
    """
    del seed  # ComplementNB is deterministic; the seed keeps the trainers interchangeable.
    vectorizer = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(1, 3), max_features=max_features, sublinear_tf=True
    )
    pipeline = Pipeline([("tfidf", vectorizer), ("model", ComplementNB(alpha=1.0))])
    return _fit("char_ngram_naive_bayes", pipeline, texts, labels)


TRAINERS: Mapping[str, IntentTrainer] = {
    "tfidf_logistic_regression": train_tfidf_logistic_regression,
    "char_ngram_naive_bayes": train_char_ngram_naive_bayes,
}
