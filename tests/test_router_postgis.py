"""The router agrees with PostGIS ST_Covers (and the tie rule) on every point.

Points: hypothesis-drawn over Punjab's whole extent (inside and outside the province),
exact station vertices (shared by two or three stations), and points on shared edges.
The expected answer is ``SELECT code FROM stations WHERE ST_Covers(geom, p) ORDER BY
code LIMIT 1`` against the boundary set loaded by ``safecity jurisdictions load``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

EXTENT = (69.2, 27.6, 75.5, 34.1)  # Punjab's extent with a margin (lon/lat)
COVERS_SQL = """
SELECT p.ord, (SELECT s.code FROM stations s WHERE ST_Covers(s.geom, p.geom)
               ORDER BY s.code LIMIT 1)
FROM unnest(%s::float8[], %s::float8[]) WITH ORDINALITY AS u(x, y, ord),
     LATERAL (SELECT ST_SetSRID(ST_MakePoint(u.x, u.y), 4326) AS geom, u.ord) AS p
ORDER BY p.ord
"""


@pytest.fixture(scope="module")
def pg(loaded_postgis: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(loaded_postgis) as conn:
        yield conn


@pytest.fixture(scope="module")
def db_router(loaded_postgis: str):  # type: ignore[no-untyped-def]
    """The router compiled from the database's stations table (as the service does)."""
    from api.routing import current_router
    from api.settings import DatabaseSettings, Settings

    return current_router(Settings(database=DatabaseSettings(url=loaded_postgis)))


def postgis_answers(pg: psycopg.Connection, lon: np.ndarray, lat: np.ndarray) -> list[str]:
    rows = pg.execute(COVERS_SQL, (lon.tolist(), lat.tolist())).fetchall()
    return [code or "" for _, code in rows]


def router_answers(router, lon: np.ndarray, lat: np.ndarray) -> list[str]:  # type: ignore[no-untyped-def]
    """Covering station per point, '' where no station covers it (nearest or rejected)."""
    out = router.resolve_many(lat, lon)
    covered = out["method"].isin(["interior", "boundary"])
    return out["station_code"].where(covered, "").tolist()


def single_answers(router, lon: np.ndarray, lat: np.ndarray) -> list[str]:  # type: ignore[no-untyped-def]
    answers = []
    for y, x in zip(lat.tolist(), lon.tolist(), strict=True):
        try:
            a = router.resolve(y, x)
            answers.append("" if a.out_of_coverage else a.station_code)
        except ValueError:
            answers.append("")
    return answers


def test_database_router_matches_stations_table(pg: psycopg.Connection, db_router) -> None:  # type: ignore[no-untyped-def]
    count, = pg.execute("SELECT count(*) FROM stations").fetchone()  # type: ignore[misc]
    assert count == len(db_router.codes) == 720


lon_s = st.floats(EXTENT[0], EXTENT[2], allow_nan=False)
lat_s = st.floats(EXTENT[1], EXTENT[3], allow_nan=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(lon_s, lat_s), min_size=1, max_size=400))
def test_random_points_over_the_extent(pg: psycopg.Connection, db_router, points) -> None:  # type: ignore[no-untyped-def]
    lon, lat = np.array(points).T
    expected = postgis_answers(pg, lon, lat)
    assert router_answers(db_router, lon, lat) == expected
    assert single_answers(db_router, lon[:50], lat[:50]) == expected[:50]


def _boundary_points(router, kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    coords = shapely.get_coordinates(shapely.boundary(router.index.stations.geometry.values))
    rng = np.random.default_rng(seed)
    if kind == "vertex":
        picked = coords[rng.choice(len(coords), n, replace=False)]
    else:
        i = rng.choice(len(coords) - 1, n, replace=False)
        t = rng.uniform(0, 1, n)[:, None] if kind == "edge" else 0.5
        picked = coords[i] + (coords[i + 1] - coords[i]) * t
    return picked[:, 0], picked[:, 1]


@pytest.mark.parametrize("kind", ["vertex", "midpoint", "edge"])
def test_points_on_vertices_and_shared_edges(pg: psycopg.Connection, db_router, kind: str) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _boundary_points(db_router, kind, 20_000, seed=len(kind))
    expected = postgis_answers(pg, lon, lat)
    got = router_answers(db_router, lon, lat)
    mismatches = [(x, y, e, g) for x, y, e, g in zip(lon, lat, expected, got, strict=True) if e != g]
    assert mismatches == []
    assert single_answers(db_router, lon[:2000], lat[:2000]) == expected[:2000]


def test_vertices_shared_by_several_stations_follow_the_tie_rule(  # type: ignore[no-untyped-def]
    pg: psycopg.Connection, db_router
) -> None:
    coords = shapely.get_coordinates(shapely.boundary(db_router.index.stations.geometry.values))
    values, counts = np.unique(coords, axis=0, return_counts=True)
    shared = values[counts >= 3][:3000]  # vertices where three or more rings meet
    assert len(shared) > 100
    lon, lat = shared[:, 0], shared[:, 1]
    expected = postgis_answers(pg, lon, lat)
    assert router_answers(db_router, lon, lat) == expected
