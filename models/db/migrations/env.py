"""Alembic environment: one migration chain for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from models.db import tables  # noqa: F401 - registers the tables on the metadata
from models.db.base import Base
from models.db.engine import make_engine

config = context.config
target_metadata = Base.metadata


INTERNAL_TABLES = frozenset({"streamflow_row_scope_secret"})
"""Tables the migrations keep outside the models (PostgreSQL's row-scope secret)."""


def _include_name(name: str | None, type_: str, _parents: object) -> bool:
    return not (type_ == "table" and name in INTERNAL_TABLES)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_name=_include_name,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
