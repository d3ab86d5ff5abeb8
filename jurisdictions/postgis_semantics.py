"""Point-in-polygon exactly as PostGIS decides ``ST_Covers(polygon, point)``.

GEOS (shapely) and PostGIS agree on every point except those within a rounding error
of a polygon edge: GEOS decides the side of an edge with a robust (double-double)
orientation test, PostGIS 3.3 with the plain double-precision determinant of its
interval-tree point-in-polygon (``lwgeom_itree.c``: a point is on the boundary when
that determinant is exactly ``0.0`` and the point lies in the segment's bounding box;
otherwise a winding number decides). A point placed on a shared border can therefore
be "outside" one neighbour for GEOS and "on the boundary" of both for PostGIS, whose
tie rule then picks the smaller code. PostGIS is the system of record, so for the rare
points that close to an edge the router re-decides with PostGIS's own arithmetic
(numpy evaluates the same IEEE operations in the same order, so the zero test is
bit-identical); everywhere else GEOS's answer is the same and much faster.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely

NEAR_EDGE_DEG = 1e-9
"""Points nearer than this to a polygon's boundary are decided with PostGIS arithmetic.

The two predicates can only differ where the determinant is within rounding of zero,
i.e. a few 1e-16 relative to the coordinates: 1e-9° (0.1 mm) is a wide margin."""

INSIDE, BOUNDARY, OUTSIDE = 1, 0, -1


def _ring(coords: npt.NDArray[np.float64], x: float, y: float) -> int:
    """PostGIS's ``itree_point_in_ring`` for one closed ring."""
    x1, y1 = coords[:-1, 0], coords[:-1, 1]
    x2, y2 = coords[1:, 0], coords[1:, 1]
    in_range = (np.minimum(y1, y2) <= y) & (y <= np.maximum(y1, y2))
    side = (x2 - x1) * (y - y1) - (x - x1) * (y2 - y1)
    on_segment = ((np.minimum(x1, x2) <= x) & (x <= np.maximum(x1, x2))
                  & (np.minimum(y1, y2) <= y) & (y <= np.maximum(y1, y2)))
    if np.any(in_range & (side == 0.0) & on_segment):
        return BOUNDARY
    up = in_range & (y1 <= y) & (y < y2) & (side > 0)
    down = in_range & ~up & (y2 <= y) & (y < y1) & (side < 0)
    return INSIDE if int(up.sum()) - int(down.sum()) != 0 else OUTSIDE


def _rings(polygon: shapely.Geometry) -> list[list[npt.NDArray[np.float64]]]:
    """Per part: exterior ring coordinates, then each hole's."""
    parts = []
    for part in shapely.get_parts(polygon):
        holes = shapely.get_interior_ring(part, np.arange(shapely.get_num_interior_rings(part)))
        parts.append([shapely.get_coordinates(shapely.get_exterior_ring(part)),
                      *(shapely.get_coordinates(h) for h in holes)])
    return parts


def _covers_rings(rings: list[list[npt.NDArray[np.float64]]], x: float, y: float) -> bool:
    for exterior, *holes in rings:
        verdict = _ring(exterior, x, y)
        if verdict == BOUNDARY:
            return True
        if verdict == INSIDE:
            inner = [_ring(h, x, y) for h in holes]
            if BOUNDARY in inner or INSIDE not in inner:
                return True
    return False


def postgis_covers(polygon: shapely.Geometry, x: float, y: float) -> bool:
    """``ST_Covers(polygon, POINT(x y))`` as PostGIS 3.3 computes it (multi-polygons too)."""
    return _covers_rings(_rings(polygon), x, y)


def covers_xy(polygons: npt.NDArray[np.object_], boundaries: npt.NDArray[np.object_],
              x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Pairwise ``ST_Covers(polygons[i], (x[i], y[i]))`` with PostGIS semantics.

    ``polygons`` and their ``boundaries`` should be prepared (:func:`shapely.prepare`):
    GEOS decides every pair, then pairs within :data:`NEAR_EDGE_DEG` of an edge are
    re-decided by :func:`postgis_covers`.
    """
    verdict = shapely.intersects_xy(polygons, x, y)
    if verdict.size == 0:
        return verdict
    near = np.nonzero(shapely.dwithin(boundaries, shapely.points(x, y), NEAR_EDGE_DEG))[0]
    rings: dict[int, list[list[npt.NDArray[np.float64]]]] = {}
    for k in near:  # rare: only points placed (almost) exactly on a border
        key = id(polygons[k])
        if key not in rings:
            rings[key] = _rings(polygons[k])
        verdict[k] = _covers_rings(rings[key], float(x[k]), float(y[k]))
    return verdict
