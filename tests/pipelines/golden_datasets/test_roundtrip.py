"""Rows written as CSV, JSON Lines or Parquet read back as the same normalised frame."""

from __future__ import annotations

import random
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.golden_datasets.schema import COLUMNS
from tests.pipelines.golden_datasets.files import csv_file, jsonl_file, parquet_file, read

# Any text a file can carry: no lone surrogates (not UTF-8) and no NUL (rejected on purpose).
TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
# Bias towards the characters normalisation cares about.
TRICKY = st.sampled_from(["\r\n", "\r", "\n", " ", "\t", "\u00a0", "\u3000", "e\u0301", "é", ","])


def _text(*, max_size: int = 8) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.text(TEXT, max_size=4), TRICKY), max_size=max_size).map("".join)


def _nonblank(*, max_size: int = 8) -> st.SearchStrategy[str]:
    """Text with at least one character that is not whitespace, anywhere in it."""
    solid = st.characters(exclude_categories=("Cs", "Zs", "Zl", "Zp", "Cc"))
    return st.tuples(_text(max_size=max_size // 2), solid, _text(max_size=max_size // 2)).map(
        "".join
    )


def _clean(value: str) -> str:
    """The documented normalisation, written the plain way."""
    return unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")


def _reference(rows: list[tuple[str, str, str, str, list[str]]]) -> list[list[str]]:
    normalised = [
        [
            _clean(id_).strip(),
            _clean(input_),
            _clean(expected).strip(),
            _clean(slice_).strip(),
            ",".join(sorted({t.strip() for t in _clean(",".join(tags)).split(",") if t.strip()})),
        ]
        for id_, input_, expected, slice_, tags in rows
    ]
    return sorted(normalised, key=lambda row: row[0])


ROW = st.tuples(
    _nonblank(max_size=4),
    _nonblank(),
    _nonblank(max_size=4),
    _text(max_size=4),
    st.lists(_text(max_size=3).map(lambda s: s.replace(",", "")), max_size=3),
)
ROWS = st.lists(ROW, min_size=1, max_size=6, unique_by=lambda row: _clean(row[0]).strip())


def _files(rows: list[tuple[str, str, str, str, list[str]]]) -> dict[str, bytes]:
    columns = {name: [row[i] for row in rows] for i, name in enumerate(COLUMNS)}
    records = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    return {
        "d.csv": csv_file([(*row[:4], ",".join(row[4])) for row in rows]),
        "d.jsonl": jsonl_file(records),
        "d.parquet": parquet_file(columns),
    }


class TestRoundTrip:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(rows=ROWS, seed=st.integers(0, 2**16))
    def test_every_format_reads_back_the_normalised_rows(
        self, rows: list[tuple[str, str, str, str, list[str]]], seed: int
    ) -> None:
        """Each format, in any row order, yields the reference-normalised frame and one hash."""
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        expected = _reference(rows)
        hashes = set()
        for order in (rows, shuffled):
            for name, data in _files(order).items():
                result = read(data, name)
                assert result.frame.to_numpy().tolist() == expected, name
                hashes.add(result.content_hash)
        assert len(hashes) == 1
