"""Per-example text-generation scores and the sufficient statistics of corpus BLEU and chrF.

The statistics are exactly sacrebleu 2.x's per-segment statistics for a single reference:
BLEU with the 13a tokenizer (``[sys_len, ref_len, correct_1..4, total_1..4]``) and chrF with
char_order=6, word_order=0, whitespace removed (``[hyp, ref, match]`` per order). Summing them
over examples and applying `corpus_bleu` / `corpus_chrf` reproduces sacrebleu's corpus scores;
both finalisers are vectorised over rows so a bootstrap can evaluate many resamples at once.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import count, repeat
from multiprocessing import get_context
from operator import sub

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
_Gram = tuple[str, ...]

BLEU_ORDER = 4
CHRF_ORDER = 6
CHRF_BETA = 2

BLEU_STAT_COLUMNS: tuple[str, ...] = (
    "bleu_sys_len",
    "bleu_ref_len",
    *(f"bleu_correct_{n}" for n in range(1, BLEU_ORDER + 1)),
    *(f"bleu_total_{n}" for n in range(1, BLEU_ORDER + 1)),
)
CHRF_STAT_COLUMNS: tuple[str, ...] = tuple(
    f"chrf_{kind}_{n}" for n in range(1, CHRF_ORDER + 1) for kind in ("hyp", "ref", "match")
)
TEXT_SCORE_COLUMNS: tuple[str, ...] = ("exact_match", "bleu", "chrf")

_N_BLEU = len(BLEU_STAT_COLUMNS)
_N_STATS = _N_BLEU + len(CHRF_STAT_COLUMNS)
# Below this many pairs per worker a process pool costs more than it saves.
_MIN_PAIRS_PER_PROCESS = 2_000
# sacrebleu's floor for log(0) in BLEU's geometric mean.
_LOG_ZERO = -9999999999.0

# --- 13a tokenisation -------------------------------------------------------------------------
# The four substitutions of sacrebleu's TokenizerRegexp, applied after the 13a preprocessing.
# The first is a pure character mapping, done here with str.translate.
_SPLIT_CHARS = re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])")
_SPLIT_TABLE = {c: f" {chr(c)} " for c in range(128) if _SPLIT_CHARS.fullmatch(chr(c))}
_PERIOD_AFTER_NON_DIGIT = re.compile(r"([^0-9])([\.,])")
_PERIOD_BEFORE_NON_DIGIT = re.compile(r"([\.,])([^0-9])")
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")


def _tokenize_word(word: str) -> tuple[str, ...]:
    """13a tokens of one whitespace-free word."""
    if word.isalnum():
        return (word,)
    line = f" {word} ".translate(_SPLIT_TABLE)
    if "." in line or "," in line:
        line = _PERIOD_AFTER_NON_DIGIT.sub(r"\1 \2 ", line)
        line = _PERIOD_BEFORE_NON_DIGIT.sub(r" \1 \2", line)
    if "-" in line:
        line = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line)
    return tuple(line.split())


def tokenize_13a(line: str, cache: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """sacrebleu's 13a tokens of a segment (after BLEU's rstrip), memoised per word in `cache`.

    Every regex of 13a either maps single characters or looks at one neighbour that is never
    whitespace-sensitive, so tokenising whitespace-separated words independently gives the
    same tokens as tokenising the whole line; words repeat, so they are cached.
    """
    if cache is None:
        cache = {}
    line = line.rstrip()
    if "<skipped>" in line:
        line = line.replace("<skipped>", "")
    if "\n" in line:
        line = line.replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&")
        line = line.replace("&lt;", "<").replace("&gt;", ">")
    tokens: list[str] = []
    for word in line.split():
        pieces = cache.get(word)
        if pieces is None:
            pieces = cache[word] = _tokenize_word(word)
        tokens += pieces
    return tokens


# --- per-segment statistics -------------------------------------------------------------------
def _sum_min(a: Counter[_Gram], b: Counter[_Gram], keys: set[_Gram]) -> int:
    """Sum over `keys` of min(a[key], b[key]): the clipped matches of two n-gram multisets."""
    # map() keeps the loop in C; a set iterates in the same order both times.
    return sum(map(min, map(a.__getitem__, keys), map(b.__getitem__, keys)))


def _bleu_statistics(hyp: list[str], ref: list[str]) -> list[int]:
    """[sys_len, ref_len, correct_1..4, total_1..4] of tokenised hypothesis and reference."""
    lh, lr = len(hyp), len(ref)
    totals = [lh - k if lh > k else 0 for k in range(BLEU_ORDER)]
    if hyp == ref:
        return [lh, lr, *totals, *totals]
    correct = [0] * BLEU_ORDER
    hyp_shifts: list[list[str]] = []
    ref_shifts: list[list[str]] = []
    for k in range(BLEU_ORDER):
        th, tr = lh - k, lr - k
        if th <= 0 or tr <= 0:
            break
        hyp_shifts.append(hyp[k:])
        ref_shifts.append(ref[k:])
        hyp_set = set(zip(*hyp_shifts, strict=False))
        ref_set = set(zip(*ref_shifts, strict=False))
        common = hyp_set & ref_set
        if not common:
            break  # no k-gram matches, so no longer n-gram can match either
        if len(hyp_set) == th or len(ref_set) == tr:
            correct[k] = len(common)
        else:
            hyp_counts = Counter(zip(*hyp_shifts, strict=False))
            ref_counts = Counter(zip(*ref_shifts, strict=False))
            correct[k] = _sum_min(hyp_counts, ref_counts, common)
    return [lh, lr, *correct, *totals]


def _chrf_statistics(hyp: str, ref: str) -> list[int]:
    """[hyp, ref, match] per character order 1..6 of chrF with whitespace removed."""
    h = "".join(hyp.split())
    r = "".join(ref.split())
    lh, lr = len(h), len(r)
    stats: list[int] = []
    if h == r:
        for k in range(CHRF_ORDER):
            t = lh - k if lh > k else 0
            stats += (t, t, t)
        return stats
    hyp_shifts = [h]
    ref_shifts = [r]
    for k in range(CHRF_ORDER):
        th, tr = lh - k, lr - k
        if tr <= 0:
            stats += (0, 0, 0)  # sacrebleu does not count hypothesis n-grams without a reference
            continue
        if th <= 0:
            stats += (0, tr, 0)
            continue
        if k == 0:
            hyp_set, ref_set = set(h), set(r)
        else:
            hyp_shifts.append(h[k:])
            ref_shifts.append(r[k:])
            hyp_set = set(zip(*hyp_shifts, strict=False))
            ref_set = set(zip(*ref_shifts, strict=False))
        common = hyp_set & ref_set
        if not common:
            _zero_matches(stats, lh, lr, k)
            return stats
        hyp_unique, ref_unique = len(hyp_set) == th, len(ref_set) == tr
        if hyp_unique and ref_unique:
            stats += (th, tr, len(common))
            _diagonal_matches(stats, hyp_shifts, ref_shifts, lh, lr, k)
            return stats
        if hyp_unique or ref_unique:
            match = len(common)
        elif k == 0:
            match = sum(map(min, map(h.count, common), map(r.count, common)))
        else:
            hyp_counts = Counter(zip(*hyp_shifts, strict=False))
            ref_counts = Counter(zip(*ref_shifts, strict=False))
            match = _sum_min(hyp_counts, ref_counts, common)
        stats += (th, tr, match)
    return stats


def _zero_matches(stats: list[int], lh: int, lr: int, k: int) -> None:
    """Append the statistics of orders k+1..6 when order k+1 already has no match."""
    for j in range(k, CHRF_ORDER):
        th, tr = lh - j, lr - j
        if tr <= 0:
            stats += (0, 0, 0)
        else:
            stats += (th if th > 0 else 0, tr, 0)


def _diagonal_matches(
    stats: list[int], hyp_shifts: list[str], ref_shifts: list[str], lh: int, lr: int, k: int
) -> None:
    """Append orders k+2..6 once every (k+1)-gram is unique on both sides.

    With unique (k+1)-grams a hypothesis position matches at most one reference position p(i),
    and its (k+1+e)-gram matches iff p(i), p(i+1), ..., p(i+e) are consecutive; so the matches of
    all longer orders follow from the lengths of the runs of consecutive positions.
    """
    position = dict(zip(zip(*ref_shifts, strict=False), count(), strict=False))
    # -2 marks "no match": its difference to a neighbour can never be 1.
    aligned = list(map(position.get, zip(*hyp_shifts, strict=False), repeat(-2)))
    steps = bytes(map((1).__eq__, map(sub, aligned[1:], aligned[:-1])))
    runs = [len(run) for run in steps.split(b"\x00") if run]
    for e in range(1, CHRF_ORDER - k):
        th, tr = lh - k - e, lr - k - e
        if tr <= 0:
            stats += (0, 0, 0)
        elif th <= 0:
            stats += (0, tr, 0)
        else:
            stats += (th, tr, sum([n - e + 1 for n in runs if n >= e]))


def text_statistics(predictions: Sequence[str], references: Sequence[str]) -> list[int]:
    """Flat BLEU + chrF statistics of each pair, `_N_STATS` integers per pair in column order."""
    cache: dict[str, tuple[str, ...]] = {}
    out: list[int] = []
    for prediction, reference in zip(predictions, references, strict=True):
        hyp = tokenize_13a(prediction, cache)
        ref = hyp if prediction == reference else tokenize_13a(reference, cache)
        out += _bleu_statistics(hyp, ref)
        out += _chrf_statistics(prediction, reference)
    return out


# --- corpus scores from summed statistics -----------------------------------------------------
def corpus_bleu(sums: FloatArray, *, effective_order: bool = False) -> FloatArray:
    """BLEU (0-100, 'exp' smoothing) of each row of summed BLEU statistics, shape (R, 10) -> (R,).

    Mirrors sacrebleu's `BLEU.compute_bleu`; `effective_order=True` gives sentence BLEU.
    """
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    sys_len, ref_len = sums[:, 0], sums[:, 1]
    correct = sums[:, 2 : 2 + BLEU_ORDER]
    total = sums[:, 2 + BLEU_ORDER : 2 + 2 * BLEU_ORDER]
    with np.errstate(divide="ignore", invalid="ignore"):
        brevity = np.where(
            sys_len < ref_len,
            np.where(sys_len > 0, np.exp(1.0 - ref_len / sys_len), 0.0),
            1.0,
        )
        # Orders up to the first with no hypothesis n-grams; sacrebleu stops there.
        used = np.cumprod(total > 0, axis=1).astype(bool)
        # 'exp' smoothing halves the pseudo-count at each successive order without a match.
        smooth = np.cumprod(np.where(used & (correct == 0), 2.0, 1.0), axis=1)
        precision = np.where(
            used,
            np.where(correct == 0, 100.0 / (smooth * total), 100.0 * correct / total),
            0.0,
        )
        logs = np.where(precision > 0, np.log(np.where(precision > 0, precision, 1.0)), _LOG_ZERO)
    if effective_order:
        order = used.sum(axis=1)
        order = np.where(order == 0, BLEU_ORDER, order)
    else:
        order = np.full(len(sums), BLEU_ORDER)
    log_sum = np.zeros(len(sums))
    for n in range(BLEU_ORDER):
        log_sum = np.where(n < order, log_sum + logs[:, n], log_sum)
    score = brevity * np.exp(log_sum / order)
    return np.where(correct.any(axis=1), score, 0.0)


def corpus_chrf(sums: FloatArray) -> FloatArray:
    """chrF (0-100, beta=2, effective-order averaging) of each row of summed chrF statistics.

    Shape (R, 18) -> (R,); mirrors sacrebleu's `CHRF._compute_f_score` without eps smoothing.
    """
    sums = np.atleast_2d(np.asarray(sums, dtype=np.float64))
    n_hyp = sums[:, 0::3]
    n_ref = sums[:, 1::3]
    n_match = sums[:, 2::3]
    factor = float(CHRF_BETA**2)
    effective = (n_hyp > 0) & (n_ref > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(effective, n_match / n_hyp, 0.0)
        recall = np.where(effective, n_match / n_ref, 0.0)
        order = effective.sum(axis=1)
        avg_precision = np.zeros(len(sums))
        avg_recall = np.zeros(len(sums))
        for n in range(CHRF_ORDER):
            avg_precision = avg_precision + precision[:, n]
            avg_recall = avg_recall + recall[:, n]
        avg_precision = np.where(order > 0, avg_precision / order, 0.0)
        avg_recall = np.where(order > 0, avg_recall / order, 0.0)
        score = (1 + factor) * avg_precision * avg_recall
        score = score / (factor * avg_precision + avg_recall)
    return np.where(avg_precision + avg_recall != 0, 100 * score, 0.0)


# --- per-example scoring ----------------------------------------------------------------------
def _statistics_matrix(
    predictions: Sequence[str], references: Sequence[str], processes: int
) -> npt.NDArray[np.int64]:
    """(n, 28) BLEU + chrF statistics, optionally computed over a process pool."""
    n = len(predictions)
    workers = min(processes, n // _MIN_PAIRS_PER_PROCESS)
    if workers <= 1:
        flat = text_statistics(predictions, references)
    else:
        n_chunks = 4 * workers
        bounds = [n * i // n_chunks for i in range(n_chunks + 1)]
        chunks_p = [list(predictions[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        chunks_r = [list(references[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        # spawn, not fork: callers may be multi-threaded (orchestrators, web servers).
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            flat = [x for part in pool.map(text_statistics, chunks_p, chunks_r) for x in part]
    return np.array(flat, dtype=np.int64).reshape(n, _N_STATS)


def score_text_generation(
    predictions: Sequence[str], references: Sequence[str], *, processes: int = 1
) -> pd.DataFrame:
    """One row per (prediction, reference) pair: exact_match, sentence bleu and chrf (0-100),
    then the BLEU and chrF sufficient statistics (`BLEU_STAT_COLUMNS`, `CHRF_STAT_COLUMNS`).

    `processes > 1` spreads large inputs over a spawned process pool, so a script calling it
    needs the usual ``if __name__ == "__main__":`` guard.
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; need one each"
        )
    stats = _statistics_matrix(predictions, references, processes).astype(np.float64)
    bleu_stats, chrf_stats = stats[:, :_N_BLEU], stats[:, _N_BLEU:]
    exact = np.fromiter(
        (p.strip() == r.strip() for p, r in zip(predictions, references, strict=True)),
        dtype=np.float64,
        count=len(predictions),
    )
    frame = pd.DataFrame(
        {
            "exact_match": exact,
            "bleu": corpus_bleu(bleu_stats, effective_order=True),
            "chrf": corpus_chrf(chrf_stats),
        }
    )
    return pd.concat(
        [frame, pd.DataFrame(stats, columns=[*BLEU_STAT_COLUMNS, *CHRF_STAT_COLUMNS])], axis=1
    )
