"""Text descriptors for data drift, and the summary of a drift report (pure: no Evidently).

Traffic inputs and the pinned golden dataset's inputs become one row of descriptors per text
(length, out-of-vocabulary rate against the golden set's words, a cheap language guess) plus the
label of the output where the agent classifies. A drift report tests each descriptor column;
the share of drifted columns against a threshold says whether the inputs moved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

NUMERICAL = ("length_chars", "length_words", "oov_rate")
CATEGORICAL = ("language", "output_label")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOPWORDS = {
    "en": {"the", "and", "is", "of", "to", "in", "it", "you", "that", "for", "my", "this"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ich", "zu", "mit", "ein", "eine", "mein"},
    "fr": {"le", "la", "les", "et", "est", "je", "pas", "de", "un", "une", "mon", "pour"},
    "es": {"el", "la", "los", "y", "es", "no", "yo", "de", "un", "una", "mi", "para", "por"},
}
MAX_OUTPUT_LABELS = 20
"""More distinct outputs than this: the agent writes text, and output labels are not compared."""


def words(text: str) -> list[str]:
    """Lower-case word tokens (letters only)."""
    return [w.lower() for w in _WORD.findall(text)]


def vocabulary(texts: Iterable[str]) -> frozenset[str]:
    """Every word of the golden set's inputs."""
    return frozenset(word for text in texts for word in words(text))


def guess_language(text: str) -> str:
    """The language whose common words the text uses most (en, de, fr, es), else `other`."""
    tokens = words(text)
    if not tokens:
        return "other"
    counts = {lang: sum(t in stop for t in tokens) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=lambda lang: counts[lang])
    return best if counts[best] > 0 else "other"


def descriptors(
    inputs: Sequence[str], vocabulary: frozenset[str], outputs: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row of descriptors per input text (and its output label, when given)."""
    rows = []
    for position, text in enumerate(inputs):
        tokens = words(text)
        unknown = sum(token not in vocabulary for token in tokens)
        rows.append(
            {
                "length_chars": float(len(text)),
                "length_words": float(len(tokens)),
                "oov_rate": unknown / len(tokens) if tokens else 0.0,
                "language": guess_language(text),
                "output_label": str(outputs[position]) if outputs is not None else "",
            }
        )
    return pd.DataFrame(rows, columns=[*NUMERICAL, *CATEGORICAL])


def comparable_columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The descriptor columns worth testing: output labels only for a classifier's outputs."""
    columns = [*NUMERICAL, "language"]
    labels = set(reference["output_label"]) | set(current["output_label"])
    if "" not in labels and len(labels) <= MAX_OUTPUT_LABELS:
        columns.append("output_label")
    return columns


@dataclass(frozen=True)
class DriftSummary:
    """Which descriptor columns drifted, their share, and whether it passed the threshold."""

    columns: dict[str, dict[str, Any]]
    drifted_columns: list[str]
    drift_share: float
    threshold: float
    drifted: bool


def summarize_drift(metrics: Sequence[Mapping[str, Any]], *, threshold: float) -> DriftSummary:
    """The summary of a drift report's per-column results (`ValueDrift` metrics as a dict:
    config with column, method and threshold, and the value: a p-value or a distance)."""
    columns: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        method = str(config.get("method", ""))
        value = float(metric["value"])
        limit = float(config.get("threshold", 0.05))
        is_p_value = "p_value" in method
        drifted = value < limit if is_p_value else value >= limit
        columns[str(config["column"])] = {
            "method": method,
            "value": value,
            "threshold": limit,
            "drifted": drifted,
        }
    drifted_columns = sorted(name for name, result in columns.items() if result["drifted"])
    share = len(drifted_columns) / len(columns) if columns else 0.0
    return DriftSummary(columns, drifted_columns, share, threshold, share >= threshold)
