"""Shared fixtures: real PostgreSQL and SQLite databases, migrated with Alembic.

Migrating (and seeding) a database costs far more than copying one, so each test session (each
xdist worker) builds a template once per backend and every test gets its own cheap copy:
`CREATE DATABASE … TEMPLATE` on PostgreSQL, SQLite's backup API on SQLite.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import structlog
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from models.db.engine import make_engine
from models.db.migrate import upgrade

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "STREAMFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ("sqlite", "postgresql")


def _postgres_url(name: str) -> str:
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _create_postgres_database(template: str | None = None) -> tuple[str, str]:
    name = f"streamflow_test_{uuid.uuid4().hex[:12]}"
    statement = f'CREATE DATABASE "{name}"'
    if template is not None:
        statement += f' TEMPLATE "{template}"'
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(statement)
    return name, _postgres_url(name)


TENANT_LOGIN = "streamflow_test_tenant"
"""Login the API's tenant requests use in tests: a member of `streamflow_app`, like production's."""
PLATFORM_LOGIN = "streamflow_test_platform"
"""Login the API's provider requests use in tests: a member of `streamflow_system`."""


def ensure_test_logins() -> None:
    """Create the tests' logins once per server (roles are server-wide; other checkouts share
    them, so never drop or alter them). The migration creates the roles they join."""
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        logins = ((TENANT_LOGIN, "streamflow_app"), (PLATFORM_LOGIN, "streamflow_system"))
        for login, role in logins:
            connection.execute(
                f"""
                DO $$
                BEGIN
                    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{login}') THEN
                        CREATE ROLE {login} LOGIN IN ROLE {role};
                    END IF;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END
                $$
                """
            )


def as_login(url: str, login: str) -> str:
    """`url` with another user (trust authentication on the test server)."""
    return make_url(url).set(username=login, password=None).render_as_string(hide_password=False)


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_database_url(backend: str, folder: Path) -> Iterator[str]:
    """An empty database of `backend` (sqlite or postgresql), dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'streamflow.db'}"
        return
    name, url = _create_postgres_database()
    try:
        yield url
    finally:
        _drop_postgres_database(name)


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database consistently (the backup API, not a file copy)."""
    with closing(sqlite3.connect(source)) as origin, closing(sqlite3.connect(target)) as copy:
        origin.backup(copy)


class PostgresCopies:
    """Copies of one PostgreSQL template made ahead of the tests and dropped after them, on
    threads.

    CREATE DATABASE … TEMPLATE and DROP DATABASE each wait on the server for a fraction of a
    second, longer while it is busy (PostgreSQL 15 forces a checkpoint per DROP DATABASE;
    concurrent drops share one). Made and dropped in the background, several at a time, the
    tests mostly wait for neither. Each test still gets a copy of its own, made from the
    template and used by no one else.
    """

    AHEAD = 2
    DROPPING = 6

    def __init__(self, template: str) -> None:
        self.template = template
        self._makers = ThreadPoolExecutor(max_workers=self.AHEAD, thread_name_prefix="pg-copy")
        self._droppers = ThreadPoolExecutor(max_workers=self.DROPPING, thread_name_prefix="pg-drop")
        self._ahead: deque[Future[tuple[str, str]]] = deque()

    def take(self) -> tuple[str, str]:
        """The name and URL of a fresh copy; the next ones start being made."""
        while len(self._ahead) < self.AHEAD + 1:
            self._ahead.append(self._makers.submit(_create_postgres_database, self.template))
        return self._ahead.popleft().result()

    def give_back(self, name: str) -> None:
        """Drop a copy in the background."""
        self._droppers.submit(_drop_postgres_database, name)

    def close(self) -> None:
        """Drop the copies made ahead and wait for every drop."""
        while self._ahead:
            with suppress(Exception):
                self.give_back(self._ahead.popleft().result()[0])
        self._makers.shutdown(wait=True)
        self._droppers.shutdown(wait=True)


@dataclass(frozen=True)
class DatabaseTemplate:
    """A migrated (and maybe seeded) database that tests copy instead of rebuilding.

    On PostgreSQL it is a database nobody stays connected to (CREATE DATABASE … TEMPLATE
    refuses a template with open connections), copied through `PostgresCopies`; on SQLite a file.
    """

    backend: str
    url: str
    copies: PostgresCopies | None = field(default=None, compare=False)

    @contextmanager
    def copy(self, folder: Path) -> Iterator[str]:
        """The URL of a private copy of this database, dropped afterwards."""
        if self.copies is None:
            target = folder / "streamflow.db"
            copy_sqlite(Path(make_url(self.url).database or ""), target)
            yield f"sqlite:///{target}"
            return
        name, url = self.copies.take()
        try:
            yield url
        finally:
            self.copies.give_back(name)

    def drop(self) -> None:
        if self.copies is not None:
            self.copies.close()
        if self.backend == "postgresql":
            _drop_postgres_database(make_url(self.url).database or "")


def build_template(
    backend: str, folder: Path, seed: Callable[[Engine], None] | None = None
) -> DatabaseTemplate:
    """A migrated database of `backend`, seeded by `seed`, with every connection closed."""
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'template.db'}"
    else:
        _, url = _create_postgres_database()
    engine = make_engine(url)
    try:
        upgrade(engine)
        if backend == "postgresql":
            ensure_test_logins()
        if seed is not None:
            seed(engine)
    finally:
        engine.dispose()
    if backend == "postgresql":
        return DatabaseTemplate(backend, url, PostgresCopies(make_url(url).database or ""))
    return DatabaseTemplate(backend, url)


class TemplateCache:
    """Templates built on first use and dropped at the end of the session."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built: dict[str, DatabaseTemplate] = {}

    def get(self, backend: str) -> DatabaseTemplate:
        if backend not in self.built:
            folder = self.folder / backend
            folder.mkdir(parents=True, exist_ok=True)
            self.built[backend] = build_template(backend, folder)
        return self.built[backend]

    def drop_all(self) -> None:
        for template in self.built.values():
            template.drop()
        self.built.clear()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the `slow` tests (a minute or more each, mostly waiting on subprocesses) first.

    xdist's work stealing balances the many short tests, but a long one picked up near the end
    leaves the other workers idle until it finishes; started first, it overlaps the rest.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def fresh_logging_context() -> Iterator[None]:
    """Each test starts with no request or flow-run id bound (audit rows read them)."""
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemplateCache]:
    """Migrated, empty template databases of each backend, one per session or xdist worker."""
    cache = TemplateCache(tmp_path_factory.mktemp("templates"))
    yield cache
    cache.drop_all()


@contextmanager
def migrated_database_url(templates: TemplateCache, backend: str, folder: Path) -> Iterator[str]:
    """A freshly migrated, empty database of `backend` of its own, copied from the template."""
    with templates.get(backend).copy(folder) as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_engine(
    request: pytest.FixtureRequest,
    migrated_templates: TemplateCache,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Engine]:
    """One migrated database per backend for the whole test session."""
    folder = tmp_path_factory.mktemp("db")
    with migrated_database_url(migrated_templates, request.param, folder) as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture
def session(migrated_engine: Engine) -> Iterator[Session]:
    """A session inside a transaction that is rolled back after the test."""
    connection = migrated_engine.connect()
    outer = connection.begin()
    db_session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield db_session
    finally:
        db_session.close()
        outer.rollback()
        connection.close()
