"""The MLflow registry client on a local SQLite store: register, alias, resolve, list, load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from models.registry import client as registry
from models.registry.client import (
    InvalidModelReference,
    ModelVersionNotFound,
    ModelVersionRef,
)
from models.settings import RegistrySettings
from pipelines.agents.summarizers import LeadSentenceSummarizer


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistrySettings]:
    """A store with `notes@1` (summarizer) and `notes@2` aliased champion, `intents@1`."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    settings = RegistrySettings(home=tmp_path_factory.mktemp("registry"))
    registry.configure(settings)
    try:
        experiment = registry.experiment_id(settings)
        for name, agent_type, task in (
            ("notes", "summarizer", "text_generation"),
            ("notes", "summarizer", "text_generation"),
            ("intents", "intent_classifier", "classification"),
        ):
            registry.register_model_version(
                name,
                LeadSentenceSummarizer(),
                agent_type=agent_type,
                task=task,
                description=f"{name} for tests",
                experiment=experiment,
            )
        registry.set_alias("notes", "champion", "2")
        yield settings
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


@pytest.fixture
def configured(store: RegistrySettings) -> Iterator[RegistrySettings]:
    """The module's store in force for one test, whatever other tests pointed MLflow at."""
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    registry.configure(store)
    try:
        yield store
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])


class TestConfiguration:
    def test_the_default_store_is_a_sqlite_file_under_home(self, tmp_path: Path) -> None:
        """No URI configured: tracking and registry share `home/mlflow.db`."""
        settings = RegistrySettings(home=tmp_path)
        assert settings.resolved_tracking_uri() == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
        assert settings.resolved_artifact_root() == (tmp_path / "mlartifacts").resolve().as_uri()

    def test_the_experiment_is_created_once(self, configured: RegistrySettings) -> None:
        """Asking twice answers the same experiment, created with the artifact root."""
        first = registry.experiment_id(configured)
        assert registry.experiment_id(configured) == first
        experiment = mlflow.get_experiment(first)
        assert experiment.name == configured.mlflow_experiment
        assert experiment.artifact_location == configured.resolved_artifact_root()


class TestReferences:
    @pytest.mark.parametrize(
        ("reference", "expected"),
        [
            ("notes@2", ("notes", "2")),
            (" intent-classifier@champion ", ("intent-classifier", "champion")),
        ],
    )
    def test_references_split_into_name_and_selector(
        self, reference: str, expected: tuple[str, str]
    ) -> None:
        """`NAME@VERSION` and `NAME@ALIAS` parse; surrounding spaces are ignored."""
        assert registry.parse_reference(reference) == expected

    @pytest.mark.parametrize("reference", ["notes", "notes@", "@2", "no tes@2", "notes@2@3"])
    def test_malformed_references_name_the_expected_form(self, reference: str) -> None:
        """A malformed reference says what a good one looks like."""
        with pytest.raises(InvalidModelReference, match="must be NAME@VERSION or NAME@ALIAS"):
            registry.parse_reference(reference)

    def test_resolve_by_version_and_by_alias(self, configured: RegistrySettings) -> None:
        """A number names itself; an alias resolves to the version it points at now."""
        assert registry.resolve("notes@1") == ModelVersionRef("notes", "1")
        assert registry.resolve("notes@champion") == ModelVersionRef("notes", "2", "champion")
        assert registry.resolve("notes@champion").uri == "models:/notes/2"
        assert str(registry.resolve("notes@champion")) == "notes@2"

    def test_unknown_versions_and_aliases_are_not_found(self, configured: RegistrySettings) -> None:
        """Errors name the reference that does not resolve."""
        with pytest.raises(ModelVersionNotFound, match="notes@9 is not registered"):
            registry.resolve("notes@9")
        with pytest.raises(ModelVersionNotFound, match="notes has no alias 'challenger'"):
            registry.resolve("notes@challenger")
        with pytest.raises(ModelVersionNotFound, match="missing@1 is not registered"):
            registry.resolve("missing@1")


class TestAliases:
    def test_only_known_aliases_may_be_set(self, configured: RegistrySettings) -> None:
        """An alias outside champion/challenger is refused before the registry is touched."""
        with pytest.raises(InvalidModelReference, match="alias 'best' is not one of"):
            registry.set_alias("notes", "best", "1")
        assert registry.resolve("notes@champion").version == "2"

    def test_an_alias_cannot_point_at_a_missing_version(self, configured: RegistrySettings) -> None:
        """Moving an alias to a version that does not exist fails and leaves it in place."""
        with pytest.raises(ModelVersionNotFound, match="notes@7 is not registered"):
            registry.set_alias("notes", "champion", "7")
        assert registry.resolve("notes@champion").version == "2"

    def test_moving_an_alias_changes_what_it_resolves_to(
        self, configured: RegistrySettings
    ) -> None:
        """challenger set on 1, then moved to 2."""
        registry.set_alias("notes", "challenger", "1")
        assert registry.resolve("notes@challenger").version == "1"
        registry.set_alias("notes", "challenger", "2")
        assert registry.resolve("notes@challenger").version == "2"
        info = registry.model_version_info("notes", "2")
        assert info.aliases == ("challenger", "champion")


class TestListing:
    def test_versions_list_by_name_newest_first_with_tags(
        self, configured: RegistrySettings
    ) -> None:
        """Every version with its agent type, task and description; one name when asked."""
        listed = registry.list_model_versions()
        assert [(v.name, v.version) for v in listed] == [
            ("intents", "1"),
            ("notes", "2"),
            ("notes", "1"),
        ]
        intents = listed[0]
        assert (intents.agent_type, intents.task) == ("intent_classifier", "classification")
        assert intents.description == "intents for tests"
        assert intents.created_at_ms > 0
        only = registry.list_model_versions("notes")
        assert [v.version for v in only] == ["2", "1"]
        assert "champion" in only[0].aliases

    def test_info_of_a_missing_version_is_not_found(self, configured: RegistrySettings) -> None:
        with pytest.raises(ModelVersionNotFound):
            registry.model_version_info("notes", "42")


class TestLoading:
    def test_a_loaded_model_predicts_and_is_loaded_once(self, configured: RegistrySettings) -> None:
        """The pyfunc wraps the agent: strings in, strings out; the second load is the first."""
        ref = registry.resolve("notes@1")
        assert registry.load_model(ref) is registry.load_model(ref)
        text = "The pump failed. We replaced the seal and tested it."
        expected = LeadSentenceSummarizer().predict([text])
        assert registry.predict(ref, [text]) == [str(p) for p in expected]
