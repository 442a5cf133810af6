"""The architecture's dependency rules, checked on the source tree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = ("flows", "pipelines", "api", "models")
IO_LIBRARIES = {"prefect", "fastapi", "sqlalchemy", "mlflow", "redis", "starlette", "psycopg"}
PURE_CORES = ("pipelines/evaluation", "pipelines/golden_datasets", "pipelines/agents")
SERVICE_MODULES = {"service.py", "launcher.py", "views.py", "runs.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


class TestLayout:
    @pytest.mark.parametrize("folder", ["datasets", "dashboards"])
    def test_data_folders_hold_no_python(self, folder: str) -> None:
        """datasets/ and dashboards/ are data only, so they never shadow an importable package."""
        assert not list((ROOT / folder).rglob("*.py"))

    def test_models_init_is_empty(self) -> None:
        """models/__init__.py stays empty: always import a subpackage."""
        assert (ROOT / "models" / "__init__.py").read_text().strip() == ""

    @pytest.mark.parametrize("folder", ["pipelines", "models"])
    def test_nothing_imports_api_or_flows(self, folder: str) -> None:
        """Dependencies point one way: flows → pipelines → models and api → pipelines → models."""
        offenders = [
            f"{path.relative_to(ROOT)}: {name}"
            for path in _python_files(folder)
            for name in _imports(path)
            if name.split(".")[0] in {"api", "flows"}
        ]
        assert offenders == []

    def test_models_do_not_import_pipelines(self) -> None:
        """Storage knows nothing of the use cases built on it."""
        offenders = [
            f"{path.relative_to(ROOT)}: {name}"
            for path in _python_files("models")
            for name in _imports(path)
            if name.split(".")[0] == "pipelines"
        ]
        assert offenders == []

    def test_pure_cores_do_no_io(self) -> None:
        """Pure cores import neither I/O libraries nor our storage; only service.py does."""
        offenders = []
        for folder in PURE_CORES:
            for path in _python_files(folder):
                if path.name in SERVICE_MODULES:
                    continue
                for name in _imports(path):
                    top = name.split(".")[0]
                    if name == "models.db.enums":
                        continue  # the stored enumerations are vocabulary, not storage
                    if top in IO_LIBRARIES or top in {"models", "api", "flows"}:
                        offenders.append(f"{path.relative_to(ROOT)}: {name}")
        assert offenders == []

    def test_table_classes_never_say_model(self) -> None:
        """'model' means an ML model; no table class carries the word."""
        from models.db import tables  # noqa: F401 - registers the tables
        from models.db.base import Base

        names = [mapper.class_.__name__ for mapper in Base.registry.mappers]
        assert names
        assert [name for name in names if "model" in name.lower()] == []
