"""The committed demo datasets, loaded once per test session."""

from __future__ import annotations

import pandas as pd
import pytest

from .demo_data import DATASETS, read_notes, read_tickets


@pytest.fixture(scope="session")
def ticket_train() -> pd.DataFrame:
    return read_tickets(DATASETS / "training" / "support_ticket_intents_train.csv")


@pytest.fixture(scope="session")
def ticket_golden() -> pd.DataFrame:
    return read_tickets(DATASETS / "golden" / "support_ticket_intents.csv")


@pytest.fixture(scope="session")
def note_train() -> pd.DataFrame:
    return read_notes(DATASETS / "training" / "job_note_summaries_train.jsonl")


@pytest.fixture(scope="session")
def note_golden() -> pd.DataFrame:
    return read_notes(DATASETS / "golden" / "job_note_summaries.jsonl")
