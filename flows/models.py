"""Building, registering and aliasing model versions from the CLI and the demo."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.runtime import cli_actor, runtime
from models.db.engine import transaction
from models.registry import client as registry
from pipelines.errors import InvalidInput
from pipelines.golden_datasets.schema import GoldenDatasetTask
from pipelines.golden_datasets.validation import read_golden_file
from pipelines.model_versions import service as model_versions

BUILTIN_AGENTS = {
    "tfidf-logreg": ("intent_classifier", "classification"),
    "char-naive-bayes": ("intent_classifier", "classification"),
    "lead-sentence": ("summarizer", "text_generation"),
    "scored-sentence": ("summarizer", "text_generation"),
}


@dataclass(frozen=True)
class BuiltAgent:
    """An agent object ready to register, with its tags."""

    agent: Any
    agent_type: str
    task: str


def train_builtin(builtin: str, texts: list[str], expected: list[str]) -> Any:
    """Train one of the built-in demo agents on (input, expected) pairs."""
    from pipelines.agents.intent_classifier import (
        train_char_ngram_naive_bayes,
        train_tfidf_logistic_regression,
    )
    from pipelines.agents.summarizers import LeadSentenceSummarizer, ScoredSentenceSummarizer

    if builtin == "tfidf-logreg":
        return train_tfidf_logistic_regression(texts, expected, seed=0)
    if builtin == "char-naive-bayes":
        return train_char_ngram_naive_bayes(texts, expected, seed=0)
    if builtin == "lead-sentence":
        return LeadSentenceSummarizer().fit(texts, expected)
    if builtin == "scored-sentence":
        return ScoredSentenceSummarizer().fit(texts, expected)
    raise InvalidInput(f"--builtin {builtin!r} is not one of: {', '.join(BUILTIN_AGENTS)}")


def build_agent(
    *,
    builtin: str | None,
    train: Path | None,
    factory: str | None,
    agent_type: str | None,
    task: str | None,
) -> BuiltAgent:
    """An agent from a built-in recipe and training file, or from a `module:callable` factory."""
    if (builtin is None) == (factory is None):
        raise InvalidInput(
            "give exactly one of --builtin NAME (with --train FILE) or --agent module:callable"
        )
    if builtin is not None:
        if builtin not in BUILTIN_AGENTS:
            raise InvalidInput(f"--builtin {builtin!r} is not one of: {', '.join(BUILTIN_AGENTS)}")
        if train is None:
            raise InvalidInput(
                f"--builtin {builtin} needs --train FILE (columns id, input, expected)"
            )
        default_type, default_task = BUILTIN_AGENTS[builtin]
        rows = read_golden_file(
            train.read_bytes(), filename=train.name, task=GoldenDatasetTask(default_task)
        ).frame
        agent = train_builtin(builtin, rows["input"].tolist(), rows["expected"].tolist())
        return BuiltAgent(agent, agent_type or default_type, task or default_task)
    assert factory is not None
    module_name, _, attribute = factory.partition(":")
    if not module_name or not attribute:
        raise InvalidInput(f"--agent {factory!r} must be module:callable, e.g. mypkg.agents:build")
    if agent_type is None or task is None:
        raise InvalidInput(
            "--agent needs --agent-type and --task (classification or text_generation)"
        )
    if task not in ("classification", "text_generation"):
        raise InvalidInput(f"--task {task!r} must be classification or text_generation")
    try:
        agent = getattr(importlib.import_module(module_name), attribute)()
    except (ImportError, AttributeError) as error:
        raise InvalidInput(f"--agent {factory!r} could not be loaded: {error}") from error
    if not callable(getattr(agent, "predict", None)):
        raise InvalidInput(f"--agent {factory!r} returned an object without predict(list[str])")
    return BuiltAgent(agent, agent_type, task)


def register_agent(
    name: str,
    built: BuiltAgent,
    *,
    description: str = "",
    alias: str | None = None,
    actor: str | None = None,
    tags: dict[str, str] | None = None,
) -> registry.ModelVersionRef:
    """Register an agent as the next model version of `name`, audited."""
    rt = runtime()
    with transaction(rt.sessions) as session:
        return model_versions.register_model_version(
            session,
            name=name,
            agent=built.agent,
            agent_type=built.agent_type,
            task=built.task,
            experiment_id=registry.experiment_id(rt.registry),
            actor=actor or cli_actor(),
            description=description,
            alias=alias,
            tags=tags,
        )


def move_alias(name: str, alias: str, version: str, *, actor: str | None = None) -> None:
    """Point an alias at a version, audited with the version it pointed at before."""
    with transaction(runtime().sessions) as session:
        model_versions.move_alias(
            session, name=name, alias=alias, version=version, actor=actor or cli_actor()
        )
