"""Problems found in an imported golden dataset, and the error that carries them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

LocationUnit = Literal["row", "line"]

MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a dataset file, where it is, and how to fix it.

    `row` is where the user finds the record: the line it starts on for CSV (the header is
    line 1) and JSONL, the 1-based row for Parquet; None for problems with the whole file.
    `unit` says which of the two `row` counts, so messages can say "line 7" or "row 7".
    """

    row: int | None
    column: str | None
    message: str
    fix: str
    unit: LocationUnit = "row"

    @property
    def location(self) -> str:
        """Where the problem is, e.g. "line 7, column 'input'"; "" for the whole file."""
        parts = []
        if self.row is not None:
            parts.append(f"{self.unit} {self.row}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        return ", ".join(parts)

    def __str__(self) -> str:
        located = f"{self.location}: " if self.location else ""
        return f"{located}{self.message}. Fix: {self.fix}"


def _sort_key(problem: Problem) -> tuple[bool, int]:
    return (problem.row is not None, problem.row or 0)


class GoldenDatasetInvalid(ValueError):
    """A dataset file that cannot be imported, with every problem found in it."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        # File-level problems first, then by position; stable, so kinds keep their order.
        self.problems: tuple[Problem, ...] = tuple(sorted(problems, key=_sort_key))
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        lines = [f"golden dataset has {count} problem{'s' if count != 1 else ''}:"]
        lines += [f"  {problem}" for problem in self.problems[:MAX_LISTED_PROBLEMS]]
        if count > MAX_LISTED_PROBLEMS:
            lines.append(f"  … and {count - MAX_LISTED_PROBLEMS} more")
        return "\n".join(lines)

    def __reduce__(self) -> tuple[type[GoldenDatasetInvalid], tuple[tuple[Problem, ...]]]:
        # Rebuild from the problems, not the rendered text, when pickled across processes.
        return (type(self), (self.problems,))
