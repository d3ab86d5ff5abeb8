"""PostGIS's point-in-polygon arithmetic, reproduced for points within rounding of an edge."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from jurisdictions.postgis_semantics import covers_xy, postgis_covers

pytestmark = pytest.mark.unit

# a polygon with a hole, and a second part
SHAPE = shapely.MultiPolygon([
    shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], holes=[[(1, 1), (3, 1), (3, 3), (1, 3)]]),
    shapely.Polygon([(2, 2), (2.5, 2), (2.5, 2.5), (2, 2.5)]),  # an island inside the hole
])


@settings(max_examples=300, deadline=None)
@given(st.floats(-1, 5), st.floats(-1, 5))
def test_agrees_with_geos_away_from_edges(x: float, y: float) -> None:
    if shapely.distance(SHAPE.boundary, shapely.Point(x, y)) > 1e-9:
        assert postgis_covers(SHAPE, x, y) == shapely.intersects_xy(SHAPE, x, y)


@pytest.mark.parametrize(("x", "y", "expected"), [
    (0, 0, True), (2, 0, True), (1, 2, True), (2, 2, True),   # vertices and edges
    (0.5, 0.5, True), (1.5, 1.5, False), (2.2, 2.2, True),    # ring, hole, island
    (5, 5, False), (4, 2, True),
])
def test_vertices_edges_holes_and_islands(x: float, y: float, expected: bool) -> None:
    assert postgis_covers(SHAPE, x, y) is expected


def test_on_a_sloped_edge_both_neighbours_cover_when_the_determinant_is_zero() -> None:
    # the point where PostGIS and GEOS were seen to disagree on the real layer: PostGIS's
    # plain determinant is exactly 0 for this point against the shared edge
    a, b = (73.3545817, 29.8026302), (73.3700403, 29.8536345)
    left = shapely.Polygon([a, b, (73.30, 29.85)])
    right = shapely.Polygon([a, (73.40, 29.80), b])
    t = 0.5
    x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
    side = (b[0] - a[0]) * (y - a[1]) - (x - a[0]) * (b[1] - a[1])
    expected = side == 0.0
    polygons = np.array([left, right], dtype=object)
    boundaries = shapely.boundary(polygons)
    got = covers_xy(polygons, boundaries, np.array([x, x]), np.array([y, y]))
    if expected:
        assert got.tolist() == [True, True]
    else:  # off the line by rounding: exactly one side covers it, as in PostGIS
        assert got.sum() == 1
