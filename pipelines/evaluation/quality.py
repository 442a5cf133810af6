"""The quality score: a declared, per-agent-type weighting of corpus metrics.

Each metric is divided by its scale so it lies in [0, 1] (sacrebleu's BLEU and chrF are on a
0-100 scale, every other metric on 0-1), then the weighted sum is taken. The score is computed
on the point values and on every bootstrap replicate, so its interval is joint with its parts
rather than assembled from their separate intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from pipelines.evaluation.statistics import PairedReplicates, Replicates
from pipelines.evaluation.suite import FloatArray

QUALITY_SCORE = "quality_score"
# Metrics reported on sacrebleu's 0-100 scale; every other metric is on 0-1.
PERCENT_SCALE_METRICS = frozenset({"bleu", "chrf"})
# Weights are declared by hand as decimals; 0.4 + 0.2 + 0.2 + 0.2 is not exactly 1.0.
_SUM_TOLERANCE = 1e-6
_RANGE_TOLERANCE = 1e-9


def default_scale(metric: str) -> float:
    """The value that maps `metric` to 1: 100 for BLEU and chrF, 1 otherwise."""
    return 100.0 if metric in PERCENT_SCALE_METRICS else 1.0


@dataclass(frozen=True)
class QualityWeights:
    """How one agent type's quality score weighs its metrics.

    `weights` are non-negative and sum to 1; `scales` overrides `default_scale` per metric.
    """

    agent_type: str
    weights: Mapping[str, float]
    scales: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError(f"quality weights for agent type {self.agent_type!r} are empty")
        for metric, weight in self.weights.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(
                    f"weight for metric {metric!r} (agent type {self.agent_type!r}) must be a"
                    f" finite non-negative number, got {weight!r}"
                )
        total = math.fsum(self.weights.values())
        if abs(total - 1.0) > _SUM_TOLERANCE:
            listed = ", ".join(f"{metric}={weight}" for metric, weight in self.weights.items())
            raise ValueError(
                f"quality weights for agent type {self.agent_type!r} sum to {total:g},"
                f" not 1: {listed}"
            )
        for metric, scale in self.scales.items():
            if metric not in self.weights:
                raise ValueError(
                    f"scale given for metric {metric!r}, which has no weight for agent type"
                    f" {self.agent_type!r}"
                )
            if not math.isfinite(scale) or scale <= 0:
                raise ValueError(
                    f"scale for metric {metric!r} must be a finite positive number, got {scale!r}"
                )
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        object.__setattr__(self, "scales", MappingProxyType(dict(self.scales)))

    def scale(self, metric: str) -> float:
        """The value that maps `metric` to 1 in this weighting."""
        return self.scales.get(metric, default_scale(metric))

    def paired(self, paired: PairedReplicates) -> PairedReplicates:
        """The quality score of both systems (a `statistics.DerivedMetric`)."""
        return paired_quality_score(paired, self)


DEFAULT_QUALITY_WEIGHTS: Mapping[str, QualityWeights] = MappingProxyType(
    {
        "summarizer": QualityWeights(
            "summarizer", {"rougeL_f": 0.4, "rouge2_f": 0.2, "rougeLsum_f": 0.2, "chrf": 0.2}
        ),
        "intent_classifier": QualityWeights(
            "intent_classifier", {"f1_macro": 0.5, "accuracy": 0.3, "f1_weighted": 0.2}
        ),
    }
)


def parse_quality_weights(agent_type: str, spec: str) -> QualityWeights:
    """Weights from a config string such as "rougeL_f=0.5,chrf=0.5"."""
    weights: dict[str, float] = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        metric, equals, raw = (part.strip() for part in item.partition("="))
        if not equals or not metric or not raw:
            raise ValueError(
                f"quality weight {item.strip()!r} for agent type {agent_type!r} is not"
                " metric=weight"
            )
        if metric in weights:
            raise ValueError(f"metric {metric!r} is weighted twice for agent type {agent_type!r}")
        try:
            weights[metric] = float(raw)
        except ValueError:
            raise ValueError(
                f"weight for metric {metric!r} (agent type {agent_type!r}) is not a number: {raw!r}"
            ) from None
    return QualityWeights(agent_type, weights)


def quality_score(replicates: Replicates, weights: QualityWeights) -> Replicates:
    """The quality score on the point values and on each replicate, as one metric."""
    columns = _columns(replicates.names, weights)
    return Replicates(
        names=(QUALITY_SCORE,),
        point=_weighted(replicates.point[np.newaxis, :], columns, weights)[0],
        replicates=_weighted(replicates.replicates, columns, weights),
        n=replicates.n,
    )


def paired_quality_score(paired: PairedReplicates, weights: QualityWeights) -> PairedReplicates:
    """The quality score of both systems on the sample, shared resamples and swaps."""
    columns = _columns(paired.names, weights)

    def score(values: FloatArray) -> FloatArray:
        return _weighted(values, columns, weights)

    return PairedReplicates(
        names=(QUALITY_SCORE,),
        point_a=score(paired.point_a[np.newaxis, :])[0],
        point_b=score(paired.point_b[np.newaxis, :])[0],
        replicates_a=score(paired.replicates_a),
        replicates_b=score(paired.replicates_b),
        swapped_a=score(paired.swapped_a),
        swapped_b=score(paired.swapped_b),
        n=paired.n,
    )


def _columns(names: tuple[str, ...], weights: QualityWeights) -> dict[str, int]:
    missing = [metric for metric in weights.weights if metric not in names]
    if missing:
        raise ValueError(
            f"quality score for agent type {weights.agent_type!r} needs metric(s)"
            f" {', '.join(missing)}; available: {', '.join(names) or '(none)'}"
        )
    return {metric: names.index(metric) for metric in weights.weights}


def _weighted(
    values: FloatArray, columns: Mapping[str, int], weights: QualityWeights
) -> FloatArray:
    """Weighted sum of scaled metric columns, shape (k, m) -> (k, 1); NaN if any part is NaN."""
    score = np.zeros(values.shape[0])
    for metric, column in columns.items():
        scaled = values[:, column] / weights.scale(metric)
        outside = (scaled < -_RANGE_TOLERANCE) | (scaled > 1.0 + _RANGE_TOLERANCE)
        if outside.any():
            raise ValueError(
                f"metric {metric!r} is {values[outside, column][0]:g}, outside [0, 1] after"
                f" dividing by its scale {weights.scale(metric):g}; declare its scale"
            )
        score += weights.weights[metric] * scaled
    return score[:, np.newaxis]


__all__ = [
    "DEFAULT_QUALITY_WEIGHTS",
    "PERCENT_SCALE_METRICS",
    "QUALITY_SCORE",
    "QualityWeights",
    "default_scale",
    "paired_quality_score",
    "parse_quality_weights",
    "quality_score",
]
