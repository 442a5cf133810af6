"""The loaded-model cache: each model version loads once and only the most recent stay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from models.registry import client as registry
from models.settings import RegistrySettings
from pipelines.agents.summarizers import LeadSentenceSummarizer


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[RegistrySettings]:
    """A registry of its own, keeping two loaded models; MLflow's previous target restored."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    settings = RegistrySettings(home=tmp_path / "registry", loaded_model_cache_size=2)
    registry.configure(settings)
    yield settings
    registry.configure(RegistrySettings(home=tmp_path / "registry"))  # the default bound again
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])


def test_keeps_the_most_recently_used_models(settings: RegistrySettings) -> None:
    """A model version loads once while it is among the most recently used; past the bound the
    one used longest ago is dropped and loads again on its next use."""
    experiment = registry.experiment_id(settings)
    v1, v2, v3 = (
        registry.register_model_version(
            "bounded",
            LeadSentenceSummarizer(),
            agent_type="summarizer",
            task="t",
            experiment=experiment,
        )
        for _ in range(3)
    )
    first = registry.load_model(v1)
    second = registry.load_model(v2)
    assert registry.load_model(v1) is first
    registry.load_model(v3)
    assert registry.load_model(v1) is first
    assert registry.load_model(v2) is not second
    assert registry.predict(v1, ["One. Two."]) == registry.predict(v3, ["One. Two."])


def test_the_bound_is_a_setting() -> None:
    """`STREAMFLOW_LOADED_MODEL_CACHE_SIZE` must be at least one."""
    with pytest.raises(ValueError, match="loaded_model_cache_size"):
        RegistrySettings(loaded_model_cache_size=0)
