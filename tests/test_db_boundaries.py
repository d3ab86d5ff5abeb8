"""The persistence seam for boundary sets, on real PostGIS and real SpatiaLite.

Migrations, the real Punjab set written by ``safecity jurisdictions load`` (9 regions,
36 districts, 139 tehsils, 720 stations) with registered MultiPolygon/4326 geometry
and spatial indexes, exact round trips, a second set loading while a reader still sees
the first, history, atomicity, and the router compiled from the database answering
like the one compiled from the files. Nothing here mocks a database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from sqlalchemy import Connection, Engine, func, inspect, select, text

from api.db.boundary_store import (
    RouterHolder,
    boundary_sets,
    current_version,
    read_boundary_set,
    replace_level,
    router_from_database,
    write_boundary_set,
)
from api.db.engine import create_async_engine_for, create_sync_engine, dispose_engines
from api.db.errors import (
    BoundarySetConflictError,
    BoundarySetWriteError,
    DatabaseUnavailableError,
    NoBoundarySetError,
    SpatialExtensionError,
)
from api.db.migrate import alembic_config, current_revision, head_revision, upgrade
from api.db.models import BOUNDARY_SETS, CURRENT_TABLES, HISTORY_TABLES
from api.settings import DatabaseSettings, Settings
from jurisdictions.boundaries import BoundarySet
from jurisdictions.router import Router

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
LEVEL_TABLES = ("provinces", "regions", "districts", "tehsils", "stations")
GEOMETRY_TABLES = (*LEVEL_TABLES, *(f"{t}_history" for t in LEVEL_TABLES))
PUNJAB_COUNTS = {"provinces": 1, "regions": 9, "districts": 36, "tehsils": 139, "stations": 720}
EXTENT = (69.2, 27.6, 75.5, 34.1)
ADMIN_URL = os.environ.get("SAFECITY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(params=["postgis", "spatialite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> DatabaseSettings:
    """An empty database of each back end: a fresh PostGIS one or a new SQLite file."""
    if request.param == "postgis":
        return DatabaseSettings(url=request.getfixturevalue("fresh_postgis_url"))
    return DatabaseSettings(sqlite_path=tmp_path / "embedded" / "safecity.sqlite")


@pytest.fixture
def engine(database: DatabaseSettings) -> Iterator[Engine]:
    made = create_sync_engine(database)
    yield made
    made.dispose()


@pytest.fixture
def migrated(engine: Engine) -> Engine:
    upgrade(engine)
    return engine


def _count(conn_or_engine: Connection | Engine, table: str, version: str | None = None) -> int:
    tables = {t.name: t for t in (*CURRENT_TABLES.values(), *HISTORY_TABLES.values())}
    query = select(func.count()).select_from(tables[table])
    if version is not None:
        query = query.where(tables[table].c.boundary_set == version)
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    return int(conn_or_engine.execute(query).scalar_one())


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A reader's transaction: one snapshot from its first statement to its end."""
    options = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


def _geometry_columns(conn: Connection) -> dict[str, tuple[str, int]]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text("SELECT f_table_name, type, srid FROM geometry_columns"))
        return {r[0]: (r[1], r[2]) for r in rows if r[0] in GEOMETRY_TABLES}
    codes = {6: "MULTIPOLYGON"}  # SpatiaLite stores the OGC type code (6: MultiPolygon XY)
    rows = conn.execute(text("SELECT f_table_name, geometry_type, srid FROM geometry_columns"))
    return {r[0]: (codes.get(r[1], str(r[1])), r[2]) for r in rows if r[0] in GEOMETRY_TABLES}


def _spatially_indexed(conn: Connection) -> set[str]:
    """Tables whose ``geom`` has a GiST index (PostGIS) or an enabled R*Tree (SpatiaLite)."""
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text(
            "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%USING gist (geom)%'"))
        return {r[0] for r in rows}
    rows = conn.execute(text(
        "SELECT f_table_name FROM geometry_columns WHERE spatial_index_enabled = 1"))
    return {r[0] for r in rows}


def assert_same_set(got: BoundarySet, expected: BoundarySet) -> None:
    """Same version, attributes and geometry, coordinates bit for bit."""
    assert got.version == expected.version
    for level in ("province", "regions", "districts", "tehsils", "stations"):
        a, b = getattr(got, level), getattr(expected, level)
        b = b[list(a.columns)].reset_index(drop=True)
        pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                      pd.DataFrame(b.drop(columns="geometry")))
        assert shapely.to_wkb(a.geometry.values).tolist() == shapely.to_wkb(b.geometry.values).tolist()


def tiny_set(split_lon: float = 74.32, version: str = "tiny-a") -> BoundarySet:
    """A one-tehsil set near Lahore with two stations split at ``split_lon``."""
    crs = "EPSG:4326"
    whole = shapely.MultiPolygon([shapely.box(74.30, 31.50, 74.34, 31.54)])

    def frame(**columns: list[object]) -> gpd.GeoDataFrame:
        geometry = columns.pop("geometry")
        return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=crs), crs=crs)

    west = shapely.MultiPolygon([shapely.box(74.30, 31.50, split_lon, 31.54)])
    east = shapely.MultiPolygon([shapely.box(split_lon, 31.50, 74.34, 31.54)])
    return BoundarySet(
        province=frame(code=["PK6"], name=["Punjab"], geometry=[whole]),
        regions=frame(code=["R1"], name=["Lahore"], geometry=[whole]),
        districts=frame(code=["D1"], name=["Lahore"], region_code=["R1"], geometry=[whole]),
        tehsils=frame(code=["T1"], name=["Lahore City"], district_code=["D1"], geometry=[whole]),
        stations=frame(code=["T1-001", "T1-002"], name=["West", "East"], tehsil_code=["T1", "T1"],
                       stand_in=[False, False], geometry=[west, east]),
        version=version,
    )


# ---------------------------------------------------------------- migrations
def test_migrations_create_the_spatial_schema_and_undo_it(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert upgrade(engine, "0001") == "0001"
    with engine.connect() as conn:
        assert _geometry_columns(conn) == dict.fromkeys(GEOMETRY_TABLES, ("MULTIPOLYGON", 4326))
        assert _spatially_indexed(conn) >= set(GEOMETRY_TABLES)
        for table in LEVEL_TABLES:
            pk = inspect(conn).get_pk_constraint(table)["constrained_columns"]
            assert pk == ["code"], table

        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from api.db.models import metadata

        ours = {"boundary_sets", *GEOMETRY_TABLES}
        context = MigrationContext.configure(conn, opts={
            "include_object": lambda obj, name, kind, *_: kind != "table" or name in ours,
            "include_name": lambda name, kind, *_: kind != "table" or name in ours})
        assert compare_metadata(context, metadata) == []  # the models and 0001 agree

    from alembic import command

    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    with engine.connect() as conn:
        assert _geometry_columns(conn) == {}
    assert upgrade(engine) == head_revision() == current_revision(engine)


def test_migration_0005_moves_alert_deadlines_out_of_calls_and_back(engine: Engine) -> None:
    """Deadlines stored on ``calls`` (0004) become ``alert_due`` rows, and return on downgrade."""
    from advanced_alchemy.types import GUID, DateTimeUTC
    from alembic import command
    from sqlalchemy import bindparam

    upgrade(engine, "0004")
    point = ("ST_SetSRID(ST_MakePoint(74.3, 31.5), 4326)" if engine.dialect.name == "postgresql"
             else "MakePoint(74.3, 31.5, 4326)")
    insert = text(
        "INSERT INTO calls (id, idempotency_key, request_hash, status, category, serious, lat, "
        "lon, geom, h3_r9, received_at, station_code, tehsil_code, district_code, region_code, "
        "boundary_set, method, out_of_coverage, unstaffed, created_by, created_at, updated_at, "
        f"next_alert_at) VALUES (:id, :key, 'h', 'received', 'murder', true, 31.5, 74.3, {point}, "
        "1, :at, 's', 't', 'd', 'r', 'b', 'h3', false, false, 'test', :at, :at, :due)",
    ).bindparams(bindparam("id", type_=GUID()), bindparam("at", type_=DateTimeUTC()),
                 bindparam("due", type_=DateTimeUTC()))
    at = dt.datetime(2026, 11, 26, 5, tzinfo=dt.UTC)
    watched, finished = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(insert, [
            {"id": watched, "key": "k1", "at": at, "due": at + dt.timedelta(minutes=5)},
            {"id": finished, "key": "k2", "at": at, "due": None}])
    assert upgrade(engine) == head_revision()
    with engine.connect() as conn:
        assert "next_alert_at" not in {c["name"] for c in inspect(conn).get_columns("calls")}
        rows = conn.execute(text("SELECT call_id, next_alert_at FROM alert_due").columns(
            call_id=GUID(), next_alert_at=DateTimeUTC())).all()
    assert [(r.call_id, r.next_alert_at) for r in rows] == [(watched, at + dt.timedelta(minutes=5))]
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0004")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT id, next_alert_at FROM calls ORDER BY idempotency_key")
                            .columns(id=GUID(), next_alert_at=DateTimeUTC())).all()
        assert "alert_due" not in inspect(conn).get_table_names()
    assert [(r.id, r.next_alert_at) for r in back] == [
        (watched, at + dt.timedelta(minutes=5)), (finished, None)]


def test_postgis_that_cannot_be_enabled_is_a_clear_error(tmp_path: Path) -> None:
    """A role that may not ``CREATE EXTENSION postgis`` gets the fix, and nothing is written."""
    suffix = uuid.uuid4().hex[:8]
    role, name = f"safecity_plain_{suffix}", f"safecity_nopostgis_{suffix}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    base = ADMIN_URL.split("://", 1)[1].split("@", 1)[1].rsplit("/", 1)[0]
    engine = create_sync_engine(DatabaseSettings(url=f"postgresql://{role}@{base}/{name}"))
    try:
        with pytest.raises(SpatialExtensionError, match="ask a superuser to run CREATE EXTENSION"):
            upgrade(engine)
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar_one()
        assert tables == 0
    finally:
        engine.dispose()
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_unreachable_database_is_one_line_and_exit_1() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:9/safecity"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"], env=env,
                          capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 1
    assert "unreachable" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(DatabaseUnavailableError):
        current_version(create_sync_engine(DatabaseSettings(url=env["DATABASE_URL"])))


# ---------------------------------------------------------------- the real Punjab set
@pytest.fixture(scope="module", params=["postgis", "spatialite"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A database after ``safecity jurisdictions load`` (the real command), read only."""
    if request.param == "postgis":
        settings = DatabaseSettings(url=request.getfixturevalue("loaded_postgis"))
    else:
        path = tmp_path_factory.mktemp("embedded") / "safecity.sqlite"
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["SAFECITY_SQLITE_PATH"] = str(path)
        done = subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"],
                              env=env, capture_output=True, text=True, check=False, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        settings = DatabaseSettings(sqlite_path=path)
    made = create_sync_engine(settings)
    yield made
    made.dispose()


def test_load_writes_the_punjab_set(loaded: Engine, punjab_set: BoundarySet) -> None:
    with loaded.connect() as conn:
        assert {t: _count(conn, t) for t in LEVEL_TABLES} == PUNJAB_COUNTS
        assert _geometry_columns(conn) == dict.fromkeys(GEOMETRY_TABLES, ("MULTIPOLYGON", 4326))
        assert _spatially_indexed(conn) >= set(LEVEL_TABLES)
        kind = "ST_GeometryType" if loaded.dialect.name == "postgresql" else "GeometryType"
        for table in LEVEL_TABLES:
            rows = conn.execute(text(f"SELECT DISTINCT {kind}(geom), ST_SRID(geom) FROM {table}"))
            assert {(str(t).upper().removeprefix("ST_"), s) for t, s in rows} == {("MULTIPOLYGON", 4326)}
        if loaded.dialect.name == "sqlite":  # the R*Tree holds one box per station
            assert conn.execute(text("SELECT count(*) FROM idx_stations_geom")).scalar_one() == 720
        sets = conn.execute(select(BOUNDARY_SETS)).all()
    assert [(s.version, s.expires_at, s.stand_in) for s in sets] == [(punjab_set.version, None, True)]
    assert current_version(loaded) == punjab_set.version
    assert_same_set(read_boundary_set(loaded), punjab_set)  # type: ignore[arg-type]


def test_async_engines_read_the_same_tables(loaded: Engine) -> None:
    """asyncpg on PostGIS, aiosqlite with SpatiaLite on the embedded file."""
    url = loaded.url
    if loaded.dialect.name == "postgresql":
        database = DatabaseSettings(url=url.set(drivername="postgresql").render_as_string(False))
    else:
        database = DatabaseSettings(sqlite_path=Path(str(url.database)))
    stations = CURRENT_TABLES["station"]

    async def read() -> tuple[int, bytes]:
        engine = create_async_engine_for(database)
        try:
            async with engine.connect() as conn:
                count = (await conn.execute(select(func.count()).select_from(stations))).scalar_one()
                wkb = (await conn.execute(select(func.ST_AsBinary(stations.c.geom))
                                          .order_by(stations.c.code).limit(1))).scalar_one()
            return int(count), bytes(wkb)
        finally:
            await engine.dispose()

    count, wkb = asyncio.run(read())
    assert count == 720
    assert shapely.from_wkb(wkb).geom_type == "MultiPolygon"


# ---------------------------------------------------------------- versions and history
def test_a_new_set_loads_while_the_old_one_serves(migrated: Engine, punjab_set: BoundarySet) -> None:
    engine = migrated
    started = time.perf_counter()
    v1 = write_boundary_set(engine, punjab_set)
    write_s = time.perf_counter() - started
    official = punjab_set.stations.assign(stand_in=False,
                                          name=punjab_set.stations["name"].str.replace(" stand-in", ""))
    seen_mid_write: list[tuple[str | None, int, int]] = []

    def peek(step: str, _fraction: float) -> None:
        if step == "writing stations":  # inside the writer's open transaction
            seen_mid_write.append((current_version(engine), _count(engine, "stations", v1),
                                   _count(engine, "stations_history")))

    with _snapshot(engine) as reader:
        assert _count(reader, "stations", v1) == 720
        v2 = replace_level(engine, "station", official, progress=peek)
        # committed meanwhile, yet this reader still sees the whole first set
        assert reader.execute(select(BOUNDARY_SETS.c.version)
                              .where(BOUNDARY_SETS.c.expires_at.is_(None))).scalar_one() == v1
        assert _count(reader, "stations", v1) == 720
        assert _count(reader, "stations_history") == 0
    assert seen_mid_write == [(v1, 720, 0)]
    assert v2 != v1
    assert v2.startswith(v1 + "+stations-")

    assert current_version(engine) == v2
    now = read_boundary_set(engine)
    assert now is not None
    assert not now.stations["stand_in"].any()
    assert {t: _count(engine, t, v2) for t in LEVEL_TABLES} == PUNJAB_COUNTS
    assert {t: _count(engine, f"{t}_history", v1) for t in LEVEL_TABLES} == PUNJAB_COUNTS
    assert_same_set(read_boundary_set(engine, v1), punjab_set)  # type: ignore[arg-type]
    first, second = boundary_sets(engine)
    assert (first.version, second.version) == (v1, v2)
    assert first.expires_at == second.effective_from
    assert second.is_current
    print(f"\n{engine.dialect.name}: Punjab set written in {write_s:.2f} s")


def test_a_failed_write_leaves_the_old_set_whole(migrated: Engine, punjab_set: BoundarySet) -> None:
    engine = migrated
    v1 = write_boundary_set(engine, punjab_set)

    def crash(step: str, _fraction: float) -> None:
        if step == "writing stations":  # after archiving, deleting and writing the parents
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        replace_level(engine, "station", punjab_set.stations.assign(stand_in=False), progress=crash)
    assert current_version(engine) == v1
    assert {t: _count(engine, t, v1) for t in LEVEL_TABLES} == PUNJAB_COUNTS
    assert sum(_count(engine, f"{t}_history") for t in LEVEL_TABLES) == 0
    assert [s.version for s in boundary_sets(engine)] == [v1]


# ---------------------------------------------------------------- rules (small set, SQLite)
@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Engine]:
    made = create_sync_engine(DatabaseSettings(sqlite_path=tmp_path / "rules.sqlite"))
    yield made
    made.dispose()


def test_an_empty_or_unmigrated_database_holds_no_set(embedded: Engine) -> None:
    assert current_version(embedded) is None
    assert read_boundary_set(embedded) is None
    upgrade(embedded)
    assert read_boundary_set(embedded) is None
    with pytest.raises(NoBoundarySetError):
        replace_level(embedded, "station", tiny_set().stations)


def test_versions_move_forward_only(embedded: Engine) -> None:
    upgrade(embedded)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    write_boundary_set(embedded, tiny_set(), effective_from=start)
    with pytest.raises(BoundarySetConflictError, match="before the current set"):
        write_boundary_set(embedded, tiny_set(version="tiny-b"), effective_from=start - dt.timedelta(days=1))
    with pytest.raises(BoundarySetConflictError, match="in the future"):
        write_boundary_set(embedded, tiny_set(version="tiny-b"),
                           effective_from=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    with pytest.raises(BoundarySetWriteError, match="time zone"):
        write_boundary_set(embedded, tiny_set(version="tiny-b"), effective_from=dt.datetime(2024, 6, 1))
    write_boundary_set(embedded, tiny_set(version="tiny-b"))
    with pytest.raises(BoundarySetConflictError, match="superseded"):
        write_boundary_set(embedded, tiny_set())
    write_boundary_set(embedded, tiny_set(version="tiny-b"))  # the current one again: a refresh
    history = [(s.version, s.is_current) for s in boundary_sets(embedded)]
    assert history == [("tiny-a", False), ("tiny-b", True)]
    assert boundary_sets(embedded)[0].effective_from == start


def test_bad_frames_are_refused_before_anything_is_written(embedded: Engine) -> None:
    upgrade(embedded)
    write_boundary_set(embedded, tiny_set())
    good = tiny_set()
    orphan = good.stations.assign(tehsil_code=["T1", "T9"])
    with pytest.raises(BoundarySetWriteError, match=r"T1-002 → T9"):
        replace_level(embedded, "station", orphan)
    twice = good.stations.assign(code=["T1-001", "T1-001"])
    with pytest.raises(BoundarySetWriteError, match="duplicate code"):
        replace_level(embedded, "station", twice)
    lines = good.stations.set_geometry(gpd.GeoSeries(shapely.boundary(good.stations.geometry.values),
                                                     crs="EPSG:4326"))
    with pytest.raises(BoundarySetWriteError, match="not polygonal"):
        replace_level(embedded, "station", lines)
    with pytest.raises(BoundarySetWriteError, match="EPSG:4326"):
        replace_level(embedded, "station", good.stations.to_crs(32643))
    assert [s.version for s in boundary_sets(embedded)] == ["tiny-a"]


# ---------------------------------------------------------------- the router from the database
@pytest.mark.slow
def test_router_from_database_answers_like_the_files_router(
    loaded_postgis: str, punjab_router: Router, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Compiled from the ``stations`` table (into an empty cache), not read from the files' cache."""
    monkeypatch.setenv("SAFECITY_CACHE_DIR", str(tmp_path / "cache"))
    settings = Settings(database=DatabaseSettings(url=loaded_postgis))
    started = time.perf_counter()
    router = router_from_database(settings)
    compile_s = time.perf_counter() - started
    assert list((tmp_path / "cache").glob("routing-*.npz")), "the compiled index is cached"
    for name in ("lo", "hi", "owner", "candidate_ptr", "candidates"):
        assert np.array_equal(getattr(router.index, name), getattr(punjab_router.index, name)), name

    from jurisdictions.catalog import neighbouring_provinces

    # the files router as the service builds it: with Pakistan's other provinces beside it
    punjab_router = Router(punjab_router.index, punjab_router.nearest_limit_m,
                           neighbours=neighbouring_provinces())
    rng = np.random.default_rng(8)
    lon = rng.uniform(EXTENT[0], EXTENT[2], 5000)
    lat = rng.uniform(EXTENT[1], EXTENT[3], 5000)
    pd.testing.assert_frame_equal(router.resolve_many(lat, lon), punjab_router.resolve_many(lat, lon))
    for y, x in zip(lat[:300].tolist(), lon[:300].tolist(), strict=True):
        try:
            expected = punjab_router.resolve(y, x)
        except ValueError as exc:
            with pytest.raises(type(exc)):
                router.resolve(y, x)
            continue
        assert router.resolve(y, x) == expected

    started = time.perf_counter()
    cached = router_from_database(settings)
    load_s = time.perf_counter() - started
    assert cached.index.version == router.index.version
    print(f"\nrouter from PostGIS: compiled in {compile_s:.1f} s, from cache in {load_s:.2f} s")


def test_router_holder_swaps_in_a_new_set_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAFECITY_CACHE_DIR", str(tmp_path / "cache"))
    settings = Settings(database=DatabaseSettings(sqlite_path=tmp_path / "holder.sqlite"))
    try:
        holder = RouterHolder(settings)
        with pytest.raises(NoBoundarySetError):
            _ = holder.router
        from api.db.engine import sync_engine

        engine = sync_engine(settings)
        upgrade(engine)
        write_boundary_set(engine, tiny_set(split_lon=74.32))
        assert holder.router.resolve(31.52, 74.325).station_code == "T1-002"
        assert holder.refresh() is False
        assert holder.version == "tiny-a"

        moved = tiny_set(split_lon=74.33).stations
        version = replace_level(engine, "station", moved)
        assert holder.refresh() is True
        assert holder.version == version
        answer = holder.router.resolve(31.52, 74.325)
        assert (answer.station_code, answer.method) == ("T1-001", "interior")
        assert holder.router.resolve(31.52, 74.335).station_code == "T1-002"
        assert holder.refresh() is False
    finally:
        dispose_engines()


def test_the_served_set_follows_a_new_set_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the service serves from the set (router, boundaries, areas) is replaced together
    by the boundary-set poll (:meth:`api.container.ServedSet.refresh`)."""
    import gc

    from api.container import ServedSet
    from api.db.engine import sync_engine

    monkeypatch.setenv("SAFECITY_CACHE_DIR", str(tmp_path / "cache"))
    settings = Settings(database=DatabaseSettings(sqlite_path=tmp_path / "served.sqlite"))
    served = ServedSet(settings)
    try:
        engine = sync_engine(settings)
        upgrade(engine)
        write_boundary_set(engine, tiny_set(split_lon=74.32))
        asyncio.run(served.load())
        assert served.router().resolve(31.52, 74.325).station_code == "T1-002"
        first_areas = served.areas()
        assert served.version() == served.boundaries().version == first_areas.version == "tiny-a"
        asyncio.run(served.refresh())  # nothing new: nothing replaced
        assert served.areas() is first_areas

        version = replace_level(engine, "station", tiny_set(split_lon=74.33).stations)
        asyncio.run(served.refresh())
        assert served.version() == served.boundaries().version == version
        assert served.router().resolve(31.52, 74.325).station_code == "T1-001"
        assert served.jurisdictions.boundaries is served.boundaries()
        assert served.areas().version == version
    finally:
        gc.unfreeze()  # the areas of the new set re-settled the heap (as in the service)
        dispose_engines()
