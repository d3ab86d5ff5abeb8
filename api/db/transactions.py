"""Write transactions that behave the same on PostGIS and on the embedded SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_scoped_session

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


def dialect_insert(session: Session | AsyncConnection, model: Any) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support for the back end (PostgreSQL or SQLite) of a
    session or connection."""
    bind = session if isinstance(session, AsyncConnection) else session.bind
    name = bind.dialect.name if bind is not None else "postgresql"
    if name == "sqlite":
        return sqlite_insert(model)
    return pg_insert(model)


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
