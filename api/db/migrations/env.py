"""Alembic environment: the same migrations on PostGIS and on SQLite with SpatiaLite.

Run from :func:`api.db.migrate.upgrade` (which passes its connection, already in a
transaction) or from the ``alembic`` CLI (an engine from the settings: ``DATABASE_URL``
or the embedded SQLite file). geoalchemy2's helpers render and run geometry columns and
spatial indexes for either back end.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from geoalchemy2 import alembic_helpers
from sqlalchemy.engine import Connection

import api.db
from api.db import models
from api.db.migrate import include_object

# Every module of api.db whose name ends in "models" declares tables on the shared
# metadata; import them all so autogenerate and upgrades see the whole schema.
for _module in pkgutil.iter_modules(api.db.__path__):
    if _module.name.endswith("models"):
        importlib.import_module(f"api.db.{_module.name}")


def render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """geoalchemy2's rendering, plus the import advanced-alchemy's types need."""
    if kind == "type" and type(obj).__module__.startswith("advanced_alchemy."):
        autogen.imports.add("import advanced_alchemy.types")
    rendered = alembic_helpers.render_item(kind, obj, autogen)
    return rendered if isinstance(rendered, str) else False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=models.metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=render_item,
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """SQL for PostgreSQL without a connection (``alembic upgrade head --sql``)."""
    from api.db.engine import SYNC_PG_DRIVER, postgres_url  # noqa: PLC0415
    from api.settings import get_settings  # noqa: PLC0415

    url = get_settings().database.url
    if url is None:
        raise SystemExit("offline (--sql) migrations need DATABASE_URL: SpatiaLite DDL "
                         "depends on the live database")
    context.configure(url=postgres_url(url, SYNC_PG_DRIVER), target_metadata=models.metadata,
                      literal_binds=True, render_item=render_item,
                      transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from api.db.engine import check_connection, sync_engine  # noqa: PLC0415
    from api.db.migrate import ensure_spatial  # noqa: PLC0415

    engine = sync_engine()
    check_connection(engine)
    with engine.begin() as conn:
        ensure_spatial(conn)
        _run(conn)


if context.is_offline_mode():
    run_offline()
else:
    run_online()
