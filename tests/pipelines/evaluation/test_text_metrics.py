"""StreamFlow's BLEU and chrF statistics are exactly sacrebleu's, and so are scores from them."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from bench.metrics_bench import generate_pairs
from pipelines.evaluation import text_metrics
from pipelines.evaluation.text_metrics import (
    BLEU_STAT_COLUMNS,
    CHRF_STAT_COLUMNS,
    TEXT_SCORE_COLUMNS,
    bleu_from_statistics,
    bleu_statistics,
    chrf_from_statistics,
    chrf_statistics,
    score_text_generation,
    tokenize_13a,
)

TOLERANCE = 1e-9

# Characters that exercise every branch of 13a and chrF: digits next to periods, commas and
# dashes, the punctuation 13a splits off, entities, odd whitespace, accents, CJK and emoji.
_TRICKY = "ab1 9.,-.,'\"&;()[]{}<>?!/\\%$#@^_`~+=*:|\t\n\r\x0b\x0c\xa0\u2028\u3000éß東😀\ud800"
tricky_text = st.text(alphabet=st.sampled_from(_TRICKY), max_size=40)
word_text = st.lists(
    st.sampled_from(
        ["the", "cat", "sat", "on", "mat", ".", ",", "1,000", "3.5", "-", "2-3", "&amp;", "a.b"]
    ),
    max_size=30,
).map(" ".join)
any_text = st.one_of(tricky_text, word_text, st.text(max_size=30))


def _stock_bleu_statistics(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    # sacrebleu's own per-segment statistics (a private method, pinned by the lock file).
    return np.array(BLEU()._extract_corpus_statistics(predictions, [references]), dtype=np.int64)


def _stock_chrf_statistics(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    return np.array(CHRF()._extract_corpus_statistics(predictions, [references]), dtype=np.int64)


def _edge_pairs() -> tuple[list[str], list[str]]:
    pairs = [
        ("", ""),
        ("", "a reference"),
        ("a prediction", ""),
        ("   ", "\n"),
        ("same text.", "same text."),
        ("same text.  ", "same text."),
        ("  same text.", "same text."),
        ("x", "x y"),
        ("x y z", "x"),
        ("aaaa aaaa", "aaaa"),
        ("abababab", "babababa"),
        ("1,000.50 - 2-3 ... ,. ,, ..", "1,000.50-2-3...,.,,.."),
        ("&amp; &quot;x&quot; &lt;y&gt;", '& "x" <y>'),
        ("line one-\nline two", "line oneline two"),
        ("<skipped> kept", "kept"),
        ("東京 は 大きい", "東京は大きい"),
        ("😀😀😀 ok", "😀 ok ok"),
        ("tab\tsep\u3000wide\xa0nb", "tab sep wide nb"),
        ("The cat sat on the mat.", "The cat sat on the mat ."),
        ("lone \ud800 surrogate " + "xyz " * 15, "lone \ud800 " + "xyz " * 15),
    ]
    return [p for p, _ in pairs], [r for _, r in pairs]


def _random_subsets(rng: random.Random, n: int, count: int) -> list[list[int]]:
    """Index lists of random sizes, drawn with replacement like bootstrap resamples."""
    return [[rng.randrange(n) for _ in range(rng.randint(1, n))] for _ in range(count)]


class TestTokenize13a:
    """The 13a tokens BLEU counts n-grams of."""

    def test_generated_texts_tokenize_like_sacrebleu(self) -> None:
        """Tokens of 4,000 generated texts equal sacrebleu's 13a tokens after rstrip."""
        predictions, references = generate_pairs(2000, seed=3)
        stock = Tokenizer13a()
        for text in predictions + references:
            assert tokenize_13a(text) == stock(text.rstrip()).split()

    @settings(max_examples=500, deadline=None)
    @given(text=any_text)
    def test_arbitrary_text_tokenizes_like_sacrebleu(self, text: str) -> None:
        """Tokens of arbitrary text, punctuation and whitespace runs included, equal sacrebleu's."""
        assert tokenize_13a(text) == Tokenizer13a()(text.rstrip()).split()

    def test_split_table_is_the_regex_character_class(self) -> None:
        """The translate table holds exactly the characters sacrebleu's first regex splits off."""
        split = {chr(c) for c in range(0x110000) if text_metrics._SPLIT_CHARS.fullmatch(chr(c))}
        assert {chr(c) for c in text_metrics._SPLIT_TABLE} == split

    @pytest.mark.parametrize(
        "text", ["a..b", "1.,2", ",,x", "x..", "...", "1..2", "a,.1", "1.-2", "-1-2--3"]
    )
    def test_adjacent_periods_and_dashes_tokenize_like_sacrebleu(self, text: str) -> None:
        """Runs of periods, commas and dashes take the slow exact path and still match."""
        assert tokenize_13a(text) == Tokenizer13a()(text).split()


class TestSegmentStatistics:
    """Per-pair sufficient statistics against sacrebleu's per-segment statistics."""

    def test_generated_pairs_have_sacrebleus_statistics(self) -> None:
        """BLEU and chrF statistics of 600 generated pairs equal sacrebleu's, value for value."""
        predictions, references = generate_pairs(600, seed=11)
        assert np.array_equal(
            bleu_statistics(predictions, references),
            _stock_bleu_statistics(predictions, references),
        )
        assert np.array_equal(
            chrf_statistics(predictions, references),
            _stock_chrf_statistics(predictions, references),
        )

    def test_edge_pairs_have_sacrebleus_statistics(self) -> None:
        """Empty, blank, identical, repetitive, entity and unicode pairs match sacrebleu."""
        predictions, references = _edge_pairs()
        assert np.array_equal(
            bleu_statistics(predictions, references),
            _stock_bleu_statistics(predictions, references),
        )
        assert np.array_equal(
            chrf_statistics(predictions, references),
            _stock_chrf_statistics(predictions, references),
        )

    @settings(max_examples=300, deadline=None)
    @given(pairs=st.lists(st.tuples(any_text, any_text), min_size=1, max_size=5))
    def test_arbitrary_pairs_have_sacrebleus_statistics(self, pairs: list[tuple[str, str]]) -> None:
        """Statistics of arbitrary text pairs equal sacrebleu's."""
        predictions, references = [p for p, _ in pairs], [r for _, r in pairs]
        assert np.array_equal(
            bleu_statistics(predictions, references),
            _stock_bleu_statistics(predictions, references),
        )
        assert np.array_equal(
            chrf_statistics(predictions, references),
            _stock_chrf_statistics(predictions, references),
        )

    @pytest.mark.parametrize("vector_min", [0, 10**9], ids=["numpy-always", "sets-always"])
    def test_both_counting_engines_give_sacrebleus_statistics(
        self, monkeypatch: pytest.MonkeyPatch, vector_min: int
    ) -> None:
        """Forcing every pair through one n-gram counting engine still gives sacrebleu's numbers."""
        monkeypatch.setattr(text_metrics, "_BLEU_VECTOR_MIN_TOKENS", vector_min)
        monkeypatch.setattr(text_metrics, "_CHRF_VECTOR_MIN_CHARS", vector_min)
        predictions, references = generate_pairs(300, seed=5)
        edge_predictions, edge_references = _edge_pairs()
        predictions += edge_predictions
        references += edge_references
        assert np.array_equal(
            bleu_statistics(predictions, references),
            _stock_bleu_statistics(predictions, references),
        )
        assert np.array_equal(
            chrf_statistics(predictions, references),
            _stock_chrf_statistics(predictions, references),
        )

    def test_oversized_lookup_table_falls_back_to_sets(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """When the n-gram table would exceed its cap, counting falls back and stays exact."""
        monkeypatch.setattr(text_metrics, "_MAX_GRAM_TABLE", 16)
        predictions, references = generate_pairs(100, seed=9)
        assert np.array_equal(
            chrf_statistics(predictions, references),
            _stock_chrf_statistics(predictions, references),
        )

    @settings(max_examples=300, deadline=None)
    @given(
        hyp=st.lists(st.integers(0, 6), max_size=60),
        ref=st.lists(st.integers(0, 6), max_size=60),
        order=st.integers(1, 6),
    )
    def test_counting_engines_agree_with_counters(
        self, hyp: list[int], ref: list[int], order: int
    ) -> None:
        """Both engines count clipped n-gram matches like a plain Counter intersection."""

        def grams(tokens: list[int], n: int) -> Counter[tuple[int, ...]]:
            return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))

        expected = [sum((grams(hyp, n) & grams(ref, n)).values()) for n in range(1, order + 1)]
        assert text_metrics._ngram_matches_small(hyp, ref, order) == expected
        if hyp and ref:
            symbols = np.array(hyp + ref, dtype=np.intp)
            vector = text_metrics._ngram_matches(
                symbols, len(hyp), len(ref), order, text_metrics._Scratch()
            )
            assert vector == expected

    def test_mismatched_lengths_are_rejected(self) -> None:
        """One reference per prediction is required."""
        with pytest.raises(ValueError, match="2 predictions but 1 references"):
            bleu_statistics(["a", "b"], ["a"])


class TestScoreTextGeneration:
    """The per-example frame: exact match, sentence BLEU and chrF, and the statistics."""

    def test_columns_are_scores_then_statistics(self) -> None:
        """The frame has one float row per pair, scores first, then BLEU and chrF statistics."""
        frame = score_text_generation(["a b c", "x"], ["a b c", "y"])
        assert list(frame.columns) == [
            *TEXT_SCORE_COLUMNS,
            *BLEU_STAT_COLUMNS,
            *CHRF_STAT_COLUMNS,
        ]
        assert len(frame) == 2
        assert (frame.dtypes == np.float64).all()

    def test_exact_match_ignores_surrounding_whitespace_only(self) -> None:
        """exact_match compares stripped texts, so inner whitespace and case still count."""
        frame = score_text_generation(
            ["  Paris\n", "Paris", "paris", "Par is", ""], ["Paris", "Paris ", "Paris", "Paris", ""]
        )
        assert frame["exact_match"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]

    def test_sentence_scores_equal_sacrebleu(self) -> None:
        """bleu and chrf of 400 generated and edge pairs equal sacrebleu's sentence scores."""
        predictions, references = generate_pairs(400, seed=21)
        edge_predictions, edge_references = _edge_pairs()
        predictions += edge_predictions
        references += edge_references
        frame = score_text_generation(predictions, references)
        bleu, chrf = BLEU(effective_order=True), CHRF()
        expected_bleu = [
            bleu.sentence_score(p, [r]).score for p, r in zip(predictions, references, strict=True)
        ]
        expected_chrf = [
            chrf.sentence_score(p, [r]).score for p, r in zip(predictions, references, strict=True)
        ]
        np.testing.assert_allclose(frame["bleu"], expected_bleu, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(frame["chrf"], expected_chrf, rtol=0, atol=TOLERANCE)

    def test_empty_input_gives_an_empty_frame(self) -> None:
        """No pairs give a frame with all columns and no rows."""
        frame = score_text_generation([], [])
        assert frame.empty
        assert len(frame.columns) == len(TEXT_SCORE_COLUMNS) + 28

    def test_processes_give_the_same_frame(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Splitting the pairs over two worker processes changes nothing."""
        monkeypatch.setattr(text_metrics, "_MIN_PAIRS_PER_PROCESS", 50)
        predictions, references = generate_pairs(400, seed=2)
        single = score_text_generation(predictions, references)
        pooled = score_text_generation(predictions, references, processes=2)
        pd.testing.assert_frame_equal(single, pooled, check_exact=True)

    def test_processes_must_be_positive(self) -> None:
        """Zero processes is a caller error."""
        with pytest.raises(ValueError, match="processes must be at least 1"):
            score_text_generation(["a"], ["a"], processes=0)


class TestCorpusScores:
    """Corpus BLEU and chrF from summed statistics, vectorised over resamples."""

    def test_summed_statistics_give_sacrebleus_corpus_scores(self) -> None:
        """Summing the statistics of 800 generated pairs gives sacrebleu's corpus BLEU and chrF."""
        predictions, references = generate_pairs(800, seed=13)
        bleu = bleu_from_statistics(bleu_statistics(predictions, references).sum(axis=0))
        chrf = chrf_from_statistics(chrf_statistics(predictions, references).sum(axis=0))
        assert bleu.shape == chrf.shape == (1,)
        assert abs(bleu[0] - sacrebleu.corpus_bleu(predictions, [references]).score) <= TOLERANCE
        assert abs(chrf[0] - sacrebleu.corpus_chrf(predictions, [references]).score) <= TOLERANCE

    def test_each_resample_row_equals_sacrebleu_on_that_resample(self) -> None:
        """Rows of counts @ statistics give sacrebleu's scores of the corresponding resamples."""
        predictions, references = generate_pairs(120, seed=17)
        rng = random.Random(4)
        subsets = _random_subsets(rng, len(predictions), 25)
        counts = np.zeros((len(subsets), len(predictions)))
        for row, subset in enumerate(subsets):
            np.add.at(counts[row], subset, 1.0)
        bleu = bleu_from_statistics(counts @ bleu_statistics(predictions, references))
        chrf = chrf_from_statistics(counts @ chrf_statistics(predictions, references))
        for row, subset in enumerate(subsets):
            hyps = [predictions[i] for i in subset]
            refs = [references[i] for i in subset]
            assert abs(bleu[row] - sacrebleu.corpus_bleu(hyps, [refs]).score) <= TOLERANCE
            assert abs(chrf[row] - sacrebleu.corpus_chrf(hyps, [refs]).score) <= TOLERANCE

    @pytest.mark.parametrize(
        ("predictions", "references"),
        [
            (["", ""], ["a b", "c"]),
            (["a b", "c"], ["", ""]),
            (["a", "b c"], ["a", "b c"]),
            (["a b c"], ["x y z"]),
            (["one two three four five"], ["one two three"]),
            (["cat"], ["the cat sat on the mat"]),
            ([" "], [" "]),
        ],
        ids=[
            "empty-hyps",
            "empty-refs",
            "short-exact",
            "no-match",
            "long-hyp",
            "short-hyp",
            "blank",
        ],
    )
    def test_degenerate_corpora_match_sacrebleu(
        self, predictions: list[str], references: list[str]
    ) -> None:
        """Corpora with no n-grams of some order, no matches or empty texts match sacrebleu."""
        bleu = bleu_from_statistics(bleu_statistics(predictions, references).sum(axis=0))[0]
        chrf = chrf_from_statistics(chrf_statistics(predictions, references).sum(axis=0))[0]
        assert abs(bleu - sacrebleu.corpus_bleu(predictions, [references]).score) <= TOLERANCE
        assert abs(chrf - sacrebleu.corpus_chrf(predictions, [references]).score) <= TOLERANCE

    @settings(max_examples=150, deadline=None)
    @given(pairs=st.lists(st.tuples(any_text, any_text), min_size=1, max_size=6))
    def test_arbitrary_corpora_match_sacrebleu(self, pairs: list[tuple[str, str]]) -> None:
        """Corpus BLEU and chrF of arbitrary small corpora equal sacrebleu's."""
        predictions, references = [p for p, _ in pairs], [r for _, r in pairs]
        bleu = bleu_from_statistics(bleu_statistics(predictions, references).sum(axis=0))[0]
        chrf = chrf_from_statistics(chrf_statistics(predictions, references).sum(axis=0))[0]
        assert abs(bleu - sacrebleu.corpus_bleu(predictions, [references]).score) <= TOLERANCE
        assert abs(chrf - sacrebleu.corpus_chrf(predictions, [references]).score) <= TOLERANCE

    def test_a_replicate_with_no_examples_scores_zero(self) -> None:
        """An all-zero row of sums scores 0, as sacrebleu scores a corpus without n-grams."""
        assert bleu_from_statistics(np.zeros((1, 10))).tolist() == [0.0]
        assert chrf_from_statistics(np.zeros((1, 18))).tolist() == [0.0]
