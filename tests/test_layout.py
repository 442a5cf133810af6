"""The architecture's dependency rules, checked on the source tree.

Every module of ours is of one kind, told by where it lives and, inside a capability, by its
role; each kind has rules on what it may not import or read, and no module is let off by name:

- `models/**` (what is stored) imports nothing of pipelines, api or flows.
- `pipelines/**` (what is computed) imports nothing of api or flows, not even by naming a
  module in a string (an entrypoint such as `flows.x:y` is an import in disguise), reads no
  clock and no settings: the caller (a flow or a request) passes `now` and settings in.
- Inside a capability (`pipelines/<capability>/`) there are two roles. The use-case modules
  carry out one use case each against storage: `service.py` for what changes state and
  `views.py` for read models (the documents readers get). They are the only modules of a
  capability that import `models` or an I/O library, so that storage is reached from two
  known places per capability and everything else can be tested on literal inputs.
  Every other module is the capability's pure core: no I/O library, nothing of models, api
  or flows, and no use-case module.
- `api/**` (who may ask) imports nothing of flows; `flows/**` (when things run) nothing of api.
- No import cycles between our modules, counting imports inside functions and under
  `TYPE_CHECKING`: a cycle hidden from the interpreter is still a cycle in the design.
- `datasets/` and `dashboards/` are data folders: they exist and hold no Python.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {
    "models": {"models"},
    "pipelines": {"pipelines", "models"},
    "api": {"api", "pipelines", "models"},
    "flows": {"flows", "pipelines", "models"},
}
"""Each top-level package and the packages of ours it may import."""
USE_CASE_MODULES = {"service.py", "views.py"}
"""The roles inside a capability that may reach storage (see the module docstring)."""
IO_LIBRARIES = {
    "alembic",
    "boto3",
    "fastapi",
    "httpx",
    "mlflow",
    "prefect",
    "psycopg",
    "redis",
    "requests",
    "smtplib",
    "socket",
    "sqlalchemy",
    "starlette",
    "urllib",
    "uvicorn",
}
CLOCK_FUNCTIONS = {
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
    "process_time",
    "localtime",
    "gmtime",
    "ctime",
}
"""Functions of the `time` module that read a clock."""
NOW_METHODS = {"now", "utcnow", "today"}
"""Methods that read a clock on `datetime`, `date` and `Timestamp`."""
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb"}
SETTINGS_LIBRARIES = {"pydantic_settings", "dotenv"}
OUR_MODULE_IN_STRING = re.compile(r"^(api|flows)(\.\w+)+(:\w+)?$")


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@cache
def _our_modules() -> frozenset[str]:
    return frozenset(_module_name(path) for layer in LAYERS for path in _python_files(layer))


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth; `from a import b` counts `a.b` when that
    is a module of ours, else `a`."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    names: set[str] = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                names.add(submodule if submodule in _our_modules() else module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def _offenders(paths: list[Path], forbidden: set[str]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}: {name}"
        for path in paths
        for name in sorted(_imports(path))
        if _top(name) in forbidden
    ]


def _capability_modules() -> Iterator[Path]:
    """The modules inside `pipelines/<capability>/`."""
    for path in _python_files("pipelines"):
        if len(path.relative_to(ROOT / "pipelines").parts) > 1:
            yield path


def _pure_cores() -> list[Path]:
    return [path for path in _capability_modules() if path.name not in USE_CASE_MODULES]


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _clock_and_settings_reads(path: Path) -> list[str]:
    """Where `path` reads a clock, the environment or a settings object."""
    found = []
    for node in ast.walk(_tree(path)):
        line = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found += [f"{line}: time.{a.name}" for a in node.names if a.name in CLOCK_FUNCTIONS]
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"{line}: os.{a.name}" for a in node.names if a.name.startswith(("env", "getenv"))
            ]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            found += [f"{line}: {m}" for m in modules if m and _top(m) == "pydantic_settings"]
        elif isinstance(node, ast.Attribute):
            owner = _dotted(node.value)
            if owner == "time" and node.attr in CLOCK_FUNCTIONS:
                found.append(f"{line}: time.{node.attr}")
            elif owner.split(".")[-1] in {"datetime", "date", "Timestamp"} and (
                node.attr in NOW_METHODS
            ):
                found.append(f"{line}: {owner}.{node.attr}")
            elif owner == "os" and node.attr in ENVIRONMENT:
                found.append(f"{line}: os.{node.attr}")
        elif isinstance(node, ast.Call) and _dotted(node.func).endswith("Settings"):
            found.append(f"{line}: {_dotted(node.func)}()")
    return found


class TestLayers:
    @pytest.mark.parametrize("layer", sorted(LAYERS))
    def test_each_layer_imports_only_what_it_may(self, layer: str) -> None:
        """flows → pipelines → models and api → pipelines → models; nothing imports api or
        flows; models import nothing of ours above them."""
        forbidden = set(LAYERS) - LAYERS[layer]
        assert _offenders(_python_files(layer), forbidden) == []

    @pytest.mark.parametrize("layer", ["pipelines", "models"])
    def test_no_module_names_api_or_flows_in_a_string(self, layer: str) -> None:
        """An entrypoint string (`flows.x:y`, loaded with importlib) is an import too."""
        offenders = [
            f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}"
            for path in _python_files(layer)
            for node in ast.walk(_tree(path))
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and OUR_MODULE_IN_STRING.match(node.value)
        ]
        assert offenders == []

    def test_pipelines_read_no_clock_and_no_settings(self) -> None:
        """Time and configuration come from the caller: `now` and settings are parameters."""
        offenders = [
            found
            for path in _python_files("pipelines")
            for found in _clock_and_settings_reads(path)
        ]
        assert offenders == []

    def test_pure_cores_do_no_io(self) -> None:
        """A capability's modules other than its use cases (service.py, views.py) import no
        I/O library, nothing of models, api or flows, and no use-case module."""
        cores = _pure_cores()
        assert cores, "no pure core found: the rule would pass vacuously"
        offenders = _offenders(cores, IO_LIBRARIES | {"models", "api", "flows"})
        offenders += [
            f"{path.relative_to(ROOT)}: {name}"
            for path in cores
            for name in sorted(_imports(path))
            if _top(name) == "pipelines" and f"{name.rsplit('.', 1)[-1]}.py" in USE_CASE_MODULES
        ]
        assert offenders == []

    def test_no_import_cycles(self) -> None:
        """Our modules import each other without a cycle, counting every import statement."""
        ours = _our_modules()
        graph = {
            _module_name(path): {name for name in _imports(path) if name in ours}
            for layer in LAYERS
            for path in _python_files(layer)
        }
        try:
            TopologicalSorter(graph).prepare()
        except CycleError as error:
            pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


class TestFolders:
    @pytest.mark.parametrize("folder", ["datasets", "dashboards"])
    def test_data_folders_exist_and_hold_no_python(self, folder: str) -> None:
        """datasets/ and dashboards/ are data only, so they never shadow an importable package."""
        assert (ROOT / folder).is_dir()
        assert list((ROOT / folder).rglob("*.py")) == []

    def test_models_init_is_empty(self) -> None:
        """models/__init__.py stays empty: always import a subpackage."""
        assert (ROOT / "models" / "__init__.py").read_text().strip() == ""

    def test_table_classes_never_say_model(self) -> None:
        """'model' means an ML model; no table class carries the word."""
        from models.db import tables  # noqa: F401 - registers the tables
        from models.db.base import Base

        names = [mapper.class_.__name__ for mapper in Base.registry.mappers]
        assert names
        assert [name for name in names if "model" in name.lower()] == []
