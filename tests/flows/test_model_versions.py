"""Registering model versions and moving aliases: audited use cases over a real MLflow store."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from flows.models import BuiltAgent, move_alias, register_agent
from flows.runtime import Runtime
from models.db.tables import AuditLogEntry
from models.registry import client as registry
from pipelines.errors import InvalidInput, NotFound
from pipelines.model_versions import service as model_versions


class Upper:
    """Answers with the input in capitals."""

    def predict(self, texts: list[str]) -> list[str]:
        return [text.upper() for text in texts]


class TestModelVersions:
    def test_register_tags_audits_and_moves_the_alias(self, streamflow: Runtime) -> None:
        """A registered version carries its tags and agent module, answers through the typed
        pyfunc, and each alias move is audited with the version it pointed at before."""
        name = f"upper-{uuid.uuid4().hex[:6]}"
        first = register_agent(
            name, BuiltAgent(Upper(), "summarizer", "text_generation"), alias="champion"
        )
        second = register_agent(name, BuiltAgent(Upper(), "summarizer", "text_generation"))
        move_alias(name, "champion", second.version, actor="test")
        info = registry.model_version_info(name, second.version)
        assert (info.agent_type, info.task, info.agent_module) == (
            "summarizer",
            "text_generation",
            __name__,
        )
        assert registry.resolve(f"{name}@champion") == registry.ModelVersionRef(
            name, second.version, "champion"
        )
        assert registry.predict(second, ["a b", "c"]) == ["A B", "C"]
        with streamflow.sessions() as session:
            moves = session.scalars(
                select(AuditLogEntry.details)
                .where(AuditLogEntry.target_id == f"{name}@champion")
                .order_by(AuditLogEntry.id)
            ).all()
        assert [(m["from_version"], m["to_version"]) for m in moves] == [
            (None, first.version),
            (first.version, second.version),
        ]

    def test_recipe_lookup_quotes_its_filter(self, streamflow: Runtime) -> None:
        """A version is found by its tags, also when a value holds a quote character."""
        name = f"recipe-{uuid.uuid4().hex[:6]}"
        tags = {"streamflow.builtin": "it's-a-recipe", "streamflow.training_sha256": "ab" * 32}
        assert model_versions.find_version(name, tags) is None
        ref = register_agent(name, BuiltAgent(Upper(), "summarizer", "text_generation"), tags=tags)
        assert model_versions.find_version(name, tags) == registry.ModelVersionRef(
            name, ref.version
        )
        assert model_versions.find_version(name, tags | {"streamflow.builtin": "other"}) is None

    def test_bad_aliases_and_versions_are_domain_errors(self, streamflow: Runtime) -> None:
        """An alias outside champion/challenger and an unknown version name the problem."""
        name = f"alias-{uuid.uuid4().hex[:6]}"
        register_agent(name, BuiltAgent(Upper(), "summarizer", "text_generation"))
        with pytest.raises(InvalidInput, match="alias: alias 'prod' is not one of"):
            move_alias(name, "prod", "1")
        with pytest.raises(NotFound, match=f"{name}@9 is not registered"):
            move_alias(name, "champion", "9")
        with pytest.raises(InvalidInput, match="task: 'vision' must be one of"):
            register_agent(name, BuiltAgent(Upper(), "summarizer", "vision"))


def test_quote_picks_the_missing_quote_character() -> None:
    """MLflow's filters never unescape, so the quote character must not occur in the value."""
    assert registry.quote("plain") == "'plain'"
    assert registry.quote("it's") == '"it\'s"'
    with pytest.raises(registry.InvalidModelReference, match="both quote characters"):
        registry.quote('it\'s "both"')
