"""Write transactions that behave the same on PostGIS and on the embedded SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import ARRAY, DateTime, Table, TypeDecorator, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_scoped_session
from sqlalchemy.types import TypeEngine

from api.db.engine import SQLITE_BEGIN_OPTION

Session = AsyncSession | async_scoped_session[AsyncSession]


@asynccontextmanager
async def write_transaction(session: Session) -> AsyncIterator[Session]:
    """One transaction that commits on success and rolls back on any error.

    On SQLite it begins ``IMMEDIATE`` so the writer holds the lock before it reads what
    it will change (a deferred reader upgrading to writer fails with "database is
    locked" under contention); on PostgreSQL the option is ignored and row locks
    (``FOR UPDATE``) and unique constraints do that work.
    """
    async with session.begin():
        await session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
        yield session


def _dialect(session: Session | AsyncConnection) -> str:
    bind = session if isinstance(session, AsyncConnection) else session.bind
    return bind.dialect.name if bind is not None else "postgresql"


def dialect_insert(session: Session | AsyncConnection, model: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the back end (PostgreSQL or SQLite) of a
    session or connection."""
    if _dialect(session) == "sqlite":
        return sqlite_insert(model)
    return pg_insert(model)


def wire_type(column: Any) -> TypeEngine[Any]:
    """A bind type asyncpg takes Python values of as they are (no SQLAlchemy processing):
    the project's UUID and UTC time decorators become the plain PostgreSQL types."""
    kind = column.type
    if isinstance(kind, GUID):
        return PG_UUID(as_uuid=True)
    if isinstance(kind, DateTimeUTC):
        return DateTime(timezone=True)
    if isinstance(kind, TypeDecorator):
        raise TypeError(f"no plain bind type for {column} ({kind!r})")
    wire: TypeEngine[Any] = kind
    return wire


async def insert_columns(session: Session | AsyncConnection, table: Table,
                         columns: Mapping[str, Sequence[Any]]) -> None:
    """Rows given column by column (equal lengths) inserted into ``table``.

    PostgreSQL takes them in one statement, ``INSERT … SELECT * FROM unnest(arrays)``: one
    execution with one bound array per column, where an executemany runs the insert (its
    parameters bound and converted on both sides) once per row. SQLite gets the
    executemany. Values go as they are (:func:`wire_type`): UUIDs, aware datetimes.
    """
    names = list(columns)
    if not names or not len(columns[names[0]]):
        return
    if _dialect(session) != "postgresql":
        rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(),
                                                                        strict=True)]
        await session.execute(insert(table), rows)
        return
    arrays = [bindparam(f"column_{i}", list(columns[name]), type_=ARRAY(wire_type(table.c[name])))
              for i, name in enumerate(names)]
    source = func.unnest(*arrays).table_valued(*names).render_derived()
    await session.execute(insert(table).from_select(names, select(*source.c)))


@asynccontextmanager
async def single_statement_unit(session: Session) -> AsyncIterator[Session]:
    """Where one statement writes everything that must commit together.

    On PostgreSQL the connection runs in autocommit, so reads cost one round trip each
    and the single data-modifying statement (atomic on its own) needs no ``BEGIN`` and
    ``COMMIT`` around it. On SQLite this is a :func:`write_transaction`, because there
    the writes are several statements.
    """
    bind = session.bind
    if bind is not None and bind.dialect.name == "sqlite":
        async with write_transaction(session):
            yield session
        return
    async with session.begin():
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session
