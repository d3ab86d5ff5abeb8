"""Boundary sets in the system of record: write, read, version, and the router built from them.

A set is written in **one transaction**: the current set's rows move to the ``*_history``
tables and its ``expires_at`` is set, the new rows replace them, and the new
``boundary_sets`` row becomes the current one. Readers never see a mix: on PostgreSQL
(MVCC; rows are deleted, not truncated, so readers are never blocked) and on SQLite
(WAL) they keep seeing the old set until the commit. Writers queue on an advisory lock
(PostgreSQL) or SQLite's write lock, so two loads never interleave.

Rows go in as WKB with one ``executemany`` per table (``ST_GeomFromWKB``; SQLAlchemy
batches them into multi-row INSERTs on PostgreSQL). Measured on the Punjab set (9 + 36 +
139 + 720 polygons, 470k vertices), that is as fast as ``COPY`` with hex EWKB (about
1 s either way, the server's geometry parsing and GiST inserts dominate), so both back
ends share one path. Coordinates round-trip exactly (WKB doubles), so a router compiled
from the database equals the one compiled from the files.

The router compiled from the database's ``stations`` table is cached on disk by set
version (:func:`jurisdictions.catalog.index_path`); :class:`RouterHolder` swaps in a new
one when the database's current version changes, without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import (
    Engine,
    LargeBinary,
    Table,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from api.db.engine import SQLITE_BEGIN_OPTION, describe, sync_engine
from api.db.errors import (
    BoundarySetConflictError,
    BoundarySetWriteError,
    DatabaseError,
    DatabaseUnavailableError,
    NoBoundarySetError,
)
from api.db.models import BOUNDARY_SETS, CURRENT_TABLES, HISTORY_TABLES, SRID
from api.settings import Settings
from geo.progress import Progress, no_progress
from jurisdictions.boundaries import LEVELS, PARENT_COLUMN, BoundarySet, as_multipolygons
from jurisdictions.router import Router

STORED_LEVELS = ("province", *LEVELS)
"""Levels with a table, coarse to fine: parents are written first, deleted last."""

_FRAME = {"province": "province", "region": "regions", "district": "districts",
          "tehsil": "tehsils", "station": "stations"}
"""BoundarySet attribute of each stored level."""

_NOT_ATTRIBUTES = frozenset({"boundary_set", "geom"})

WRITE_LOCK = 0x5AFEB5E7
"""PostgreSQL advisory lock key held by boundary-set writers until they commit."""

FUTURE_TOLERANCE = dt.timedelta(minutes=5)
"""Clock skew accepted on ``effective_from`` (a set cannot be scheduled ahead)."""

ProgressFn = Callable[[str, float], None]



@dataclass(frozen=True)
class BoundarySetInfo:
    """A ``boundary_sets`` row: which set, and the period it is (or was) in force."""

    version: str
    loaded_at: dt.datetime
    effective_from: dt.datetime
    expires_at: dt.datetime | None
    stand_in: bool
    source: str | None
    notes: dict[str, str]

    @property
    def is_current(self) -> bool:
        return self.expires_at is None


# ---------------------------------------------------------------- transactions
@contextmanager
def _errors(engine: Engine) -> Iterator[None]:
    """Turn driver errors into the persistence layer's own, naming the database."""
    try:
        yield
    except DatabaseError:
        raise
    except IntegrityError as exc:
        raise BoundarySetWriteError(f"{describe(engine)} refused the set: {_reason(exc)}; "
                                    "nothing was written") from exc
    except OperationalError as exc:
        raise DatabaseUnavailableError(f"{describe(engine)} is unavailable: {_reason(exc)}") from exc
    except DBAPIError as exc:
        raise DatabaseError(f"{describe(engine)}: {_reason(exc)}") from exc


def _reason(exc: DBAPIError) -> str:
    return " ".join(str(exc.orig if exc.orig is not None else exc).split())


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A transaction seeing one snapshot for all its statements (REPEATABLE READ / WAL)."""
    with _errors(engine):
        options: dict[str, Any] = {}
        if engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        with engine.connect().execution_options(**options) as conn, conn.begin():
            yield conn


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """The one transaction of a write, holding the writers' lock from its start."""
    with _errors(engine):
        options = {SQLITE_BEGIN_OPTION: "IMMEDIATE"}  # SQLite: take the write lock first
        with engine.connect().execution_options(**options) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(WRITE_LOCK)))
            _require_schema(conn)
            yield conn


def _has_schema(conn: Connection) -> bool:
    return bool(inspect(conn).has_table(BOUNDARY_SETS.name))


def _require_schema(conn: Connection) -> None:
    if not _has_schema(conn):
        raise DatabaseError(f"{describe(conn.engine)} has no boundary-set tables yet; "
                            "run: safecity db upgrade")


# ---------------------------------------------------------------- versions
def _info(row: Any) -> BoundarySetInfo:
    return BoundarySetInfo(version=row.version, loaded_at=row.loaded_at,
                           effective_from=row.effective_from, expires_at=row.expires_at,
                           stand_in=bool(row.stand_in), source=row.source,
                           notes=dict(row.notes or {}))


def _current_info(conn: Connection) -> BoundarySetInfo | None:
    sets = BOUNDARY_SETS
    row = conn.execute(select(sets).where(sets.c.expires_at.is_(None))).first()
    return None if row is None else _info(row)


def _info_of(conn: Connection, version: str) -> BoundarySetInfo | None:
    sets = BOUNDARY_SETS
    row = conn.execute(select(sets).where(sets.c.version == version)).first()
    return None if row is None else _info(row)


def current_version(engine: Engine) -> str | None:
    """Version of the set in force (None: no set loaded, or the schema not created yet).

    Cheap enough to poll: one indexed lookup.
    """
    with _reading(engine) as conn:
        if not _has_schema(conn):
            return None
        info = _current_info(conn)
        return None if info is None else info.version


def boundary_sets(engine: Engine) -> list[BoundarySetInfo]:
    """Every set ever loaded, oldest first (the current one last)."""
    sets = BOUNDARY_SETS
    with _reading(engine) as conn:
        if not _has_schema(conn):
            return []
        rows = conn.execute(select(sets).order_by(sets.c.effective_from, sets.c.loaded_at))
        return [_info(row) for row in rows]


def imported_version(base: str, level: str, frame: gpd.GeoDataFrame) -> str:
    """Version of a set after an import: the old version plus a digest of the new layer.

    The same rule as the import command's, so the version it announces is the one stored.
    """
    digest = hashlib.sha256()
    for column in frame.columns.drop("geometry"):
        digest.update(column.encode())
        digest.update("\x1f".join(map(str, frame[column])).encode())
    for wkb in shapely.to_wkb(frame.geometry.values):
        digest.update(wkb)
    return f"{base}+{level}s-{digest.hexdigest()[:10]}"


# ---------------------------------------------------------------- reading
def _attribute_columns(table: Table) -> list[str]:
    return [c.name for c in table.columns if c.name not in _NOT_ATTRIBUTES]


def _frame_from_rows(table: Table, rows: list[Any]) -> gpd.GeoDataFrame:
    """A level's frame from its rows: model column order, all-null optional columns dropped."""
    columns: dict[str, Any] = {}
    for name in _attribute_columns(table):
        values = [getattr(row, name) for row in rows]
        column = table.c[name]
        missing = sum(v is None for v in values)
        if missing and missing == len(values) and column.nullable:
            continue  # e.g. population of an imported layer: absent, not zero
        if column.type.python_type is int:
            columns[name] = pd.array(values, dtype="Int64" if missing else "int64")
        elif column.type.python_type is float:
            columns[name] = np.array([np.nan if v is None else v for v in values], dtype=float)
        elif column.type.python_type is bool:
            columns[name] = np.array(values, dtype=bool)
        else:
            columns[name] = values
    geometry = shapely.from_wkb([bytes(row.wkb) for row in rows])
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=f"EPSG:{SRID}"),
                            crs=f"EPSG:{SRID}")


def _read_level(conn: Connection, level: str, info: BoundarySetInfo) -> gpd.GeoDataFrame:
    table = CURRENT_TABLES[level] if info.is_current else HISTORY_TABLES[level]
    names = _attribute_columns(table)
    wkb = type_coerce(func.ST_AsBinary(table.c.geom), LargeBinary).label("wkb")
    query = select(*(table.c[n] for n in names), wkb).order_by(table.c.code)
    if not info.is_current:
        query = query.where(table.c.boundary_set == info.version)
    return _frame_from_rows(table, list(conn.execute(query)))


def _read(conn: Connection, version: str | None = None) -> BoundarySet | None:
    info = _current_info(conn) if version is None else _info_of(conn, version)
    if info is None:
        return None
    frames = {_FRAME[level]: _read_level(conn, level, info) for level in STORED_LEVELS}
    return BoundarySet(**frames, version=info.version, notes=info.notes)


def read_boundary_set(engine: Engine, version: str | None = None) -> BoundarySet | None:
    """The set in force, or the one named ``version`` (current or superseded).

    None when the database holds no such set (or has no schema yet). All levels come
    from one snapshot, so a load committing meanwhile cannot mix two sets.
    """
    with _reading(engine) as conn:
        if not _has_schema(conn):
            return None
        return _read(conn, version)


# ---------------------------------------------------------------- writing
def _required(level: str) -> list[str]:
    table = CURRENT_TABLES[level]
    return [c.name for c in table.columns if c.name not in _NOT_ATTRIBUTES and not c.nullable]


def _checked_frame(level: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` ready to store (2D MultiPolygons), or an error naming what is wrong."""
    name = f"{level} layer"
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame:
        raise BoundarySetWriteError(f"{name}: not a GeoDataFrame with a geometry column")
    if frame.crs is None or frame.crs.to_epsg() != SRID:
        raise BoundarySetWriteError(f"{name}: expected EPSG:{SRID} coordinates, found {frame.crs}")
    missing = [c for c in _required(level) if c not in frame]
    if missing:
        raise BoundarySetWriteError(f"{name}: missing column(s) {', '.join(missing)}")
    codes = frame["code"]
    empty = codes.isna() | (codes.astype(str).str.strip() == "")
    if empty.any():
        raise BoundarySetWriteError(f"{name}: {int(empty.sum())} row(s) without a code")
    dupes = codes[codes.duplicated()].astype(str).unique().tolist()
    if dupes:
        raise BoundarySetWriteError(f"{name}: duplicate code(s) {', '.join(dupes[:10])}")
    for column in _required(level):
        if frame[column].isna().any():
            bad = frame.loc[frame[column].isna(), "code"].astype(str).tolist()
            raise BoundarySetWriteError(f"{name}: {column} is empty for {', '.join(bad[:10])}")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    types = shapely.get_type_id(geoms)
    bad_geom = shapely.is_missing(geoms) | shapely.is_empty(geoms) | ~np.isin(
        types, [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON])
    if bad_geom.any():
        bad = codes[bad_geom].astype(str).tolist()
        raise BoundarySetWriteError(f"{name}: geometry missing, empty or not polygonal for "
                                    f"{', '.join(bad[:10])}")
    flat = gpd.GeoSeries(shapely.force_2d(geoms), index=frame.index, crs=frame.crs)
    return frame.set_geometry(as_multipolygons(flat).rename("geometry"))


def _checked_set(boundaries: BoundarySet) -> dict[str, gpd.GeoDataFrame]:
    """Every stored level checked, and each child's parent code present in its parent."""
    frames = {level: _checked_frame(level, getattr(boundaries, _FRAME[level]))
              for level in STORED_LEVELS}
    for child, column in PARENT_COLUMN.items():
        parent = LEVELS[LEVELS.index(child) - 1]
        known = set(frames[parent]["code"].astype(str))
        unknown = frames[child].loc[~frames[child][column].astype(str).isin(known)]
        if len(unknown):
            pairs = [f"{c} → {p}" for c, p in zip(unknown["code"], unknown[column], strict=True)]
            raise BoundarySetWriteError(
                f"{len(unknown)} {child}(s) name a {parent} that is not in the set: "
                f"{', '.join(pairs[:10])}")
    return frames


def _python_values(series: pd.Series) -> list[Any]:
    """Plain Python values for the driver (None for NaN / NA)."""
    return series.astype(object).where(series.notna(), None).tolist()


def _insert_level(conn: Connection, level: str, frame: gpd.GeoDataFrame, version: str) -> None:
    """All rows of one level in one ``executemany`` (WKB in, ``ST_GeomFromWKB`` server-side)."""
    if frame.empty:
        return
    table = CURRENT_TABLES[level]
    names = _attribute_columns(table)
    values: dict[str, Any] = {n: bindparam(f"p_{n}", type_=table.c[n].type) for n in names}
    values["boundary_set"] = bindparam("p_boundary_set")
    values["geom"] = func.ST_GeomFromWKB(bindparam("p_wkb", type_=LargeBinary), SRID)
    columns = {f"p_{n}": _python_values(frame[n]) if n in frame else [None] * len(frame)
               for n in names}
    columns["p_wkb"] = list(shapely.to_wkb(frame.geometry.values))
    columns["p_boundary_set"] = [version] * len(frame)
    keys = list(columns)
    rows = [dict(zip(keys, row, strict=True)) for row in zip(*columns.values(), strict=True)]
    conn.execute(insert(table).values(values), rows)


def _archive(conn: Connection, info: BoundarySetInfo, expires_at: dt.datetime) -> None:
    """Copy the current rows into the history tables (server-side) and expire the set."""
    for level in STORED_LEVELS:
        current, history = CURRENT_TABLES[level], HISTORY_TABLES[level]
        names = [c.name for c in history.columns]
        conn.execute(insert(history).from_select(names, select(*(current.c[n] for n in names))))
    sets = BOUNDARY_SETS
    conn.execute(update(sets).where(sets.c.version == info.version).values(expires_at=expires_at))


def _effective(effective_from: dt.datetime | None, current: BoundarySetInfo | None,
               now: dt.datetime) -> dt.datetime:
    if effective_from is None:
        return now
    if effective_from.tzinfo is None:
        raise BoundarySetWriteError("effective_from needs a time zone (e.g. +05:00 for PKT)")
    if effective_from > now + FUTURE_TOLERANCE:
        raise BoundarySetConflictError(
            f"effective_from {effective_from.isoformat()} is in the future; a set takes "
            "effect when it is loaded, so load it on that date")
    if current is not None and effective_from < current.effective_from:
        raise BoundarySetConflictError(
            f"effective_from {effective_from.isoformat()} is before the current set "
            f"{current.version} took effect ({current.effective_from.isoformat()})")
    return effective_from


def _write(conn: Connection, boundaries: BoundarySet, effective_from: dt.datetime | None,
           source: str | None, progress: ProgressFn) -> str:
    """Write ``boundaries`` as the current set on ``conn`` (inside the caller's transaction)."""
    frames = _checked_set(boundaries)
    version = boundaries.version
    now = dt.datetime.now(dt.UTC)
    current = _current_info(conn)
    existing = _info_of(conn, version)
    if existing is not None and not existing.is_current:
        raise BoundarySetConflictError(
            f"boundary set {version} was loaded on {existing.loaded_at:%Y-%m-%d} and superseded "
            f"on {existing.expires_at:%Y-%m-%d}; a superseded set cannot be made current again "
            "under the same version (import its layers to make a new one)")
    sets = BOUNDARY_SETS
    stations = frames["station"]
    record = {
        "loaded_at": now,
        "stand_in": bool(len(stations) and stations.get("stand_in", pd.Series(False)).any()),
        "source": source,
        "notes": dict(boundaries.notes),
    }
    progress("archiving the current set", 0.0)
    if existing is not None:  # the current set again (a refresh): rewrite it in place
        if effective_from is not None:
            record["effective_from"] = _effective(effective_from, None, now)
        for level in reversed(STORED_LEVELS):
            conn.execute(delete(CURRENT_TABLES[level]))
        conn.execute(update(sets).where(sets.c.version == version).values(**record))
    else:
        effective = _effective(effective_from, current, now)
        if current is not None:
            _archive(conn, current, effective)
        for level in reversed(STORED_LEVELS):
            conn.execute(delete(CURRENT_TABLES[level]))
        conn.execute(insert(sets).values(version=version, effective_from=effective,
                                         expires_at=None, **record))
    weights = {level: float(shapely.get_num_coordinates(frames[level].geometry.values).sum()) + 1
               for level in STORED_LEVELS}
    total, done = sum(weights.values()), 0.0
    for level in STORED_LEVELS:
        progress(f"writing {_FRAME[level]}", 0.1 + 0.9 * done / total)
        _insert_level(conn, level, frames[level], version)
        done += weights[level]
    progress("committing", 1.0)
    return version


def write_boundary_set(engine: Engine, boundaries: BoundarySet,
                       effective_from: dt.datetime | None = None, *, source: str | None = None,
                       progress: ProgressFn = no_progress) -> str:
    """Make ``boundaries`` the database's current set, in one transaction; its version.

    The set in force until now is archived to the ``*_history`` tables and expires at
    ``effective_from`` (default: now; never in the future, never before the current
    set's own start). Writing the current version again rewrites it in place (a refresh).

    Raises
    ------
    BoundarySetWriteError
        A frame lacks a column, has empty or duplicate codes, non-polygonal geometry, or
        a child naming a parent not in the set. Nothing is written.
    BoundarySetConflictError
        ``version`` was superseded before, or the dates go backwards.
    DatabaseUnavailableError
        The database does not answer; nothing is written.
    """
    with _writing(engine) as conn:
        return _write(conn, boundaries, effective_from, source, progress)


def replace_level(engine: Engine, level: str, frame: gpd.GeoDataFrame, *,
                  effective_from: dt.datetime | None = None, source: str | None = None,
                  progress: ProgressFn = no_progress) -> str:
    """Swap one level of the current set for ``frame`` and store it as a new version.

    Reading the current set and writing the new one happen in one transaction under the
    writers' lock, so a load committing in between cannot be lost. Returns the new
    version (:func:`imported_version`). QA is the caller's job, before this.
    """
    if level not in LEVELS:
        raise BoundarySetWriteError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    with _writing(engine) as conn:
        current = _read(conn)
        if current is None:
            raise NoBoundarySetError(f"{describe(engine)} holds no boundary set to import into; "
                                     "run: safecity jurisdictions load")
        version = imported_version(current.version, level, frame)
        if version == current.version:
            return version
        candidate = current.with_layer(level, frame, version)
        note = source or f"{len(frame)} {level}s imported onto {current.version}"
        return _write(conn, candidate, effective_from, note, progress)


# ---------------------------------------------------------------- the router
def router_from_database(settings: Settings, progress: Progress = no_progress) -> Router:
    """A router over the database's current station layer.

    The compiled index is cached on disk by set version
    (:func:`jurisdictions.catalog.index_path`): a cache hit costs one version lookup and
    a file read; a miss reads the set (one snapshot) and compiles it.

    Raises
    ------
    NoBoundarySetError
        The database holds no boundary set (run ``safecity jurisdictions load``).
    """
    from jurisdictions.catalog import index_path, load_index, neighbouring_provinces  # noqa: PLC0415
    from jurisdictions.index import RoutingIndex  # noqa: PLC0415

    engine = sync_engine(settings)
    limit = settings.routing.nearest_limit_m
    version = current_version(engine)
    if version is None:
        raise NoBoundarySetError(f"{describe(engine)} holds no boundary set; "
                                 "run: safecity jurisdictions load")
    path = index_path(version)
    if path.exists():
        try:
            index = RoutingIndex.load(path)
        except (OSError, ValueError, KeyError):
            index = None  # unreadable or an older format: compile again below
        if index is not None and index.version == version:
            return Router(index, limit, neighbours=neighbouring_provinces())
    boundaries = read_boundary_set(engine, version)
    if boundaries is None:
        raise NoBoundarySetError(f"boundary set {version} vanished from {describe(engine)}")
    return Router(load_index(boundaries, refresh=True, progress=progress), limit,
                  neighbours=neighbouring_provinces())


class RouterHolder:
    """The service's router, replaced without a restart when a new set is loaded.

    The service polls :meth:`refresh` (in a worker thread: a new set takes a compile).
    Requests read :attr:`router`, which is swapped in one assignment, so a request sees
    either the old router or the new one, never a half-built one.
    """

    def __init__(self, settings: Settings, progress: Progress = no_progress,
                 router: Router | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self._router = router
        self._lock = threading.Lock()

    @property
    def router(self) -> Router:
        """The current router (built on first use)."""
        router = self._router
        if router is None:
            with self._lock:
                if self._router is None:
                    self._router = router_from_database(self.settings, self.progress)
                router = self._router
        return router

    @property
    def version(self) -> str | None:
        """Version of the set the held router serves (None before first use)."""
        return None if self._router is None else self._router.index.version

    def refresh(self) -> bool:
        """Load the router of the database's current set if it changed; True if swapped.

        Returns False at once when another refresh is already running.
        """
        if not self._lock.acquire(blocking=False):
            return False
        try:
            latest = current_version(sync_engine(self.settings))
            if latest is None or latest == self.version:
                return False
            self._router = router_from_database(self.settings, self.progress)
            return True
        finally:
            self._lock.release()
