"""Word-level differences: shared, removed and added words that rebuild both texts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipelines.evaluation.text_diff import DiffSegment, word_diff


def test_changed_words_are_marked() -> None:
    assert word_diff("replaced the valve and tested", "replaced a valve and left") == [
        DiffSegment("same", "replaced "),
        DiffSegment("removed", "the"),
        DiffSegment("added", "a"),
        DiffSegment("same", " valve and "),
        DiffSegment("removed", "tested"),
        DiffSegment("added", "left"),
    ]


@given(st.text(alphabet="ab c\n", max_size=40), st.text(alphabet="ab c\n", max_size=40))
def test_segments_rebuild_both_texts(expected: str, predicted: str) -> None:
    segments = word_diff(expected, predicted)
    assert "".join(s.text for s in segments if s.kind != "added") == expected
    assert "".join(s.text for s in segments if s.kind != "removed") == predicted
