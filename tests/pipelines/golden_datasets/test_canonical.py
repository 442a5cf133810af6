"""The canonical form and content hash of golden datasets."""

from __future__ import annotations

import hashlib
import json
import random
import sys

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.golden_datasets.canonical import (
    WHITESPACE,
    canonical_lines,
    canonical_tags,
    content_hash,
    normalise_columns,
    normalise_value,
)
from pipelines.golden_datasets.schema import COLUMNS, TEXT, GoldenDatasetTask
from tests.pipelines.golden_datasets.files import csv_file, jsonl_file, parquet_file, read

CLASSIFICATION = GoldenDatasetTask.CLASSIFICATION

ROWS = [
    ("q-001", "Where is my invoice?\r\nI can't find it.", "billing", "email", "vip, urgent"),
    ("q-002", "Le technicien n'est pas venu", "technician_no_show", "phone", ""),
    ("q-010", "Déplacer mon rendez-vous à vendredi", "reschedule", "", "fr"),
    ("007", '  Quote "this", and a \\ backslash', "other", "chat", "b,a,a"),
    ("q-003", "東京の天気は?", "other", "", ""),
]


def _frame(rows: list[tuple[str, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=TEXT)


def _three_formats(rows: list[tuple[str, ...]]) -> dict[str, bytes]:
    records = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    for record in records:  # JSONL and Parquet carry tags as lists, CSV as text
        record["tags"] = [tag for tag in str(record["tags"]).split(",") if tag]  # type: ignore[assignment]
    return {
        "d.csv": csv_file(rows),
        "d.jsonl": jsonl_file(records),
        "d.parquet": parquet_file({name: [r[name] for r in records] for name in COLUMNS}),
    }


class TestContentHash:
    def test_same_examples_in_any_format_and_order_hash_alike(self) -> None:
        """CSV, JSON Lines and Parquet of the same rows, shuffled, share one hash."""
        shuffled = ROWS[:]
        random.Random(4).shuffle(shuffled)
        hashes = {
            read(data, name).content_hash
            for rows in (ROWS, shuffled)
            for name, data in _three_formats(rows).items()
        }
        assert len(hashes) == 1

    def test_insignificant_differences_hash_alike(self) -> None:
        """Line endings, Unicode form, tag order and padding of stripped columns do not count."""
        variant = [
            (
                f" {id_} ",
                text.replace("\r\n", "\r"),
                f"{label} ",
                slice_,
                ",".join(tags.split(",")[::-1]),
            )
            for id_, text, label, slice_, tags in ROWS
        ]
        variant[2] = (
            "q-010",
            "De\u0301placer mon rendez-vous a\u0300 vendredi",
            "reschedule",
            "",
            "fr",
        )
        assert read(csv_file(variant)).content_hash == read(csv_file(ROWS)).content_hash

    @pytest.mark.parametrize("column", range(5))
    def test_any_changed_value_changes_the_hash(self, column: int) -> None:
        """Changing one value in any column gives a different hash."""
        changed = [list(row) for row in ROWS]
        changed[1][column] = changed[1][column] + "x"
        before = read(csv_file(ROWS)).content_hash
        assert read(csv_file([tuple(row) for row in changed])).content_hash != before

    def test_input_whitespace_counts(self) -> None:
        """Input keeps its whitespace, so padding it changes the hash."""
        padded = [(ROWS[0][0], ROWS[0][1] + " ", *ROWS[0][2:]), *ROWS[1:]]
        assert read(csv_file(padded)).content_hash != read(csv_file(ROWS)).content_hash

    def test_task_is_part_of_the_hash(self) -> None:
        """The same rows as classification and text generation hash differently."""
        data = csv_file(ROWS)
        assert (
            read(data, task=GoldenDatasetTask.CLASSIFICATION).content_hash
            != read(data, task=GoldenDatasetTask.TEXT_GENERATION).content_hash
        )

    def test_moving_a_value_between_columns_changes_the_hash(self) -> None:
        """Column boundaries are part of the serialisation."""
        a = _frame([("1", "ab", "c", "", "")])
        b = _frame([("1", "a", "bc", "", "")])
        assert content_hash(a, CLASSIFICATION) != content_hash(b, CLASSIFICATION)


class TestCanonicalForm:
    def test_matches_the_documented_bytes(self) -> None:
        """The hash is SHA-256 of the JSON Lines spelled out in the module docstring."""
        frame = _frame([("b", "x\ny", "lbl", "s", "a,b"), ("a", 'é"\\\t', "l", "", "")])
        expected = (
            '["streamflow.golden_dataset",1,"classification"]\n'
            '["a","é\\"\\\\\\t","l","",""]\n'
            '["b","x\\ny","lbl","s","a,b"]\n'
        ).encode()
        assert content_hash(frame, CLASSIFICATION) == hashlib.sha256(expected).hexdigest()

    def test_missing_optional_values_count_as_empty(self) -> None:
        """Stored frames with None for slice and tags hash like ones with ""."""
        with_none = pd.DataFrame(
            {"id": ["1"], "input": ["a"], "expected": ["b"], "slice": [None], "tags": [None]}
        )
        with_empty = _frame([("1", "a", "b", "", "")])
        assert content_hash(with_none, CLASSIFICATION) == content_hash(with_empty, CLASSIFICATION)

    def test_duplicate_ids_have_no_canonical_form(self) -> None:
        """Row order would matter with repeated ids, so they are refused."""
        with pytest.raises(ValueError, match="unique"):
            content_hash(_frame([("1", "a", "b", "", ""), ("1", "c", "d", "", "")]), CLASSIFICATION)

    def test_missing_columns_are_refused(self) -> None:
        """A frame without the five columns has no canonical form."""
        with pytest.raises(ValueError, match="slice"):
            content_hash(
                pd.DataFrame({"id": ["1"], "input": ["a"], "expected": ["b"]}), CLASSIFICATION
            )

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(), min_size=5, max_size=5))
    def test_lines_are_json_dumps_of_the_row(self, row: list[str]) -> None:
        """Each row line is exactly json.dumps(row, ensure_ascii=False, separators=(",", ":"))."""
        lines = canonical_lines(_frame([tuple(row)]), CLASSIFICATION)
        assert lines[1] == json.dumps(row, ensure_ascii=False, separators=(",", ":"))

    def test_whitespace_is_pythons(self) -> None:
        """The stripped characters are exactly those str.strip() removes."""
        python = "".join(c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace())
        assert python == WHITESPACE

    @pytest.mark.parametrize(
        ("tags", "canonical"),
        [("", ""), (" , ,", ""), ("b, a,a", "a,b"), ("Z,a", "Z,a"), (" x y ", "x y")],
    )
    def test_canonical_tags(self, tags: str, canonical: str) -> None:
        """Tags are stripped, de-duplicated, code-point sorted and joined by commas."""
        assert canonical_tags(tags) == canonical


class TestOneNormalisation:
    @settings(max_examples=50, deadline=None)
    @given(st.text(alphabet=st.sampled_from("ae\u0301\u0308 \t\r\nÅ\u212b\u00a0x")))
    def test_normalise_value_is_what_import_does_to_expected(self, value: str) -> None:
        """The function scoring applies to predictions equals import's `expected` column."""
        frame = normalise_columns({"expected": pd.Series([value], dtype=TEXT)}, 1)
        assert normalise_value(value) == frame.loc[0, "expected"]


class TestDeclaredLabels:
    def test_a_declared_set_equal_to_the_expected_values_changes_nothing(self) -> None:
        """Declaring exactly the expected values hashes as before (format version 1)."""
        frame = _frame([("1", "x", "b", "", ""), ("2", "y", "a", "", "")])
        assert content_hash(frame, CLASSIFICATION, ["a", "b"]) == content_hash(
            frame, CLASSIFICATION
        )

    def test_extra_labels_enter_the_header(self) -> None:
        """Labels beyond the expected values are part of the content: header version 2."""
        frame = _frame([("1", "x", "b", "", "")])
        lines = canonical_lines(frame, CLASSIFICATION, ["c", "b"])
        assert lines[0] == '["streamflow.golden_dataset",2,"classification",["b","c"]]'
        assert content_hash(frame, CLASSIFICATION, ["b", "c"]) != content_hash(
            frame, CLASSIFICATION
        )
