"""Champion against challenger over a traffic window (pure: rows in, arrays and rates out).

Shadow experiments are paired: both versions answered the same request, so the rows are paired
by request id and per-request differences (challenger minus champion) are what gets tested.
A/B experiments are two samples: each request was answered by one variant. Task quality comes
from feedback that gives a reference: a correct label (1 if the output equals it) or corrected
text (ROUGE-L F of the output against it). Ratings describe only the served output, so they do
not compare versions.

AI cost per request is what the profitability rollup would charge the answer to: the cost rate
of the answering model version in force on the request's UTC day (per 1,000 tokens in and out
and per request), applied to the usage a served answer's usage event records (whitespace
tokens of input and output, one request; a failed answer is not metered, so it costs 0). It is
in micro-units of the price's currency, a float because per-1k rates leave fractions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from pipelines.evaluation.rouge import score_rouge
from pipelines.profitability.pricing import CostRate, in_effect

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrafficRow:
    """One logged prediction, as the comparison needs it."""

    request_id: str
    role: str
    """`served` (returned to the caller) or `shadow` (only logged)."""
    variant: str | None
    output: str | None
    latency_ms: float
    error: bool
    created_at: datetime
    model_version: str = ""
    """`NAME@VERSION` that answered (the key of its cost rates)."""
    tokens_in: int = 0
    tokens_out: int = 0
    """The usage a served answer's usage event records (whitespace tokens)."""


CostRates = Mapping[str, Sequence[CostRate]]
"""Model version → its cost rate versions, sorted by effective date."""


@dataclass(frozen=True)
class Reference:
    """What feedback says the right answer to a request was."""

    kind: str
    """`label` or `correction`."""
    value: str


@dataclass(frozen=True)
class Side:
    """One version's per-request values (aligned with the pairs when paired)."""

    latency_ms: FloatArray
    errors: FloatArray
    quality: FloatArray
    """Per request with a reference; NaN where there is none (or the version failed: 0)."""
    cost_micros: FloatArray = field(default_factory=lambda: np.zeros(0))
    """AI cost per request in micro-units; NaN where no cost rate was in force."""


@dataclass(frozen=True)
class TrafficComparison:
    """The comparison of one window: paired (shadow) or two samples (A/B)."""

    paired: bool
    champion: Side
    challenger: Side
    n_champion: int
    n_challenger: int
    agreement_rate: float | None
    """Share of pairs whose outputs are equal (after trimming and case folding)."""
    output_rouge_l: float | None
    """Mean ROUGE-L F of the challenger's output against the champion's over the pairs."""
    with_reference: int
    first_at: datetime | None
    last_at: datetime | None
    unpaired: int = 0
    """Served rows of a shadow window whose shadow row is missing (sampled out or dropped)."""
    request_ids: tuple[str, ...] = field(default_factory=tuple)
    unpriced: tuple[str, ...] = ()
    """Model versions with answers on a day no cost rate of theirs covers (cost NaN), sorted."""

    @property
    def n(self) -> int:
        """Pairs (shadow) or the smaller variant's count (A/B)."""
        return min(self.n_champion, self.n_challenger)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.strip().casefold() == b.strip().casefold()


def _quality(
    rows: Sequence[TrafficRow], references: Mapping[str, Reference], *, use_stemmer: bool
) -> FloatArray:
    """Per-row task quality against the feedback's reference (NaN: no reference)."""
    values = np.full(len(rows), np.nan)
    text_rows: list[int] = []
    for position, row in enumerate(rows):
        reference = references.get(row.request_id)
        if reference is None:
            continue
        if row.error or row.output is None:
            values[position] = 0.0
        elif reference.kind == "label":
            values[position] = 1.0 if _same(row.output, reference.value) else 0.0
        else:
            text_rows.append(position)
    if text_rows:
        scores = score_rouge(
            [str(rows[p].output) for p in text_rows],
            [references[rows[p].request_id].value for p in text_rows],
            use_stemmer=use_stemmer,
        )
        values[text_rows] = scores["rougeL_f"].to_numpy(dtype=float)
    return values


def request_cost_micros(row: TrafficRow, rates: CostRates) -> float:
    """The AI cost of one answer in micro-units (NaN: no cost rate of its model version was in
    force on its day). A failed answer has no usage event, so it costs 0."""
    if row.error or row.output is None:
        return 0.0
    rate = in_effect(rates.get(row.model_version, ()), row.created_at.date())
    if rate is None:
        return math.nan
    thousandths = (
        row.tokens_in * rate.micros_per_1k_tokens_in
        + row.tokens_out * rate.micros_per_1k_tokens_out
        + 1000 * rate.micros_per_request
    )
    return thousandths / 1000.0


def _unpriced(rows: Sequence[TrafficRow], costs: FloatArray) -> set[str]:
    return {
        row.model_version or "(unknown version)"
        for row, cost in zip(rows, costs, strict=True)
        if math.isnan(cost)
    }


def _side(
    rows: Sequence[TrafficRow],
    references: Mapping[str, Reference],
    *,
    use_stemmer: bool,
    rates: CostRates,
) -> Side:
    return Side(
        latency_ms=np.asarray([row.latency_ms for row in rows], dtype=float),
        errors=np.asarray([1.0 if row.error else 0.0 for row in rows]),
        quality=_quality(rows, references, use_stemmer=use_stemmer),
        cost_micros=np.asarray([request_cost_micros(row, rates) for row in rows], dtype=float),
    )


def _times(rows: Sequence[TrafficRow]) -> tuple[datetime | None, datetime | None]:
    if not rows:
        return None, None
    moments = [row.created_at for row in rows]
    return min(moments), max(moments)


def _sides(
    champion_rows: Sequence[TrafficRow],
    challenger_rows: Sequence[TrafficRow],
    references: Mapping[str, Reference],
    *,
    use_stemmer: bool,
    rates: CostRates,
) -> tuple[Side, Side, tuple[str, ...]]:
    """Both versions measured, and the model versions left without a cost rate."""
    champion = _side(champion_rows, references, use_stemmer=use_stemmer, rates=rates)
    challenger = _side(challenger_rows, references, use_stemmer=use_stemmer, rates=rates)
    unpriced = _unpriced(champion_rows, champion.cost_micros) | _unpriced(
        challenger_rows, challenger.cost_micros
    )
    return champion, challenger, tuple(sorted(unpriced))


def compare_shadow(
    rows: Sequence[TrafficRow],
    references: Mapping[str, Reference],
    *,
    use_stemmer: bool = True,
    rates: CostRates | None = None,
) -> TrafficComparison:
    """Pair the served (champion) and shadow (challenger) rows of each request, in request
    order of the served rows, and measure both sides."""
    served = {row.request_id: row for row in rows if row.role == "served"}
    shadow = {row.request_id: row for row in rows if row.role == "shadow"}
    ids = sorted(set(served) & set(shadow), key=lambda rid: (served[rid].created_at, rid))
    champion_rows = [served[rid] for rid in ids]
    challenger_rows = [shadow[rid] for rid in ids]
    agreement = rouge = None
    answered = [
        (a.output, b.output)
        for a, b in zip(champion_rows, challenger_rows, strict=True)
        if a.output is not None and b.output is not None
    ]
    if ids:
        pairs = zip(champion_rows, challenger_rows, strict=True)
        agreement = float(np.mean([_same(a.output, b.output) for a, b in pairs]))
    if answered:
        scores = score_rouge(
            [str(b) for _, b in answered], [str(a) for a, _ in answered], use_stemmer=use_stemmer
        )
        rouge = float(scores["rougeL_f"].mean())
    first, last = _times(champion_rows)
    champion, challenger, unpriced = _sides(
        champion_rows, challenger_rows, references, use_stemmer=use_stemmer, rates=rates or {}
    )
    return TrafficComparison(
        paired=True,
        champion=champion,
        challenger=challenger,
        n_champion=len(ids),
        n_challenger=len(ids),
        agreement_rate=agreement,
        output_rouge_l=rouge,
        with_reference=int(np.sum(~np.isnan(champion.quality))),
        first_at=first,
        last_at=last,
        unpaired=len(set(served) - set(shadow)),
        request_ids=tuple(ids),
        unpriced=unpriced,
    )


def compare_ab(
    rows: Sequence[TrafficRow],
    references: Mapping[str, Reference],
    *,
    use_stemmer: bool = True,
    rates: CostRates | None = None,
) -> TrafficComparison:
    """Split the served rows of an A/B window by variant and measure each."""
    served = [row for row in rows if row.role == "served"]
    champion_rows = [row for row in served if row.variant != "challenger"]
    challenger_rows = [row for row in served if row.variant == "challenger"]
    first, last = _times(served)
    champion, challenger, unpriced = _sides(
        champion_rows, challenger_rows, references, use_stemmer=use_stemmer, rates=rates or {}
    )
    return TrafficComparison(
        paired=False,
        champion=champion,
        challenger=challenger,
        n_champion=len(champion_rows),
        n_challenger=len(challenger_rows),
        agreement_rate=None,
        output_rouge_l=None,
        with_reference=int(
            np.sum(~np.isnan(champion.quality)) + np.sum(~np.isnan(challenger.quality))
        ),
        first_at=first,
        last_at=last,
        unpriced=unpriced,
    )


def quality_differences(comparison: TrafficComparison) -> FloatArray:
    """Paired per-request quality differences where the request has a reference."""
    a, b = comparison.champion.quality, comparison.challenger.quality
    keep = ~np.isnan(a) & ~np.isnan(b)
    return np.asarray(b[keep] - a[keep], dtype=float)
