"""The canonical form of a golden dataset, and its content hash.

The hash identifies a dataset's examples independently of the file they came in: the same
examples as CSV, JSON Lines or Parquet, in any row order, hash alike. Other tools may
recompute it, so the form is deliberately plain.

Normalisation (version 1), applied to every value, in this order:

1. Missing values (an absent optional column, null, an empty cell) are "".
2. Unicode NFC, as Python's ``unicodedata.normalize("NFC", value)`` (Unicode 14.0 in
   Python 3.11).
3. Line endings: "\\r\\n" and then any remaining "\\r" become "\\n".
4. ``id``, ``expected`` and ``slice`` lose leading and trailing whitespace (Python's
   ``str.strip()`` with no argument). ``input`` keeps its whitespace: indentation and
   trailing newlines can be part of a prompt.
5. ``tags`` is split on ",", each part stripped as above, empty parts dropped, duplicates
   removed, the rest sorted by code point and joined with "," (no spaces): " b, a,a" -> "a,b".

Serialisation: UTF-8 JSON Lines, every line ``json.dumps(value, ensure_ascii=False,
separators=(",", ":"))`` followed by "\\n". That escapes only '"', "\\\\" and U+0000-U+001F
("\\n", "\\t", ... or "\\u00xx" in lowercase hex); all other characters are written as is.

- line 1: ``["streamflow.golden_dataset",1,TASK]`` with TASK "classification" or
  "text_generation";
- then one line ``[id,input,expected,slice,tags]`` per row, rows sorted by id in Unicode code
  point order (ids are unique, so the order is total).

The content hash is the lowercase hex SHA-256 of those bytes.

Declared label sets (classification): a dataset's label set is its `expected` values unless the
import declares more labels. Only then is the set part of the content, and the header line is
``["streamflow.golden_dataset",2,TASK,LABELS]``, LABELS the declared labels (normalised as
`expected` is) sorted by code point; the rows follow as above. A declared set equal to the
`expected` values changes nothing, so such a file hashes as version 1 always did.
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipelines.golden_datasets.schema import COLUMNS, TEXT, GoldenDatasetTask

CANONICAL_FORMAT: Final = "streamflow.golden_dataset"
CANONICAL_VERSION: Final = 1
CANONICAL_VERSION_WITH_LABELS: Final = 2

# Exactly the characters Python's str.strip() removes; pandas would otherwise use Arrow's own
# (slightly different) definition of whitespace.
WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_STRIPPED_COLUMNS: Final = frozenset({"id", "expected", "slice"})

_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
# The string escaper json.dumps(ensure_ascii=False) itself uses; calling it per value skips
# building an encoder per row, the bulk of the hashing time.
_encode_json_string = json.encoder.encode_basestring


def normalise_value(value: str) -> str:
    """One `expected` value (or a prediction) as import stores `expected`: NFC, "\\n" line
    endings, no leading or trailing whitespace. Predictions are scored after the same steps."""
    text = unicodedata.normalize("NFC", value) if not value.isascii() else value
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def _normalise_text(values: pd.Series[str]) -> pd.Series[str]:
    """NFC text with "\\n" line endings; missing values become ""."""
    text = values.fillna("").astype(TEXT)
    # ASCII is already NFC. Arrow's own NFC does not compose (pandas GH#64359), so the rest
    # goes through unicodedata one value at a time.
    positions = np.flatnonzero(~np.fromiter(map(str.isascii, text), dtype=bool, count=len(text)))
    if len(positions):
        before = text.iloc[positions].tolist()
        after = [_nfc(value) for value in before]
        if before != after:
            cells = text.tolist()
            for position, value in zip(positions.tolist(), after, strict=True):
                cells[position] = value
            text = pd.Series(cells, index=text.index, dtype=TEXT)
    if _mask(text.str.contains("\r", regex=False)).any():
        text = text.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
    return text


def _mask(values: pd.Series[bool]) -> npt.NDArray[np.bool_]:
    return values.to_numpy(dtype=bool, na_value=False)


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def canonical_tags(tags: str) -> str:
    """One tags value in canonical form: sorted, de-duplicated, comma-joined."""
    return ",".join(sorted({tag for part in tags.split(",") if (tag := part.strip())}))


def _normalise_tags(tags: pd.Series[str]) -> pd.Series[str]:
    codes, uniques = pd.factorize(tags)
    canonical = np.array([canonical_tags(str(value)) for value in uniques], dtype=object)
    # factorize marks nothing as missing here: tags were filled with "" beforehand.
    return pd.Series(canonical[codes], index=tags.index, dtype=TEXT)


def normalise_columns(columns: Mapping[str, pd.Series[str]], length: int) -> pd.DataFrame:
    """The five dataset columns in canonical form; absent columns are all ""."""
    frame: dict[str, pd.Series[str]] = {}
    for name in COLUMNS:
        raw = columns.get(name)
        if raw is None:
            raw = pd.Series([""] * length, dtype=TEXT)
        text = _normalise_text(raw.reset_index(drop=True))
        if name in _STRIPPED_COLUMNS:
            text = text.str.strip(WHITESPACE)
        elif name == "tags":
            text = _normalise_tags(text)
        frame[name] = text
    return pd.DataFrame(frame)


def sort_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by id in Unicode code point order, with a fresh index."""
    ids = frame["id"].tolist()
    order = sorted(range(len(ids)), key=ids.__getitem__)
    return frame.take(order).reset_index(drop=True)


def extra_labels(frame: pd.DataFrame, labels: Sequence[str] | None) -> list[str] | None:
    """A declared label set, sorted, when it holds labels beyond the `expected` values."""
    if labels is None:
        return None
    declared = sorted(set(labels))
    return declared if set(declared) != set(frame["expected"].astype(str)) else None


def canonical_lines(
    frame: pd.DataFrame, task: GoldenDatasetTask, labels: Sequence[str] | None = None
) -> list[str]:
    """The canonical serialisation of normalised rows, one JSON text per line (no newlines).

    `labels` is a declared label set; it enters the header only when it adds labels.
    """
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks dataset columns {missing}")
    ids = frame["id"].fillna("").astype(TEXT).tolist()
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique to have a canonical form")
    order = sorted(range(len(ids)), key=ids.__getitem__)
    escaped = [
        list(map(_encode_json_string, frame[name].fillna("").astype(TEXT).take(order).tolist()))
        for name in COLUMNS
    ]
    declared = extra_labels(frame, labels)
    if declared is None:
        header = _encode_json([CANONICAL_FORMAT, CANONICAL_VERSION, str(GoldenDatasetTask(task))])
    else:
        header = _encode_json(
            [
                CANONICAL_FORMAT,
                CANONICAL_VERSION_WITH_LABELS,
                str(GoldenDatasetTask(task)),
                declared,
            ]
        )
    return [header, *("[" + ",".join(row) + "]" for row in zip(*escaped, strict=True))]


def content_hash(
    frame: pd.DataFrame, task: GoldenDatasetTask, labels: Sequence[str] | None = None
) -> str:
    """SHA-256 hex of the canonical serialisation of normalised rows, their task and (when it
    adds labels) their declared label set."""
    lines = canonical_lines(frame, task, labels)
    return hashlib.sha256(("\n".join(lines) + "\n").encode("utf-8")).hexdigest()
