"""Helpers for tests that race two units of work against one real database.

Each contender runs in its own thread with its own session and transaction, as two processes
would; a barrier placed after a read makes both contenders take the same decision from the
same state before either writes, so the race is played every time rather than by luck.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.db.engine import make_engine, make_sessionmaker
from models.db.repositories.api_keys import ApiKeyRepository
from pipelines.access.service import issue_api_key
from tests.conftest import (
    TENANT_LOGIN,
    TemplateCache,
    as_login,
    ensure_test_logins,
    migrated_database_url,
)

T = TypeVar("T")

TENANT = "postgresql-tenant"
BACKENDS = ("sqlite", "postgresql", TENANT)
"""SQLite; PostgreSQL as flows and the CLI connect (acting for the platform); PostgreSQL as the
API's tenant requests connect (a `streamflow_app` login, each transaction entering one
organisation's scope with one of its API keys)."""


@dataclass
class Database:
    """A migrated database of its own: the platform's engine, and the engine units of work use."""

    backend: str
    platform: sessionmaker[Session]
    sessions: sessionmaker[Session]
    engines: tuple[Engine, ...]
    keys: dict[Any, str] = field(default_factory=dict)

    def _key(self, organization_id: Any) -> str:
        """A plaintext API key of `organization_id`, issued once by the platform."""
        if organization_id not in self.keys:
            with self.platform.begin() as session:
                issued = issue_api_key(
                    session,
                    organization_id=organization_id,
                    name="race",
                    scopes=["results:read"],
                    actor="test",
                )
            self.keys[organization_id] = issued.plaintext
        return self.keys[organization_id]

    @contextmanager
    def unit_of_work(self, organization_id: Any = None) -> Iterator[Session]:
        """One transaction, in `organization_id`'s scope on the tenant login; committed at the
        end."""
        key = self._key(organization_id) if self.backend == TENANT else None
        with self.sessions() as session, session.begin():
            if key is not None:
                assert ApiKeyRepository(session).enter_scope(key) == "ok"
            yield session


@contextmanager
def database(templates: TemplateCache, backend: str, folder: Path) -> Iterator[Database]:
    """A copy of the migrated template for `backend` (one of `BACKENDS`)."""
    with migrated_database_url(templates, backend.removesuffix("-tenant"), folder) as url:
        platform = make_engine(url)
        if backend == TENANT:
            ensure_test_logins()
            scoped = make_engine(as_login(url, TENANT_LOGIN))
        else:
            scoped = platform
        try:
            yield Database(
                backend, make_sessionmaker(platform), make_sessionmaker(scoped), (platform, scoped)
            )
        finally:
            for engine in {platform, scoped}:
                engine.dispose()


def at_once(*contenders: Callable[[], T], timeout: float = 60) -> list[T | BaseException]:
    """Run each contender in its own thread, started together; each one's result or error."""
    results: list[T | BaseException] = [TimeoutError("did not finish")] * len(contenders)
    start = threading.Barrier(len(contenders))

    def run(index: int, contender: Callable[[], T]) -> None:
        start.wait()
        try:
            results[index] = contender()
        except BaseException as error:  # reported to the test, which asserts on it
            results[index] = error

    threads = [
        threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(contenders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def meet_after(
    monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, parties: int = 2, timeout: float = 5
) -> None:
    """Make the first call of `owner.name` in each of `parties` threads wait for the others
    after it returned: every contender has read the same state before any of them writes.

    A contender that never gets there (it blocked on the other's write, as PostgreSQL does on a
    taken unique key) only delays the others by `timeout`.
    """
    original = getattr(owner, name)
    barrier = threading.Barrier(parties)
    seen: set[int] = set()

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        me = threading.get_ident()
        if me not in seen:
            seen.add(me)
            with suppress(threading.BrokenBarrierError):
                barrier.wait(timeout)
        return result

    monkeypatch.setattr(owner, name, wrapper)
