"""Throughput of StreamFlow's BLEU / chrF statistics against sacrebleu, on the same pairs.

    uv run python bench/metrics_bench.py --pairs 5000

Pairs are synthetic model outputs: references of 1-4 sentences (about 30 words, 200 characters)
from a Zipf-like vocabulary with punctuation, numbers, hyphenation, quotes, accented, Cyrillic and
CJK words and emoji; predictions are exact or whitespace-padded copies, edited copies (drops,
substitutions, insertions, swaps, truncation), unrelated texts or empty. Both implementations
score all pairs; the corpus scores must agree to 1e-9.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from itertools import accumulate
from typing import TypeVar

import sacrebleu

from pipelines.evaluation.text_metrics import (
    bleu_from_statistics,
    bleu_statistics,
    chrf_from_statistics,
    chrf_statistics,
    score_text_generation,
)

T = TypeVar("T")

# fmt: off
_FUNCTION_WORDS = (
    "the", "of", "and", "to", "a", "in", "is", "that", "for", "it", "on", "with", "as", "was",
    "by", "at", "be", "this", "from", "or", "an", "are", "not", "but", "which", "has", "its",
    "have", "were", "their", "they", "we", "I", "you", "don't", "it's", "can't",
)
_ONSETS = ("b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st",
           "tr", "pl", "sh", "th", "ch", "br", "gr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "ee")
_CODAS = ("", "", "n", "r", "l", "s", "t", "nd", "st", "ng")
_FOREIGN = ("café", "naïve", "Straße", "über", "garçon", "данные", "модель", "東京", "学习",
            "데이터", "😀", "👍🏽", "ﬁne", "Ωmega", "–", "…")
_ATTACHED = (",", ",", ",", ".", "!", "?", ";", ":", "...", ")", '"', "'s", "%")
_LEADING = ("(", '"', "$", "#", "@", "[", "'")
# fmt: on


class _Vocabulary:
    """A seeded Zipf-like vocabulary of function words, content words and odd tokens."""

    def __init__(self, rng: random.Random, n_words: int = 3000) -> None:
        words: set[str] = set()
        while len(words) < n_words:
            syllables = rng.choice((1, 2, 2, 3, 4))
            words.add(
                "".join(
                    rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
                    for _ in range(syllables)
                )
            )
        self.words = [*_FUNCTION_WORDS, *sorted(words)]
        self._weights = list(accumulate(1 / (rank + 1) ** 1.1 for rank in range(len(self.words))))

    def token(self, rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.04:
            return self._number(rng)
        if roll < 0.055:
            return rng.choice(_FOREIGN)
        word = rng.choices(self.words, cum_weights=self._weights)[0]
        if roll < 0.08:
            word = word.capitalize()
        elif roll < 0.095:
            word = f"{word}-{rng.choices(self.words, cum_weights=self._weights)[0]}"
        elif roll < 0.1:
            word = f"{word}/{rng.choice(self.words)}"
        if rng.random() < 0.1:
            word += rng.choice(_ATTACHED)
        if rng.random() < 0.02:
            word = rng.choice(_LEADING) + word
        return word

    @staticmethod
    def _number(rng: random.Random) -> str:
        return rng.choice(
            (
                str(rng.randint(0, 100)),
                str(rng.randint(1900, 2030)),
                f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}",
                f"{rng.randint(0, 99)}.{rng.randint(0, 99)}",
                f"{rng.randint(1, 9)}-{rng.randint(10, 99)}",
                f"-{rng.randint(1, 50)}",
                f"${rng.randint(1, 500)}",
                f"{rng.randint(1, 99)}%",
            )
        )


def _sentence(rng: random.Random, vocabulary: _Vocabulary) -> list[str]:
    words = [vocabulary.token(rng) for _ in range(rng.randint(3, 25))]
    words[0] = words[0][:1].upper() + words[0][1:]
    words[-1] += rng.choice((".", ".", ".", "!", "?", "", " ."))
    return words


def _edit(rng: random.Random, vocabulary: _Vocabulary, words: list[str]) -> list[str]:
    edited: list[str] = []
    for word in words:
        roll = rng.random()
        if roll < 0.08:
            continue
        edited.append(vocabulary.token(rng) if roll < 0.18 else word)
        if rng.random() < 0.05:
            edited.append(vocabulary.token(rng))
    if len(edited) > 2 and rng.random() < 0.3:
        i = rng.randrange(len(edited) - 1)
        edited[i], edited[i + 1] = edited[i + 1], edited[i]
    if len(edited) > 4 and rng.random() < 0.1:
        edited = edited[: rng.randint(1, len(edited))]
    return edited


def _join(rng: random.Random, sentences: list[list[str]]) -> str:
    text = (" " if rng.random() < 0.8 else "\n").join(" ".join(words) for words in sentences)
    roll = rng.random()
    if roll < 0.01:
        text = text.replace(" and ", " &amp; ")
    elif roll < 0.02:
        text = text.replace(" the ", " the-\n")
    return text


def generate_pairs(n_pairs: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """Seeded (predictions, references) that look like model outputs and their references."""
    rng = random.Random(seed)
    vocabulary = _Vocabulary(rng)
    predictions: list[str] = []
    references: list[str] = []
    for _ in range(n_pairs):
        sentences = [_sentence(rng, vocabulary) for _ in range(rng.choice((1, 1, 2, 2, 3, 4)))]
        reference = _join(rng, sentences) if rng.random() > 0.005 else ""
        roll = rng.random()
        if roll < 0.1:
            prediction = reference
        elif roll < 0.15:
            prediction = rng.choice((" ", "\n", "  ", "\t")) + reference + rng.choice((" ", "\n"))
        elif roll < 0.8:
            edited = [_edit(rng, vocabulary, words) for words in sentences]
            if len(edited) > 1 and rng.random() < 0.2:
                rng.shuffle(edited)
            prediction = _join(rng, [words for words in edited if words])
        elif roll < 0.97:
            prediction = _join(rng, [_sentence(rng, vocabulary) for _ in range(rng.randint(1, 3))])
        else:
            prediction = rng.choice(("", " ", "Yes.", "N/A"))
        predictions.append(prediction)
        references.append(reference)
    return predictions, references


def _best_of(repeats: int, function: Callable[[], T]) -> tuple[T, float]:
    """The result of `function` and its fastest wall time over `repeats` calls."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return result, best


def run(n_pairs: int = 5000, seed: int = 7, repeats: int = 3) -> dict[str, float]:
    """Pairs per second of sacrebleu and of StreamFlow, and the speed-ups; asserts equal scores.

    Each timing is the best of `repeats`, so that load from other processes inflates it less.
    """
    predictions, references = generate_pairs(n_pairs, seed)

    def stock_bleu() -> float:
        # force=True only silences sacrebleu's warning about lines ending in " ."
        return sacrebleu.corpus_bleu(predictions, [references], force=True).score

    def stock_chrf() -> float:
        return sacrebleu.corpus_chrf(predictions, [references]).score

    def bleu() -> float:
        return float(bleu_from_statistics(bleu_statistics(predictions, references).sum(0))[0])

    def chrf() -> float:
        return float(chrf_from_statistics(chrf_statistics(predictions, references).sum(0))[0])

    stock_bleu_score, stock_bleu_s = _best_of(repeats, stock_bleu)
    stock_chrf_score, stock_chrf_s = _best_of(repeats, stock_chrf)
    bleu_score, bleu_s = _best_of(repeats, bleu)
    chrf_score, chrf_s = _best_of(repeats, chrf)
    frame, frame_s = _best_of(repeats, lambda: score_text_generation(predictions, references))

    assert abs(bleu_score - stock_bleu_score) <= 1e-9, f"{bleu_score} != {stock_bleu_score}"
    assert abs(chrf_score - stock_chrf_score) <= 1e-9, f"{chrf_score} != {stock_chrf_score}"
    assert len(frame) == n_pairs

    return {
        "sacrebleu_bleu_pairs_per_s": n_pairs / stock_bleu_s,
        "sacrebleu_chrf_pairs_per_s": n_pairs / stock_chrf_s,
        "bleu_pairs_per_s": n_pairs / bleu_s,
        "chrf_pairs_per_s": n_pairs / chrf_s,
        "score_text_generation_pairs_per_s": n_pairs / frame_s,
        "bleu_speedup": stock_bleu_s / bleu_s,
        "chrf_speedup": stock_chrf_s / chrf_s,
        "bleu_and_chrf_speedup": (stock_bleu_s + stock_chrf_s) / frame_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=3, help="timings keep the best of these")
    arguments = parser.parse_args()
    r = run(arguments.pairs, arguments.seed, arguments.repeats)
    print(f"{arguments.pairs} pairs, one process, best of {arguments.repeats}")
    print(f"sacrebleu corpus_bleu      {r['sacrebleu_bleu_pairs_per_s']:9,.0f} pairs/s")
    print(f"sacrebleu corpus_chrf      {r['sacrebleu_chrf_pairs_per_s']:9,.0f} pairs/s")
    print(
        f"StreamFlow BLEU statistics {r['bleu_pairs_per_s']:9,.0f} pairs/s  "
        f"x{r['bleu_speedup']:.1f}"
    )
    print(
        f"StreamFlow chrF statistics {r['chrf_pairs_per_s']:9,.0f} pairs/s  "
        f"x{r['chrf_speedup']:.1f}"
    )
    print(
        f"score_text_generation      {r['score_text_generation_pairs_per_s']:9,.0f} pairs/s  "
        f"x{r['bleu_and_chrf_speedup']:.1f} vs sacrebleu BLEU + chrF"
    )
    print("corpus BLEU and chrF equal sacrebleu's: yes")


if __name__ == "__main__":
    main()
