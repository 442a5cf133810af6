"""ROUGE-1/2/L/Lsum scores identical to rouge-score 0.1.2's, computed 20-35x faster.

rouge-score tokenises every text twice, stems every word on every call and fills whole LCS tables
in Python. Here each text is tokenised once, each distinct word is stemmed once (stems are cached
process-wide) and mapped to an integer id, n-gram overlaps are counted on those ids, rougeL comes
from rapidfuzz's bit-parallel LCS, and rougeLsum's union LCS is read off bit-parallel DP rows
along the exact path rouge-score's back-tracking takes. Every value is the float rouge-score
returns for `score(target=reference, prediction=prediction)`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from itertools import chain, pairwise

import numpy as np
import numpy.typing as npt
import pandas as pd
from rapidfuzz.distance import LCSseq

from pipelines.evaluation.workers import process_pool

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_COLUMNS: tuple[str, ...] = tuple(
    f"{rouge_type}_{statistic}"
    for rouge_type in ROUGE_TYPES
    for statistic in ("precision", "recall", "f")
)

_Scores = tuple[float, float, float, float, float, float, float, float, float, float, float, float]

# rouge-score replaces every run of characters other than [a-z0-9] with a space after
# lower-casing; here non-ASCII characters become "?" when encoding and every byte except
# [a-z0-9] and the line break becomes a space, so `bytes.split` yields the same words.
_SEPARATORS = bytes(
    byte if chr(byte) in "abcdefghijklmnopqrstuvwxyz0123456789\n" else ord(" ")
    for byte in range(256)
)
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")
_DROPPED = -1
# Bigrams are packed as (first << 30) | second; rapidfuzz compares ints below 2**61 exactly.
_ID_BITS = 30
# Distinct words a scorer, and the process's stem cache, remember (some tens of MB at most).
_MAX_VOCABULARY = 1 << 17
_MAX_STEMS = 1 << 17
# Below this many pairs per process, starting workers costs more than it saves.
_MIN_PAIRS_PER_PROCESS = 1_000
_CHUNKS_PER_PROCESS = 4
# rouge-score reports every score as 0 when either text has no tokens.
_NO_OVERLAP: _Scores = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@functools.cache
def _porter_stemmer() -> Callable[[str], str]:
    """rouge-score's stemmer: nltk's PorterStemmer in its default (NLTK extensions) mode."""
    from nltk.stem.porter import PorterStemmer  # importing nltk takes seconds; only if stemming

    stem: Callable[[str], str] = PorterStemmer().stem
    return stem


@functools.lru_cache(maxsize=_MAX_STEMS)
def _stem(word: str) -> str:
    """The Porter stem of a lower-case word, remembered process-wide (stems never change)."""
    return _porter_stemmer()(word)


class _Vocabulary(dict[bytes, int]):
    """Lower-cased ASCII word -> id of the token rouge-score makes of it, filled on first sight.

    Ids stay below 2**30: the scorer starts a fresh vocabulary past `_MAX_VOCABULARY` words.
    """

    def __init__(self, stem: Callable[[str], str] | None) -> None:
        super().__init__()
        self._stem = stem
        self._ids: dict[str, int] = {}
        self.drops_words = False

    def __missing__(self, raw_word: bytes) -> int:
        word = raw_word.decode("ascii")
        token = self._stem(word) if self._stem is not None and len(word) > 3 else word
        if _VALID_TOKEN.match(token):
            token_id = self._ids.setdefault(token, len(self._ids))
        else:
            token_id = _DROPPED
            self.drops_words = True
        self[raw_word] = token_id
        return token_id


def _fmeasure(precision: float, recall: float) -> float:
    """rouge-score's F1, evaluated in the same order so the floats agree to the last bit."""
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _multiset_overlap(first_sorted: list[int], second_sorted: list[int]) -> int:
    """Size of the multiset intersection of two sorted sequences: exactly their LCS."""
    overlap: int = LCSseq.similarity(first_sorted, second_sorted)
    return overlap


def _bigram_overlap(target: list[int], prediction: list[int]) -> int:
    """Size of the multiset intersection of the two texts' bigrams."""
    target_bigrams = set(pairwise(target))
    if len(target_bigrams) == len(target) - 1:
        return len(target_bigrams.intersection(pairwise(prediction)))
    prediction_bigrams = set(pairwise(prediction))
    if len(prediction_bigrams) == len(prediction) - 1:
        return len(target_bigrams & prediction_bigrams)
    # Both texts repeat a bigram: compare them as sorted ints, one per bigram.
    return _multiset_overlap(
        sorted([(first << _ID_BITS) | second for first, second in pairwise(target)]),
        sorted([(first << _ID_BITS) | second for first, second in pairwise(prediction)]),
    )


def _union_lcs_hits(
    target_lines: list[list[int]],
    prediction_lines: list[list[int]],
    prediction_sorted: list[int],
) -> int:
    """rouge-score's summary-level LCS hit count (`_summary_level_lcs`) for tokenised lines.

    For each target line rouge-score unions, over the prediction lines, the target positions of
    one LCS read out of each DP table by `_backtrack_norec`; hits are then clipped per token
    type, which (union positions being distinct target positions) is the multiset intersection
    of the union with the prediction.

    The DP rows here are bit-parallel (Hyyro): bit j-1 of a row is set where the row's LCS length
    steps up at column j. All prediction lines share one int, each followed by a guard bit that
    absorbs the carry, so one pass over a target line fills the rows of every table at once.
    `_backtrack_norec` at cell (i, j) takes a match, else moves left if that cell is higher than
    the one above, else moves up. Hence, when cell (i, j) is one higher than (i-1, j), the path
    slides left along row i to the nearest match of the row's token and takes it; otherwise it
    takes a match at column j or moves up. So the path is fixed by one bit per cell, "one higher
    than the cell above", which for a whole row is the span from each bit the row gains over the
    row above to the next bit it loses (or to the guard). With one current column bit per
    prediction line, a single upward walk over the rows follows every path at once.
    """
    masks: dict[int, int] = {}
    start = 0
    guards = 0
    for line in prediction_lines:
        bit = 1 << start
        for token in line:
            masks[token] = masks.get(token, 0) | bit
            bit <<= 1
        guards |= bit
        start += len(line) + 1
    columns = (1 << start) - 1 - guards
    tops = guards >> 1

    union_tokens: list[int] = []
    for target_line in target_lines:
        rows: list[tuple[int, int, int]] = []
        no_steps = columns
        for token in target_line:
            match = masks.get(token)
            if match:
                matched = no_steps & match
                next_no_steps = ((no_steps + matched) | (no_steps - matched)) & columns
                # Bits the row gains minus bits it loses, plus each guard, is exactly the union
                # of spans [gained bit, next lost bit or guard) without borrows between lines.
                higher = (guards + next_no_steps - no_steps) & columns
                rows.append((token, match, higher))
                no_steps = next_no_steps
        current = tops
        for token, match, higher in reversed(rows):
            moving = (higher | match) & current
            if not moving:
                continue
            union_tokens.append(token)
            taken = match & current
            current ^= taken | (taken >> 1)
            sliding = moving ^ taken
            while sliding:
                column = sliding & -sliding
                sliding ^= column
                taken = 1 << ((match & (column - 1)).bit_length() - 1)
                current ^= column | (taken >> 1)
    union_tokens.sort()
    return _multiset_overlap(union_tokens, prediction_sorted)


class RougeScorer:
    """Scores prediction/reference pairs on rouge1, rouge2, rougeL and rougeLsum.

    A scorer keeps its word -> token id vocabulary (at most `_MAX_VOCABULARY` words) across
    batches, so reuse it within a thread; it is not safe to share between threads.
    """

    def __init__(self, *, use_stemmer: bool = True) -> None:
        self._stem = _stem if use_stemmer else None
        self._vocabulary = _Vocabulary(self._stem)

    def score_batch(self, predictions: Sequence[str], references: Sequence[str]) -> pd.DataFrame:
        """One row of `ROUGE_COLUMNS` per pair, in input order."""
        return _frame(self._score_rows(predictions, references))

    def _score_rows(
        self, predictions: Sequence[str], references: Sequence[str]
    ) -> npt.NDArray[np.float64]:
        _check_pairs(predictions, references)
        rows = [
            self._score_pair(prediction, reference)
            for prediction, reference in zip(predictions, references, strict=True)
        ]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(ROUGE_COLUMNS))

    def _score_pair(self, prediction: str, reference: str) -> _Scores:
        if len(self._vocabulary) > _MAX_VOCABULARY:
            self._vocabulary = _Vocabulary(self._stem)
        target, target_lines = self._tokenize(reference)
        predicted, predicted_lines = self._tokenize(prediction)
        n_target = len(target)
        n_predicted = len(predicted)
        if not n_target or not n_predicted:
            return _NO_OVERLAP
        predicted_sorted = sorted(predicted)

        lcs_length: int = LCSseq.similarity(target, predicted)
        bigram_hits = _bigram_overlap(target, predicted)
        summary_hits = _union_lcs_hits(target_lines, predicted_lines, predicted_sorted)
        unigram_hits = _multiset_overlap(sorted(target), predicted_sorted)

        p1 = unigram_hits / n_predicted
        r1 = unigram_hits / n_target
        p2 = bigram_hits / max(n_predicted - 1, 1)
        r2 = bigram_hits / max(n_target - 1, 1)
        pl = lcs_length / n_predicted
        rl = lcs_length / n_target
        ps = summary_hits / n_predicted
        rs = summary_hits / n_target
        return (
            p1,
            r1,
            _fmeasure(p1, r1),
            p2,
            r2,
            _fmeasure(p2, r2),
            pl,
            rl,
            _fmeasure(pl, rl),
            ps,
            rs,
            _fmeasure(ps, rs),
        )

    def _tokenize(self, text: str) -> tuple[list[int], list[list[int]]]:
        """Token ids of the whole text and of each of its lines that has tokens."""
        words = text.lower().encode("ascii", "replace").translate(_SEPARATORS)
        vocabulary = self._vocabulary
        to_id = vocabulary.__getitem__
        if b"\n" not in words:
            tokens = list(map(to_id, words.split()))
            if vocabulary.drops_words:
                tokens = [token for token in tokens if token != _DROPPED]
            return tokens, [tokens] if tokens else []
        lines = [list(map(to_id, line.split())) for line in words.split(b"\n")]
        if vocabulary.drops_words:
            lines = [[token for token in line if token != _DROPPED] for line in lines]
        lines = [line for line in lines if line]
        return list(chain.from_iterable(lines)), lines


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; ROUGE scores pairs"
        )


def _frame(rows: npt.NDArray[np.float64]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ROUGE_COLUMNS))


def _score_chunk(
    predictions: Sequence[str], references: Sequence[str], use_stemmer: bool
) -> npt.NDArray[np.float64]:
    """Worker entry point: a fresh vocabulary per chunk, stems shared within the worker."""
    return RougeScorer(use_stemmer=use_stemmer)._score_rows(predictions, references)


def score_rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    use_stemmer: bool = True,
    processes: int = 1,
) -> pd.DataFrame:
    """One row of `ROUGE_COLUMNS` per pair, in input order.

    With `processes > 1`, batches of at least `_MIN_PAIRS_PER_PROCESS` pairs per process are
    split over a pool of worker processes; smaller batches are scored in this process.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    _check_pairs(predictions, references)
    workers = min(processes, len(predictions) // _MIN_PAIRS_PER_PROCESS)
    if workers <= 1:
        return RougeScorer(use_stemmer=use_stemmer).score_batch(predictions, references)
    n_chunks = workers * _CHUNKS_PER_PROCESS
    bounds = np.linspace(0, len(predictions), n_chunks + 1).astype(int).tolist()
    predictions, references = list(predictions), list(references)
    with process_pool(workers) as pool:
        parts = pool.map(
            _score_chunk,
            [predictions[start:stop] for start, stop in pairwise(bounds)],
            [references[start:stop] for start, stop in pairwise(bounds)],
            [use_stemmer] * n_chunks,
        )
        return _frame(np.concatenate(list(parts)))
