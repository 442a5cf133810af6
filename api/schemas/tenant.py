"""Response bodies of the tenant API (`/v1`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["pending", "running", "completed", "failed"]
Severity = Literal["info", "warning", "critical"]


class ModelRef(BaseModel):
    """The registered model version a run evaluated, and the alias it was asked by."""

    name: str = Field(examples=["intent-classifier"])
    version: str | None = Field(examples=["3"])
    alias: str | None = Field(default=None, examples=["champion"])


class DatasetRef(BaseModel):
    """The golden dataset version a run evaluated."""

    name: str = Field(examples=["support-tickets"])
    version: int = Field(examples=[2])
    sha256: str = Field(description="Content hash of the version.")


class EvaluationSummary(BaseModel):
    """An evaluation run as listed; poll `status` until it is completed or failed."""

    id: uuid.UUID
    status: RunStatus
    task: str = Field(examples=["classification"])
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


class Metric(BaseModel):
    """An aggregate metric with its bootstrap confidence interval."""

    name: str = Field(examples=["f1_macro"])
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int = Field(description="Examples the metric was computed on.")


class SliceMetrics(BaseModel):
    """The metrics of one slice of the golden dataset."""

    slice: str = Field(examples=["billing"])
    metrics: list[Metric]


class Progress(BaseModel):
    """How many scoring batches of a run are stored."""

    batches_done: int
    batches_total: int


class EvaluationDetail(EvaluationSummary):
    """An evaluation run with its progress, quality score and metrics, overall and per slice."""

    progress: Progress
    config: dict[str, Any] = Field(description="Scoring options and quality weights.")
    mlflow_run_id: str | None
    error: str | None = Field(description="Why the run failed, when it did.")
    quality_score: Metric | None
    metrics: list[Metric] = Field(description="Overall metrics.")
    slices: list[SliceMetrics]


class ExampleScore(BaseModel):
    """One golden example of a run: its prediction and per-example scores."""

    example_id: str
    slice: str
    batch_index: int
    prediction: str
    scores: dict[str, Any] = Field(examples=[{"correct": 1}])


class RunRef(BaseModel):
    """A run in a comparison."""

    id: uuid.UUID
    subject: str


class MetricDifference(BaseModel):
    """The paired difference b − a of one metric, with its CI and p-values."""

    slice: str = Field(description='"" for the whole dataset.')
    name: str
    a: float | None
    b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_value_holm: float | None = Field(description="Holm-adjusted across slices.")
    n: int


class McNemarTest(BaseModel):
    """McNemar's exact test on a 0/1 metric."""

    metric: str
    only_a_correct: int
    only_b_correct: int
    p_value: float


class RunComparison(BaseModel):
    """Run b against run a on the same examples: overall, per slice, and McNemar."""

    run_a: RunRef
    run_b: RunRef
    n: int = Field(description="Paired examples.")
    overall: list[MetricDifference]
    slices: list[MetricDifference]
    mcnemar: list[McNemarTest]


class ModelVersion(BaseModel):
    """A registered model version of an agent."""

    name: str = Field(examples=["intent-classifier"])
    version: str = Field(examples=["3"])
    agent_type: str = Field(examples=["intent_classifier"])
    task: str = Field(examples=["classification"])
    aliases: list[str] = Field(examples=[["champion"]])
    description: str
    created_at: datetime


class QualityScorePoint(BaseModel):
    """The quality score of one completed run, for a time series."""

    run_id: uuid.UUID
    finished_at: datetime
    agent_type: str
    task: str
    subject: str
    model: ModelRef | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


class Notice(BaseModel):
    """An active system notice addressed to this tenant."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    title: str
    body: str
    severity: Severity
    starts_at: datetime
    ends_at: datetime | None
    acknowledged_at: datetime | None = Field(description="Null until this tenant acknowledges.")


class NoticeAcknowledgement(BaseModel):
    """This tenant's acknowledgement of a notice."""

    model_config = ConfigDict(from_attributes=True)

    notice_id: uuid.UUID
    acknowledged_at: datetime


class ApiKey(BaseModel):
    """One of this tenant's API keys; the secret is never shown again after issue."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str = Field(examples=["ci pipeline"])
    prefix: str = Field(description="Public part of the key: `sf_<prefix>_…`.")
    scopes: list[str] = Field(examples=[["results:read"]])
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
