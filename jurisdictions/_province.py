"""Coarse H3 cells that may touch a set of polygons (the compile's starting level)."""

from __future__ import annotations

import h3
import numpy as np
import numpy.typing as npt
import shapely

from geo import h3cells


def province_cells(polygons: npt.NDArray[np.object_], res: int) -> h3cells.Cells:
    """Every cell at ``res`` whose hexagon may overlap the union of ``polygons``.

    Cells whose centre lies in the (buffered) extent hull plus their 1-ring: a cell
    overlapping the area but with its centre outside is a neighbour of one inside.
    """
    hull = shapely.convex_hull(shapely.union_all(shapely.envelope(polygons)))
    outline = shapely.buffer(hull, 0.25)
    shape = h3.geo_to_h3shape(shapely.geometry.mapping(outline))
    inside = np.array([h3.str_to_int(c) for c in h3.h3shape_to_cells(shape, res)], dtype=np.uint64)
    _, ring = h3cells.grid_disk_pairs(inside, 1)
    return np.unique(ring)
