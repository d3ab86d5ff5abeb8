"""The forecast grid: H3 cells of one resolution over a study area, in metres.

A study area is any (Multi)Polygon in longitude/latitude passed in by the caller (a
police station, a district, or a test square); its cells are those whose centre lies
inside it (H3's rule, as :func:`geo.aggregate.study_area_cells`). Distances are metres
in the UTM zone of the area's centre (:mod:`geo.crs`). Neighbour lists are built once
per grid with one bulk ``grid_disk`` and kept, so every origin of a backtest reuses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import h3
import h3ronpy
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse as sp
import shapely
from pyproj import Transformer

from geo import h3cells
from geo.aggregate import check_resolution
from geo.crs import utm_epsg
from geo.forecast.events import ForecastError

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

T = TypeVar("T")

RING_DISTORTION = 0.85
"""H3 hexagons of one resolution vary in size (pentagon-free Punjab: by a few per cent);
ring counts for a radius are computed with this margin so no cell within it is missed."""


@dataclass(frozen=True, eq=False)
class Grid:
    """H3 cells (sorted ``uint64``) with their centres, UTM metres and areas.

    Attributes
    ----------
    cells : uint64 array
        Ascending cell indexes; a cell's position here is its row in every risk array.
    res : int
        H3 resolution.
    epsg : int
        UTM zone of the metres (42N or 43N, from the centre's longitude).
    x, y : float arrays
        Cell centres in metres.
    area_m2 : float array
        Each cell's area.
    """

    cells: h3cells.Cells
    res: int
    epsg: int
    x: FloatArray
    y: FloatArray
    area_m2: FloatArray
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_polygon(cls, polygon: shapely.Geometry, res: int) -> Grid:
        """Cells at ``res`` whose centre lies in ``polygon`` (longitude/latitude)."""
        check_resolution(res)
        cells = h3cells.polygon_to_cells(polygon, res)
        if cells.size == 0:
            raise ForecastError(f"the study area holds no cell centre at resolution {res}")
        return cls.from_cells(cells)

    @classmethod
    def from_cells(cls, cells: h3cells.Cells) -> Grid:
        """A grid of given cells (one resolution)."""
        c = np.unique(np.asarray(cells, dtype=np.uint64))
        res = np.unique(h3cells.resolution_of(c))
        if res.size != 1:
            raise ForecastError(f"grid cells must share one resolution, found {res.tolist()}")
        lat, lon = h3cells.cells_to_latlng(c)
        epsg = utm_epsg(float((lon.min() + lon.max()) / 2))
        x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
        area = np.asarray(h3ronpy.cells_area_m2(pa.array(c)), dtype=np.float64)
        return cls(c, int(res[0]), epsg, np.asarray(x, dtype=np.float64),
                   np.asarray(y, dtype=np.float64), area)

    def __len__(self) -> int:
        return int(self.cells.size)

    @property
    def edge_m(self) -> float:
        """Average hexagon edge length at this resolution (= its circumradius)."""
        return float(h3.average_hexagon_edge_length(self.res, unit="m"))

    @property
    def spacing_m(self) -> float:
        """Average distance between neighbouring cell centres (√3 × edge)."""
        return math.sqrt(3.0) * self.edge_m

    @property
    def total_area_m2(self) -> float:
        return float(self.area_m2.sum())

    def locate(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> IntArray:
        """Row of each point's cell in this grid, −1 for points outside it."""
        cells = h3cells.latlng_to_cells(lat, lon, self.res)
        pos, found = h3cells.lookup(self.cells, cells)
        return np.where(found, pos, -1).astype(np.int64)

    def project(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """UTM metres ``(x, y)`` of points, in this grid's zone."""
        transformer = self.memo("transformer", lambda: Transformer.from_crs(4326, self.epsg, always_xy=True))
        x, y = transformer.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def memo(self, key: object, build: Callable[[], T]) -> T:
        """``build()`` once per grid and ``key``: what methods derive from the grid alone
        (neighbour lists, smoothing matrices) is shared by every origin of a backtest."""
        if key not in self._cache:
            self._cache[key] = build()
        found: T = self._cache[key]
        return found

    def rings_for(self, radius_m: float) -> int:
        """Rings ``k`` such that every cell whose centre lies within ``radius_m`` of any
        point of a cell is in that cell's k-disk."""
        inner_step = 1.5 * self.edge_m * RING_DISTORTION  # a k-disk reaches ≥ 1.5·k·edge
        return max(1, math.ceil((radius_m + self.edge_m) / inner_step))

    def disks(self, k: int) -> tuple[IntArray, IntArray]:
        """CSR neighbour lists ``(indptr, rows)``: the grid rows within ``k`` rings of each
        row (itself included), computed once per ``k`` with one bulk ``grid_disk``."""
        def build() -> tuple[IntArray, IntArray]:
            origin, members = h3cells.grid_disk_pairs(self.cells, k)
            pos, found = h3cells.lookup(self.cells, members)
            origin, pos = origin[found], pos[found]
            indptr = np.zeros(len(self) + 1, dtype=np.int64)
            np.cumsum(np.bincount(origin, minlength=len(self)), out=indptr[1:])
            return indptr, pos.astype(np.int64)

        return self.memo(("disks", k), build)

    def adjacency(self, k: int = 1) -> sp.csr_array:
        """Binary sparse matrix of rows within ``k`` rings of each other, self excluded."""
        def build() -> sp.csr_array:
            indptr, rows = self.disks(k)
            src = np.repeat(np.arange(len(self)), np.diff(indptr))
            keep = rows != src
            return sp.csr_array((np.ones(int(keep.sum())), (src[keep], rows[keep])),
                                shape=(len(self), len(self)))

        return self.memo(("adjacency", k), build)

    def candidates(self, radius_m: float) -> tuple[IntArray, IntArray]:
        """CSR lists ``(indptr, rows)``: for each row, the rows whose centre lies within
        ``radius_m`` + a circumradius (with :data:`RING_DISTORTION` margin) of its centre —
        every cell that any point of the row's cell can be within ``radius_m`` of, and
        about half as many as the whole disk (computed once per radius)."""
        def build() -> tuple[IntArray, IntArray]:
            indptr, rows = self.disks(self.rings_for(radius_m))
            src = np.repeat(np.arange(len(self)), np.diff(indptr))
            reach = radius_m + self.edge_m / RING_DISTORTION
            keep = (self.x[rows] - self.x[src]) ** 2 + (self.y[rows] - self.y[src]) ** 2 <= reach**2
            kept = np.zeros(len(self) + 1, dtype=np.int64)
            np.cumsum(np.bincount(src[keep], minlength=len(self)), out=kept[1:])
            return kept, rows[keep]

        return self.memo(("candidates", radius_m), build)

    def near_pairs(self, x: FloatArray, y: FloatArray, cell: IntArray, radius_m: float
                   ) -> tuple[IntArray, IntArray, FloatArray]:
        """Every (point, grid row) pair whose distance is at most ``radius_m``.

        Points are given in metres with their own grid row (``cell`` ≥ 0); candidates
        are the rows near their cell (:meth:`candidates`), so the work is proportional
        to points × candidates, never points × cells. Returns the point index, the grid
        row and the distance in metres.
        """
        indptr, rows = self.candidates(radius_m)
        counts = indptr[cell + 1] - indptr[cell]
        point = np.repeat(np.arange(cell.size), counts)
        starts = np.repeat(indptr[cell] - np.cumsum(counts) + counts, counts)
        target = rows[starts + np.arange(point.size)]
        d2 = (self.x[target] - x[point]) ** 2 + (self.y[target] - y[point]) ** 2
        keep = d2 <= radius_m**2
        return point[keep], target[keep], np.sqrt(d2[keep])

    def top_cells(self, risk: npt.ArrayLike, share: float) -> npt.NDArray[np.bool_]:
        """Cells of highest risk per area covering about ``share`` of the grid's area
        (whole cells, ties broken by cell order): what a map highlights."""
        density = np.asarray(risk, dtype=np.float64) / self.area_m2
        order = np.lexsort((np.arange(len(self)), -density))
        covered = np.cumsum(self.area_m2[order]) <= share * self.total_area_m2 + 1e-6
        chosen = np.zeros(len(self), dtype=bool)
        chosen[order[covered]] = True
        return chosen
