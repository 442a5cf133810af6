"""Differences between two versions of a golden dataset."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.golden_datasets.schema import COLUMNS, TEXT
from pipelines.golden_datasets.versions import VersionDiff, diff_versions

BASE = [
    ("a", "input a", "x", "s1", "t"),
    ("b", "input b", "y", "", ""),
    ("c", "input c", "z", "", "u,v"),
]


def _frame(rows: list[tuple[str, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS), dtype=TEXT)


class TestDiffVersions:
    def test_identical_versions_have_no_changes(self) -> None:
        """A version compared with itself is empty."""
        diff = diff_versions(_frame(BASE), _frame(BASE))
        assert diff == VersionDiff(added=(), removed=(), changed=())
        assert diff.is_empty

    def test_added_and_removed_ids_are_sorted(self) -> None:
        """New ids are added, vanished ids removed, both sorted."""
        new = [*BASE[1:], ("e", "e", "e", "", ""), ("d", "d", "d", "", "")]
        diff = diff_versions(_frame(BASE), _frame(new))
        assert diff.added == ("d", "e")
        assert diff.removed == ("a",)
        assert diff.changed == ()
        assert not diff.is_empty

    @pytest.mark.parametrize("column", ["input", "expected", "slice", "tags"])
    def test_changed_content_column(self, column: str) -> None:
        """A different value in any content column marks the id as changed."""
        new = _frame(BASE)
        new.loc[new["id"] == "b", column] = "changed"
        assert diff_versions(_frame(BASE), new).changed == ("b",)

    def test_row_order_does_not_matter(self) -> None:
        """Reordered rows are not changes."""
        assert diff_versions(_frame(BASE), _frame(BASE[::-1])).is_empty

    def test_none_and_empty_optional_values_are_equal(self) -> None:
        """A stored None slice equals an imported "" slice."""
        stored = _frame(BASE).astype(object)
        stored.loc[stored["slice"] == "", "slice"] = None
        assert diff_versions(stored, _frame(BASE)).is_empty

    def test_everything_at_once(self) -> None:
        """Additions, removals and changes are reported together."""
        new = [
            ("a", "input a", "x2", "s1", "t"),
            ("c", "input c", "z", "", "u,v"),
            ("f", "f", "f", "", ""),
        ]
        diff = diff_versions(_frame(BASE), _frame(new))
        assert (diff.added, diff.removed, diff.changed) == (("f",), ("b",), ("a",))

    def test_ids_sort_by_code_point(self) -> None:
        """Ids are sorted the same way dataset rows are."""
        new = _frame([("é", "1", "1", "", ""), ("Z", "1", "1", "", ""), ("a", "1", "1", "", "")])
        assert diff_versions(_frame([]), new).added == ("Z", "a", "é")

    def test_duplicate_ids_are_refused(self) -> None:
        """Frames with repeated ids are not dataset versions."""
        with pytest.raises(ValueError, match="duplicate ids"):
            diff_versions(_frame([*BASE, BASE[0]]), _frame(BASE))

    def test_missing_columns_are_refused(self) -> None:
        """Both frames need all five columns."""
        with pytest.raises(ValueError, match="new frame lacks"):
            diff_versions(_frame(BASE), _frame(BASE).drop(columns=["tags"]))
