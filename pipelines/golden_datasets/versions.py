"""Differences between two versions of a golden dataset."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipelines.golden_datasets.schema import COLUMNS, TEXT

_CONTENT_COLUMNS = tuple(name for name in COLUMNS if name != "id")


@dataclass(frozen=True)
class VersionDiff:
    """Ids added, removed and changed between two versions, each sorted by code point."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        """Whether the two versions hold the same examples."""
        return not (self.added or self.removed or self.changed)


def _indexed(frame: pd.DataFrame, which: str) -> pd.DataFrame:
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"{which} frame lacks dataset columns {missing}")
    # Storage may hold an absent slice or tags as None rather than ""; both mean "none".
    rows = frame.loc[:, list(COLUMNS)].fillna("").astype(TEXT).set_index("id")
    if not rows.index.is_unique:
        raise ValueError(f"{which} frame has duplicate ids")
    return rows


def diff_versions(old: pd.DataFrame, new: pd.DataFrame) -> VersionDiff:
    """Which ids `new` adds, removes and changes (same id, other input/expected/slice/tags).

    Both frames are normalised rows, e.g. `ValidatedRows.frame`; row order does not matter.
    """
    before = _indexed(old, "old")
    after = _indexed(new, "new")
    kept = before.index.intersection(after.index)
    differs = before.loc[kept, list(_CONTENT_COLUMNS)] != after.loc[kept, list(_CONTENT_COLUMNS)]
    return VersionDiff(
        added=tuple(sorted(after.index.difference(before.index).tolist())),
        removed=tuple(sorted(before.index.difference(after.index).tolist())),
        changed=tuple(sorted(kept[differs.any(axis=1).to_numpy()].tolist())),
    )
