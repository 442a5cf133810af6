"""Per-example text-generation scores and the sufficient statistics of corpus BLEU and chrF.

The statistics are exactly sacrebleu 2.6's per-segment statistics for a single reference:
BLEU (``[sys_len, ref_len, correct_1..4, total_1..4]``) and chrF (``[hyp, ref, match]`` per
order, whitespace removed). Summing them over examples and applying `bleu_from_statistics` /
`chrf_from_statistics` reproduces sacrebleu's corpus scores; both are vectorised over rows so a
bootstrap can score many resamples at once.

The defaults (BLEU with the 13a tokenizer, chrF with char_order=6, word_order=0) are computed
here, several times faster than sacrebleu; other `TextMetricOptions` (another tokenizer,
lowercased BLEU, other chrF orders, chrF++) take sacrebleu's own per-segment statistics.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain, pairwise, repeat
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipelines.errors import InvalidInput
from pipelines.evaluation.suite import FloatArray
from pipelines.golden_datasets.canonical import normalise_value

IndexArray = npt.NDArray[np.intp]
IntArray = npt.NDArray[np.int64]

BLEU_ORDER = 4
CHRF_ORDER = 6
CHRF_BETA = 2

BLEU_STAT_COLUMNS: tuple[str, ...] = (
    "bleu_sys_len",
    "bleu_ref_len",
    *(f"bleu_correct_{n}" for n in range(1, BLEU_ORDER + 1)),
    *(f"bleu_total_{n}" for n in range(1, BLEU_ORDER + 1)),
)


def chrf_stat_columns(orders: int = CHRF_ORDER) -> tuple[str, ...]:
    """Names of chrF's statistics over `orders` orders (character orders, then word orders)."""
    return tuple(
        f"chrf_{kind}_{n}" for n in range(1, orders + 1) for kind in ("hyp", "ref", "match")
    )


CHRF_STAT_COLUMNS: tuple[str, ...] = chrf_stat_columns()
BLEU_TOKENIZERS: tuple[str, ...] = ("13a", "intl", "char", "zh", "none")
"""sacrebleu tokenizers BLEU may use here (the others need extra packages or downloads)."""
MAX_CHRF_CHAR_ORDER = 10
MAX_CHRF_WORD_ORDER = 4


@dataclass(frozen=True)
class TextMetricOptions:
    """sacrebleu's BLEU and chrF options that change scores; the defaults are sacrebleu's."""

    bleu_tokenize: str = "13a"
    bleu_lowercase: bool = False
    chrf_char_order: int = CHRF_ORDER
    chrf_word_order: int = 0

    def __post_init__(self) -> None:
        if self.bleu_tokenize not in BLEU_TOKENIZERS:
            raise InvalidInput(
                f"BLEU tokenizer {self.bleu_tokenize!r} is not available; use one of "
                f"{', '.join(BLEU_TOKENIZERS)}",
                field="bleu_tokenize",
            )
        if not 1 <= self.chrf_char_order <= MAX_CHRF_CHAR_ORDER:
            raise InvalidInput(
                f"chrF character order {self.chrf_char_order} is out of range; use 1 to "
                f"{MAX_CHRF_CHAR_ORDER} (sacrebleu's default is 6)",
                field="chrf_char_order",
            )
        if not 0 <= self.chrf_word_order <= MAX_CHRF_WORD_ORDER:
            raise InvalidInput(
                f"chrF word order {self.chrf_word_order} is out of range; use 0 to "
                f"{MAX_CHRF_WORD_ORDER} (0 is chrF, 2 is chrF++)",
                field="chrf_word_order",
            )

    @property
    def chrf_orders(self) -> int:
        """Orders chrF counts: character orders, then word orders."""
        return self.chrf_char_order + self.chrf_word_order

    @property
    def chrf_columns(self) -> tuple[str, ...]:
        """Names of the chrF statistics under these options."""
        return chrf_stat_columns(self.chrf_orders)

    @property
    def fast_bleu(self) -> bool:
        """BLEU statistics computed here (13a) rather than by sacrebleu."""
        return self.bleu_tokenize == "13a"

    @property
    def fast_chrf(self) -> bool:
        """chrF statistics computed here (character orders 1..6 only) rather than by sacrebleu."""
        return (self.chrf_char_order, self.chrf_word_order) == (CHRF_ORDER, 0)

    @property
    def default(self) -> bool:
        """Everything as sacrebleu's defaults."""
        return self == TextMetricOptions()


DEFAULT_TEXT_OPTIONS = TextMetricOptions()
TEXT_SCORE_COLUMNS: tuple[str, ...] = ("exact_match", "bleu", "chrf")

_N_BLEU = len(BLEU_STAT_COLUMNS)
_N_STATS = _N_BLEU + len(CHRF_STAT_COLUMNS)
# Shorter pairs are faster with sets and Counters than with numpy (measured crossovers).
_BLEU_VECTOR_MIN_TOKENS = 60
_CHRF_VECTOR_MIN_CHARS = 48
# Largest n-gram lookup table (entries) `_ngram_matches` allocates: 128 MiB.
_MAX_GRAM_TABLE = 1 << 24
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
# Equivalents with constant replacements, which re applies without a Python call per match.
# Unless two of [.,] are adjacent, the two substitutions above cannot overlap, and together they
# split off a period or comma exactly when one of its neighbours is not a digit.
_ADJACENT_PERIODS = re.compile(r"[.,]{2}")
_LONE_PERIOD = re.compile(r"(?<=[^0-9])\.|\.(?=[^0-9])")
_LONE_COMMA = re.compile(r"(?<=[^0-9]),|,(?=[^0-9])")
# Same as ([0-9])(-) -> "\1 \2 ": its matches can never overlap.
_DASH_AFTER_DIGIT = re.compile(r"(?<=[0-9])-")


def _tokenize_word(word: str) -> tuple[str, ...]:
    """13a tokens of one whitespace-free word."""
    if word.isalnum():
        return (word,)
    line = f" {word} ".translate(_SPLIT_TABLE)
    if "." in line or "," in line:
        if _ADJACENT_PERIODS.search(line):
            line = _PERIOD_AFTER_NON_DIGIT.sub(r"\1 \2 ", line)
            line = _PERIOD_BEFORE_NON_DIGIT.sub(r" \1 \2", line)
        else:
            line = _LONE_PERIOD.sub(" . ", line)
            line = _LONE_COMMA.sub(" , ", line)
    if "-" in line:
        line = _DASH_AFTER_DIGIT.sub(" - ", line)
    return tuple(line.split())


def _preprocess_13a(line: str) -> str:
    """13a's language-independent preprocessing, after BLEU's rstrip."""
    line = line.rstrip()
    if "<skipped>" in line:
        line = line.replace("<skipped>", "")
    if "\n" in line:
        line = line.replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&")
        line = line.replace("&lt;", "<").replace("&gt;", ">")
    return line


def tokenize_13a(line: str) -> list[str]:
    """sacrebleu's 13a tokens of a segment, as BLEU sees them (after rstrip)."""
    return [token for word in _preprocess_13a(line).split() for token in _tokenize_word(word)]


class _TokenIds(dict[str, tuple[int, ...]]):
    """Memo from a whitespace-separated word to the ids of its 13a tokens.

    Every 13a regex either maps single characters or looks at one neighbour, and whitespace
    always plays the same part in them, so tokenising words independently gives the tokens of
    the whole line; words repeat, so each is tokenised once. Ids stand in for tokens so that
    n-grams can be counted with integer arithmetic.
    """

    def __init__(self) -> None:
        super().__init__()
        self.vocabulary: dict[str, int] = {}

    def __missing__(self, word: str) -> tuple[int, ...]:
        vocabulary = self.vocabulary
        ids = self[word] = tuple(
            vocabulary.setdefault(token, len(vocabulary)) for token in _tokenize_word(word)
        )
        return ids

    def tokens(self, line: str) -> list[int]:
        """Token ids of a segment."""
        return list(chain.from_iterable(map(self.__getitem__, _preprocess_13a(line).split())))


# --- n-gram matches ---------------------------------------------------------------------------
class _Scratch:
    """Index buffers reused across segments by `_ngram_matches`, grown on demand."""

    def __init__(self) -> None:
        self._arange = np.arange(1024, dtype=np.intp)
        self._symbols = np.empty(1024, dtype=np.intp)
        self._grams = np.empty(1024, dtype=np.intp)

    def arange(self, n: int) -> IndexArray:
        if n > len(self._arange):
            self._arange = np.arange(2 * n, dtype=np.intp)
        return self._arange[:n]

    def symbols(self, n: int) -> IndexArray:
        if n > len(self._symbols):
            self._symbols = np.empty(2 * n, dtype=np.intp)
        return self._symbols

    def grams(self, n: int) -> IndexArray | None:
        if n > _MAX_GRAM_TABLE:
            return None
        if n > len(self._grams):
            self._grams = np.empty(min(2 * n, _MAX_GRAM_TABLE), dtype=np.intp)
        return self._grams


def _ngram_matches(
    symbols: IndexArray, n_hyp: int, n_ref: int, max_order: int, scratch: _Scratch
) -> list[int] | None:
    """Clipped matches sum_g min(hyp[g], ref[g]) of orders 1..max_order, where the hypothesis is
    symbols[:n_hyp] and the reference symbols[n_hyp:]; None if the lookup table would be too big.

    Each n-gram gets as id the position of one of its occurrences: a scatter of positions into a
    table indexed by the n-gram's code, then a gather. The code of an n-gram is the id of its
    (n-1)-gram prefix times the alphabet size plus its last symbol, so it stays below
    len(symbols) * alphabet size; n-grams that straddle the two texts get ids but are not counted.
    """
    total = n_hyp + n_ref
    positions = scratch.arange(total)
    table = scratch.symbols(int(np.maximum.reduce(symbols)) + 1)
    table[symbols] = positions
    ids = table[symbols]
    is_id = ids == positions
    alphabet = int(np.count_nonzero(is_id))
    dense = (np.cumsum(is_id) - 1)[ids]
    gram_table = scratch.grams(total * alphabet)
    if gram_table is None:
        return None
    matches = [0] * max_order
    for k in range(max_order):
        th, tr = n_hyp - k, n_ref - k
        if th <= 0 or tr <= 0:
            break
        if k:
            codes = ids[:-1] * alphabet + dense[k:]
            gram_table[codes] = positions[: len(codes)]
            ids = gram_table[codes]
        hyp_counts = np.bincount(ids[:th], minlength=total)
        ref_counts = np.bincount(ids[n_hyp : n_hyp + tr], minlength=total)
        match = int(np.add.reduce(np.minimum(hyp_counts, ref_counts, out=hyp_counts)))
        if not match:
            break  # no n-gram of this order matches, so no longer one can
        matches[k] = match
    return matches


def _ngram_matches_small(
    hyp: Sequence[Hashable], ref: Sequence[Hashable], max_order: int
) -> list[int]:
    """`_ngram_matches` with sets and Counters: faster on short texts, no size limit."""
    matches = [0] * max_order
    lh, lr = len(hyp), len(ref)
    hyp_shifts = [hyp]
    ref_shifts = [ref]
    # Distinct n-grams at one order stay distinct at every longer order.
    hyp_unique = ref_unique = False
    for k in range(max_order):
        th, tr = lh - k, lr - k
        if th <= 0 or tr <= 0:
            break
        if k:
            hyp_shifts.append(hyp[k:])
            ref_shifts.append(ref[k:])
        hyp_grams: Iterable[Hashable] = zip(*hyp_shifts, strict=False) if k else hyp
        ref_grams: Iterable[Hashable] = zip(*ref_shifts, strict=False) if k else ref
        if hyp_unique:
            ref_set = set(ref_grams)
            ref_unique = len(ref_set) == tr
            match = sum(map(ref_set.__contains__, hyp_grams))
        elif ref_unique:
            hyp_set = set(hyp_grams)
            hyp_unique = len(hyp_set) == th
            match = sum(map(hyp_set.__contains__, ref_grams))
        else:
            hyp_counts = Counter(hyp_grams)
            ref_counts = Counter(ref_grams)
            hyp_unique, ref_unique = len(hyp_counts) == th, len(ref_counts) == tr
            if len(ref_counts) < len(hyp_counts):
                hyp_counts, ref_counts = ref_counts, hyp_counts
            # map() keeps the loop in C; a dict iterates its keys and values in the same order.
            match = sum(map(min, hyp_counts.values(), map(ref_counts.get, hyp_counts, repeat(0))))
        if not match:
            break
        matches[k] = match
    return matches


# --- per-segment statistics -------------------------------------------------------------------
def _bleu_statistics(hyp: list[int], ref: list[int], scratch: _Scratch) -> list[int]:
    """[sys_len, ref_len, correct_1..4, total_1..4] of a hypothesis and reference's token ids."""
    lh, lr = len(hyp), len(ref)
    totals = [lh - k if lh > k else 0 for k in range(BLEU_ORDER)]
    if hyp == ref:
        return [lh, lr, *totals, *totals]
    correct = None
    if lh + lr >= _BLEU_VECTOR_MIN_TOKENS:
        symbols = np.array(hyp + ref, dtype=np.intp)
        correct = _ngram_matches(symbols, lh, lr, BLEU_ORDER, scratch)
    return [lh, lr, *(correct or _ngram_matches_small(hyp, ref, BLEU_ORDER)), *totals]


def _chrf_statistics(hyp: str, ref: str, scratch: _Scratch) -> list[int]:
    """[hyp, ref, match] per character order 1..6 of chrF with whitespace removed."""
    h = "".join(hyp.split())
    r = "".join(ref.split())
    lh, lr = len(h), len(r)
    if h == r:
        matches = [lh - k if lh > k else 0 for k in range(CHRF_ORDER)]
    else:
        vector = None
        if lh + lr >= _CHRF_VECTOR_MIN_CHARS and lh and lr:
            # surrogatepass: lone surrogates are characters to sacrebleu too.
            encoded = (h + r).encode("utf-32-le", "surrogatepass")
            codepoints = np.frombuffer(encoded, dtype=np.uint32)
            vector = _ngram_matches(codepoints.astype(np.intp), lh, lr, CHRF_ORDER, scratch)
        matches = vector or _ngram_matches_small(h, r, CHRF_ORDER)
    stats: list[int] = []
    for k in range(CHRF_ORDER):
        th, tr = lh - k, lr - k
        if tr <= 0:
            stats += (0, 0, 0)  # sacrebleu counts no hypothesis n-grams without reference ones
        else:
            stats += (th if th > 0 else 0, tr, matches[k])
    return stats


def _statistics(
    predictions: Sequence[str], references: Sequence[str], bleu: bool = True, chrf: bool = True
) -> IntArray:
    """BLEU and / or chrF statistics of each pair, in that order, one row per pair."""
    token_ids = _TokenIds()
    scratch = _Scratch()
    out: list[int] = []
    for prediction, reference in zip(predictions, references, strict=True):
        if bleu:
            hyp = token_ids.tokens(prediction)
            ref = hyp if prediction == reference else token_ids.tokens(reference)
            out += _bleu_statistics(hyp, ref, scratch)
        if chrf:
            out += _chrf_statistics(prediction, reference, scratch)
    width = bleu * _N_BLEU + chrf * (_N_STATS - _N_BLEU)
    return np.array(out, dtype=np.int64).reshape(len(predictions), width)


def bleu_statistics(predictions: Sequence[str], references: Sequence[str]) -> IntArray:
    """sacrebleu's BLEU statistics of each pair, shape (n, 10), columns `BLEU_STAT_COLUMNS`."""
    _check_pairs(predictions, references)
    return _statistics(predictions, references, chrf=False)


def chrf_statistics(predictions: Sequence[str], references: Sequence[str]) -> IntArray:
    """sacrebleu's chrF statistics of each pair, shape (n, 18), columns `CHRF_STAT_COLUMNS`."""
    _check_pairs(predictions, references)
    return _statistics(predictions, references, bleu=False)


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions but {len(references)} references; need one each"
        )


# --- corpus scores from summed statistics -----------------------------------------------------
def bleu_from_statistics(sums: FloatArray, *, effective_order: bool = False) -> FloatArray:
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


def chrf_from_statistics(sums: FloatArray) -> FloatArray:
    """chrF (0-100, beta=2, effective-order averaging) of each row of summed chrF statistics.

    Shape (R, 3 * orders) -> (R,), 18 columns by default; mirrors sacrebleu's
    `CHRF._compute_f_score` without eps smoothing (character and word orders alike).
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
        for n in range(n_hyp.shape[1]):
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
) -> IntArray:
    """(n, 28) BLEU + chrF statistics, optionally computed over a process pool."""
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    n = len(predictions)
    workers = min(processes, n // _MIN_PAIRS_PER_PROCESS)
    if workers <= 1:
        return _statistics(predictions, references)
    n_chunks = 4 * workers
    bounds = [n * i // n_chunks for i in range(n_chunks + 1)]
    chunks_p = [list(predictions[a:b]) for a, b in pairwise(bounds)]
    chunks_r = [list(references[a:b]) for a, b in pairwise(bounds)]
    with ProcessPoolExecutor(workers, mp_context=_process_context()) as pool:
        return np.concatenate(list(pool.map(_statistics, chunks_p, chunks_r)))


def _process_context() -> BaseContext:
    """Fork where the platform has it: spawned workers re-import numpy and pandas, which can take
    longer than the scoring they would share."""
    if "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context()


def _sacrebleu_statistics(
    predictions: Sequence[str], references: Sequence[str], options: TextMetricOptions, *, bleu: bool
) -> IntArray:
    """sacrebleu's own per-segment BLEU or chrF statistics under non-default options."""
    from sacrebleu.metrics.bleu import BLEU
    from sacrebleu.metrics.chrf import CHRF

    metric: BLEU | CHRF
    if bleu:
        metric = BLEU(tokenize=options.bleu_tokenize, lowercase=options.bleu_lowercase, force=True)
        width = _N_BLEU
    else:
        metric = CHRF(char_order=options.chrf_char_order, word_order=options.chrf_word_order)
        width = 3 * options.chrf_orders
    if not predictions:
        return np.zeros((0, width), dtype=np.int64)
    rows = metric._extract_corpus_statistics(list(predictions), [list(references)])
    return np.asarray(rows, dtype=np.int64).reshape(len(predictions), width)


def _statistics_with(
    predictions: Sequence[str],
    references: Sequence[str],
    options: TextMetricOptions,
    processes: int,
) -> IntArray:
    """BLEU then chrF statistics of each pair under `options`."""
    if options.default:
        return _statistics_matrix(predictions, references, processes)
    if options.fast_bleu:
        if options.bleu_lowercase:  # sacrebleu lowercases before it tokenizes
            bleu_part = _statistics(
                [p.lower() for p in predictions], [r.lower() for r in references], chrf=False
            )
        else:
            bleu_part = _statistics(predictions, references, chrf=False)
    else:
        bleu_part = _sacrebleu_statistics(predictions, references, options, bleu=True)
    if options.fast_chrf:
        chrf_part = _statistics(predictions, references, bleu=False)
    else:
        chrf_part = _sacrebleu_statistics(predictions, references, options, bleu=False)
    return np.concatenate([bleu_part.reshape(len(predictions), _N_BLEU), chrf_part], axis=1)


def score_text_generation(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    processes: int = 1,
    options: TextMetricOptions = DEFAULT_TEXT_OPTIONS,
) -> pd.DataFrame:
    """One row per (prediction, reference) pair: exact_match, sentence bleu and chrf (0-100),
    then the BLEU and chrF sufficient statistics (`BLEU_STAT_COLUMNS`, `options.chrf_columns`).

    exact_match is 1 when both texts are equal after `normalise_value` (NFC, "\\n" line
    endings, surrounding whitespace stripped), case and inner whitespace included.
    `processes > 1` spreads large inputs (2,000 pairs or more per process) over a process pool.
    """
    _check_pairs(predictions, references)
    stats = _statistics_with(predictions, references, options, processes).astype(np.float64)
    exact = np.fromiter(
        (
            p == r or normalise_value(p) == normalise_value(r)
            for p, r in zip(predictions, references, strict=True)
        ),
        dtype=np.float64,
        count=len(predictions),
    )
    values = np.column_stack(
        [
            exact,
            bleu_from_statistics(stats[:, :_N_BLEU], effective_order=True),
            chrf_from_statistics(stats[:, _N_BLEU:]),
            stats,
        ]
    )
    return pd.DataFrame(
        values, columns=[*TEXT_SCORE_COLUMNS, *BLEU_STAT_COLUMNS, *options.chrf_columns]
    )
