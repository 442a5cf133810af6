from __future__ import annotations

import pickle
from collections.abc import Sequence

import pandas as pd
import pytest
from rouge_score import rouge_scorer

from pipelines.agents.summarizers import (
    LeadSentenceSummarizer,
    ScoredSentenceSummarizer,
    split_sentences,
    unigram_f1,
)

NOTE = (
    "Arrived on site at 08:40, Karen met me at the door. Customer reports no cooling. "
    "Capacitor tested at 21.3 µF against a 45 µF rating. Replaced it with a 45/5 µF capacitor. "
    "Left site at 09:30."
)


def mean_rouge_l(predictions: Sequence[str], references: Sequence[str]) -> float:
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    scores = [
        scorer.score(reference, prediction)["rougeL"].fmeasure
        for prediction, reference in zip(predictions, references, strict=True)
    ]
    return sum(scores) / len(scores)


@pytest.fixture(scope="module")
def scored(note_train: pd.DataFrame) -> ScoredSentenceSummarizer:
    return ScoredSentenceSummarizer().fit(note_train["input"], note_train["expected"])


@pytest.fixture(scope="module")
def lead_rouge(note_golden: pd.DataFrame) -> float:
    predictions = LeadSentenceSummarizer().fit(note_golden["input"]).predict(note_golden["input"])
    return mean_rouge_l(predictions, note_golden["expected"])


class TestSplitSentences:
    def test_splits_at_sentence_ends(self) -> None:
        """A period, question or exclamation mark followed by a space ends a sentence."""
        assert split_sentences("Found a leak. Fixed it! Any questions? No.") == [
            "Found a leak.",
            "Fixed it!",
            "Any questions?",
            "No.",
        ]

    def test_keeps_decimals_and_abbreviations_inside_a_sentence(self) -> None:
        """Decimal points, common abbreviations and lowercase continuations do not split."""
        text = "Reading 21.3 µF vs. 45 rated, approx. 3 ft of pipe. Mr. Lee paid $1,204.50 today."
        assert split_sentences(text) == [
            "Reading 21.3 µF vs. 45 rated, approx. 3 ft of pipe.",
            "Mr. Lee paid $1,204.50 today.",
        ]

    def test_line_breaks_end_sentences(self) -> None:
        """Each line of a note is at least one sentence, even without a final period."""
        assert split_sentences("Arrived 08:40\n\n- replaced fuse\nDone.") == [
            "Arrived 08:40",
            "- replaced fuse",
            "Done.",
        ]

    def test_blank_text_has_no_sentences(self) -> None:
        """Empty or whitespace-only text splits into nothing."""
        assert split_sentences("") == []
        assert split_sentences(" \n ") == []

    def test_demo_notes_have_four_to_nine_sentences(
        self, note_train: pd.DataFrame, note_golden: pd.DataFrame
    ) -> None:
        """The splitter sees every generated job note as the 4-9 sentences it was built from."""
        counts = {
            len(split_sentences(note)) for note in pd.concat([note_train, note_golden])["input"]
        }
        assert min(counts) == 4
        assert max(counts) == 9


class TestUnigramF1:
    def test_scores_word_overlap(self) -> None:
        """Identical texts score 1, disjoint texts 0, and case and punctuation are ignored."""
        assert unigram_f1("Replaced the fuse.", "replaced THE fuse") == 1.0
        assert unigram_f1("Arrived 08:40", "Replaced fuse") == 0.0
        assert unigram_f1("replaced fuse", "replaced the fuse today") == pytest.approx(2 / 3)


class TestLeadSentenceSummarizer:
    def test_returns_the_first_sentence(self) -> None:
        """The summary of a note is its first sentence; an empty note gives ""."""
        summarizer = LeadSentenceSummarizer().fit([NOTE])
        assert summarizer.predict([NOTE, ""]) == [
            "Arrived on site at 08:40, Karen met me at the door.",
            "",
        ]


class TestScoredSentenceSummarizer:
    def test_beats_the_lead_sentence_on_rouge_l(
        self, scored: ScoredSentenceSummarizer, note_golden: pd.DataFrame, lead_rouge: float
    ) -> None:
        """Trained on the training split, it beats "first sentence" by a wide ROUGE-L margin."""
        predictions = scored.predict(note_golden["input"])
        assert mean_rouge_l(predictions, note_golden["expected"]) >= lead_rouge + 0.15

    def test_without_reference_summaries_still_beats_the_lead_sentence(
        self, note_train: pd.DataFrame, note_golden: pd.DataFrame, lead_rouge: float
    ) -> None:
        """Fitted on notes alone, ranking by similarity to the note still beats the baseline."""
        summarizer = ScoredSentenceSummarizer().fit(note_train["input"])
        predictions = summarizer.predict(note_golden["input"])
        assert mean_rouge_l(predictions, note_golden["expected"]) > lead_rouge + 0.05

    def test_picks_at_most_k_sentences_in_note_order(
        self, scored: ScoredSentenceSummarizer, note_golden: pd.DataFrame
    ) -> None:
        """A summary is up to `max_sentences` of the note's own sentences, in note order."""
        notes = note_golden["input"].iloc[:50].tolist()
        for note, summary in zip(notes, scored.predict(notes), strict=True):
            sentences = split_sentences(note)
            picked = split_sentences(summary)
            positions = [sentences.index(sentence) for sentence in picked]
            assert len(picked) == min(2, len(sentences))
            assert positions == sorted(positions)

    def test_short_and_empty_notes(self, scored: ScoredSentenceSummarizer) -> None:
        """A note of at most `max_sentences` sentences comes back whole, an empty one as ""."""
        assert scored.predict(["Replaced the fuse. Works now.", ""]) == [
            "Replaced the fuse. Works now.",
            "",
        ]

    def test_same_training_gives_same_predictions(
        self, note_train: pd.DataFrame, note_golden: pd.DataFrame
    ) -> None:
        """Fitting twice on the same data gives identical summaries."""
        notes = note_golden["input"].iloc[:100].tolist()
        train = note_train.iloc[:300]
        first = ScoredSentenceSummarizer().fit(train["input"], train["expected"])
        second = ScoredSentenceSummarizer().fit(train["input"], train["expected"])
        assert first.predict(notes) == second.predict(notes)

    def test_pickle_round_trip_keeps_predictions(
        self, scored: ScoredSentenceSummarizer, note_golden: pd.DataFrame
    ) -> None:
        """A pickled and restored summariser summarises exactly as the original."""
        notes = note_golden["input"].tolist()
        assert pickle.loads(pickle.dumps(scored)).predict(notes) == scored.predict(notes)

    def test_fits_on_a_single_note(self) -> None:
        """Even one training pair is enough to fit and summarise."""
        summarizer = ScoredSentenceSummarizer().fit([NOTE], ["Replaced the failed capacitor."])
        assert len(split_sentences(summarizer.predict([NOTE])[0])) == 2

    def test_must_be_fitted_first(self) -> None:
        """Predicting before fitting is an error, not an empty answer."""
        with pytest.raises(RuntimeError, match="fit"):
            ScoredSentenceSummarizer().predict([NOTE])

    def test_rejects_mismatched_summaries(self) -> None:
        """Notes and reference summaries must pair up one to one."""
        with pytest.raises(ValueError, match="2 notes but 1 summaries"):
            ScoredSentenceSummarizer().fit([NOTE, NOTE], ["Replaced capacitor."])
