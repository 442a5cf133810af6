"""Evaluation results as every reader sees them: one typed model per concept.

Services return these; the API serves them as they are (its schemas are these classes), the CLI
prints them as JSON with `--json` or draws them with rich, and the cache stores their JSON. So
a metric difference, a McNemar test or a run's detail has one shape from the core to the client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.db.enums import RunStatus, Task
from pipelines.evaluation import intervals


class ReadModel(BaseModel):
    """Base of read models: immutable, built from attributes of stored rows or core results."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


_PER_LABEL = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<label>.+)\]$")


def split_metric_name(stored: str) -> tuple[str, str | None]:
    """A stored metric name as (metric, label): `f1[billing]` → (`f1`, `billing`)."""
    match = _PER_LABEL.match(stored)
    if match is None:
        return stored, None
    return match["name"], match["label"]


class ModelRef(ReadModel):
    """The registered model version a run evaluated, and the alias it was asked by."""

    name: str = Field(examples=["intent-classifier"])
    version: str | None = Field(examples=["3"])
    alias: str | None = Field(default=None, examples=["champion"])


class DatasetRef(ReadModel):
    """The golden dataset version a run evaluated."""

    name: str = Field(examples=["support-tickets"])
    version: int = Field(examples=[2])
    sha256: str = Field(description="Content hash of the version.")


class EvaluationSummary(ReadModel):
    """An evaluation run as listed; poll `status` until it is completed or failed."""

    id: uuid.UUID
    status: RunStatus
    task: Task = Field(examples=["classification"])
    agent_type: str = Field(examples=["intent_classifier"])
    subject: str = Field(
        description="What was evaluated: a model version or a predictions file.",
        examples=["intent-classifier@3 (champion)"],
    )
    model: ModelRef | None = Field(description="Null when a predictions file was evaluated.")
    predictions_file: str | None
    examples: int = Field(description="Number of golden examples evaluated.")
    golden_dataset: DatasetRef
    created_at: datetime
    finished_at: datetime | None


class Metric(ReadModel):
    """An aggregate metric with its bootstrap confidence interval."""

    name: str = Field(examples=["f1"])
    label: str | None = Field(
        default=None,
        description="The class a per-class metric is about; null for metrics of the whole set.",
        examples=["billing"],
    )
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int = Field(description="Examples the metric was computed on.")
    method: str | None = Field(
        default=None,
        description="How the interval is computed: `wilson` (proportions) or `bootstrap_t`.",
        examples=["wilson"],
    )
    flags: list[str] = Field(
        default_factory=list,
        description=(
            "Warnings: `small_n` (fewer examples than the run's minimum n), "
            "`interval_unreliable` (n below what the metric's interval needs to cover 95%), "
            "`no_interval` (a value without an interval). See docs/statistics.md."
        ),
        examples=[["small_n"]],
    )

    @classmethod
    def of(
        cls, stored: Any, *, min_n: int = intervals.DEFAULT_MIN_N, parts: Iterable[str] = ()
    ) -> Metric:
        """A stored metric (name like `f1[billing]`) as readers see it, with its flags.

        `min_n` is the run's minimum n, `parts` the metrics its quality score weighs.
        """
        name, label = split_metric_name(stored.name)
        # An undefined value (a class without support) has no interval to describe.
        defined = stored.value is not None
        flags = intervals.flags(
            stored.name,
            n=stored.n,
            value=stored.value,
            ci_low=stored.ci_low,
            ci_high=stored.ci_high,
            min_n=min_n,
            parts=parts,
        )
        if not defined:
            flags = [flag for flag in flags if flag == intervals.SMALL_N]
        return cls(
            name=name,
            label=label,
            value=stored.value,
            ci_low=stored.ci_low,
            ci_high=stored.ci_high,
            n=stored.n,
            method=intervals.method(stored.name) if defined else None,
            flags=flags,
        )


class SliceMetrics(ReadModel):
    """The metrics of one slice of the golden dataset."""

    slice: str = Field(examples=["billing"])
    metrics: list[Metric]
    averaged_over: list[str] | None = Field(
        default=None,
        description="Classification: the labels of the label set with support in this slice, "
        "which its macro precision, recall and F1 average over; null for text generation.",
        examples=[["billing", "refund"]],
    )


class ConfusionMatrix(ReadModel):
    """Counts of (expected label, predicted label) over the dataset version's label set."""

    labels: list[str] = Field(description="The label set: row and column order.")
    rows: str = Field(default="expected label")
    columns: str = Field(default="predicted label")
    matrix: list[list[int]] = Field(description="matrix[i][j]: expected labels[i], predicted j.")
    out_of_set: list[int] = Field(
        description="Per expected label: predictions outside the label set (counted as errors, "
        "never as a class)."
    )
    out_of_set_values: dict[str, int] = Field(
        default_factory=dict,
        description="The most frequent predicted values outside the label set, with counts.",
    )


class Progress(ReadModel):
    """How many scoring batches of a run are stored."""

    batches_done: int
    batches_total: int


class EvaluationDetail(EvaluationSummary):
    """An evaluation run with its progress, quality score and metrics, overall and per slice."""

    progress: Progress
    config: dict[str, Any] = Field(description="Scoring options and quality weights.")
    mlflow_run_id: str | None
    flow_run_id: str | None = Field(
        default=None,
        description="The orchestrator's (Prefect's) flow run that carried the run out, if any.",
        examples=["0f4c3a52-8d1e-4f0a-9a57-3d1c2b6e9f10"],
    )
    error: str | None = Field(description="Why the run failed, when it did.")
    quality_score: Metric | None
    metrics: list[Metric] = Field(description="Overall metrics.")
    slices: list[SliceMetrics]
    labels: list[str] | None = Field(
        default=None,
        description="Classification: the dataset version's label set the run was scored "
        "against (every run on the version has the same); null for text generation.",
    )
    averaged_over: list[str] | None = Field(
        default=None,
        description="Classification: the labels with support in the whole dataset, which the "
        "overall macro averages run over.",
    )
    confusion_matrix: ConfusionMatrix | None = Field(
        default=None, description="Classification runs, once completed."
    )
    scoring_signatures: dict[str, str] | None = Field(
        default=None,
        description="What the metrics are equal to: sacrebleu signatures of BLEU, sentence "
        "BLEU and chrF, and rouge-score's version and options; null for runs stored earlier.",
    )


class ExampleScore(ReadModel):
    """One golden example of a run: its prediction and per-example scores."""

    example_id: str
    slice: str
    batch_index: int
    prediction: str
    scores: dict[str, Any] = Field(examples=[{"correct": 1}])


class QualityScorePoint(ReadModel):
    """The quality score of one completed run, for a time series."""

    run_id: uuid.UUID
    finished_at: datetime
    agent_type: str
    task: Task
    subject: str
    model: ModelRef | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


class MetricDifference(ReadModel):
    """The paired difference b − a of one metric, with its CI and p-values.

    The interval inverts the swap test that gives `p_value`: it excludes 0 exactly when
    `p_value` <= alpha. `significant` is the decision: for the primary metric p <= alpha, for
    every other row Holm-adjusted p (`p_value_holm`) <= alpha.
    """

    slice: str = Field(description='"" for the whole dataset.')
    name: str
    label: str | None = Field(
        default=None, description="The class of a per-class metric; null otherwise."
    )
    a: float | None
    b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_value_holm: float | None = Field(
        description=(
            "Holm-adjusted across the secondary family (every metric overall and per slice "
            "except the primary metric overall); null for the primary metric."
        )
    )
    n: int
    primary: bool = Field(default=False, description="The comparison's primary metric, overall.")
    significant: bool | None = Field(
        default=None, description="Called different by the decision rule; null if untestable."
    )
    flags: list[str] = Field(
        default_factory=list, description="`small_n` when the slice has fewer than min n."
    )


class McNemarTest(ReadModel):
    """McNemar's exact test on a 0/1 metric: discordant counts and the p-value."""

    metric: str
    only_a_correct: int
    only_b_correct: int
    p_value: float
    slice: str = Field(default="", description='"" for the whole dataset.')
    n: int | None = Field(default=None, description="Paired examples tested.")
    p_value_holm: float | None = Field(
        default=None, description="Per slice: Holm-adjusted across the slices."
    )


class PairedEffect(ReadModel):
    """Effect size of b − a on the primary metric, from per-example paired differences.

    For a mean the per-example difference is the score difference; for corpus metrics, macro
    averages and the quality score it is the linearised one, n·∇f·(s_b − s_a).
    """

    wins: int = Field(description="Examples where b is better.")
    ties: int
    losses: int = Field(description="Examples where a is better.")
    paired_sd: float | None = Field(description="Standard deviation of the paired differences.")
    d_z: float | None = Field(description="Cohen's d_z: difference / paired_sd.")
    cohen_h: float | None = Field(
        default=None, description="Cohen's h (arcsine difference), for proportions only."
    )


class SecondaryFamily(ReadModel):
    """The secondary metrics tested together: every row except the primary metric overall."""

    method: Literal["holm"] = "holm"
    size: int = Field(description="Hypotheses in the family (rows with a p-value).")
    alpha: float
    better: list[str] = Field(description="Rows called better for b, as `slice/metric`.")
    worse: list[str] = Field(description="Rows called worse for b, as `slice/metric`.")


Outcome = Literal["better", "worse", "no_detectable_difference", "untestable"]


class Verdict(ReadModel):
    """The decision of a comparison: is the challenger (b) better than the baseline (a)?"""

    outcome: Outcome
    statement: str = Field(
        examples=[
            "challenger better: quality_score +0.0340 [+0.0120, +0.0560], p = 0.002"
            " (paired swap test, n = 500, alpha = 0.05)"
        ]
    )
    primary_metric: str = Field(examples=["quality_score"])
    test: str = Field(description="The test and how its interval is derived.")
    alpha: float
    a: float | None
    b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n: int
    min_n: int
    minimum_detectable_effect: float | None = Field(
        description="Smallest |b − a| detected with `power` at this n and paired variance."
    )
    power: float
    effect: PairedEffect
    secondary: SecondaryFamily
    flags: list[str] = Field(default_factory=list, description="`small_n` when n < min n.")


class EvaluationPlan(ReadModel):
    """Sample size planning for a paired comparison (normal approximation, two-sided)."""

    paired_sd: float = Field(description="Standard deviation of per-example differences.")
    source: str = Field(description="Where paired_sd comes from.")
    alpha: float
    power: float
    effect: float | None = Field(description="The target difference, when given.")
    n_required: int | None = Field(description="Paired examples needed to detect `effect`.")
    n: int | None = Field(description="The dataset size asked about, when given.")
    minimum_detectable_effect: float | None = Field(description="MDE at `n`, when given.")


class RunRef(ReadModel):
    """A run in a comparison, with its own overall metrics and their CIs."""

    id: uuid.UUID
    subject: str
    metrics: list[Metric] = Field(default_factory=list, description="The run's overall metrics.")


class QualityWeightsUsed(ReadModel):
    """The one weighting a comparison computes both runs' quality scores with."""

    agent_type: str
    weights: dict[str, float]
    source: str = Field(
        description="`runs`: both runs were evaluated with these weights; `declared`: the "
        "runs' weights differ, so the current declared weighting of run B's agent type is used "
        "for both."
    )


class RunComparison(ReadModel):
    """Run b against run a on the same examples: overall, per slice, and McNemar."""

    run_a: RunRef
    run_b: RunRef
    task: Task
    n: int = Field(description="Paired examples.")
    overall: list[MetricDifference]
    slices: list[MetricDifference]
    mcnemar: list[McNemarTest]
    labels: list[str] | None = Field(
        default=None,
        description="Classification: the dataset version's label set both runs are scored "
        "against (not what either happened to predict).",
    )
    scoring_options: dict[str, Any] = Field(
        default_factory=dict,
        description="The scoring options both runs share (runs that differ are not compared).",
    )
    quality_weights: QualityWeightsUsed | None = None
    verdict: Verdict


class OrganizationRunSummary(EvaluationSummary):
    """A run as the provider lists it, across organisations: with the organisation's slug."""

    organization: str = Field(examples=["acme"])


class PairedExample(ReadModel):
    """One golden example in two runs: the expected text, both predictions and scores."""

    example_id: str
    slice: str
    input: str | None
    expected: str | None
    prediction_a: str
    prediction_b: str
    score_a: float | None = Field(description="Run A's per-example value of the chosen metric.")
    score_b: float | None
    difference: float | None = Field(description="score_b − score_a.")


class AliasMove(ReadModel):
    """An alias of a registered model pointed at a version, at a time (from the audit log)."""

    at: datetime
    model: str
    alias: str
    version: str | None

    @property
    def label(self) -> str:
        return f"{self.alias} → {self.model} v{self.version}"
