"""StreamFlow's ROUGE scorer gives exactly rouge-score's numbers, only faster."""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal
from rouge_score import rouge_scorer, tokenizers

from bench.rouge_bench import generate_pairs
from pipelines.evaluation import rouge
from pipelines.evaluation.rouge import ROUGE_COLUMNS, ROUGE_TYPES, RougeScorer, score_rouge


@functools.cache
def _stock_scorer(use_stemmer: bool) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)


def _stock_frame(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    use_stemmer: bool = True,
    scorer: rouge_scorer.RougeScorer | None = None,
) -> pd.DataFrame:
    """rouge-score's scores laid out as StreamFlow's frame."""
    scorer = scorer or _stock_scorer(use_stemmer)
    rows = []
    for prediction, reference in zip(predictions, references, strict=True):
        scores = scorer.score(target=reference, prediction=prediction)
        rows.append([float(value) for rouge_type in ROUGE_TYPES for value in scores[rouge_type]])
    return pd.DataFrame(
        np.array(rows, dtype=np.float64).reshape(len(rows), len(ROUGE_COLUMNS)),
        columns=list(ROUGE_COLUMNS),
    )


def _assert_identical_to_stock(
    predictions: Sequence[str], references: Sequence[str], *, use_stemmer: bool = True
) -> None:
    ours = RougeScorer(use_stemmer=use_stemmer).score_batch(predictions, references)
    expected = _stock_frame(predictions, references, use_stemmer=use_stemmer)
    assert_frame_equal(ours, expected, check_exact=True)


class TestGeneratedSummaries:
    """Seeded multi-sentence summaries with inflections, edits and reordered lines."""

    def test_stemmed_scores_equal_rouge_score(self) -> None:
        """Every score of 300 generated pairs equals rouge-score's with stemming."""
        predictions, references = generate_pairs(300, seed=7)
        _assert_identical_to_stock(predictions, references, use_stemmer=True)

    def test_unstemmed_scores_equal_rouge_score(self) -> None:
        """Every score of 100 generated pairs equals rouge-score's without stemming."""
        predictions, references = generate_pairs(100, seed=8)
        _assert_identical_to_stock(predictions, references, use_stemmer=False)

    def test_pairs_exercise_summary_level_lcs(self) -> None:
        """The generated pairs give rougeLsum values that differ from rougeL, so both are tested."""
        predictions, references = generate_pairs(50, seed=7)
        scores = score_rouge(predictions, references)
        assert (scores["rougeLsum_f"] != scores["rougeL_f"]).mean() > 0.5
        assert scores["rouge2_f"].between(0.05, 0.95).all()


class TestBackTrackingTies:
    """Lines over two to four distinct tokens, where LCS back-tracking meets tie after tie."""

    def test_union_lcs_follows_rouge_scores_tie_breaking(self) -> None:
        """400 tie-heavy multi-line pairs score exactly as rouge-score scores them."""
        rng = random.Random(2024)

        def text() -> str:
            alphabet = "abcd"[: rng.randint(2, 4)]
            return "\n".join(
                " ".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
                for _ in range(rng.randint(1, 6))
            )

        predictions = [text() for _ in range(400)]
        references = [text() for _ in range(400)]
        _assert_identical_to_stock(predictions, references, use_stemmer=False)


# fmt: off
_WORDS = (
    "the", "cat", "cats", "run", "runs", "running", "ran", "runner", "quickly", "quick",
    "dog", "dogs", "house", "housing", "a", "an", "of", "2024", "1,000", "3.14",
    "x9", "über", "café", "naïve", "İstanbul", "Straße", "ΣΊΣΥΦΟΣ", "東京", "🙂",
)
# fmt: on
_NOISE = st.text(
    alphabet=st.sampled_from(
        list(" \t\n\r\n.,;:!?'\"()[]-_/&%$#@*+=~`^|\\<>{}0aZé\u0130\u212a\u00a0")
    ),
    max_size=4,
)
_TEXTS = st.lists(st.one_of(st.sampled_from(_WORDS), _NOISE, st.text(max_size=3)), max_size=30).map(
    " ".join
)


class TestArbitraryTexts:
    """Hypothesis-generated texts: unicode, punctuation, blank lines and shared words."""

    @settings(
        max_examples=200,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(prediction=_TEXTS, reference=_TEXTS, use_stemmer=st.booleans())
    def test_scores_equal_rouge_score(
        self, prediction: str, reference: str, use_stemmer: bool
    ) -> None:
        """Any pair of texts scores exactly as rouge-score scores it."""
        _assert_identical_to_stock([prediction], [reference], use_stemmer=use_stemmer)


_EDGE_CASES = {
    "both empty": ("", ""),
    "empty prediction": ("", "the cat sat on the mat"),
    "empty reference": ("the cat sat on the mat", ""),
    "whitespace only": (" \n\t\r\n ", "the cat"),
    "single equal token": ("cat", "cat"),
    "single different token": ("cat", "dog"),
    "punctuation only": ("?!... --- ;;", "!!!"),
    "punctuation-only lines": ("a cat ran\n...\n!!!\nthe dog", "...\nthe dog ran\n?\na cat"),
    "crlf lines": ("the cat sat\r\non the mat\r\n", "on the mat\r\nthe cat sat\r\n"),
    "blank lines": ("\n\nthe cat\n\n\nsat down\n", "the cat sat\n\n\ndown"),
    "repeated tokens": ("the the the cat the the", "the cat the the cat the cat"),
    "repeated bigrams on both sides": ("a b a b a b c", "a b c a b a b a b"),
    "numbers": ("In 2024 we sold 1,000,000 units at 3.5%", "we sold 1000000 units in 2024"),
    "stemming": ("the runners were running quickly", "a runner runs quick"),
    "non-ascii": ("Café naïve İstanbul Kelvin \u212a Straße", "cafe naive istanbul k strasse"),
    "lines in another order": ("b c d\na b c\nc d e", "a b c\nc d e\nb c d"),
    "one line against many": ("a b c d e f g", "a b\nc d\ne f\ng"),
    "lone surrogate": ("caf\ud800e runs fast", "cafe running fast"),
}


class TestEdgeCases:
    """Explicit corner cases of tokenisation and of the LCS back-tracking."""

    @pytest.mark.parametrize("use_stemmer", [True, False], ids=["stemmed", "unstemmed"])
    @pytest.mark.parametrize(("prediction", "reference"), _EDGE_CASES.values(), ids=_EDGE_CASES)
    def test_scores_equal_rouge_score(
        self, prediction: str, reference: str, use_stemmer: bool
    ) -> None:
        """The corner case scores exactly as rouge-score scores it."""
        _assert_identical_to_stock([prediction], [reference], use_stemmer=use_stemmer)

    def test_texts_without_tokens_score_zero(self) -> None:
        """A pair where either side has no tokens scores 0 on every column."""
        scores = score_rouge(["", "...", "the cat"], ["the cat", "the cat", "?!"])
        assert (scores.to_numpy() == 0.0).all()

    def test_identical_texts_score_one(self) -> None:
        """A text scored against itself scores 1 on every column."""
        text = "The cat sat.\nThe dog ran after the cat!"
        assert (score_rouge([text], [text]).to_numpy() == 1.0).all()

    def test_invalid_stems_are_dropped_like_rouge_score(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A stemmer output that is not [a-z0-9]+ is dropped, as rouge-score's final check does."""

        class OddStemmer:
            def stem(self, word: str) -> str:
                return {"cats": "", "dogs": "dog-like"}.get(word, word[:-1])

        monkeypatch.setattr(rouge, "_stem", OddStemmer().stem)
        stock_tokenizer = tokenizers.DefaultTokenizer(use_stemmer=True)
        stock_tokenizer._stemmer = OddStemmer()
        stock = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=stock_tokenizer)
        predictions = ["cats and dogs chase birds", "cats\ndogs", "the birds sing\ncats"]
        references = ["dogs chase cats and birds", "birds", "cats sing\nthe dogs"]
        ours = RougeScorer(use_stemmer=True).score_batch(predictions, references)
        assert_frame_equal(
            ours, _stock_frame(predictions, references, scorer=stock), check_exact=True
        )


class TestRougeScorer:
    """The frame's layout and the scorer's reuse across batches."""

    def test_frame_has_one_float_row_per_pair_in_input_order(self) -> None:
        """Rows follow the input pairs and carry ROUGE_COLUMNS as float64."""
        predictions, references = generate_pairs(20, seed=3)
        scorer = RougeScorer()
        forward = scorer.score_batch(predictions, references)
        backward = scorer.score_batch(predictions[::-1], references[::-1])
        assert list(forward.columns) == list(ROUGE_COLUMNS)
        assert (forward.dtypes == np.float64).all()
        assert forward.index.equals(pd.RangeIndex(20))
        assert np.array_equal(forward.to_numpy(), backward.to_numpy()[::-1])

    def test_rouge_columns_name_each_type_and_statistic(self) -> None:
        """ROUGE_COLUMNS lists precision, recall and f for each ROUGE type in order."""
        assert ROUGE_COLUMNS[:3] == ("rouge1_precision", "rouge1_recall", "rouge1_f")
        assert ROUGE_COLUMNS[-1] == "rougeLsum_f"
        assert len(ROUGE_COLUMNS) == 3 * len(ROUGE_TYPES)

    def test_empty_batch_gives_empty_frame(self) -> None:
        """No pairs give a frame with the columns and no rows."""
        scores = RougeScorer().score_batch([], [])
        assert scores.shape == (0, len(ROUGE_COLUMNS))
        assert list(scores.columns) == list(ROUGE_COLUMNS)

    def test_mismatched_lengths_are_rejected(self) -> None:
        """Predictions and references of different lengths raise ValueError."""
        with pytest.raises(ValueError, match="2 predictions but 1 references"):
            RougeScorer().score_batch(["a", "b"], ["a"])

    def test_vocabulary_restarts_when_full_without_changing_scores(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A scorer whose word cache keeps filling up and restarting still scores exactly."""
        monkeypatch.setattr(rouge, "_MAX_VOCABULARY", 8)
        predictions, references = generate_pairs(40, seed=11)
        _assert_identical_to_stock(predictions, references)


class TestScoreRouge:
    """The batch entry point, in one process or several."""

    def test_two_processes_give_the_same_frame_as_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """processes=2 splits the batch over workers and returns the same frame."""
        monkeypatch.setattr(rouge, "_MIN_PAIRS_PER_PROCESS", 10)
        predictions, references = generate_pairs(120, seed=5)
        single = score_rouge(predictions, references, processes=1)
        parallel = score_rouge(predictions, references, processes=2)
        assert_frame_equal(parallel, single, check_exact=True)

    def test_small_batches_stay_in_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A batch too small to split is scored without starting a pool."""

        def no_pool(*args: object, **kwargs: object) -> None:
            raise AssertionError("a pool was started")

        monkeypatch.setattr(rouge, "process_pool", no_pool)
        predictions, references = generate_pairs(5, seed=5)
        scores = score_rouge(predictions, references, processes=4)
        assert len(scores) == 5

    def test_processes_must_be_positive(self) -> None:
        """processes below 1 raise ValueError."""
        with pytest.raises(ValueError, match="processes"):
            score_rouge(["a"], ["a"], processes=0)
