"""Validating and normalising golden dataset rows."""

from __future__ import annotations

import pytest

from pipelines.golden_datasets.schema import TEXT, GoldenDatasetTask
from tests.pipelines.golden_datasets.files import (
    csv_file,
    jsonl_file,
    located,
    parquet_file,
    problems_of,
    read,
)

GOOD = ("1", "question", "label", "", "")
GOOD_HEADER = ("id", "input", "expected", "slice", "tags")


class TestColumns:
    def test_missing_required_columns_are_named_with_the_found_ones(self) -> None:
        """Each missing required column is its own problem listing the columns found."""
        problems = problems_of(csv_file([("1", "x")], header=("id", "prompt")))
        missing = {p.column: p for p in problems if "missing" in p.message}
        assert set(missing) == {"input", "expected"}
        assert "found columns: 'id', 'prompt'" in missing["input"].message

    def test_misspelt_column_suggests_the_rename(self) -> None:
        """A near-miss column name is flagged as unknown and offered as the rename."""
        problems = problems_of(csv_file([("1", "x", "y")], header=("id", "input", "expceted")))
        assert located(problems) == {(None, "expceted"), (None, "expected")}
        fixes = {p.column: p.fix for p in problems}
        assert fixes["expected"] == "rename 'expceted' to 'expected'"
        assert fixes["expceted"] == "rename it to 'expected'"

    def test_header_names_differing_in_case_are_suggested(self) -> None:
        """'ID' is not 'id', but the fix says to rename it."""
        problems = problems_of(csv_file([("1", "x", "y")], header=("ID", "input", "expected")))
        assert {p.fix for p in problems} == {"rename it to 'id'", "rename 'ID' to 'id'"}

    def test_unknown_extra_column_is_a_problem(self) -> None:
        """Columns beyond the five are rejected, listing the allowed ones."""
        data = csv_file([(*GOOD, "n")], header=(*GOOD_HEADER, "notes"))
        (problem,) = problems_of(data)
        assert problem.column == "notes"
        assert "id, input, expected, slice, tags" in problem.fix

    def test_unknown_jsonl_key_is_a_problem(self) -> None:
        """Unknown keys in JSON Lines are rejected the same way."""
        data = jsonl_file([{"id": "1", "input": "a", "expected": "b", "meta": "m"}])
        assert located(problems_of(data, "data.jsonl")) == {(None, "meta")}

    def test_repeated_and_unnamed_columns(self) -> None:
        """A column named twice and an empty header cell are both reported."""
        data = b"id,input,expected,id,\n1,a,b,2,\n"
        messages = {p.message for p in problems_of(data)}
        assert "the column appears 2 times" in messages
        assert "column 5 has no name" in messages

    def test_header_names_are_stripped(self) -> None:
        """Spaces around header names do not matter."""
        assert len(read(b" id , input ,expected\n1,a,b\n").frame) == 1

    def test_optional_columns_may_be_absent(self) -> None:
        """Without slice and tags the frame still has them, empty."""
        frame = read(b"id,input,expected\n1,a,b\n").frame
        assert list(frame.columns) == ["id", "input", "expected", "slice", "tags"]
        assert frame[["slice", "tags"]].iloc[0].tolist() == ["", ""]


class TestRows:
    def test_empty_values_are_named_per_row_and_column(self) -> None:
        """Empty or whitespace-only id, input and expected are each reported where they are."""
        rows = [("", "a", "b", "", ""), ("2", "  \n ", "b", "", ""), ("3", "a", " ", "", "")]
        problems = problems_of(csv_file(rows))
        # The quoted input spans lines 3-4, so the third record starts on line 5.
        assert located(problems) == {(2, "id"), (3, "input"), (5, "expected")}
        assert all(p.unit == "line" for p in problems)

    def test_duplicate_ids_name_both_rows(self) -> None:
        """A repeated id is reported on the repeat, naming the first row too."""
        rows = [("a", "x", "y", "", ""), ("b", "x2", "y", "", ""), ("a", "x3", "y", "", "")]
        (problem,) = problems_of(csv_file(rows))
        assert (problem.row, problem.column) == (4, "id")
        assert "'a' is already used on line 2" in problem.message

    def test_ids_differing_only_in_whitespace_are_duplicates(self) -> None:
        """Ids are compared after normalisation, so "a " repeats "a"."""
        rows = [("a", "x", "y", "", ""), (" a ", "x", "y", "", "")]
        assert located(problems_of(csv_file(rows))) == {(3, "id")}

    def test_ids_differing_in_unicode_form_are_duplicates(self) -> None:
        """A composed and a decomposed é are the same id."""
        rows = [("caf\u00e9", "x", "y", "", ""), ("cafe\u0301", "x", "y", "", "")]
        assert located(problems_of(csv_file(rows))) == {(3, "id")}

    def test_parquet_duplicates_name_rows(self) -> None:
        """Parquet problems are located by 1-based row."""
        data = parquet_file({"id": ["a", "a"], "input": ["x", "y"], "expected": ["p", "q"]})
        (problem,) = problems_of(data, "data.parquet")
        assert problem.location == "row 2, column 'id'"
        assert "row 1" in problem.message

    def test_oversized_row_names_its_largest_column(self) -> None:
        """A row over the byte limit is reported with the column that makes it big."""
        rows = [("1", "é" * 60, "y", "", ""), ("2", "small", "y", "", "")]
        (problem,) = problems_of(csv_file(rows), max_row_bytes=100)
        assert (problem.row, problem.column) == (2, "input")
        assert "122 bytes" in problem.message
        assert "limit is 100" in problem.message

    def test_nul_character_is_a_problem(self) -> None:
        """A NUL character in a value is rejected wherever it appears."""
        data = jsonl_file([{"id": "1", "input": "a\u0000b", "expected": "c"}])
        assert located(problems_of(data, "data.jsonl")) == {(1, "input")}

    def test_header_without_rows(self) -> None:
        """A header alone is a file without examples."""
        (problem,) = problems_of(b"id,input,expected\n")
        assert "no examples" in problem.message

    def test_every_problem_is_collected(self) -> None:
        """Problems of different kinds, in different rows, are reported together."""
        rows = [("", "a", "b", "", ""), ("2", "", "b", "", ""), ("2", "a", "", "", "")]
        data = csv_file(rows, header=(*GOOD_HEADER[:3], "slice", "tagz"))
        assert located(problems_of(data)) == {
            (None, "tagz"),
            (2, "id"),
            (3, "input"),
            (4, "expected"),
            (4, "id"),
        }


class TestNormalisation:
    def test_text_is_nfc_with_unix_line_ends(self) -> None:
        """Decomposed accents are composed and CRLF/CR become LF in every column."""
        rows = [("cafe\u0301", "line1\r\nline2\rline3", "re\u0301ponse", "", "")]
        frame = read(csv_file(rows)).frame
        assert frame.iloc[0].tolist() == [
            "caf\u00e9",
            "line1\nline2\nline3",
            "r\u00e9ponse",
            "",
            "",
        ]

    def test_id_expected_and_slice_are_stripped_but_input_is_not(self) -> None:
        """Surrounding whitespace goes from id, expected and slice; input keeps it."""
        rows = [(" 7 ", "  indented\n", "\u00a0positive ", " web ", "")]
        frame = read(csv_file(rows)).frame
        assert frame.iloc[0].tolist() == ["7", "  indented\n", "positive", "web", ""]

    def test_tags_are_sorted_deduplicated_and_joined(self) -> None:
        """Tags become a sorted set joined by commas without spaces."""
        rows = [("1", "a", "b", "", " b, a,a,, c ")]
        assert read(csv_file(rows)).frame["tags"].tolist() == ["a,b,c"]

    def test_rows_are_sorted_by_id_code_point(self) -> None:
        """The frame is ordered by id in code point order, with a fresh index."""
        rows = [(i, "x", "y", "", "") for i in ("b", "B", "é", "a", "10", "9")]
        frame = read(csv_file(rows)).frame
        assert frame["id"].tolist() == ["10", "9", "B", "a", "b", "é"]
        assert frame.index.tolist() == list(range(6))

    def test_frame_is_all_strings_without_missing_values(self) -> None:
        """Every column is pandas' str dtype and nothing is missing."""
        frame = read(b"id,input,expected\n1,a,b\n").frame
        assert all(dtype == TEXT for dtype in frame.dtypes)
        assert not frame.isna().any().any()


class TestWarnings:
    def test_labels_differing_in_case_warn_for_classification(self) -> None:
        """'Billing' and 'billing' are legal but flagged as likely the same class."""
        rows = [("1", "a", "Billing", "", ""), ("2", "b", "billing ", "", "")]
        result = read(csv_file(rows))
        (warning,) = result.warnings
        assert warning.column == "expected"
        assert "'Billing', 'billing'" in warning.message
        assert result.frame["expected"].tolist() == ["Billing", "billing"]

    def test_case_is_not_checked_for_text_generation(self) -> None:
        """Reference texts may legitimately differ only in case."""
        rows = [("1", "a", "Yes", "", ""), ("2", "b", "yes", "", "")]
        assert read(csv_file(rows), task=GoldenDatasetTask.TEXT_GENERATION).warnings == ()

    def test_repeated_input_warns_with_both_rows(self) -> None:
        """The same input twice is a warning naming the first row and whether answers differ."""
        rows = [("1", "same", "a", "", ""), ("2", "other", "a", "", ""), ("3", "same", "b", "", "")]
        (warning,) = read(csv_file(rows)).warnings
        assert (warning.row, warning.column) == (4, "input")
        assert warning.message == "the same input is on line 2 with a different expected value"

    @pytest.mark.parametrize("task", list(GoldenDatasetTask))
    def test_clean_file_has_no_warnings(self, task: GoldenDatasetTask) -> None:
        """A plain valid file produces no warnings."""
        rows = [("1", "a", "x", "", ""), ("2", "b", "y", "", "")]
        assert read(csv_file(rows), task=task).warnings == ()


class TestArguments:
    def test_limits_must_be_positive(self) -> None:
        """Zero limits are a programming error, not a dataset problem."""
        with pytest.raises(ValueError, match="positive"):
            read(b"id,input,expected\n1,a,b\n", max_rows=0)

    def test_task_may_be_given_as_text(self) -> None:
        """The task's string value means the task itself: same rows, same content hash."""
        data = b"id,input,expected\n1,a,b\n"
        as_text = read(data, task="text_generation")  # type: ignore[arg-type]
        as_enum = read(data, task=GoldenDatasetTask.TEXT_GENERATION)
        other = read(data, task=GoldenDatasetTask.CLASSIFICATION)
        assert as_text.content_hash == as_enum.content_hash
        assert as_text.content_hash != other.content_hash
        assert as_text.frame.equals(as_enum.frame)
