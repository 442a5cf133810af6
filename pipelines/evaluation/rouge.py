"""ROUGE-1/2/L/Lsum scores equal to rouge-score 0.1.2's, computed about 40x faster.

rouge-score tokenises every text twice, stems every word again on every call and fills full
dynamic-programming tables in Python. This scorer reads each text once, maps every distinct word to
an integer id of its stem once per scorer, counts n-gram overlaps on those ids, takes rougeL from
rapidfuzz's bit-parallel LCS and rebuilds rougeLsum's union LCS from bit-parallel DP rows. Every
value is the same float rouge-score returns, including its back-tracking and tie-breaking.
"""

from __future__ import annotations

import multiprocessing
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import chain

import numpy as np
import numpy.typing as npt
import pandas as pd
from rapidfuzz.distance import LCSseq

ROUGE_TYPES: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ROUGE_COLUMNS: tuple[str, ...] = tuple(
    f"{rouge_type}_{statistic}"
    for rouge_type in ROUGE_TYPES
    for statistic in ("precision", "recall", "f")
)

Scores = tuple[float, float, float, float, float, float, float, float, float, float, float, float]

_WORD = re.compile(r"[a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")
_DROPPED = -1
# Distinct words a scorer remembers before it starts afresh; ~100 MB at the limit.
_MAX_VOCABULARY = 1 << 20
# Below this many pairs per process, starting workers costs more than it saves.
_MIN_PAIRS_PER_PROCESS = 2_000
_CHUNKS_PER_PROCESS = 4
# rouge-score reports every score as 0 when either text has no tokens.
_NO_OVERLAP: Scores = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


class _Vocabulary(dict[str, int]):
    """Lower-cased word -> id of the token rouge-score makes of it, filled on first sight."""

    def __init__(self, stem: Callable[[str], str] | None) -> None:
        super().__init__()
        self._stem = stem
        self._ids: dict[str, int] = {}
        self.drops_words = False

    def __missing__(self, word: str) -> int:
        token = self._stem(word) if self._stem is not None and len(word) > 3 else word
        if _VALID_TOKEN.match(token):
            token_id = self._ids.setdefault(token, len(self._ids))
        else:
            token_id = _DROPPED
            self.drops_words = True
        self[word] = token_id
        return token_id


def _porter_stem() -> Callable[[str], str]:
    """rouge-score's stemmer: nltk's PorterStemmer in its default (NLTK extensions) mode."""
    from nltk.stem.porter import PorterStemmer  # importing nltk takes seconds; only if stemming

    stemmer = PorterStemmer()

    def stem(word: str) -> str:
        return str(stemmer.stem(word))

    return stem


def _fmeasure(precision: float, recall: float) -> float:
    """rouge-score's F1, evaluated in the same order so the floats agree to the last bit."""
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def _overlap(target: Counter[int], prediction: Counter[int]) -> int:
    """Size of the multiset intersection of two token (or n-gram) counts."""
    if len(prediction) < len(target):
        target, prediction = prediction, target
    return sum(min(count, prediction[key]) for key, count in target.items() if key in prediction)


def _union_lcs_hits(
    target_lines: list[list[int]],
    prediction_lines: list[list[int]],
    prediction_counts: Counter[int],
) -> int:
    """rouge-score's summary-level LCS hit count (`_summary_level_lcs`) for tokenised lines.

    For each target line rouge-score unions, over the prediction lines, the target positions of
    one LCS read out of the DP table by `_backtrack_norec`. Here the DP rows are bit-parallel
    (Hyyro): bit j-1 of a row is set where its LCS length steps up at column j. All prediction
    lines share one big int, each followed by a guard bit that absorbs the carry, so one pass over
    a target line fills the rows for every prediction line at once.

    Reading `_backtrack_norec`'s path needs two facts per row: if the row is one higher than the
    row above at the current column, the path slides left to the nearest match of the row's token
    and takes it; otherwise it takes a match at the current column or moves up. Rows whose token
    is absent from the prediction are equal to the row above and the path passes through them.

    The hits are then clipped per token type; since union positions are distinct target
    positions, that clipping equals the multiset intersection of the union with the prediction.
    """
    masks: dict[int, int] = {}
    segments: list[tuple[int, int]] = []
    start = 0
    for line in prediction_lines:
        bit = 1 << start
        for token in line:
            masks[token] = masks.get(token, 0) | bit
            bit <<= 1
        end = start + len(line)
        segments.append((1 << start, end))
        start = end + 1
    columns = (1 << start) - 1
    for _, end in segments:
        columns ^= 1 << end

    union_tokens: list[int] = []
    for target_line in target_lines:
        rows: list[tuple[int, int, int]] = []
        no_steps = columns
        for position, token in enumerate(target_line):
            match = masks.get(token)
            if match:
                rows.append((position, match, columns ^ no_steps))
                matched = no_steps & match
                no_steps = ((no_steps + matched) | (no_steps - matched)) & columns
        if not rows:
            continue
        last_row = columns ^ no_steps
        rows.reverse()
        chosen: set[int] = set()
        for first_bit, end in segments:
            # The path's column is tracked as `current`, its bit, and `below`, the bits left of
            # and including it; `length` is the DP value at the path's cell.
            current = 1 << (end - 1)
            below = (current << 1) - first_bit
            length = (last_row & below).bit_count()
            if not length:
                continue
            for position, match, above_row in rows:
                above = (above_row & below).bit_count()
                if length != above:
                    chosen.add(position)
                    current = 1 << ((match & below).bit_length() - 1)
                    below = current - first_bit
                    current >>= 1
                    length = above
                    if not length:
                        break
                elif match & current:
                    chosen.add(position)
                    below = current - first_bit
                    current >>= 1
                    length -= 1
                    if not length:
                        break
        union_tokens.extend(target_line[position] for position in chosen)
    return _overlap(Counter(union_tokens), prediction_counts)


class RougeScorer:
    """Scores prediction/reference pairs on rouge1, rouge2, rougeL and rougeLsum.

    Keeps a per-scorer cache of word -> stemmed token id, bounded at `_MAX_VOCABULARY` words.
    """

    def __init__(self, *, use_stemmer: bool = True) -> None:
        self._stem = _porter_stem() if use_stemmer else None
        self._vocabulary = _Vocabulary(self._stem)

    def score_batch(self, predictions: Sequence[str], references: Sequence[str]) -> pd.DataFrame:
        """One row of `ROUGE_COLUMNS` per pair, in input order."""
        return _frame(self._score_rows(predictions, references))

    def _score_rows(
        self, predictions: Sequence[str], references: Sequence[str]
    ) -> npt.NDArray[np.float64]:
        if len(predictions) != len(references):
            raise ValueError(
                f"{len(predictions)} predictions but {len(references)} references; "
                "ROUGE scores pairs"
            )
        rows = [
            self._score_pair(prediction, reference)
            for prediction, reference in zip(predictions, references, strict=True)
        ]
        return np.array(rows, dtype=np.float64).reshape(len(rows), len(ROUGE_COLUMNS))

    def _score_pair(self, prediction: str, reference: str) -> Scores:
        if len(self._vocabulary) > _MAX_VOCABULARY:
            self._vocabulary = _Vocabulary(self._stem)
        target, target_lines = self._tokenize(reference)
        predicted, predicted_lines = self._tokenize(prediction)
        n_target = len(target)
        n_predicted = len(predicted)
        if not n_target or not n_predicted:
            return _NO_OVERLAP

        predicted_counts = Counter(predicted)
        unigram_hits = _overlap(Counter(target), predicted_counts)
        bigram_hits = _overlap(_bigrams(target), _bigrams(predicted))
        lcs_length: int = LCSseq.similarity(target, predicted)
        summary_hits = _union_lcs_hits(target_lines, predicted_lines, predicted_counts)

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
        lowered = text.lower()
        vocabulary = self._vocabulary
        if "\n" not in lowered:
            tokens = [vocabulary[word] for word in _WORD.findall(lowered)]
            if vocabulary.drops_words:
                tokens = [token for token in tokens if token != _DROPPED]
            return tokens, [tokens] if tokens else []
        lines = []
        for line in lowered.split("\n"):
            tokens = [vocabulary[word] for word in _WORD.findall(line)]
            if vocabulary.drops_words:
                tokens = [token for token in tokens if token != _DROPPED]
            if tokens:
                lines.append(tokens)
        return list(chain.from_iterable(lines)), lines


def _bigrams(tokens: list[int]) -> Counter[int]:
    """Bigram counts, each bigram packed into one int (ids are below 2**32)."""
    return Counter([(first << 32) | second for first, second in zip(tokens, tokens[1:])])


def _frame(rows: npt.NDArray[np.float64]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ROUGE_COLUMNS))


def _score_chunk(
    predictions: Sequence[str], references: Sequence[str], use_stemmer: bool
) -> npt.NDArray[np.float64]:
    """Worker entry point: a fresh scorer per chunk."""
    return RougeScorer(use_stemmer=use_stemmer)._score_rows(predictions, references)


def score_rouge(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    use_stemmer: bool = True,
    processes: int = 1,
) -> pd.DataFrame:
    """One row of `ROUGE_COLUMNS` per pair; `processes > 1` spreads large batches over processes."""
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; ROUGE scores pairs"
        )
    workers = min(processes, len(predictions) // _MIN_PAIRS_PER_PROCESS)
    if workers <= 1:
        return RougeScorer(use_stemmer=use_stemmer).score_batch(predictions, references)
    n_chunks = workers * _CHUNKS_PER_PROCESS
    bounds = np.linspace(0, len(predictions), n_chunks + 1).astype(int).tolist()
    with ProcessPoolExecutor(max_workers=workers, mp_context=_process_context()) as pool:
        parts = pool.map(
            _score_chunk,
            [list(predictions[start:stop]) for start, stop in zip(bounds, bounds[1:])],
            [list(references[start:stop]) for start, stop in zip(bounds, bounds[1:])],
            [use_stemmer] * n_chunks,
        )
        return _frame(np.concatenate(list(parts)))


def _process_context() -> multiprocessing.context.BaseContext:
    """Fork where the platform has it: a spawned worker re-imports nltk, which takes seconds."""
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()
