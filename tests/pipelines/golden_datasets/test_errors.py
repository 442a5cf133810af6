"""Problems and the error that lists them."""

from __future__ import annotations

import pickle

from pipelines.golden_datasets.errors import GoldenDatasetInvalid, Problem


class TestProblem:
    def test_str_names_line_column_and_fix(self) -> None:
        """A located problem reads as place, message, then the fix."""
        problem = Problem(7, "input", "the input is empty", "fill it in", "line")
        assert str(problem) == "line 7, column 'input': the input is empty. Fix: fill it in"

    def test_file_level_problem_has_no_place(self) -> None:
        """A problem with the whole file starts with its message."""
        assert str(Problem(None, None, "the file is empty", "add rows")) == (
            "the file is empty. Fix: add rows"
        )

    def test_parquet_rows_are_called_rows(self) -> None:
        """The default unit is a row, as for Parquet."""
        assert Problem(3, None, "bad", "fix").location == "row 3"


class TestGoldenDatasetInvalid:
    def test_lists_first_twenty_then_counts_the_rest(self) -> None:
        """Only the first 20 problems are spelled out, one per line, then how many more."""
        error = GoldenDatasetInvalid(
            Problem(row, "id", "the id is empty", "add one", "line") for row in range(2, 27)
        )
        lines = str(error).splitlines()
        assert lines[0] == "golden dataset has 25 problems:"
        assert lines[1] == "  line 2, column 'id': the id is empty. Fix: add one"
        assert len(lines) == 1 + 20 + 1
        assert lines[-1] == "  … and 5 more"

    def test_orders_file_problems_first_then_by_row(self) -> None:
        """Whole-file problems come first, then problems in file order."""
        error = GoldenDatasetInvalid(
            [
                Problem(9, None, "late", "x"),
                Problem(None, "expected", "missing column", "x"),
                Problem(2, None, "early", "x"),
            ]
        )
        assert [p.message for p in error.problems] == ["missing column", "early", "late"]

    def test_is_a_value_error_with_all_problems(self) -> None:
        """Callers can catch it as ValueError and still read every problem."""
        error = GoldenDatasetInvalid([Problem(1, None, "a", "b")] * 30)
        assert isinstance(error, ValueError)
        assert len(error.problems) == 30

    def test_survives_pickling(self) -> None:
        """Pickling (e.g. across worker processes) keeps the problems, not just the text."""
        error = GoldenDatasetInvalid([Problem(4, "id", "dup", "rename", "line")])
        copy = pickle.loads(pickle.dumps(error))
        assert copy.problems == error.problems
        assert str(copy) == str(error)
