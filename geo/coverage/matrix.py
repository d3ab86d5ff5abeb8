"""Which site covers which demand point: the sparse data every coverage model shares.

A demand point ``i`` is covered by site ``j`` when their Euclidean distance ``d_ij`` in the
tehsil's UTM zone (:func:`geo.crs.utm_epsg`) is at most the coverage radius. Only the
covering pairs are kept (a k-d tree finds them), as index arrays and a sparse 0/1 matrix:
a large tehsil has thousands of demand cells and candidates, of which a few dozen lie within
any cell's radius. Existing sites are ``predefined``: in every plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import geopandas as gpd
import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.spatial import cKDTree

from geo.coverage.errors import CoverageInputError, NoDemandError
from geo.crs import utm_epsg

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


DEFAULT_RADIUS_M = 500.0
"""Default coverage radius of a camera site, in metres."""


def projected_xy(frame: gpd.GeoDataFrame, epsg: int) -> FloatArray:
    """``(x, y)`` of point geometries in ``epsg`` (metres for a UTM zone), one row per point."""
    projected = frame.geometry.to_crs(epsg)
    return np.column_stack([projected.x.to_numpy(), projected.y.to_numpy()])


@dataclass(frozen=True)
class CoverageMatrix:
    """Which site covers which demand point: the data every coverage model shares.

    Attributes
    ----------
    weights : numpy.ndarray
        Demand weight ``w_i`` of each demand point (client).
    rows, cols, dist : numpy.ndarray
        The pairs (client ``i``, site ``j``) with ``d_ij <= service_radius`` and their
        distances; ``a_ij = 1`` exactly for these pairs.
    n_facilities : int
        Number of sites (existing and candidate).
    predefined : numpy.ndarray
        ``True`` for sites that must be in every solution (existing sites).
    service_radius : float
        Coverage radius (the unit of the distances; metres here).
    """

    weights: FloatArray
    rows: IntArray
    cols: IntArray
    dist: FloatArray
    n_facilities: int
    predefined: BoolArray
    service_radius: float

    def __post_init__(self) -> None:
        w = self.weights
        if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any():
            raise CoverageInputError("demand weights must be a 1-D array of finite numbers ≥ 0")
        if self.predefined.shape != (self.n_facilities,):
            raise CoverageInputError(f"predefined flags have shape {self.predefined.shape}, "
                                     f"expected ({self.n_facilities},)")
        if not w.sum() > 0:
            raise NoDemandError("no demand to cover: every demand weight is zero")

    @classmethod
    def from_pairs(cls, weights: npt.ArrayLike, rows: npt.ArrayLike, cols: npt.ArrayLike,
                   dist: npt.ArrayLike, *, n_facilities: int, service_radius: float,
                   predefined: npt.ArrayLike | None = None) -> CoverageMatrix:
        """From covering pairs (client, site, distance) found by any means."""
        pre = (np.zeros(n_facilities, dtype=bool) if predefined is None
               else np.asarray(predefined).astype(bool).reshape(-1))
        r, c = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        order = np.lexsort((c, r))  # client-major, as the reductions expect
        return cls(np.asarray(weights, dtype=np.float64).reshape(-1), r[order], c[order],
                   np.asarray(dist, dtype=np.float64)[order], int(n_facilities), pre,
                   float(service_radius))

    @classmethod
    def from_cost_matrix(cls, cost_matrix: npt.ArrayLike, weights: npt.ArrayLike,
                         service_radius: float,
                         predefined_facilities_arr: npt.ArrayLike | None = None) -> CoverageMatrix:
        """From a dense client × site cost matrix, with spopt's rule ``a_ij = [c_ij <= r]``."""
        cost = np.asarray(cost_matrix, dtype=np.float64)
        rows, cols = np.nonzero(cost <= service_radius)
        return cls.from_pairs(weights, rows, cols, cost[rows, cols], n_facilities=cost.shape[1],
                              service_radius=service_radius, predefined=predefined_facilities_arr)

    @classmethod
    def from_points(cls, demand_xy: npt.ArrayLike, facility_xy: npt.ArrayLike,
                    weights: npt.ArrayLike, service_radius: float,
                    predefined: npt.ArrayLike | None = None) -> CoverageMatrix:
        """From projected coordinates (metres): the covering pairs come from a k-d tree."""
        dxy = np.asarray(demand_xy, dtype=np.float64).reshape(-1, 2)
        fxy = np.asarray(facility_xy, dtype=np.float64).reshape(-1, 2)
        if len(fxy) == 0:
            raise CoverageInputError("no sites: give candidate or existing sites")
        pairs = cKDTree(dxy).sparse_distance_matrix(cKDTree(fxy), service_radius, output_type="ndarray")
        return cls.from_pairs(weights, pairs["i"], pairs["j"], pairs["v"],
                              n_facilities=len(fxy), service_radius=service_radius, predefined=predefined)

    @classmethod
    def from_geodataframe(cls, gdf_demand: gpd.GeoDataFrame, gdf_fac: gpd.GeoDataFrame,
                          weights_cols: str, service_radius: float, *,
                          predefined_facility_col: str | None = None,
                          epsg: int | None = None) -> CoverageMatrix:
        """From demand and site points, spopt-style (``weights_cols``, ``predefined_facility_col``).

        Geographic coordinates are projected to ``epsg`` or, by default, the UTM zone of
        the demand's centre (:func:`geo.crs.utm_epsg`); projected frames are used as given.
        """
        if gdf_demand.crs is None or gdf_fac.crs is None:
            raise CoverageInputError("demand and sites need a CRS")
        if epsg is None and gdf_demand.crs.is_geographic:
            epsg = utm_epsg(float(gdf_demand.geometry.x.mean()))
        target = epsg if epsg is not None else gdf_demand.crs
        predefined = (None if predefined_facility_col is None
                      else gdf_fac[predefined_facility_col].to_numpy(dtype=bool))
        return cls.from_points(projected_xy(gdf_demand, target), projected_xy(gdf_fac, target),
                               gdf_demand[weights_cols].to_numpy(dtype=np.float64),
                               service_radius, predefined)

    @property
    def n_clients(self) -> int:
        """Number of demand points."""
        return int(self.weights.size)

    @property
    def total_weight(self) -> float:
        """Total demand ``W = Σ w_i``."""
        return float(self.weights.sum())

    @cached_property
    def aij(self) -> sparse.csr_matrix:
        """The 0/1 coverage matrix, clients × sites (sparse CSR)."""
        data = np.ones(self.rows.size, dtype=np.float64)
        return sparse.csr_matrix((data, (self.rows, self.cols)),
                                 shape=(self.n_clients, self.n_facilities))

    @cached_property
    def aij_t(self) -> sparse.csr_matrix:
        """The transposed coverage matrix, sites × clients (sparse CSR)."""
        return self.aij.T.tocsr()

    def covered(self, selected: npt.ArrayLike) -> BoolArray:
        """Whether each client lies within the radius of at least one selected site."""
        sel = np.asarray(selected, dtype=bool)
        return np.asarray(self.aij @ sel.astype(np.float64) > 0).reshape(-1)

    def covered_weight(self, selected: npt.ArrayLike) -> float:
        """Demand covered by the selected sites."""
        return float(self.weights[self.covered(selected)].sum())

    def covered_share(self, selected: npt.ArrayLike) -> float:
        """Share of the total demand covered by the selected sites (0..1)."""
        return self.covered_weight(selected) / self.total_weight

    @property
    def coverable(self) -> BoolArray:
        """Clients that some site (selected or not) could cover."""
        return np.bincount(self.rows, minlength=self.n_clients) > 0

    @property
    def free_sites(self) -> int:
        """Number of sites that are not predefined (candidates for new sites)."""
        return int((~self.predefined).sum())

    def assignment(self, selected: npt.ArrayLike) -> IntArray:
        """Nearest selected site of each client within the radius (``-1`` when uncovered)."""
        sel = np.asarray(selected, dtype=bool)
        keep = sel[self.cols]
        r, c, d = self.rows[keep], self.cols[keep], self.dist[keep]
        order = np.lexsort((c, d, r))
        r, c = r[order], c[order]
        first = np.r_[True, r[1:] != r[:-1]] if r.size else np.zeros(0, dtype=bool)
        out = np.full(self.n_clients, -1, dtype=np.int64)
        out[r[first]] = c[first]
        return out
