"""Engines and transactions for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SYSTEM_SCOPE = "system"


def make_engine(url: str, *, tenant_scoped_role: str | None = None, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets foreign keys, WAL and a busy timeout. Its errors never
    show the parameters of the failed statement.

    On PostgreSQL, row-level security decides what each connection sees. Flows, the CLI and
    migrations act for the whole platform (`streamflow.scope = system`). With
    `tenant_scoped_role` the connections instead take that non-owner role and see nothing until
    a transaction sets its organisation (see `set_row_scope`): the API's engine.
    """
    parsed = make_url(url)
    # An error's text would otherwise carry the statement's parameters (prediction texts, key
    # hashes) into logs and tracebacks.
    kwargs.setdefault("hide_parameters", True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if tenant_scoped_role is None:
        event.listen(engine, "connect", _system_scope)
    else:
        event.listen(engine, "connect", _take_role(tenant_scoped_role))
    return engine


def _system_scope(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute(f"SET streamflow.scope = '{SYSTEM_SCOPE}'")
    dbapi_connection.commit()


def _take_role(role: str) -> Any:
    def listener(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{role}"')
        dbapi_connection.commit()

    return listener


def set_row_scope(
    session: Session, *, organization_id: str | None = None, scope: str | None = None
) -> None:
    """Scope this transaction's rows to one organisation, or to a named scope (PostgreSQL only)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT set_config('streamflow.org_id', :org, true), "
            "set_config('streamflow.scope', :scope, true)"
        ),
        {"org": organization_id or "", "scope": scope or ""},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit when the block ends, roll back on any error."""
    with sessions() as session, session.begin():
        yield session
