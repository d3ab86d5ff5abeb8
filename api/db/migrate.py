"""Alembic migrations, run from code (``safecity db upgrade``) or by the ``alembic`` CLI.

An upgrade is one transaction on both back ends (PostgreSQL DDL is transactional; the
SQLite engine begins real transactions, see :mod:`api.db.engine`), so a failed
migration leaves the schema as it was. Before it, the spatial extension is checked:
PostGIS is enabled in the database when the server has it and the role may, otherwise
the error says exactly what to install or ask for.

The service's own tables join :data:`api.db.models.metadata` and add revisions to the
same ``versions`` folder; one ``alembic_version`` row tracks the whole schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from api.db.engine import SQLITE_BEGIN_OPTION, check_connection, describe
from api.db.errors import SpatialExtensionError

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
"""Alembic's script directory (``env.py``, ``versions/``)."""

ALEMBIC_INI = MIGRATIONS / "alembic.ini"

MIGRATION_LOCK = 0x5AFEC17
"""PostgreSQL advisory lock key: concurrent upgrades (several workers starting) queue."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, pointing at the packaged migrations.

    With ``connection``, ``env.py`` migrates on it (inside the caller's transaction)
    instead of opening its own engine from the settings.
    """
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None before the first upgrade)."""
    check_connection(engine)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_up_to_date(engine: Engine) -> bool:
    """Whether the database is at the code's head revision."""
    return current_revision(engine) == head_revision()


def ensure_spatial(conn: Connection) -> None:
    """Make sure geometry columns can exist: PostGIS enabled, or SpatiaLite initialised.

    On PostgreSQL, ``CREATE EXTENSION postgis`` runs in the caller's transaction when
    the server has PostGIS but the database does not use it yet.
    """
    if conn.dialect.name == "sqlite":
        if not conn.execute(text("SELECT CheckSpatialMetaData()")).scalar():
            raise SpatialExtensionError(f"{describe(conn.engine)} has no SpatiaLite metadata tables")
        return
    where = describe(conn.engine)
    if conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar():
        return
    available = conn.execute(
        text("SELECT default_version FROM pg_available_extensions WHERE name = 'postgis'")
    ).scalar()
    if available is None:
        major = conn.execute(text("SHOW server_version_num")).scalar_one()
        raise SpatialExtensionError(
            f"PostGIS is not installed on the PostgreSQL server of {where}; install it "
            f"(Debian: apt-get install postgresql-{int(major) // 10000}-postgis-3) and run "
            "safecity db upgrade again"
        )
    try:
        with conn.begin_nested():
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    except DBAPIError as exc:
        user = conn.execute(text("SELECT current_user")).scalar_one()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise SpatialExtensionError(
            f"PostGIS {available} is installed on the server but not enabled in {where}, "
            f"and role {user!r} may not enable it ({reason}); ask a superuser to run "
            f"CREATE EXTENSION postgis; in that database"
        ) from exc


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate ``engine``'s database to ``revision`` in one transaction; the revision reached.

    Raises
    ------
    DatabaseUnavailableError
        The database does not answer.
    SpatialExtensionError
        PostGIS (or SpatiaLite) is missing; nothing was changed.
    """
    check_connection(engine)
    with engine.connect().execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"}) as conn:
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            ensure_spatial(conn)
            command.upgrade(alembic_config(conn), revision)
        return MigrationContext.configure(conn).get_current_revision()


def include_object(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate compares only our tables: never PostGIS's or SpatiaLite's own ones."""
    if kind == "table" and reflected and compare_to is None:
        return False
    from geoalchemy2 import alembic_helpers  # noqa: PLC0415

    return bool(alembic_helpers.include_object(obj, name, kind, reflected, compare_to))
