"""Golden dataset files (CSV, JSON Lines, Parquet) read into columns of text.

The format comes from the file name's extension; a file whose bytes are not that format is
reported, not guessed at. Every cell is read as text so ids like "007" stay "007": CSV cells
are text already, JSON numbers keep their literal spelling (`7`, `1.50`) and `true`/`false`
become those words, Parquet integer and boolean columns are cast to the same spellings.
Problems that make a record unreadable (bad quoting, a line that is not a JSON object, a
wrong number of CSV fields) drop the record; problems inside a cell keep the record, with
the cell's text repaired, so that later checks still see the rest of the row.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.golden_datasets.errors import LocationUnit, Problem
from pipelines.golden_datasets.schema import TEXT

TAGS_COLUMN = "tags"

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".csv", ".jsonl", ".ndjson", ".parquet")

_SNIFF_BYTES = 8192
_SURROGATE = re.compile("[\ud800-\udfff]+")
_TEXT_PREVIEW = 40

# Leading bytes of files that are commonly exported by mistake instead of CSV or JSON Lines.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"PAR1", "a Parquet file", "give it the .parquet extension"),
    (
        b"PK\x03\x04",
        "a ZIP archive (an Excel .xlsx workbook is one)",
        "export the sheet as 'CSV UTF-8'",
    ),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook", "export the sheet as 'CSV UTF-8'"),
    (b"\x1f\x8b", "gzip-compressed", "decompress it before importing"),
    (b"\xff\xfe", "UTF-16 text", "save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text", "save it as UTF-8"),
    (b"%PDF", "a PDF document", "export the dataset itself as CSV, JSON Lines or Parquet"),
)


@dataclass(frozen=True, eq=False)
class RawTable:
    """Cells of a dataset file as text, one entry per readable record, not yet normalised.

    `columns` holds the first column of each name in `header`, missing cells as NA; a column
    in `header` but not in `columns` holds no usable text (e.g. a Parquet struct column) and
    has been reported already. `readable` is False when the file could not be read as a
    table at all.
    """

    header: tuple[str, ...]
    columns: Mapping[str, pd.Series[str]]
    locations: npt.NDArray[np.int64]
    unit: LocationUnit
    problems: tuple[Problem, ...]
    readable: bool = True

    @property
    def row_count(self) -> int:
        """Number of records read."""
        return len(self.locations)


def parse_golden_file(data: bytes, *, filename: str, max_rows: int) -> RawTable:
    """The records of a dataset file, in the format its extension names."""
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix.lower()
    parser = _PARSERS.get(suffix)
    if parser is None:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        return _unreadable(
            Problem(
                None,
                None,
                f"{filename!r} has {'extension ' + repr(suffix) if suffix else 'no extension'},"
                f" which is not a supported format (supported: {supported})",
                f"export the dataset as one of {supported} and name the file to match",
            ),
            "row",
        )
    return parser(data, max_rows)


def _unreadable(problems: Problem | Sequence[Problem], unit: LocationUnit) -> RawTable:
    return RawTable(
        header=(),
        columns={},
        locations=np.zeros(0, dtype=np.int64),
        unit=unit,
        problems=(problems,) if isinstance(problems, Problem) else tuple(problems),
        readable=False,
    )


def _too_many_rows(max_rows: int) -> Problem:
    return Problem(
        None,
        None,
        f"the file has more than {max_rows:,} rows, the most one dataset version can hold",
        "split the examples into several datasets, or drop rows you do not need",
    )


def _empty_file(kind: str) -> Problem:
    return Problem(
        None,
        None,
        "the file is empty",
        f"export the dataset as {kind} with at least one example",
    )


def _signature_problem(data: bytes, kind: str) -> Problem | None:
    """Why bytes handed in as a text format are clearly something else, if they are."""
    for magic, what, fix in _SIGNATURES:
        if data.startswith(magic):
            return Problem(None, None, f"the file is {what}, not {kind} text", fix)
    if b"\x00" in data[:_SNIFF_BYTES]:
        return Problem(
            None,
            None,
            f"the file looks binary (it contains NUL bytes), not {kind} text",
            f"export the dataset as UTF-8 {kind}; 'Unicode text' (UTF-16) exports look like this",
        )
    return None


def _decode(data: bytes) -> tuple[str, bool]:
    """Text of UTF-8 bytes without a BOM, and whether some bytes were not UTF-8.

    Invalid bytes survive as surrogate escapes so they can be located per cell later.
    """
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape"), True


def _preview(value: str) -> str:
    short = value if len(value) <= _TEXT_PREVIEW else value[: _TEXT_PREVIEW - 1] + "…"
    return repr(short)


def _encoding_problem(
    location: int, column: str | None, unit: LocationUnit, text: str, from_bytes: bool
) -> Problem:
    run = _SURROGATE.search(text)
    assert run is not None
    if from_bytes and all("\udc80" <= char <= "\udcff" for char in run.group()):
        shown = " ".join(f"0x{ord(char) - 0xDC00:02X}" for char in run.group()[:4])
        return Problem(
            location,
            column,
            f"the value contains bytes that are not valid UTF-8 ({shown})",
            "save the file as UTF-8 (in Excel: 'CSV UTF-8'); such bytes usually mean it was"
            " saved as Windows-1252 or Latin-1",
            unit,
        )
    return Problem(
        location,
        column,
        f"the value contains an unpaired UTF-16 surrogate (\\u{ord(run.group()[0]):04x})",
        "write characters outside the Basic Multilingual Plane as a surrogate pair or as UTF-8",
        unit,
    )


def _repair_text(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _series(array: Any) -> pd.Series[str]:
    return pd.Series(pd.array(array, dtype=TEXT))


def _text_series(
    values: Sequence[str | None],
    column: str,
    locations: Sequence[int],
    unit: LocationUnit,
    problems: list[Problem],
    *,
    from_bytes: bool,
) -> pd.Series[str]:
    """Text cells as a string series; cells that cannot be UTF-8 are reported and repaired."""
    if not from_bytes:
        try:
            return _series(pa.array(values, type=pa.large_string()))
        except UnicodeEncodeError:
            pass  # lone surrogates from JSON escapes; located below
    cleaned = list(values)
    for index, value in enumerate(values):
        if value is not None and _SURROGATE.search(value):
            problems.append(_encoding_problem(locations[index], column, unit, value, from_bytes))
            cleaned[index] = _repair_text(value)
    return _series(pa.array(cleaned, type=pa.large_string()))


# --- CSV -------------------------------------------------------------------------------------


@contextmanager
def _csv_field_limit(limit: int) -> Iterator[None]:
    # The csv module's field limit is process-wide and stops the parse at the first long cell;
    # long rows are reported by the size check instead, so lift the limit for this parse.
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, limit))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _csv_syntax_problem(line: int, error: csv.Error) -> Problem:
    text = str(error)
    if "unexpected end of data" in text:
        return Problem(
            line,
            None,
            "a quoted field starting in this record is never closed",
            'close the quote; a quote inside a quoted field is written twice ("")',
            "line",
        )
    if "expected after" in text:
        return Problem(
            line,
            None,
            "text follows the closing quote of a field",
            'write a quote inside a quoted field twice (""), e.g. "say ""hi"""',
            "line",
        )
    return Problem(line, None, f"the record is not valid CSV ({text})", "fix its quoting", "line")


def _is_blank(record: list[str]) -> bool:
    return all(not value or value.isspace() for value in record)


def _field_count_problem(line: int, fields: int, expected: int) -> Problem:
    return Problem(
        line,
        None,
        f"the record has {fields} fields but the header has {expected}",
        "quote fields that contain commas or line breaks with double quotes,"
        " and give every row one value per header column",
        "line",
    )


def _parse_csv(data: bytes, max_rows: int) -> RawTable:
    """Records of a comma-separated file with a header row; fully blank records are skipped."""
    signature = _signature_problem(data, "CSV")
    if signature is not None:
        return _unreadable(signature, "line")
    text, from_bytes = _decode(data)
    if not text.strip():
        return _unreadable(_empty_file("CSV"), "line")

    problems: list[Problem] = []
    header: list[str] | None = None
    header_line = 0
    records: list[list[str]] = []
    locations: list[int] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous_end = 0
    with _csv_field_limit(len(text) + 1):
        # One fast loop per stretch of well-formed records; a syntax error ends a stretch, is
        # reported at the line its record starts on, and the reader resumes after it.
        done = False
        while not done:
            try:
                for record in reader:
                    start, previous_end = previous_end + 1, reader.line_num
                    if not record or ((not record[0] or record[0].isspace()) and _is_blank(record)):
                        continue
                    if header is None:
                        header, header_line = record, start
                        continue
                    if len(record) != len(header):
                        problems.append(_field_count_problem(start, len(record), len(header)))
                        continue
                    if len(records) == max_rows:
                        problems.append(_too_many_rows(max_rows))
                        break
                    records.append(record)
                    locations.append(start)
                done = True
            except csv.Error as error:
                problems.append(_csv_syntax_problem(previous_end + 1, error))
                previous_end = reader.line_num

    if header is None:
        return _unreadable(problems or _empty_file("CSV"), "line")
    if from_bytes:
        for name in header:
            if _SURROGATE.search(name):
                problems.append(_encoding_problem(header_line, None, "line", name, True))
        header = [_repair_text(name) for name in header]
    names = [name.strip() for name in header]
    if len(names) == 1:
        separator = next((sep for sep in (";", "\t", "|") if sep in names[0]), None)
        if separator is not None:
            return _unreadable(
                Problem(
                    header_line,
                    None,
                    f"the header is a single column {_preview(names[0])}; the file seems to"
                    f" separate columns with {separator!r} instead of commas",
                    "save it as comma-separated CSV",
                    "line",
                ),
                "line",
            )

    cells = list(zip(*records, strict=True)) if records else [() for _ in names]
    columns: dict[str, pd.Series[str]] = {}
    for name, values in zip(names, cells, strict=True):
        if name not in columns:
            columns[name] = _text_series(
                values, name, locations, "line", problems, from_bytes=from_bytes
            )
    return RawTable(
        header=tuple(names),
        columns=columns,
        locations=np.asarray(locations, dtype=np.int64),
        unit="line",
        problems=tuple(problems),
    )


# --- JSON Lines ------------------------------------------------------------------------------

# Numbers keep the spelling they have in the file, so `7` and "7" import alike.
_JSON = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)


def _json_kind(value: object) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, bool):
        return "a JSON boolean"
    if value is None:
        return "JSON null"
    return "a JSON string or number"  # numbers are parsed to their literal text


def _is_json_array_file(text: str) -> bool:
    if not text.lstrip().startswith("["):
        return False
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def _json_text_series(
    values: list[object],
    column: str,
    locations: Sequence[int],
    problems: list[Problem],
    *,
    from_bytes: bool,
) -> pd.Series[str]:
    """Text of one JSON key across records; values that are not text are reported."""
    if not from_bytes:
        try:
            return _series(pa.array(values, type=pa.large_string()))
        except (pa.ArrowTypeError, UnicodeEncodeError):
            pass  # non-string values or lone surrogates; handled one by one below
    texts: list[str | None] = []
    for index, value in enumerate(values):
        if value is None or isinstance(value, str):
            texts.append(value)
        elif isinstance(value, bool):
            texts.append("true" if value else "false")
        elif column == TAGS_COLUMN and isinstance(value, list):
            texts.append(_json_tags(value, locations[index], problems))
        else:
            problems.append(
                Problem(
                    locations[index],
                    column,
                    f"the value is {_json_kind(value)}, which cannot be stored as text",
                    f"make {column!r} a JSON string (serialise structured input to text first)"
                    + (", or tags a list of strings" if column == TAGS_COLUMN else ""),
                    "line",
                )
            )
            texts.append(json.dumps(value, ensure_ascii=False))
    return _text_series(texts, column, locations, "line", problems, from_bytes=from_bytes)


def _json_tags(tags: list[object], location: int, problems: list[Problem]) -> str:
    """A JSON list of tags as one comma-joined string."""
    if not all(isinstance(tag, str) for tag in tags):
        problems.append(
            Problem(
                location,
                TAGS_COLUMN,
                "the tags list has values that are not strings",
                'write tags as a list of strings, e.g. ["billing", "refunds"]',
                "line",
            )
        )
        return json.dumps(tags, ensure_ascii=False)
    texts = [tag for tag in tags if isinstance(tag, str)]
    for tag in texts:
        if "," in tag:
            problems.append(_comma_in_tag(location, tag, "line"))
    return ",".join(texts)


def _comma_in_tag(location: int, tag: str, unit: LocationUnit) -> Problem:
    return Problem(
        location,
        TAGS_COLUMN,
        f"tag {_preview(tag)} contains a comma",
        "tags are stored comma-separated, so a tag cannot contain one; rename the tag",
        unit,
    )


def _parse_jsonl(data: bytes, max_rows: int) -> RawTable:
    """Records of a JSON Lines file: one JSON object per line, blank lines skipped."""
    signature = _signature_problem(data, "JSON Lines")
    if signature is not None:
        return _unreadable(signature, "line")
    text, from_bytes = _decode(data)
    if not text.strip():
        return _unreadable(_empty_file("JSON Lines"), "line")
    if _is_json_array_file(text):
        return _unreadable(
            Problem(
                None,
                None,
                "the file is a JSON array, not JSON Lines",
                "write one JSON object per line (for example with `jq -c '.[]'`)",
            ),
            "line",
        )

    problems: list[Problem] = []
    records: list[dict[str, object]] = []
    locations: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.isspace():
            continue
        try:
            record = _JSON.decode(line)
        except json.JSONDecodeError as error:
            if from_bytes and _SURROGATE.search(line):
                problems.append(_encoding_problem(number, None, "line", line, True))
            else:
                problems.append(
                    Problem(
                        number,
                        None,
                        f"the line is not valid JSON ({error.msg} at character {error.colno})",
                        'write each example as one JSON object on one line, e.g. {"id": "1",'
                        ' "input": "...", "expected": "..."}',
                        "line",
                    )
                )
            continue
        if not isinstance(record, dict):
            problems.append(
                Problem(
                    number,
                    None,
                    f"the line is {_json_kind(record)}, not a JSON object",
                    'write each example as a JSON object, e.g. {"id": "1", "input": "...",'
                    ' "expected": "..."}',
                    "line",
                )
            )
            continue
        if len(records) == max_rows:
            problems.append(_too_many_rows(max_rows))
            break
        records.append(record)
        locations.append(number)

    header: dict[str, None] = {}
    for record in records:
        header.update(dict.fromkeys(record))
    columns = {
        name: _json_text_series(
            [record.get(name) for record in records],
            name,
            locations,
            problems,
            from_bytes=from_bytes,
        )
        for name in header
    }
    return RawTable(
        header=tuple(header),
        columns=columns,
        locations=np.asarray(locations, dtype=np.int64),
        unit="line",
        problems=tuple(problems),
    )


# --- Parquet ---------------------------------------------------------------------------------

_PARQUET_MAGIC = b"PAR1"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(head) - 3  # only the sniffed prefix cut a character short
    return True


def _not_parquet(data: bytes) -> Problem:
    text = _looks_like_text(data[:_SNIFF_BYTES])
    guess = " and looks like text (CSV or JSON Lines?)" if text else ""
    return Problem(
        None,
        None,
        f"the file is not Parquet: it lacks the PAR1 signature{guess}",
        "give the file the extension of its real format, or export it again as Parquet",
    )


def _parquet_text(
    name: str,
    column: Any,
    locations: npt.NDArray[np.int64],
    problems: list[Problem],
) -> pd.Series[str] | None:
    """A Parquet column as text, or None (reported) when its type is not text-like."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        try:
            column.validate(full=True)  # Parquet readers do not check that strings are UTF-8
        except pa.ArrowInvalid:
            return _parquet_binary_text(name, column.cast(pa.large_binary()), locations, problems)
        return _series(column.cast(pa.large_string()))
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind):
        return _series(column.cast(pa.large_string()))
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        try:
            return _series(column.cast(pa.large_string()))
        except pa.ArrowInvalid:
            return _parquet_binary_text(name, column, locations, problems)
    if (
        name == TAGS_COLUMN
        and (pa.types.is_list(kind) or pa.types.is_large_list(kind))
        and (
            pa.types.is_string(kind.value_type)
            or pa.types.is_large_string(kind.value_type)
            or pa.types.is_null(kind.value_type)  # how pandas writes lists that are all empty
        )
    ):
        lists = column.cast(pa.list_(pa.string())).combine_chunks()
        values = pc.list_flatten(lists)
        with_comma = pc.fill_null(pc.match_substring(values, ","), False)
        if pc.any(with_comma).as_py():
            rows = pc.filter(pc.list_parent_indices(lists), with_comma).to_numpy()
            tags = pc.filter(values, with_comma).to_pylist()
            for row, tag in zip(rows, tags, strict=True):
                problems.append(_comma_in_tag(int(locations[row]), tag, "row"))
        return _series(pc.binary_join(lists, ","))
    problems.append(
        Problem(
            None,
            name,
            f"the column has Parquet type {kind}, which is not text",
            f"store {name!r} as a string column (in pandas: df[{name!r}].astype(str)"
            " before writing)"
            + ("; tags may also be a list of strings" if name == TAGS_COLUMN else ""),
        )
    )
    return None


def _parquet_binary_text(
    name: str, column: Any, locations: npt.NDArray[np.int64], problems: list[Problem]
) -> pd.Series[str]:
    texts: list[str | None] = []
    for row, value in enumerate(column.to_pylist()):
        if value is None:
            texts.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            text = value.decode("utf-8", "surrogateescape")
            problem = _encoding_problem(int(locations[row]), name, "row", text, True)
            problems.append(replace(problem, fix="decode the bytes to text before writing"))
            texts.append(_repair_text(text))
    return _series(pa.array(texts, type=pa.large_string()))


def _parse_parquet(data: bytes, max_rows: int) -> RawTable:
    """Rows of a Parquet file; pandas' unnamed index columns are ignored."""
    if not data:
        return _unreadable(_empty_file("Parquet"), "row")
    if len(data) < 12 or not (data.startswith(_PARQUET_MAGIC) and data.endswith(_PARQUET_MAGIC)):
        return _unreadable(_not_parquet(data), "row")
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as error:
        return _unreadable(
            Problem(
                None,
                None,
                f"the Parquet file could not be read ({error})",
                "export it again; the file may be truncated or corrupted",
            ),
            "row",
        )

    problems: list[Problem] = []
    if table.num_rows > max_rows:
        problems.append(_too_many_rows(max_rows))
        table = table.slice(0, max_rows)
    locations = np.arange(1, table.num_rows + 1, dtype=np.int64)
    header: list[str] = []
    columns: dict[str, pd.Series[str]] = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name.startswith("__index_level_"):
            continue
        header.append(name)
        if header.count(name) > 1:
            continue
        text = _parquet_text(name, column, locations, problems)
        if text is not None:
            columns[name] = text
    return RawTable(
        header=tuple(header),
        columns=columns,
        locations=locations,
        unit="row",
        problems=tuple(problems),
    )


_PARSERS: dict[str, Callable[[bytes, int], RawTable]] = {
    ".csv": _parse_csv,
    ".jsonl": _parse_jsonl,
    ".ndjson": _parse_jsonl,
    ".parquet": _parse_parquet,
}
