"""Reading CSV, JSON Lines and Parquet files, and rejecting files that are not what they claim."""

from __future__ import annotations

import csv
import gzip

import pyarrow as pa
import pytest

from pipelines.golden_datasets.parsing import parse_golden_file
from tests.pipelines.golden_datasets.files import (
    csv_file,
    jsonl_file,
    located,
    parquet_file,
    problems_of,
    read,
)

ROWS = [("a1", "Where is my invoice?", "billing", "email", "vip"), ("a2", "Hi", "other", "", "")]
RECORDS = [
    dict(zip(("id", "input", "expected", "slice", "tags"), row, strict=True)) for row in ROWS
]


class TestFormatFromExtension:
    @pytest.mark.parametrize(
        ("filename", "data"),
        [
            ("data.csv", csv_file(ROWS)),
            ("DATA.CSV", csv_file(ROWS)),
            ("data.jsonl", jsonl_file(RECORDS)),
            ("data.ndjson", jsonl_file(RECORDS)),
            ("data.parquet", parquet_file({k: [r[k] for r in RECORDS] for k in RECORDS[0]})),
        ],
        ids=["csv", "csv-upper-case", "jsonl", "ndjson", "parquet"],
    )
    def test_supported_extensions_read_the_same_rows(self, filename: str, data: bytes) -> None:
        """Each supported extension reads its format into the same rows."""
        assert read(data, filename).frame["id"].tolist() == ["a1", "a2"]

    def test_unknown_extension_names_the_supported_ones(self) -> None:
        """An .xlsx file is refused with the list of formats that work."""
        (problem,) = problems_of(b"PK\x03\x04rest", "data.xlsx")
        assert (problem.row, problem.column) == (None, None)
        assert "'.xlsx'" in problem.message
        for extension in (".csv", ".jsonl", ".ndjson", ".parquet"):
            assert extension in problem.message

    def test_missing_extension_is_reported(self) -> None:
        """A name without an extension says so."""
        (problem,) = problems_of(csv_file(ROWS), "examples")
        assert "no extension" in problem.message


class TestFileIsNotItsFormat:
    def test_parquet_without_magic_bytes(self) -> None:
        """CSV text named .parquet is refused because the PAR1 signature is missing."""
        (problem,) = problems_of(csv_file(ROWS), "data.parquet")
        assert "PAR1" in problem.message
        assert "looks like text" in problem.message

    def test_truncated_parquet(self) -> None:
        """A Parquet file with its signatures but a broken body cannot be read."""
        data = parquet_file({"id": ["a"], "input": ["b"], "expected": ["c"]})
        broken = data[:4] + b"\x00" * 40 + data[-8:]
        (problem,) = problems_of(broken, "data.parquet")
        assert "could not be read" in problem.message

    @pytest.mark.parametrize(
        ("data", "what"),
        [
            (b"\x00\x01\x02binary\x00junk", "binary"),
            (b"PK\x03\x04" + b"\x00" * 20, "ZIP"),
            (gzip.compress(csv_file(ROWS), mtime=0), "gzip"),
            ("id,input\n".encode("utf-16"), "UTF-16"),
            (parquet_file({"id": ["a"]}), "Parquet"),
        ],
        ids=["binary", "zip", "gzip", "utf16", "parquet"],
    )
    def test_binary_file_named_csv(self, data: bytes, what: str) -> None:
        """Binary content under a .csv name is refused, saying what it looks like."""
        (problem,) = problems_of(data, "data.csv")
        assert what in problem.message
        assert problem.row is None

    def test_binary_file_named_jsonl(self) -> None:
        """Binary content under a .jsonl name is refused too."""
        (problem,) = problems_of(b"\x00\x00\x00\x01", "data.jsonl")
        assert "binary" in problem.message

    @pytest.mark.parametrize("filename", ["data.csv", "data.jsonl", "data.parquet"])
    @pytest.mark.parametrize("data", [b"", b"  \r\n\n"], ids=["no-bytes", "whitespace"])
    def test_empty_file(self, filename: str, data: bytes) -> None:
        """An empty file is one clear problem in every format; blank text is not Parquet."""
        (problem,) = problems_of(data, filename)
        if filename.endswith(".parquet") and data:
            assert problem.message == (
                "the file is not Parquet: it lacks the PAR1 signature and looks like text "
                "(CSV or JSON Lines?)"
            )
        else:
            assert problem.message == "the file is empty"
        assert (problem.row, problem.column) == (None, None)


class TestCsv:
    def test_bom_is_dropped(self) -> None:
        """A UTF-8 BOM (as Excel writes it) does not end up in the first column name."""
        result = read(csv_file(ROWS, bom=True))
        assert result.frame["id"].tolist() == ["a1", "a2"]

    def test_quoted_multiline_fields(self) -> None:
        """Quoted fields may hold commas, quotes and line breaks; later lines are counted right."""
        data = b'id,input,expected\r\n1,"line one\r\nline two, with ""quotes""",x\r\n2,,y\r\n'
        problems = problems_of(data)
        assert located(problems) == {(4, "input")}
        frame = read(data.replace(b"2,,y", b"2,z,y")).frame
        assert frame["input"].tolist() == ['line one\nline two, with "quotes"', "z"]

    def test_ids_stay_text(self) -> None:
        """Numeric-looking ids and labels keep their spelling."""
        frame = read(csv_file([("007", "x", "01", "", ""), ("1e3", "y", "1.50", "", "")])).frame
        assert frame["id"].tolist() == ["007", "1e3"]
        assert frame["expected"].tolist() == ["01", "1.50"]

    def test_empty_strings_and_na_words_stay_text(self) -> None:
        """Words pandas would turn into NaN ("NA", "null") are ordinary text."""
        frame = read(csv_file([("NA", "null", "None", "NaN", "")])).frame
        assert frame.iloc[0].tolist() == ["NA", "null", "None", "NaN", ""]

    def test_wrong_field_count_names_the_line(self) -> None:
        """A record with too many or too few fields is reported on its line and skipped."""
        data = b"id,input,expected\n1,a,b\n2,a,b,extra\n3,a\n4,a,b\n"
        problems = problems_of(data)
        assert located(problems) == {(3, None), (4, None)}
        assert "4 fields but the header has 3" in problems[0].message

    def test_blank_lines_and_empty_records_are_skipped(self) -> None:
        """Blank lines and all-empty records (spreadsheet residue) are not examples."""
        data = b"id,input,expected\n\n1,a,b\n,,\n  , ,\n2,c,d\n\n"
        assert read(data).frame["id"].tolist() == ["1", "2"]

    def test_unclosed_quote_names_the_record_start(self) -> None:
        """A quote that is never closed is reported at the record where it opens."""
        data = b'id,input,expected\n1,a,b\n2,"never closed,c\n3,d,e\n'
        (problem,) = problems_of(data)
        assert problem.row == 3
        assert "never closed" in problem.message

    def test_text_after_closing_quote_keeps_parsing(self) -> None:
        """Bad quoting in one record is reported, and later records are still checked."""
        data = b'id,input,expected\n1,"a"b,c\n2,,d\n'
        problems = problems_of(data)
        assert located(problems) == {(2, None), (3, "input")}

    def test_semicolon_separated_file(self) -> None:
        """A file separated by semicolons gets one problem saying so, not one per row."""
        (problem,) = problems_of(b"id;input;expected\n1;a;b\n")
        assert "';'" in problem.message
        assert problem.row == 1

    def test_non_utf8_bytes_name_line_and_column(self) -> None:
        """Latin-1 bytes are reported at their line and column; other cells still validate."""
        data = b"id,input,expected\n1,caf\xe9,b\n2,ok,\n"
        problems = problems_of(data)
        assert located(problems) == {(2, "input"), (3, "expected")}
        encoding = next(p for p in problems if p.column == "input")
        assert "0xE9" in encoding.message
        assert "UTF-8" in encoding.fix

    def test_non_utf8_header(self) -> None:
        """Bad bytes in the header are reported on line 1."""
        problems = problems_of(b"id,input,expected,n\xf6tes\n1,a,b,c\n")
        assert (1, None) in located(problems)

    def test_long_fields_are_read(self) -> None:
        """Fields beyond the csv module's default limit are read, then judged by size."""
        long_input = "x" * 200_000
        result = read(csv_file([("1", long_input, "y", "", "")]), max_row_bytes=300_000)
        assert result.frame["input"].str.len().tolist() == [200_000]
        assert csv.field_size_limit() == 131_072  # the process-wide limit is restored

    def test_too_many_rows(self) -> None:
        """More rows than the limit is one file-level problem."""
        rows = [(str(i), "x", "y", "", "") for i in range(5)]
        (problem,) = problems_of(csv_file(rows), max_rows=3)
        assert problem.row is None
        assert "more than 3 rows" in problem.message


class TestJsonLines:
    def test_numbers_and_booleans_keep_their_spelling(self) -> None:
        """JSON numbers become their literal text and booleans the words true/false."""
        data = (
            b'{"id": 7, "input": "x", "expected": 1.50}\n'
            b'{"id": "007", "input": "y", "expected": true}\n'
        )
        frame = read(data, "data.jsonl").frame
        assert frame["id"].tolist() == ["007", "7"]
        assert frame["expected"].tolist() == ["true", "1.50"]

    def test_line_that_is_not_an_object(self) -> None:
        """Arrays, strings and numbers on a line are reported with the line number."""
        data = jsonl_file(RECORDS) + b'["a", "b"]\n"text"\n42\n'
        problems = problems_of(data, "data.jsonl")
        assert located(problems) == {(3, None), (4, None), (5, None)}
        assert "a JSON array, not a JSON object" in problems[0].message

    def test_invalid_json_line(self) -> None:
        """A line that is not JSON is reported with where the parser stopped."""
        data = b'{"id": "1", "input": "a", "expected": "b"}\n\n{"id": "2", "input": "a",\n'
        (problem,) = problems_of(data, "data.jsonl")
        assert problem.row == 3
        assert problem.unit == "line"
        assert "not valid JSON" in problem.message

    def test_nested_values_cannot_be_text(self) -> None:
        """An object or array in input is reported at its line and column."""
        data = jsonl_file(
            [
                {"id": "1", "input": {"messages": []}, "expected": "a"},
                {"id": "2", "input": ["x"], "expected": "a"},
                {"id": "3", "input": "fine", "expected": "a"},
            ]
        )
        problems = problems_of(data, "data.jsonl")
        assert located(problems) == {(1, "input"), (2, "input")}
        assert "JSON object" in problems[0].message

    def test_tags_may_be_a_list_of_strings(self) -> None:
        """A tags list is joined like a comma-separated tags cell."""
        data = jsonl_file([{"id": "1", "input": "a", "expected": "b", "tags": ["z", "a", "z"]}])
        assert read(data, "data.jsonl").frame["tags"].tolist() == ["a,z"]

    def test_tag_with_a_comma_is_a_problem(self) -> None:
        """A listed tag containing a comma cannot be stored comma-separated."""
        data = jsonl_file([{"id": "1", "input": "a", "expected": "b", "tags": ["a,b"]}])
        assert located(problems_of(data, "data.jsonl")) == {(1, "tags")}

    def test_tags_list_with_non_strings(self) -> None:
        """A tags list holding objects is reported."""
        data = jsonl_file([{"id": "1", "input": "a", "expected": "b", "tags": [{"x": 1}]}])
        assert located(problems_of(data, "data.jsonl")) == {(1, "tags")}

    def test_missing_keys_and_nulls_are_empty(self) -> None:
        """A record without a required key, or with null, has an empty value there."""
        data = jsonl_file(
            [{"id": "1", "input": "a", "expected": "b"}, {"id": "2", "expected": None}]
        )
        assert located(problems_of(data, "data.jsonl")) == {(2, "input"), (2, "expected")}

    def test_json_array_file(self) -> None:
        """A whole-file JSON array is one problem pointing at JSON Lines."""
        (problem,) = problems_of(b'[{"id": "1"},\n {"id": "2"}]\n', "data.jsonl")
        assert "JSON array" in problem.message

    def test_non_utf8_bytes_name_line_and_key(self) -> None:
        """Bad bytes inside a string value are located by line and key."""
        data = b'{"id": "1", "input": "caf\xe9", "expected": "b"}\n'
        assert located(problems_of(data, "data.jsonl")) == {(1, "input")}

    def test_unpaired_surrogate_escape(self) -> None:
        """A lone \\ud800 escape cannot be stored as UTF-8 and is reported."""
        data = b'{"id": "1", "input": "a\\ud800", "expected": "b"}\n'
        (problem,) = problems_of(data, "data.jsonl")
        assert (problem.row, problem.column) == (1, "input")
        assert "surrogate" in problem.message

    def test_crlf_line_ends_and_bom(self) -> None:
        """Windows line ends and a BOM are accepted."""
        data = b"\xef\xbb\xbf" + jsonl_file(RECORDS).replace(b"\n", b"\r\n")
        assert read(data, "data.jsonl").frame["id"].tolist() == ["a1", "a2"]

    def test_too_many_rows(self) -> None:
        """More records than the limit is one file-level problem."""
        data = jsonl_file([{"id": str(i), "input": "a", "expected": "b"} for i in range(4)])
        (problem,) = problems_of(data, "data.jsonl", max_rows=2)
        assert "more than 2 rows" in problem.message


class TestParquet:
    def test_integer_and_boolean_columns_become_text(self) -> None:
        """Integer ids and boolean labels are read as their text."""
        data = parquet_file({"id": [7, 8], "input": ["a", "b"], "expected": [True, False]})
        frame = read(data, "data.parquet").frame
        assert frame["id"].tolist() == ["7", "8"]
        assert frame["expected"].tolist() == ["true", "false"]

    def test_float_column_is_a_column_problem(self) -> None:
        """A float column has no exact text; it is reported once, for the column."""
        data = parquet_file({"id": ["1", "2"], "input": ["a", "b"], "expected": [1.0, 0.5]})
        (problem,) = problems_of(data, "data.parquet")
        assert (problem.row, problem.column) == (None, "expected")
        assert "double" in problem.message

    def test_struct_input_is_a_column_problem(self) -> None:
        """Nested values in input cannot be text."""
        data = parquet_file(
            {"id": ["1"], "input": [{"role": "user", "text": "hi"}], "expected": ["a"]}
        )
        assert located(problems_of(data, "data.parquet")) == {(None, "input")}

    def test_binary_column_must_be_utf8(self) -> None:
        """A binary column is read as UTF-8 text, and bad rows are named."""
        data = parquet_file(
            {"id": ["1", "2", "3"], "input": [b"ok", b"caf\xe9", None], "expected": ["a"] * 3}
        )
        problems = problems_of(data, "data.parquet")
        assert located(problems) == {(2, "input"), (3, "input")}

    def test_string_column_with_invalid_utf8(self) -> None:
        """Parquet does not check string bytes, so the reader does and names the row."""
        raw = pa.array([b"ok", b"caf\xe9"], type=pa.binary())
        invalid = pa.Array.from_buffers(pa.string(), 2, raw.buffers())
        data = parquet_file({"id": ["1", "2"], "input": invalid, "expected": ["a", "b"]})
        (problem,) = problems_of(data, "data.parquet")
        assert (problem.row, problem.column) == (2, "input")
        assert "0xE9" in problem.message

    def test_dictionary_and_list_columns(self) -> None:
        """Dictionary-encoded text and list<string> tags are accepted."""
        table = {
            "id": pa.array(["1", "2"]).dictionary_encode(),
            "input": ["a", "b"],
            "expected": pa.array(["x", "x"]).dictionary_encode(),
            "tags": pa.array([["b", "a"], None], type=pa.list_(pa.string())),
        }
        frame = read(parquet_file(table), "data.parquet").frame
        assert frame["expected"].tolist() == ["x", "x"]
        assert frame["tags"].tolist() == ["a,b", ""]

    def test_tag_with_comma_in_list_column(self) -> None:
        """A listed tag with a comma is reported at its row."""
        table = {
            "id": ["1", "2"],
            "input": ["a", "b"],
            "expected": ["x", "y"],
            "tags": pa.array([["ok"], ["a,b"]], type=pa.list_(pa.string())),
        }
        assert located(problems_of(parquet_file(table), "data.parquet")) == {(2, "tags")}

    def test_pandas_index_column_is_ignored(self) -> None:
        """pandas' unnamed index written into the file is not an unknown column."""
        import io

        import pandas as pd

        buffer = io.BytesIO()
        frame = pd.DataFrame({"id": ["1"], "input": ["a"], "expected": ["b"]}, index=[5])
        frame.to_parquet(buffer)
        assert read(buffer.getvalue(), "data.parquet").frame["id"].tolist() == ["1"]

    def test_null_column_is_empty(self) -> None:
        """An all-null optional column reads as empty text."""
        data = parquet_file({"id": ["1"], "input": ["a"], "expected": ["b"], "slice": pa.nulls(1)})
        assert read(data, "data.parquet").frame["slice"].tolist() == [""]

    def test_too_many_rows(self) -> None:
        """More rows than the limit is one file-level problem."""
        data = parquet_file({"id": list("abcd"), "input": ["x"] * 4, "expected": ["y"] * 4})
        (problem,) = problems_of(data, "data.parquet", max_rows=3)
        assert "more than 3 rows" in problem.message


class TestRawTable:
    def test_locations_are_record_start_lines(self) -> None:
        """Each CSV record is located at the line it starts on."""
        data = b'id,input,expected\n1,"a\nb\nc",x\n2,y,z\n'
        table = parse_golden_file(data, filename="f.csv", max_rows=10)
        assert table.locations.tolist() == [2, 5]
        assert table.unit == "line"

    def test_parquet_rows_are_numbered_from_one(self) -> None:
        """Parquet rows are 1-based row numbers."""
        data = parquet_file({"id": ["a", "b"], "input": ["x", "y"], "expected": ["p", "q"]})
        table = parse_golden_file(data, filename="f.parquet", max_rows=10)
        assert table.locations.tolist() == [1, 2]
        assert table.unit == "row"
