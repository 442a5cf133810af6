"""Golden dataset files checked, normalised and content-addressed.

Columns `id`, `input` and `expected` are required; `slice` and `tags` are optional. Any other
column is a problem, not silently ignored: what is imported is exactly what gets evaluated,
and a misspelt optional column ("tag") would otherwise vanish without a word.

Every problem in a file is collected before anything is rejected, so one round of fixes is
enough. Checks run on normalised values (see `canonical`): an id of "a " duplicates "a", and
an input of only whitespace is empty. Warnings point at things that are legal but likely
mistakes (labels differing only in case, the same input twice); they never reject a file.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.errors import InvalidInput
from pipelines.golden_datasets.canonical import (
    WHITESPACE,
    content_hash,
    normalise_columns,
    normalise_value,
    sort_rows,
)
from pipelines.golden_datasets.errors import GoldenDatasetInvalid, Problem
from pipelines.golden_datasets.parsing import RawTable, parse_golden_file
from pipelines.golden_datasets.schema import COLUMNS, REQUIRED_COLUMNS, GoldenDatasetTask

_PREVIEW = 40
DEFAULT_MAX_ROW_BYTES = 64_000
"""Largest row (UTF-8 bytes of its normalised values) an import accepts by default."""

_EMPTY_MESSAGES = {
    "id": "the id is empty",
    "input": "the input is empty",
    "expected": "the expected value is empty",
}
_EMPTY_FIXES = {
    "id": "give every row a unique id, e.g. its row number",
    "input": "fill in the input the agent receives, or remove the row",
    "expected": "fill in the reference answer (the label, for classification), or remove the row",
}


@dataclass(frozen=True, eq=False)
class ValidatedRows:
    """The normalised rows of a valid dataset file, sorted by id, and their content hash.

    `frame` has the columns id, input, expected, slice, tags, all of pandas' "str" dtype with
    no missing values (an absent slice or tags is ""). `warnings` are legal but suspicious
    things, located like problems.
    """

    frame: pd.DataFrame
    content_hash: str
    warnings: tuple[Problem, ...] = ()
    label_set: tuple[str, ...] | None = None
    """Classification: the declared labels (or the `expected` values), sorted; else None."""


def read_golden_file(
    data: bytes,
    *,
    filename: str,
    task: GoldenDatasetTask,
    max_row_bytes: int = DEFAULT_MAX_ROW_BYTES,
    max_rows: int = 1_000_000,
    labels: Sequence[str] | None = None,
) -> ValidatedRows:
    """The validated rows of a dataset file, or GoldenDatasetInvalid listing every problem.

    `filename` only chooses the format (.csv, .jsonl/.ndjson, .parquet). A row's size is the
    UTF-8 length of its normalised values; `max_rows` counts data rows. `labels` declares a
    classification dataset's label set (normalised like `expected`); every expected value
    must be one of them. Without it the label set is the expected values.
    """
    task = GoldenDatasetTask(task)
    declared = _declared_labels(labels, task)
    if max_row_bytes < 1 or max_rows < 1:
        raise ValueError("max_row_bytes and max_rows must be positive")
    table = parse_golden_file(data, filename=filename, max_rows=max_rows)
    problems = list(table.problems)
    if not table.readable:
        raise GoldenDatasetInvalid(problems)

    problems += _column_problems(table)
    frame = normalise_columns(table.columns, table.row_count)
    problems += _row_problems(frame, table, max_row_bytes)
    if declared is not None and "expected" in table.columns:
        problems += _label_problems(frame, table, declared)
    if table.row_count == 0 and not problems:
        problems.append(
            Problem(None, None, "the file has no examples", "add at least one row below the header")
        )
    if problems:
        raise GoldenDatasetInvalid(problems)

    warnings = _warnings(frame, table, task)
    label_set = None
    if task is GoldenDatasetTask.CLASSIFICATION:
        label_set = tuple(sorted(declared or set(frame["expected"].astype(str))))
    return ValidatedRows(
        frame=sort_rows(frame),
        content_hash=content_hash(frame, task, None if declared is None else sorted(declared)),
        warnings=tuple(sorted(warnings, key=lambda w: (w.row is not None, w.row or 0))),
        label_set=label_set,
    )


def _declared_labels(labels: Sequence[str] | None, task: GoldenDatasetTask) -> set[str] | None:
    """A declared label set, normalised like `expected`; InvalidInput naming `labels`."""
    if labels is None:
        return None
    if task is not GoldenDatasetTask.CLASSIFICATION:
        raise InvalidInput(
            "a label set applies to classification datasets only; leave it out for "
            f"{task.value} datasets",
            field="labels",
        )
    normalised = [normalise_value(str(label)) for label in labels]
    if not normalised or "" in normalised:
        raise InvalidInput(
            "the label set has an empty label; give the labels separated by commas, e.g. "
            "billing,refund,other",
            field="labels",
        )
    repeated = sorted({label for label in normalised if normalised.count(label) > 1})
    if repeated:
        raise InvalidInput(
            f"the label set names {_quoted(repeated)} more than once; give each label once",
            field="labels",
        )
    return set(normalised)


def _label_problems(frame: pd.DataFrame, table: RawTable, declared: set[str]) -> list[Problem]:
    """Expected values outside the declared label set."""
    expected = frame["expected"]
    outside = _mask(~expected.isin(sorted(declared)) & (expected != ""))
    return [
        Problem(
            int(location),
            "expected",
            f"the label {_preview(str(value))} is not in the declared label set"
            f" ({_quoted(sorted(declared))})",
            "add it to the label set, or correct the label",
            table.unit,
        )
        for location, value in zip(table.locations[outside], expected[outside], strict=True)
    ]


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names) or "none"


def _preview(value: str) -> str:
    return repr(value if len(value) <= _PREVIEW else value[: _PREVIEW - 1] + "…")


def _column_problems(table: RawTable) -> list[Problem]:
    """Missing, unknown, unnamed and repeated columns."""
    if not table.header and table.problems:
        return []  # no record could be read, so the columns are unknown rather than missing
    problems: list[Problem] = []
    counts = Counter(table.header)
    unknown = [name for name in counts if name not in COLUMNS and name]
    for position, name in enumerate(table.header, start=1):
        if not name:
            problems.append(
                Problem(
                    None,
                    None,
                    f"column {position} has no name",
                    "name it or delete it (a trailing comma in the header adds an empty column)",
                )
            )
    for name, count in counts.items():
        if name and count > 1:
            problems.append(
                Problem(
                    None,
                    name,
                    f"the column appears {count} times",
                    "keep one column of each name",
                )
            )
    for name in unknown:
        match = difflib.get_close_matches(name.strip().lower(), COLUMNS, n=1, cutoff=0.6)
        fix = (
            f"rename it to {match[0]!r}"
            if match and match[0] not in counts
            else f"remove it; the allowed columns are {', '.join(COLUMNS)}"
        )
        problems.append(Problem(None, name, "unknown column", fix))
    for name in REQUIRED_COLUMNS:
        if name in counts:
            continue
        near = difflib.get_close_matches(name, [n.lower() for n in unknown], n=1, cutoff=0.6)
        original = next((n for n in unknown if near and n.lower() == near[0]), None)
        problems.append(
            Problem(
                None,
                name,
                f"required column {name!r} is missing (found columns: {_quoted(table.header)})",
                f"rename {original!r} to {name!r}" if original else f"add a {name!r} column",
            )
        )
    return problems


def _at(
    table: RawTable, mask: npt.NDArray[np.bool_], column: str | None, message: str, fix: str
) -> list[Problem]:
    return [
        Problem(int(location), column, message, fix, table.unit)
        for location in table.locations[mask]
    ]


def _mask(values: pd.Series[bool]) -> npt.NDArray[np.bool_]:
    return values.to_numpy(dtype=bool, na_value=False)


def _row_problems(frame: pd.DataFrame, table: RawTable, max_row_bytes: int) -> list[Problem]:
    """Empty, duplicate, oversized and NUL-containing values, per row."""
    problems: list[Problem] = []
    present = [name for name in COLUMNS if name in table.columns]
    for name in present:
        problems += _at(
            table,
            _mask(frame[name].str.contains("\x00", regex=False)),
            name,
            "contains a NUL character (U+0000)",
            "remove it; NUL characters usually come from binary or UTF-16 data",
        )
    for name in REQUIRED_COLUMNS:
        if name in present:
            stripped = frame[name] if name != "input" else frame[name].str.strip(WHITESPACE)
            problems += _at(
                table,
                _mask(stripped == ""),
                name,
                _EMPTY_MESSAGES[name],
                _EMPTY_FIXES[name],
            )
    if "id" in present:
        problems += _duplicate_ids(frame["id"], table)

    sizes = np.zeros(len(frame), dtype=np.int64)
    largest = np.zeros(len(frame), dtype=np.int64)
    largest_column = np.zeros(len(frame), dtype=np.int64)
    for position, name in enumerate(COLUMNS):
        size = pc.binary_length(pa.array(frame[name])).to_numpy(zero_copy_only=False)
        sizes += size
        bigger = size > largest
        largest = np.where(bigger, size, largest)
        largest_column = np.where(bigger, position, largest_column)
    for row in np.flatnonzero(sizes > max_row_bytes):
        column = COLUMNS[largest_column[row]]
        problems.append(
            Problem(
                int(table.locations[row]),
                column,
                f"the row is {sizes[row]:,} bytes of text ({column} alone {largest[row]:,});"
                f" the limit is {max_row_bytes:,}",
                "shorten the text or split the example into smaller ones",
                table.unit,
            )
        )
    return problems


def _duplicate_ids(ids: pd.Series[str], table: RawTable) -> list[Problem]:
    repeated = _mask(ids.duplicated(keep=False) & (ids != ""))
    if not repeated.any():
        return []
    found = pd.DataFrame({"id": ids[repeated], "at": table.locations[repeated]})
    first = found.groupby("id", sort=False)["at"].transform("first")
    later = found["at"] != first
    return [
        Problem(
            int(at),
            "id",
            f"the id {_preview(value)} is already used on {table.unit} {int(first_at)}",
            "give every row a unique id",
            table.unit,
        )
        for value, at, first_at in zip(
            found["id"][later], found["at"][later], first[later], strict=True
        )
    ]


def _warnings(frame: pd.DataFrame, table: RawTable, task: GoldenDatasetTask) -> list[Problem]:
    """Legal but suspicious things: label spellings differing in case, repeated inputs."""
    warnings: list[Problem] = []
    if task is GoldenDatasetTask.CLASSIFICATION:
        spellings: dict[str, list[str]] = {}
        for label in sorted(frame["expected"].unique()):
            spellings.setdefault(str(label).casefold(), []).append(str(label))
        for variants in spellings.values():
            if len(variants) > 1:
                warnings.append(
                    Problem(
                        None,
                        "expected",
                        f"labels {_quoted(variants)} differ only in letter case and count as"
                        " different classes",
                        "use one spelling per label",
                    )
                )

    inputs = frame["input"]
    repeated = _mask(inputs.duplicated(keep=False))
    if repeated.any():
        found = pd.DataFrame(
            {
                "input": inputs[repeated],
                "expected": frame["expected"][repeated],
                "at": table.locations[repeated],
            }
        )
        groups = found.groupby("input", sort=False)
        first_at = groups["at"].transform("first")
        first_expected = groups["expected"].transform("first")
        later = (found["at"] != first_at).to_numpy()
        for at, first, same in zip(
            found["at"][later],
            first_at[later],
            (found["expected"] == first_expected)[later],
            strict=True,
        ):
            answer = "" if same else " with a different expected value"
            warnings.append(
                Problem(
                    int(at),
                    "input",
                    f"the same input is on {table.unit} {int(first)}{answer}",
                    "remove the repeat unless it is intended",
                    table.unit,
                )
            )
    return warnings
