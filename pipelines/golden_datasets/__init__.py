"""Golden datasets: files of evaluation examples read into validated, content-addressed rows."""

from pipelines.golden_datasets.canonical import content_hash
from pipelines.golden_datasets.errors import GoldenDatasetInvalid, Problem
from pipelines.golden_datasets.schema import COLUMNS, REQUIRED_COLUMNS, GoldenDatasetTask
from pipelines.golden_datasets.validation import ValidatedRows, read_golden_file
from pipelines.golden_datasets.versions import VersionDiff, diff_versions

__all__ = [
    "COLUMNS",
    "REQUIRED_COLUMNS",
    "GoldenDatasetInvalid",
    "GoldenDatasetTask",
    "Problem",
    "ValidatedRows",
    "VersionDiff",
    "content_hash",
    "diff_versions",
    "read_golden_file",
]
