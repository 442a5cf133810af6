"""Throughput of StreamFlow's ROUGE scorer against a plain rouge-score loop, on the same pairs.

    uv run python bench/rouge_bench.py --pairs 20000

Pairs are synthetic summaries: references of 3-4 sentences (about 60 words, one sentence per line)
drawn from a Zipf-like vocabulary of inflected words, and predictions made from them by dropping,
substituting (often by another inflection of the same stem), inserting and reordering. The stock
loop runs on at most `STOCK_PAIRS` of them so the bench stays under a minute.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from itertools import accumulate

import numpy as np
import pandas as pd
from rouge_score import rouge_scorer

from pipelines.evaluation import rouge
from pipelines.evaluation.rouge import ROUGE_COLUMNS, ROUGE_TYPES, score_rouge

STOCK_PAIRS = 2_000

# fmt: off
_FUNCTION_WORDS = (
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "on", "with", "as", "was",
    "by", "at", "be", "this", "from", "or", "an", "are", "not", "but", "which", "has", "its",
    "have", "were", "their", "they", "we", "he", "she", "his", "her", "more", "than", "also",
    "can", "will", "into", "about", "after",
)
_SUFFIXES = ("", "s", "ed", "ing", "er", "ers", "ly", "ness", "ation", "ations", "ize", "izes")
_SUFFIX_WEIGHTS = (10, 5, 4, 4, 2, 1, 2, 1, 2, 1, 1, 1)
_ONSETS = (
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v",
    "w", "z", "br", "cl", "dr", "fl", "gr", "pl", "pr", "sh", "st", "tr", "th", "ch",
)
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou")
_CODAS = ("", "", "n", "r", "l", "s", "t", "m", "nd", "st", "rk")
# fmt: on


class _Vocabulary:
    """A seeded Zipf-like vocabulary: function words, inflected content words and numbers."""

    def __init__(self, rng: random.Random, n_stems: int = 800) -> None:
        stems: list[str] = []
        while len(stems) < n_stems:
            syllables = rng.choice((1, 2, 2, 3))
            stem = "".join(
                rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                for _ in range(syllables)
            )
            if stem not in stems:
                stems.append(stem)
        self.stems = stems
        self.stem_of: dict[str, str] = {}
        self._stem_weights = list(accumulate(1 / (rank + 1) ** 1.05 for rank in range(n_stems)))
        self._suffix_weights = list(accumulate(_SUFFIX_WEIGHTS))
        self._function_weights = list(
            accumulate(1 / (rank + 1) for rank in range(len(_FUNCTION_WORDS)))
        )

    def inflect(self, rng: random.Random, stem: str) -> str:
        word = stem + rng.choices(_SUFFIXES, cum_weights=self._suffix_weights)[0]
        self.stem_of[word] = stem
        return word

    def word(self, rng: random.Random) -> str:
        kind = rng.random()
        if kind < 0.4:
            return rng.choices(_FUNCTION_WORDS, cum_weights=self._function_weights)[0]
        if kind < 0.97:
            stem = rng.choices(self.stems, cum_weights=self._stem_weights)[0]
            return self.inflect(rng, stem)
        return str(rng.choice((rng.randint(0, 99), rng.randint(1900, 2030), rng.randint(0, 10**6))))


def _sentence(rng: random.Random, words: list[str]) -> str:
    text = " ".join(word + ("," if rng.random() < 0.06 else "") for word in words)
    return text[:1].upper() + text[1:].rstrip(",") + rng.choice(".....!?;")


def _edit(rng: random.Random, vocabulary: _Vocabulary, words: list[str]) -> list[str]:
    edited: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < 0.08:
            continue
        if roll < 0.16:
            edited.append(vocabulary.word(rng))
        elif roll < 0.22 and word in vocabulary.stem_of:
            edited.append(vocabulary.inflect(rng, vocabulary.stem_of[word]))
        else:
            edited.append(word)
        if rng.random() < 0.06:
            edited.append(vocabulary.word(rng))
    return edited or [vocabulary.word(rng)]


def generate_pairs(n_pairs: int, seed: int) -> tuple[list[str], list[str]]:
    """Seeded (predictions, references), references one sentence per line."""
    rng = random.Random(seed)
    vocabulary = _Vocabulary(rng)
    predictions: list[str] = []
    references: list[str] = []
    for _ in range(n_pairs):
        sentences = [
            [vocabulary.word(rng) for _ in range(rng.randint(13, 21))]
            for _ in range(rng.choice((3, 4)))
        ]
        references.append("\n".join(_sentence(rng, words) for words in sentences))
        predicted = [_edit(rng, vocabulary, words) for words in sentences]
        if len(predicted) > 1 and rng.random() < 0.15:
            del predicted[rng.randrange(len(predicted))]
        if len(predicted) > 1 and rng.random() < 0.2:
            index = rng.randrange(len(predicted) - 1)
            predicted[index], predicted[index + 1] = predicted[index + 1], predicted[index]
        lines = [_sentence(rng, words) for words in predicted]
        if rng.random() < 0.1:
            predictions.append(" ".join(lines))
        else:
            predictions.append("\n".join(lines))
    return predictions, references


def _stock_scores(
    scorer: rouge_scorer.RougeScorer, predictions: list[str], references: list[str]
) -> np.ndarray:
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(target=reference, prediction=prediction)
        rows.append([value for rouge_type in ROUGE_TYPES for value in scores[rouge_type]])
    return np.array(rows, dtype=np.float64)


def _timed(score: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    scores = score()
    return scores, time.perf_counter() - started


def run(n_pairs: int = 2000, seed: int = 12345) -> dict[str, float]:
    """Pairs per second of each scorer and StreamFlow's speed-ups; asserts identical scores.

    StreamFlow's cold runs start with an empty stem cache, as in a fresh process; the warm run
    repeats the single-process call with the stems the first call cached.
    """
    predictions, references = generate_pairs(n_pairs, seed)
    n_stock = min(n_pairs, STOCK_PAIRS)
    stock_scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)

    started = time.perf_counter()
    stock = _stock_scores(stock_scorer, predictions[:n_stock], references[:n_stock])
    stock_seconds = time.perf_counter() - started

    rouge._stem.cache_clear()
    single, single_seconds = _timed(lambda: score_rouge(predictions, references))
    warm, warm_seconds = _timed(lambda: score_rouge(predictions, references))
    rouge._stem.cache_clear()
    parallel, parallel_seconds = _timed(lambda: score_rouge(predictions, references, processes=2))

    assert list(single.columns) == list(ROUGE_COLUMNS)
    assert np.array_equal(single.to_numpy()[:n_stock], stock), "scores differ from rouge-score"
    assert single.equals(warm), "a warm scorer's scores differ from a cold one's"
    assert single.equals(parallel), "processes=2 scores differ from processes=1"

    stock_rate = n_stock / stock_seconds
    rates = {
        "single": n_pairs / single_seconds,
        "single_warm": n_pairs / warm_seconds,
        "two_process": n_pairs / parallel_seconds,
    }
    return {"stock_pairs_per_s": stock_rate} | {
        f"{name}_{measure}": value
        for name, rate in rates.items()
        for measure, value in (("pairs_per_s", rate), ("speedup", rate / stock_rate))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2000, help="pairs StreamFlow scores")
    parser.add_argument("--seed", type=int, default=12345)
    arguments = parser.parse_args()
    results = run(arguments.pairs, arguments.seed)
    n_stock = min(arguments.pairs, STOCK_PAIRS)
    stock_rate = results["stock_pairs_per_s"]
    print(f"{'rouge-score loop':<30} {stock_rate:8,.0f} pairs/s         ({n_stock} pairs)")
    for name, label in (
        ("single", "StreamFlow, 1 process, cold"),
        ("single_warm", "StreamFlow, 1 process, warm"),
        ("two_process", "StreamFlow, 2 processes, cold"),
    ):
        print(
            f"{label:<30} {results[f'{name}_pairs_per_s']:8,.0f} pairs/s  "
            f"x{results[f'{name}_speedup']:<5.1f} ({arguments.pairs} pairs)"
        )
    print("scores identical to rouge-score: yes")


if __name__ == "__main__":
    main()
