"""Where the committed demo datasets live, and how tests read them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[3]
DATASETS = REPO_ROOT / "datasets"


def read_tickets(path: Path) -> pd.DataFrame:
    """A ticket CSV with every cell as text ("NA" stays "NA")."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def read_notes(path: Path) -> pd.DataFrame:
    """A job-note JSON Lines file."""
    with path.open(encoding="utf-8") as lines:
        return pd.DataFrame([json.loads(line) for line in lines])
