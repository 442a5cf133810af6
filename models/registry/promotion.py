"""Alias moves of a promotion and its rollback, and the registered model of an agent type."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from models.registry.aliases import CHALLENGER, CHAMPION, PREVIOUS
from models.registry.client import (
    ModelVersionNotFound,
    model_version_info,
    quote,
)


@dataclass(frozen=True)
class AliasMove:
    """Where `champion` and `previous` pointed before and after a move."""

    name: str
    champion_before: str | None
    champion_after: str
    previous_before: str | None
    previous_after: str | None


def _alias(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def model_name_for(agent_type: str) -> str:
    """The registered model serving `agent_type`: of those tagged with it, the first by name
    with a champion (as serving chooses), else the first by name."""
    client = MlflowClient()
    found = client.search_registered_models(f"tags.agent_type = {quote(agent_type)}")
    names = sorted(str(model.name) for model in found)
    with_champion = [name for name in names if _alias(client, name, CHAMPION) is not None]
    candidates = with_champion or names
    if not candidates:
        raise ModelVersionNotFound(f"no registered model has agent type {agent_type!r}")
    return candidates[0]


def promote(name: str, version: str) -> AliasMove:
    """`champion` → `version`, the old champion kept as `previous`; `challenger` is dropped
    when it named the promoted version."""
    client = MlflowClient()
    model_version_info(name, version)
    champion = _alias(client, name, CHAMPION)
    previous = _alias(client, name, PREVIOUS)
    if champion == version:
        return AliasMove(name, champion, version, previous, previous)
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion)
    client.set_registered_model_alias(name, CHAMPION, version)
    if _alias(client, name, CHALLENGER) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    return AliasMove(name, champion, version, previous, champion or previous)


def rollback(name: str) -> AliasMove:
    """`champion` ↔ `previous`: the champion returns to the previous version, and the version
    rolled back from becomes `previous` (a second rollback undoes the first)."""
    client = MlflowClient()
    champion = _alias(client, name, CHAMPION)
    previous = _alias(client, name, PREVIOUS)
    if previous is None:
        raise ModelVersionNotFound(f"{name} has no previous champion to roll back to")
    client.set_registered_model_alias(name, CHAMPION, previous)
    if champion is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion)
    return AliasMove(name, champion, previous, previous, champion)
