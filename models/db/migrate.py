"""Alembic migrations, runnable from code (`streamflow db upgrade`) and from the alembic CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError

from models.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    """Alembic configuration for the database at `url`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema at `engine` up to `revision`."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


INSUFFICIENT_PRIVILEGE = "42501"


class SchemaNotMigrated(RuntimeError):
    """The schema is behind this release and the login in use may not migrate it."""


def ensure_schema(engine: Engine, *, migration_url: str | None = None) -> None:
    """Bring the schema to the newest revision: through `migration_url` (the schema owner's
    login) when given, else through `engine` itself (the embedded default).

    A login that may not migrate (the API's or the workers' on PostgreSQL) passes when the
    schema is already current and raises `SchemaNotMigrated` when it is not.
    """
    owner = make_engine(migration_url) if migration_url else engine
    try:
        upgrade(owner)
    except ProgrammingError as error:
        if getattr(error.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
            raise
        raise SchemaNotMigrated(
            "the database schema is older than this release and this login may not migrate it; "
            "run `streamflow db upgrade` with STREAMFLOW_DATABASE_MIGRATION_URL set to the "
            "schema owner's login"
        ) from None
    finally:
        if owner is not engine:
            owner.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None if never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
