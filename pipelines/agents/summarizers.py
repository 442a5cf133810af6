"""Demo summarisers for technicians' job notes: extractive, local and deterministic."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Protocol, Self

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Ridge
from threadpoolctl import threadpool_limits

_BOUNDARY = re.compile(r"(?<=[.!?])\s+")
_TOKEN = re.compile(r"[a-z0-9]+")
_ABBREVIATIONS = frozenset(
    {"approx.", "e.g.", "i.e.", "vs.", "no.", "mr.", "mrs.", "ms.", "dr.", "st.", "etc.", "inc."}
)
# Index-from-start and index-from-end buckets; a linear model needs them to learn that the
# middle of a note (diagnosis, repair) matters more than its first line (arrival).
_HEAD_BUCKETS = 4
_TAIL_BUCKETS = 2


def split_sentences(text: str) -> list[str]:
    """The sentences of a text: split at line breaks and at . ! ? followed by whitespace.

    A piece is glued back to the previous one when it starts in lowercase or the previous one
    ends in a common abbreviation, so "approx. 3 ft" and "Mr. Lee" stay whole.
    """
    sentences: list[str] = []
    for line in text.splitlines():
        for piece in _BOUNDARY.split(line.strip()):
            if not piece:
                continue
            previous_word = sentences[-1].rsplit(None, 1)[-1].lower() if sentences else ""
            if sentences and (piece[0].islower() or previous_word in _ABBREVIATIONS):
                sentences[-1] = f"{sentences[-1]} {piece}"
            else:
                sentences.append(piece)
    return sentences


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def unigram_f1(candidate: str, reference: str) -> float:
    """Word-overlap F1 between two texts (lowercased alphanumeric tokens, with multiplicity)."""
    cand, ref = Counter(_tokens(candidate)), Counter(_tokens(reference))
    overlap = sum((cand & ref).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(cand.values())
    recall = overlap / sum(ref.values())
    return 2 * precision * recall / (precision + recall)


class Summarizer(Protocol):
    """A job-note summariser: fitted once, then maps notes to summaries."""

    def fit(self, notes: Sequence[str], summaries: Sequence[str] | None = None) -> Self:
        """Learn from training notes (and reference summaries, when the method uses them)."""
        ...

    def predict(self, notes: Sequence[str]) -> list[str]:
        """One summary per note."""
        ...


@dataclass
class LeadSentenceSummarizer:
    """The baseline summariser: a note's first sentence."""

    def fit(self, notes: Sequence[str], summaries: Sequence[str] | None = None) -> Self:
        """Nothing to learn; returns itself."""
        del notes, summaries
        return self

    def predict(self, notes: Sequence[str]) -> list[str]:
        """The first sentence of each note ("" for an empty note)."""
        return [next(iter(split_sentences(note)), "") for note in notes]


@dataclass
class ScoredSentenceSummarizer:
    """An extractive summariser that ranks a note's sentences and keeps the best ones in order.

    Each sentence is described by its TF-IDF words, its position from the start and from the
    end of the note, its length, its share of digits and its cosine similarity to the whole
    note. Fitted with reference summaries, a ridge regression learns to predict how much of
    the reference a sentence covers (word-overlap F1); fitted without, sentences are ranked by
    similarity to the note alone.
    """

    max_sentences: int = 2
    alpha: float = 1.0
    _vectorizer: Any = field(default=None, init=False, repr=False)
    _model: Any = field(default=None, init=False, repr=False)

    def fit(self, notes: Sequence[str], summaries: Sequence[str] | None = None) -> Self:
        """Learn the vocabulary from `notes` and, given `summaries`, the sentence scorer."""
        if self.max_sentences < 1:
            raise ValueError("max_sentences must be at least 1")
        if summaries is not None and len(summaries) != len(notes):
            raise ValueError(f"got {len(notes)} notes but {len(summaries)} summaries")
        split = [split_sentences(note) for note in notes]
        sentences = [sentence for note in split for sentence in note]
        if not sentences:
            raise ValueError("need at least one non-empty note to fit")
        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        self._vectorizer.fit(sentences)
        self._model = None
        if summaries is None:
            return self
        features = self._feature_matrix([note for note in split if note])
        targets = [
            unigram_f1(sentence, summary)
            for note, summary in zip(split, summaries, strict=True)
            for sentence in note
        ]
        # Single-threaded BLAS: these matrices are small, and on few cores extra threads only
        # contend with each other.
        with threadpool_limits(limits=1, user_api="blas"):
            self._model = Ridge(alpha=self.alpha).fit(features, targets)
        return self

    def score_sentences(self, notes: Sequence[str]) -> list[list[float]]:
        """Per note, a score for each of its sentences; higher is more summary-worthy."""
        if self._vectorizer is None:
            raise RuntimeError("call fit() before scoring or predicting")
        split = [split_sentences(note) for note in notes]
        if not any(split):
            return [[] for _ in split]
        features = self._feature_matrix([note for note in split if note])
        if self._model is None:
            values = features[:, -1].toarray().ravel()
        else:
            values = np.asarray(self._model.predict(features), dtype=np.float64)
        bounds = np.cumsum([0, *(len(sentences) for sentences in split)])
        return [[float(v) for v in values[a:b]] for a, b in pairwise(bounds)]

    def predict(self, notes: Sequence[str]) -> list[str]:
        """The top-scoring sentences of each note, at most `max_sentences`, in note order."""
        summaries: list[str] = []
        for note, scores in zip(notes, self.score_sentences(notes), strict=True):
            sentences = split_sentences(note)
            ranked = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
            keep = sorted(ranked[: self.max_sentences])
            summaries.append(" ".join(sentences[i] for i in keep))
        return summaries

    def _feature_matrix(self, split: Sequence[Sequence[str]]) -> Any:
        """Feature rows for every sentence of the given notes (each a non-empty sentence list).

        The last column is the cosine similarity between a sentence and its note's centroid.
        """
        sentences = [sentence for note in split for sentence in note]
        words = self._vectorizer.transform(sentences)
        lengths = np.array([len(note) for note in split])
        owner = np.repeat(np.arange(len(split)), lengths)
        # Row i of `averaging` spreads 1/len over note i's sentences, so averaging @ words
        # holds the note centroids.
        averaging = sp.csr_matrix(
            (1.0 / lengths[owner], (owner, np.arange(len(sentences)))),
            shape=(len(split), len(sentences)),
        )
        centroids = (averaging @ words).tocsr()
        norms = np.sqrt(np.asarray(centroids.multiply(centroids).sum(axis=1)).ravel())[owner]
        dots = np.asarray(words.multiply(centroids[owner]).sum(axis=1)).ravel()
        similarity = np.divide(dots, norms, out=np.zeros(len(sentences)), where=norms > 0)

        dense = np.zeros((len(sentences), _HEAD_BUCKETS + _TAIL_BUCKETS + 3))
        row = 0
        for note in split:
            for index, sentence in enumerate(note):
                dense[row, min(index, _HEAD_BUCKETS - 1)] = 1.0
                from_end = len(note) - 1 - index
                if from_end < _TAIL_BUCKETS:
                    dense[row, _HEAD_BUCKETS + from_end] = 1.0
                tokens = _tokens(sentence)
                dense[row, -3] = np.log1p(len(tokens)) / 4.0
                dense[row, -2] = sum(token.isdigit() for token in tokens) / max(len(tokens), 1)
                row += 1
        dense[:, -1] = similarity
        return sp.hstack([words, sp.csr_matrix(dense)]).tocsr()
