"""Model versions in the MLflow registry: register, alias, resolve, load.

A model version is an MLflow pyfunc registered under a name, tagged with `agent_type` and
`task`. References are written `NAME@VERSION` or `NAME@ALIAS` (`champion`, `challenger`).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import mlflow
from cachetools import LRUCache
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc.model import PythonModel
from mlflow.utils.logging_utils import disable_logging

from models.registry.aliases import ALIASES
from models.settings import RegistrySettings

_REFERENCE = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)@(?P<selector>[A-Za-z0-9_\-]+)$")

# MLflow narrates registrations on stderr ("Successfully registered model ..."); StreamFlow logs
# its own events, so MLflow's event stream stays off in every process that uses the registry.
disable_logging()  # type: ignore[no-untyped-call]  # MLflow leaves it unannotated


class ModelVersionNotFound(LookupError):
    """A model version reference that the registry cannot resolve."""


class InvalidModelReference(ValueError):
    """A model version reference that is not `NAME@VERSION` or `NAME@ALIAS`."""


class ModelLoadFailed(RuntimeError):
    """A registered model version that cannot be loaded here (e.g. its agent module is missing)."""


AGENT_MODULE_TAG = "streamflow.agent_module"
"""Model version tag: the module the agent's class lives in, which must import at evaluation."""


@dataclass(frozen=True)
class ModelVersionRef:
    """A resolved model version: its registered name, number, and the alias it was asked by."""

    name: str
    version: str
    alias: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelVersionInfo:
    """A model version as listed: reference, tags, aliases, creation time (ms since epoch)."""

    name: str
    version: str
    agent_type: str
    task: str
    aliases: tuple[str, ...]
    description: str
    created_at_ms: int
    agent_module: str = ""
    """The module of the agent's class (empty for versions registered before it was recorded)."""
    model_id: str = ""
    """The MLflow logged model behind the version (MLflow 3), for linking evaluation metrics."""


class AgentPyfunc(PythonModel):
    """An MLflow pyfunc around any agent object with `predict(list[str]) -> list[str]`.

    The `list[str]` hint is MLflow's input schema: it validates inputs and infers the signature.
    """

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    def predict(
        self,
        context: Any,  # noqa: ARG002
        model_input: list[str],
        params: dict[str, Any] | None = None,  # noqa: ARG002
    ) -> list[str]:
        """One prediction per input text."""
        return [str(prediction) for prediction in self.agent.predict(list(model_input))]


def configure(settings: RegistrySettings) -> None:
    """Point MLflow's tracking and registry at the configured store."""
    settings.home.mkdir(parents=True, exist_ok=True)
    uri = settings.resolved_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    _bound_loaded_models(settings.loaded_model_cache_size)


def experiment_id(settings: RegistrySettings) -> str:
    """The id of StreamFlow's evaluation experiment, created on first use."""
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(
        client.create_experiment(
            settings.mlflow_experiment, artifact_location=settings.resolved_artifact_root()
        )
    )


def register_model_version(
    name: str,
    agent: Any,
    *,
    agent_type: str,
    task: str,
    description: str = "",
    experiment: str,
) -> ModelVersionRef:
    """Log `agent` as a pyfunc and register it as the next version of `name`."""
    with mlflow.start_run(experiment_id=experiment, run_name=f"register-{name}"):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=AgentPyfunc(agent),
            registered_model_name=name,
            pip_requirements=[],
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_tag(name, "agent_type", agent_type)
    client.set_registered_model_tag(name, "task", task)
    client.set_model_version_tag(name, version, "agent_type", agent_type)
    client.set_model_version_tag(name, version, "task", task)
    client.set_model_version_tag(name, version, AGENT_MODULE_TAG, type(agent).__module__)
    if description:
        client.update_model_version(name, version, description=description)
    return ModelVersionRef(name=name, version=version)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` of `name` at `version`."""
    if alias not in ALIASES:
        raise InvalidModelReference(f"alias {alias!r} is not one of {', '.join(ALIASES)}")
    _get_version(name, version)
    MlflowClient().set_registered_model_alias(name, alias, version)


def parse_reference(reference: str) -> tuple[str, str]:
    """Split `NAME@VERSION|NAME@ALIAS` into its two parts."""
    match = _REFERENCE.match(reference.strip())
    if match is None:
        raise InvalidModelReference(
            f"model reference {reference!r} must be NAME@VERSION or NAME@ALIAS "
            f"(e.g. intent-classifier@3 or intent-classifier@champion)"
        )
    return match["name"], match["selector"]


def resolve(reference: str) -> ModelVersionRef:
    """The model version a reference names right now."""
    name, selector = parse_reference(reference)
    if selector.isdigit():
        _get_version(name, selector)
        return ModelVersionRef(name=name, version=selector)
    client = MlflowClient()
    try:
        found = client.get_model_version_by_alias(name, selector)
    except MlflowException as error:
        try:
            client.get_registered_model(name)
        except MlflowException:
            raise ModelVersionNotFound(f"model {name!r} is not registered") from error
        raise ModelVersionNotFound(f"{name} has no alias {selector!r}") from error
    return ModelVersionRef(name=name, version=str(found.version), alias=selector)


def model_version_info(name: str, version: str) -> ModelVersionInfo:
    """Tags and aliases of one model version."""
    found = _get_version(name, version)
    return _info(found)


def quote(value: str) -> str:
    """A string literal for MLflow's search filters, which strip quotes and never unescape.

    The value is wrapped in whichever quote character it does not contain.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise InvalidModelReference(
        f"{value!r} contains both quote characters; MLflow's search cannot match it"
    )


def list_model_versions(name: str | None = None) -> list[ModelVersionInfo]:
    """Every registered model version (optionally of one name), newest first per name."""
    client = MlflowClient()
    query = f"name = {quote(name)}" if name else ""
    found = client.search_model_versions(query, max_results=10_000)
    versions = [_info(version) for version in found]
    return sorted(versions, key=lambda v: (v.name, -int(v.version)))


def _info(found: Any) -> ModelVersionInfo:
    tags = dict(found.tags or {})
    aliases = tuple(sorted(found.aliases or ()))
    if not aliases:
        # search_model_versions does not fill aliases on every store; ask per version.
        detail = MlflowClient().get_model_version(found.name, found.version)
        aliases = tuple(sorted(detail.aliases or ()))
    return ModelVersionInfo(
        name=found.name,
        version=str(found.version),
        agent_type=tags.get("agent_type", ""),
        task=tags.get("task", ""),
        aliases=aliases,
        description=found.description or "",
        created_at_ms=int(found.creation_timestamp or 0),
        agent_module=tags.get(AGENT_MODULE_TAG, ""),
        model_id=_logged_model_id(found),
    )


def _logged_model_id(found: Any) -> str:
    """The MLflow 3 logged model behind a version: its `model_id`, or the id in its source URI."""
    explicit = getattr(found, "model_id", None)
    if explicit:
        return str(explicit)
    source = str(found.source or "")
    return source.removeprefix("models:/") if source.startswith("models:/m-") else ""


def find_version_by_tags(name: str, tags: dict[str, str]) -> ModelVersionRef | None:
    """The newest version of `name` carrying every one of `tags`, if any."""
    query = " and ".join(
        [f"name = {quote(name)}", *(f"tag.`{key}` = {quote(value)}" for key, value in tags.items())]
    )
    found = MlflowClient().search_model_versions(query)
    matching = [v for v in found if all((v.tags or {}).get(k) == x for k, x in tags.items())]
    if not matching:
        return None
    newest = max(matching, key=lambda v: int(v.version))
    return ModelVersionRef(name=name, version=str(newest.version))


def tag_model_version(ref: ModelVersionRef, tags: dict[str, str]) -> None:
    """Set tags on a model version."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(ref.name, ref.version, key, value)


def _get_version(name: str, version: str) -> Any:
    try:
        return MlflowClient().get_model_version(name, version)
    except MlflowException as error:
        raise ModelVersionNotFound(f"model version {name}@{version} is not registered") from error


_loaded: LRUCache[tuple[str, str, str], Any] = LRUCache(
    maxsize=RegistrySettings().loaded_model_cache_size
)
_loaded_lock = threading.Lock()


def _bound_loaded_models(size: int) -> None:
    """Keep at most `size` loaded models (the least recently used go first)."""
    global _loaded
    with _loaded_lock:
        if _loaded.maxsize != size:
            _loaded = LRUCache(maxsize=size)  # models load again on their next use


def load_model(ref: ModelVersionRef) -> Any:
    """The pyfunc of a model version, loaded once per process and tracking store and kept
    among the `loaded_model_cache_size` most recently used."""
    key = (mlflow.get_tracking_uri(), ref.name, ref.version)
    with _loaded_lock:
        model = _loaded.get(key)
        if model is None:
            try:
                model = _loaded[key] = mlflow.pyfunc.load_model(ref.uri)
            except ImportError as error:
                raise ModelLoadFailed(
                    f"model version {ref} cannot be loaded here: {error}; its agent module must "
                    "be importable wherever evaluations run (install it, or add its folder to "
                    "PYTHONPATH)"
                ) from error
        return model


def predict(ref: ModelVersionRef, inputs: list[str]) -> list[str]:
    """Predictions of a model version for a batch of inputs."""
    model = load_model(ref)
    return [str(p) for p in model.predict(list(inputs))]
