"""Model version use cases: register an agent as a model version, move an alias; audited."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from models.db.repositories.audit import AuditRepository
from models.registry import client as registry
from pipelines.errors import InvalidInput, NotFound

log = structlog.get_logger()

TASKS = ("classification", "text_generation")


def register_model_version(
    session: Session,
    *,
    name: str,
    agent: Any,
    agent_type: str,
    task: str,
    experiment_id: str,
    actor: str,
    description: str = "",
    alias: str | None = None,
    tags: dict[str, str] | None = None,
) -> registry.ModelVersionRef:
    """Register `agent` (with `predict(list[str]) -> list[str]`) as the next version of `name`.

    The version is tagged with its agent type, task and agent module, audited, and optionally
    given an alias.
    """
    if task not in TASKS:
        raise InvalidInput(f"task: {task!r} must be one of {', '.join(TASKS)}")
    if not agent_type:
        raise InvalidInput("agent_type: give the agent type, e.g. summarizer")
    if not callable(getattr(agent, "predict", None)):
        raise InvalidInput("agent: the object has no predict(list[str]) -> list[str] method")
    ref = registry.register_model_version(
        name,
        agent,
        agent_type=agent_type,
        task=task,
        description=description,
        experiment=experiment_id,
    )
    if tags:
        registry.tag_model_version(ref, tags)
    AuditRepository(session).record(
        actor=actor,
        organization_id=None,
        action="model_version.registered",
        target_type="model_version",
        target_id=str(ref),
        details={"agent_type": agent_type, "task": task},
    )
    if alias:
        move_alias(session, name=name, alias=alias, version=ref.version, actor=actor)
    log.info("model_version.registered", model=str(ref), agent_type=agent_type)
    return ref


def move_alias(session: Session, *, name: str, alias: str, version: str, actor: str) -> None:
    """Point an alias at a version, audited with the version it pointed at before."""
    try:
        previous: str | None = registry.resolve(f"{name}@{alias}").version
    except registry.ModelVersionNotFound:
        previous = None
    except registry.InvalidModelReference as error:
        raise InvalidInput(f"alias: {error}") from error
    try:
        registry.set_alias(name, alias, version)
    except registry.InvalidModelReference as error:
        raise InvalidInput(f"alias: {error}") from error
    except registry.ModelVersionNotFound as error:
        raise NotFound(f"version: {error}; `streamflow models list` shows versions") from error
    AuditRepository(session).record(
        actor=actor,
        organization_id=None,
        action="model_alias.moved",
        target_type="model_alias",
        target_id=f"{name}@{alias}",
        details={"from_version": previous, "to_version": version},
    )


def find_version(name: str, tags: dict[str, str]) -> registry.ModelVersionRef | None:
    """The newest version of `name` carrying all of `tags` (e.g. the same training recipe)."""
    try:
        return registry.find_version_by_tags(name, tags)
    except registry.InvalidModelReference as error:
        raise InvalidInput(f"tags: {error}") from error
