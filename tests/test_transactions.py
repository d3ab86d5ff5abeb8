"""Writes on both back ends: ``api.db.transactions.insert_columns`` (every row as given,
``None``s, UUIDs and aware times kept, one statement on PostgreSQL) and the dashboard
refresh's mark (a plain read never writes it)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import (
    Boolean,
    Column,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    select,
)
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.db.dashboard import read_mark
from api.db.dashboard_models import DashboardRefresh
from api.db.engine import create_async_engine_for
from api.db.transactions import insert_columns, write_transaction
from api.settings import DatabaseSettings

THINGS = Table("insert_columns_things", MetaData(),
               Column("id", GUID, primary_key=True), Column("at", DateTimeUTC(timezone=True)),
               Column("code", String(16)), Column("flag", Boolean), Column("seconds", Double),
               Column("bin", Integer))


def _columns(n: int) -> dict[str, list[Any]]:
    start = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)
    return {"id": [uuid.UUID(int=i + 1) for i in range(n)],
            "at": [start + timedelta(seconds=i) for i in range(n)],
            "code": [f"PS-{i}" for i in range(n)],
            "flag": [i % 2 == 0 for i in range(n)],
            "seconds": [None if i % 3 == 0 else i * 1.5 for i in range(n)],
            "bin": [None if i % 3 == 0 else i for i in range(n)]}


async def _round_trip(database: DatabaseSettings, n: int) -> tuple[list[Any], int]:
    engine = create_async_engine_for(database)
    statements: list[tuple[str, bool]] = []  # (SQL, executemany)
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.append((args[2], args[5])))
    try:
        async with engine.begin() as connection:
            await connection.run_sync(THINGS.create)
            statements.clear()
            await insert_columns(connection, THINGS, _columns(n))
            inserts = sum(many + 1 for sql, many in statements  # an executemany counts 2
                          if sql.lstrip().upper().startswith("INSERT"))
            rows = (await connection.execute(select(THINGS).order_by(THINGS.c.at))).all()
            await connection.run_sync(THINGS.drop)
    finally:
        await engine.dispose()
    return [tuple(r) for r in rows], inserts


@pytest.mark.parametrize("backend", ["postgis", "sqlite"])
def test_rows_given_by_column_are_stored_as_given(backend: str, postgis_url: str,
                                                 tmp_path: Path) -> None:
    database = (DatabaseSettings(url=postgis_url) if backend == "postgis"
                else DatabaseSettings(sqlite_path=tmp_path / "things.sqlite"))
    rows, inserts = asyncio.run(_round_trip(database, 7))
    given = _columns(7)
    assert rows == list(zip(*given.values(), strict=True))
    assert all(r[1].tzinfo is not None for r in rows)
    if backend == "postgis":
        assert inserts == 1  # one statement for the seven rows, not an executemany


def test_no_rows_is_no_statement(postgis_url: str) -> None:
    rows, inserts = asyncio.run(_round_trip(DatabaseSettings(url=postgis_url), 0))
    assert (rows, inserts) == ([], 0)


async def _marks(database: DatabaseSettings) -> tuple[int, int, int, int]:
    """A plain read of the dashboard's refresh mark on a database without one, then the
    refresh's locked read twice (as two workers' first refreshes would)."""
    table = DashboardRefresh.__table__
    engine = create_async_engine_for(database)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.create)  # type: ignore[attr-defined]
        async with sessions() as session, session.begin():
            plain = await read_mark(session, lock=False)
            rows_after_plain = await session.scalar(select(func.count()).select_from(table))
        async with sessions() as session, write_transaction(session):
            first = await read_mark(session, lock=True)
        async with sessions() as session, write_transaction(session):
            second = await read_mark(session, lock=True)
            rows = await session.scalar(select(func.count()).select_from(table))
        async with engine.begin() as connection:
            await connection.run_sync(table.drop)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    return plain, int(rows_after_plain or 0), first + second, int(rows or 0)


@pytest.mark.parametrize("backend", ["postgis", "sqlite"])
def test_a_plain_read_of_the_refresh_mark_writes_nothing(backend: str, fresh_postgis_url: str,
                                                        tmp_path: Path) -> None:
    # a write inside SQLite's read transaction fails at once ("database is locked") while
    # another connection writes: the dashboard's first tick failed so beside the alert tick
    database = (DatabaseSettings(url=fresh_postgis_url) if backend == "postgis"
                else DatabaseSettings(sqlite_path=tmp_path / "marks.sqlite"))
    plain, rows_after_plain, marks, rows = asyncio.run(_marks(database))
    assert (plain, rows_after_plain) == (0, 0)
    assert (marks, rows) == (0, 1)  # created once, at 0, by the refresh's own read
