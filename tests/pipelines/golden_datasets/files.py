"""Golden dataset files built in memory, and shortcuts for reading them in tests."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.golden_datasets.errors import GoldenDatasetInvalid, Problem
from pipelines.golden_datasets.schema import GoldenDatasetTask
from pipelines.golden_datasets.validation import ValidatedRows, read_golden_file

HEADER = ("id", "input", "expected", "slice", "tags")


def csv_file(
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = HEADER,
    *,
    bom: bool = False,
    lineterminator: str = "\r\n",
) -> bytes:
    """A CSV file as Excel writes it by default: CRLF line ends, minimal quoting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow(header)
    writer.writerows(rows)
    return ("\ufeff" if bom else "").encode() + buffer.getvalue().encode()


def jsonl_file(records: Sequence[Mapping[str, object]]) -> bytes:
    """One JSON object per line."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode()


def parquet_file(columns: Mapping[str, Sequence[object]], schema: pa.Schema | None = None) -> bytes:
    """A Parquet file of the given columns."""
    buffer = io.BytesIO()
    pq.write_table(pa.table(dict(columns), schema=schema), buffer)
    return buffer.getvalue()


def read(
    data: bytes,
    filename: str = "examples.csv",
    task: GoldenDatasetTask = GoldenDatasetTask.CLASSIFICATION,
    **limits: int,
) -> ValidatedRows:
    """The validated rows of a file that must be valid."""
    return read_golden_file(data, filename=filename, task=task, **limits)


def problems_of(
    data: bytes,
    filename: str = "examples.csv",
    task: GoldenDatasetTask = GoldenDatasetTask.CLASSIFICATION,
    **limits: int,
) -> tuple[Problem, ...]:
    """The problems of a file that must be invalid."""
    with pytest.raises(GoldenDatasetInvalid) as caught:
        read_golden_file(data, filename=filename, task=task, **limits)
    return caught.value.problems


def located(problems: Sequence[Problem]) -> set[tuple[int | None, str | None]]:
    """The (row, column) places of problems."""
    return {(problem.row, problem.column) for problem in problems}
