"""Request and response bodies of serving, feedback and experiments."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import InputModel
from models.db.enums import ExperimentKind, FeedbackKind, SplitKey

AGENT_TYPE_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
MODEL_VERSION_PATTERN = r"^[A-Za-z0-9_.\-]{1,190}@[0-9]{1,9}$"


class PredictRequest(InputModel):
    """One input for the agent."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(min_length=1, max_length=100_000, examples=["My invoice is wrong"])
    end_user_key: str | None = Field(
        default=None,
        max_length=200,
        description="Your end user's key (opaque): A/B tests split by it when set to do so.",
    )


class PredictResponse(BaseModel):
    """The agent's answer; `request_id` is what feedback refers to."""

    request_id: str = Field(examples=["5f0c9d3e2b7a4c1e8d6f0a9b8c7d6e5f"])
    agent_type: str
    model_version: str = Field(examples=["intent-classifier@3"])
    output: str
    latency_ms: float
    experiment_id: str | None = None
    variant: str | None = Field(default=None, description="champion or challenger, in a test.")


class Agent(BaseModel):
    """An agent type this tenant can call and the model version answering for it."""

    agent_type: str
    task: str
    champion: str = Field(examples=["intent-classifier@3"])


class FeedbackCreate(InputModel):
    """Feedback on a served prediction, by its `request_id`."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    kind: FeedbackKind
    value: str = Field(
        min_length=1,
        max_length=20_000,
        description="A rating (a number), the correct label, or the corrected text.",
    )


class FeedbackOut(BaseModel):
    """Feedback as stored; `created` is false when it repeats or replaces earlier feedback."""

    id: str
    request_id: str
    kind: str
    value: str
    rating: float | None
    agent_type: str
    created_at: datetime
    updated_at: datetime
    created: bool


class ExperimentCreate(InputModel):
    """A shadow or A/B experiment of a challenger against an agent type's champion."""

    model_config = ConfigDict(extra="forbid")

    kind: ExperimentKind
    agent_type: str = Field(pattern=AGENT_TYPE_PATTERN)
    challenger: str = Field(pattern=MODEL_VERSION_PATTERN, examples=["intent-classifier@4"])
    mde: float = Field(gt=0, le=1_000_000, description="Minimum detectable effect.")
    sd: float = Field(default=0.5, gt=0, le=1_000_000, description="Metric's standard deviation.")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    sample_rate: float = Field(default=1.0, gt=0, le=1, description="Shadow: share of requests.")
    traffic_split: float = Field(default=0.5, gt=0, lt=1, description="A/B: challenger's share.")
    split_key: SplitKey = SplitKey.TENANT
    description: str = Field(default="", max_length=2_000)
