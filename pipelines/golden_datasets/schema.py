"""The shape of a golden dataset: its task kinds and its columns."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd


class GoldenDatasetTask(StrEnum):
    """What the dataset evaluates: picking a label, or producing text."""

    CLASSIFICATION = "classification"
    TEXT_GENERATION = "text_generation"


REQUIRED_COLUMNS: tuple[str, ...] = ("id", "input", "expected")
OPTIONAL_COLUMNS: tuple[str, ...] = ("slice", "tags")
COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)
"""Every golden-dataset column's dtype: Arrow-backed text, missing as NaN (pandas 3's "str")."""
