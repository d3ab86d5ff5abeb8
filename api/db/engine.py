"""Engines from settings: PostGIS through psycopg 3 / asyncpg, or SQLite with SpatiaLite.

``DATABASE_URL`` is a plain ``postgresql://user@host:port/db`` URL; the project picks the
drivers (``psycopg`` for sync work such as loads and migrations, ``asyncpg`` for the
service). Without it, the embedded SQLite file (``settings.database.sqlite_path``) is
used with SpatiaLite loaded on every connection through geoalchemy2, so the same models
and migrations run on both back ends.

SQLite connections are set up to behave like the PostgreSQL ones where it matters:
transactions really begin at ``BEGIN`` (pysqlite's implicit transaction handling is
switched off), WAL journaling gives readers a snapshot while a writer works (a new
boundary set loads while the old one serves), foreign keys are enforced and a busy
writer is waited for instead of failing at once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import geoalchemy2
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidatePoolError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.db.errors import DatabaseConfigError, DatabaseUnavailableError, SpatialExtensionError
from api.settings import DatabaseSettings, Settings, get_settings

SYNC_PG_DRIVER = "postgresql+psycopg"
ASYNC_PG_DRIVER = "postgresql+asyncpg"
SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another one before failing (loads take seconds)."""

SPATIALITE_LIBRARY = "mod_spatialite"
"""Module name SQLite's loader resolves on Debian (``libsqlite3-mod-spatialite``)."""

SQLITE_BEGIN_OPTION = "sqlite_begin"
"""Execution option naming the SQLite ``BEGIN`` mode (``DEFERRED`` or ``IMMEDIATE``).

Writers ask for ``IMMEDIATE`` so they take the write lock before reading, instead of
failing with "database is locked" when upgrading a read lock under contention."""

_PG_SCHEMES = {"postgresql", "postgres"}


def postgres_url(url: str, driver: str) -> URL:
    """``DATABASE_URL`` with the project's driver (any driver given in it is replaced)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigError(f"DATABASE_URL is not a database URL: {exc}") from exc
    scheme = parsed.drivername.split("+", 1)[0]
    if scheme not in _PG_SCHEMES:
        raise DatabaseConfigError(
            f"DATABASE_URL must be a postgresql://user@host:port/db URL, not {scheme}://; "
            "unset it to use the embedded SQLite file"
        )
    if not parsed.database:
        raise DatabaseConfigError("DATABASE_URL names no database (postgresql://user@host:port/DB)")
    return parsed.set(drivername=driver)


def sqlite_url(path: Path, driver: str = "pysqlite") -> URL:
    """URL of the embedded SQLite file (its folder is created on first use)."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseConfigError(f"cannot create the folder of the SQLite file {path}: {exc}") from exc
    return URL.create(f"sqlite+{driver}", database=str(path))


def describe(engine: Engine | AsyncEngine) -> str:
    """Where an engine points, for messages (never with a password)."""
    if engine.dialect.name == "sqlite":
        return f"SQLite file {engine.url.database}"
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=True)


def sqlite_dbapi() -> ModuleType:
    """The DB-API module for SpatiaLite: one that can load SQLite extensions.

    ``pysqlite3`` (``pysqlite3-binary``, a project dependency) first: Python builds such
    as pyenv's often lack ``enable_load_extension`` in the standard ``sqlite3``, which is
    used only when it has it.
    """
    try:
        import pysqlite3.dbapi2 as dbapi  # noqa: PLC0415  (chosen at run time)
    except ImportError:
        import sqlite3 as dbapi  # noqa: PLC0415

        if not hasattr(dbapi.Connection, "enable_load_extension"):
            raise SpatialExtensionError(
                "this Python's sqlite3 cannot load extensions and pysqlite3 is not installed; "
                "pip install pysqlite3-binary (a safecity dependency)"
            ) from None
    module: ModuleType = dbapi
    return module


def _load_spatialite(dbapi_conn: Any) -> None:
    """Load SpatiaLite through geoalchemy2 and create its metadata tables on first use."""
    # pyproj's own PROJ library must be in the process before SpatiaLite brings the
    # system's: the other way round the process aborts with heap corruption at exit
    # (seen with `jurisdictions load` once settings stopped importing the router)
    import pyproj  # noqa: F401, PLC0415

    os.environ.setdefault("SPATIALITE_LIBRARY_PATH", SPATIALITE_LIBRARY)
    try:
        geoalchemy2.load_spatialite(dbapi_conn, init_mode="WGS84", transaction=True)
    except Exception as exc:  # the driver's OperationalError, whichever module it is
        raise SpatialExtensionError(
            f"cannot load SpatiaLite ({os.environ['SPATIALITE_LIBRARY_PATH']}): {exc}; "
            "install it with: apt-get install libsqlite3-mod-spatialite"
        ) from exc


def connect_spatialite(path: str, *, check_same_thread: bool = False) -> Any:
    """A DB-API connection to ``path`` with SpatiaLite loaded and the pragmas set.

    Autocommit at the driver (``isolation_level=None``): transactions begin with the
    explicit ``BEGIN`` that :func:`_begin_sqlite` emits, so reads are in them too.
    """
    conn = sqlite_dbapi().connect(path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None,
                                  check_same_thread=check_same_thread)
    try:
        _load_spatialite(conn)
        for pragma in ("journal_mode = WAL", "foreign_keys = ON",
                       f"busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}"):
            conn.execute(f"PRAGMA {pragma}").fetchall()
    except BaseException:
        conn.close()
        raise
    return conn


def _begin_sqlite(conn: Connection) -> None:
    """Start SQLite transactions explicitly (pysqlite would defer them to the first write)."""
    mode = str(conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")).upper()
    if mode not in {"DEFERRED", "IMMEDIATE", "EXCLUSIVE"}:
        raise DatabaseConfigError(f"{SQLITE_BEGIN_OPTION} must be DEFERRED, IMMEDIATE or EXCLUSIVE")
    conn.exec_driver_sql(f"BEGIN {mode}")


class _AioSpatialiteDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite over :func:`sqlite_dbapi`'s module, with that module's error classes.

    SQLAlchemy's adapter takes its error classes from aiosqlite (the standard
    ``sqlite3`` ones); errors raised by ``pysqlite3`` would then escape unwrapped, and
    ``IntegrityError`` would not be one to SQLAlchemy or advanced-alchemy.
    """

    def _init_dbapi_attributes(self) -> None:
        super()._init_dbapi_attributes()
        for name in ("DatabaseError", "Error", "IntegrityError", "NotSupportedError",
                     "OperationalError", "ProgrammingError", "InterfaceError",
                     "sqlite_version", "sqlite_version_info"):
            setattr(self, name, getattr(self.sqlite, name))


def create_sync_engine(database: DatabaseSettings, **kwargs: Any) -> Engine:
    """A new synchronous engine for ``database`` (callers own it; see :func:`sync_engine`)."""
    if database.url is not None:
        return create_engine(postgres_url(database.url, SYNC_PG_DRIVER), pool_pre_ping=True,
                             **kwargs)
    url = sqlite_url(database.sqlite_path, "pysqlite")
    path = str(url.database)
    engine = create_engine(url, module=sqlite_dbapi(),
                           creator=lambda: connect_spatialite(path), **kwargs)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def create_async_engine_for(database: DatabaseSettings, **kwargs: Any) -> AsyncEngine:
    """A new asyncio engine for ``database`` (asyncpg, or aiosqlite with SpatiaLite).

    Not cached: asyncio connections belong to one event loop, so the service makes its
    engine at start-up and disposes of it at shutdown.

    ``pool_pre_ping`` (default ``True``) pings PostgreSQL at every checkout; with asyncpg
    that ping is ``BEGIN``, ``;`` and ``ROLLBACK``, three round trips. ``False`` checks
    instead, without a round trip, that the server has not closed the connection (as it
    does to every client when it shuts down): a closed one is replaced and the connections
    pooled before it are dropped too. A connection that dies silently fails its first
    statement, which the service answers 503 (and SQLAlchemy drops the pool's older
    connections then).
    """
    if database.url is not None:
        kwargs.setdefault("pool_pre_ping", True)
        engine = create_async_engine(postgres_url(database.url, ASYNC_PG_DRIVER), **kwargs)
        if not kwargs["pool_pre_ping"]:
            event.listen(engine.sync_engine, "checkout", _drop_closed)
        return engine
    import aiosqlite  # noqa: PLC0415  (only the embedded async engine needs it)

    url = sqlite_url(database.sqlite_path, "aiosqlite")
    path = str(url.database)

    async def connect() -> Any:
        # aiosqlite runs the connector on its own thread: SpatiaLite loads there
        connection = aiosqlite.Connection(
            lambda: connect_spatialite(path, check_same_thread=True), iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connect
        return await connection

    engine = create_async_engine(url, module=_AioSpatialiteDBAPI(aiosqlite, sqlite_dbapi()),
                                 async_creator=connect, **kwargs)
    event.listen(engine.sync_engine, "begin", _begin_sqlite)
    return engine


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """At checkout: a connection the server has closed is replaced, with the pool's older
    ones (they were closed by the same restart)."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise InvalidatePoolError("the server closed this pooled connection")


_SHARED: dict[DatabaseSettings, Engine] = {}
_SHARED_LOCK = threading.Lock()


def sync_engine(settings: Settings | None = None) -> Engine:
    """The process-wide synchronous engine of ``settings`` (one pool per database)."""
    database = (settings or get_settings()).database
    with _SHARED_LOCK:
        engine = _SHARED.get(database)
        if engine is None:
            engine = _SHARED[database] = create_sync_engine(database)
        return engine


def async_engine(settings: Settings | None = None, **kwargs: Any) -> AsyncEngine:
    """A new asyncio engine of ``settings`` (the service's; dispose of it at shutdown)."""
    return create_async_engine_for((settings or get_settings()).database, **kwargs)


def dispose_engines() -> None:
    """Close and forget every shared engine (tests dropping databases, forked workers)."""
    with _SHARED_LOCK:
        engines = list(_SHARED.values())
        _SHARED.clear()
    for engine in engines:
        engine.dispose()


def check_connection(engine: Engine) -> None:
    """Fail with :class:`DatabaseUnavailableError` unless the database answers a query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise DatabaseUnavailableError(
            f"the database at {describe(engine)} is unreachable: {_first_line(exc)}"
        ) from exc


def _first_line(exc: DBAPIError) -> str:
    """The driver's own message, without SQLAlchemy's SQL and background link."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


PG_CONNECT_TIMEOUT_S = 5
"""A database that does not answer a connect within this is reported as down (503)."""


def postgres_pool(size: int, **server_settings: str) -> dict[str, Any]:
    """Engine options of a PostgreSQL pool of ``size`` connections.

    No overflow (see :attr:`api.settings.DatabaseSettings.pool_size`) and no pre-ping:
    with asyncpg a ping is three round trips per checkout, more than a call's own
    statement; connections the server closed are dropped at checkout instead.

    No JIT compilation: these pools run short statements (heavy reads run in the worker
    processes, on their own connections). On a calls table holding a year of history
    the intake statement's generic plan is costed above ``jit_above_cost`` (it cannot
    know how few rows its disk of cells holds), and PostgreSQL compiled it on every
    execution: 16 ms of each call's 17, measured, so a single worker took fewer than
    100 calls a second.
    """
    return {"pool_size": size, "max_overflow": 0, "pool_timeout": 10, "pool_pre_ping": False,
            "connect_args": {"timeout": PG_CONNECT_TIMEOUT_S,
                             "server_settings": {"jit": "off", **server_settings}}}
