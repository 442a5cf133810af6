"""Word-level differences between two texts, for showing a prediction against its reference."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

_TOKENS = re.compile(r"\s+|[^\s]+")


@dataclass(frozen=True)
class DiffSegment:
    """A run of words that both texts share, or that only one of them has."""

    kind: Literal["same", "removed", "added"]
    text: str


def word_diff(expected: str, predicted: str) -> list[DiffSegment]:
    """Segments turning `expected` into `predicted`: shared words, removed ones, added ones.

    Whitespace is kept as tokens, so joining the `same` and `added` segments gives back
    `predicted`, and joining `same` and `removed` gives back `expected`.
    """
    old, new = _TOKENS.findall(expected), _TOKENS.findall(predicted)
    segments: list[DiffSegment] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for operation, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if operation == "equal":
            _append(segments, "same", "".join(old[a_start:a_end]))
            continue
        if a_end > a_start:
            _append(segments, "removed", "".join(old[a_start:a_end]))
        if b_end > b_start:
            _append(segments, "added", "".join(new[b_start:b_end]))
    return segments


def _append(
    segments: list[DiffSegment], kind: Literal["same", "removed", "added"], text: str
) -> None:
    if segments and segments[-1].kind == kind:
        segments[-1] = DiffSegment(kind, segments[-1].text + text)
    else:
        segments.append(DiffSegment(kind, text))
