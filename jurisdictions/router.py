"""Resolve call locations to police-station jurisdictions.

Semantics are PostGIS ``ST_Covers``: a point on a boundary belongs to every station it
touches, and the **smallest station code wins** a tie. A point covered by no station
(river, border, bad GPS) goes to the nearest station within ``nearest_limit_m`` and is
flagged ``out_of_coverage``; beyond that it is rejected with a reason. A call with an
uncertainty radius goes to the station with the greatest area of overlap with that
circle (NENA i3), ties again to the smallest code.

Methods in answers: ``interior`` (an H3 cell wholly inside one station), ``boundary``
(exact test on the few candidates of a boundary cell), ``nearest`` and ``overlap``.
"""

from __future__ import annotations

import bisect
import math
import os
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from enum import IntEnum
from functools import cached_property
from typing import NoReturn

import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

# The one-point path calls the compiled functions beneath the public wrappers. Measured on
# 20,000 covered points, the variants interleaved in one process (best of 21 passes each):
# h3's public ``h3.api.basic_int.latlng_to_cell`` adds 2-5 % to ``Router.resolve`` (about
# 1.08 µs) and shapely's public ``points``/``intersects_xy``/``dwithin`` about 7 % more,
# against a budget (bench/routing.py: ≥ 30x PostGIS per point) the router only just meets
# on an idle machine (README: 32.4x). pyproject.toml pins h3 and shapely to the minor
# versions these names were checked on, and tests/test_router.py fails by name if one of
# them moves.
from h3._cy import latlng_to_cell as _latlng_to_cell
from pyproj import Transformer
from shapely.lib import dwithin as _dwithin
from shapely.lib import intersects_xy as _intersects_xy
from shapely.lib import points as _points

from geo import h3cells
from geo.crs import UTM_42N, UTM_43N, WGS84, ZONE_EDGE_LON
from jurisdictions.errors import NegativeRadiusError, NoStationNearbyError, OutsidePunjabError
from jurisdictions.index import RoutingIndex, covering_rows, first_per_group
from jurisdictions.limits import DEFAULT_NEAREST_LIMIT_M
from jurisdictions.postgis_semantics import NEAR_EDGE_DEG, covers_xy
from jurisdictions.provinces import Neighbours

METHODS = ("interior", "boundary", "nearest", "overlap", "rejected")
HIERARCHY = ("station_code", "tehsil_code", "district_code", "region_code")
ANSWER_COLUMNS = (*HIERARCHY, "method", "out_of_coverage", "distance_m")
"""Columns of a batch answer (the router CLI's output contract), then ``reason``, the
names (:data:`NAME_COLUMNS`) and ``outside_punjab``."""
NAME_COLUMNS = {"station_code": "station_name", "tehsil_code": "tehsil_name",
                "district_code": "district_name", "region_code": "region_name"}
"""The name column beside each code column of an answer."""
_NAME_SOURCES = {"station_code": "station", "tehsil_code": "tehsil",
                 "district_code": "district", "region_code": "region"}
"""Where the station layer holds each level's name."""

PARALLEL_CHUNK = 100_000
"""Batches larger than this are split across threads."""


class Rejection(IntEnum):
    """Why :meth:`Router.resolve_many` answered a row ``rejected`` (``NONE``: it did not)."""

    NONE = 0
    INVALID_COORDINATE = 1
    OUTSIDE_EXTENT = 2
    NEGATIVE_RADIUS = 3
    NO_STATION_NEARBY = 4

    def text(self, nearest_limit_m: float) -> str:
        """The ``reason`` column's words for this code (part of the batch answer's contract)."""
        return {
            Rejection.NONE: "",
            Rejection.INVALID_COORDINATE: "not a valid latitude/longitude",
            Rejection.OUTSIDE_EXTENT: "outside Punjab's extent",
            Rejection.NEGATIVE_RADIUS: "radius_m must not be negative",
            Rejection.NO_STATION_NEARBY: f"no station within {nearest_limit_m:.0f} m",
        }[self]

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQ = 111_320.0


@dataclass(frozen=True, slots=True)
class RouteAnswer:
    """Where one call goes."""

    station_code: str
    tehsil_code: str
    district_code: str
    region_code: str
    method: str
    out_of_coverage: bool
    distance_m: float | None
    station_name: str
    tehsil_name: str
    district_name: str
    region_name: str
    outside_punjab: str | None = None
    """The province or territory the point lies in when it is not Punjab's (no station
    covers it): the station is then only the nearest Punjab one, a fallback, and the call
    should be transferred."""

    @property
    def transfer_suggested(self) -> bool:
        """Whether the call belongs to another province's or territory's police."""
        return self.outside_punjab is not None

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "transfer_suggested": self.transfer_suggested}


class Router:
    """Answers for points, one at a time or in bulk, from a :class:`RoutingIndex`."""

    def __init__(self, index: RoutingIndex,
                 nearest_limit_m: float = DEFAULT_NEAREST_LIMIT_M,
                 threads: int | None = None, neighbours: Neighbours | None = None) -> None:
        self.index = index
        self.neighbours = neighbours
        """Pakistan's other provinces and territories: a point no station covers that lies
        in one is answered with its name and the nearest station as a fallback (any
        distance), instead of the nearest within the limit or a rejection."""
        self.threads = threads or min(4, os.cpu_count() or 1)
        """Threads for the H3/search step of large batches (GEOS work stays on one)."""
        self.nearest_limit_m = float(nearest_limit_m)
        stations = index.stations
        self.codes = stations["code"].to_numpy(dtype=str)
        self._polygons = np.asarray(stations.geometry.values, dtype=object)
        self._boundaries = shapely.boundary(self._polygons)
        shapely.prepare(self._polygons)
        shapely.prepare(self._boundaries)
        self._tree = shapely.STRtree(self._polygons)
        cols = [c for c in HIERARCHY[1:] if c in stations]
        self._hierarchy = {c: stations[c].to_numpy(dtype=str) for c in cols}
        for c in HIERARCHY[1:]:
            self._hierarchy.setdefault(c, np.full(len(stations), "", dtype=str))
        minx, miny, maxx, maxy = shapely.total_bounds(self._polygons)
        margin_lat = self.nearest_limit_m / _M_PER_DEG_LAT
        margin_lon = self.nearest_limit_m / (_M_PER_DEG_LON_EQ * math.cos(math.radians(maxy)))
        self.extent = (float(minx - margin_lon), float(miny - margin_lat),
                       float(maxx + margin_lon), float(maxy + margin_lat))
        self._categories: dict[str, list[str]] = {"station_code": [*self.codes.tolist(), ""]}
        self._level_index: dict[str, npt.NDArray[np.int64]] = {}
        for c in HIERARCHY[1:]:
            values, inverse = np.unique(self._hierarchy[c], return_inverse=True)
            self._categories[c] = [v for v in values.tolist() if v] + [""]
            remap = np.array([self._categories[c].index(v) for v in values.tolist()])
            self._level_index[c] = remap[inverse]
        self._names = {c: (stations[source].fillna("").astype(str).to_numpy(dtype=str)
                           if source in stations else np.full(len(stations), "", dtype=str))
                       for c, source in _NAME_SOURCES.items()}
        tehsil, district, region = (self._hierarchy[c] for c in HIERARCHY[1:])
        names = [self._names[c] for c in HIERARCHY]
        self._answers = [
            RouteAnswer(str(self.codes[i]), str(tehsil[i]), str(district[i]), str(region[i]),
                        "interior", False, None, *(str(level[i]) for level in names))
            for i in range(len(self.codes))
        ]

    # ------------------------------------------------------------------ one point
    @cached_property
    def _single(self) -> _SingleLookup:
        return _SingleLookup(self.index)

    def resolve(self, lat: float, lon: float, radius_m: float | None = None) -> RouteAnswer:
        """Route one call (about a microsecond for interior points).

        Raises
        ------
        OutsidePunjabError
            The point lies outside Punjab's extent (or is not a valid coordinate).
        NoStationNearbyError
            No station covers the point and none lies within ``nearest_limit_m``.
        NegativeRadiusError
            ``radius_m`` is below zero.
        """
        minx, miny, maxx, maxy = self.extent
        if not (miny <= lat <= maxy and minx <= lon <= maxx):
            beyond = self._province_at(lat, lon)
            if beyond is None:
                _raise_outside(lat, lon)
            return self._transfer(lat, lon, float(radius_m or 0.0), beyond)
        if radius_m:
            return self._overlap(lat, lon, float(radius_m))
        single = self._single
        cell = _latlng_to_cell(lat, lon, self.index.fine_res)
        bucket = single.buckets.get(cell >> single.shift)
        owner = None
        if bucket is not None:
            i = bisect.bisect_right(single.lo, cell, bucket[0], bucket[1]) - 1
            if i >= bucket[0] and cell <= single.hi[i]:
                owner = single.owner_of[i]
        if owner is not None:
            if owner >= 0:
                return self._answers[owner]
            b = -1 - owner
            first, last = single.candidate_ptr[b], single.candidate_ptr[b + 1]
            candidates = self.index.candidates[first:last]
            # candidates ascend by code, so the first hit is the tie rule's answer
            hits = _intersects_xy(self._polygons[candidates], lon, lat)
            near = _dwithin(self._boundaries[candidates], _point(lon, lat), NEAR_EDGE_DEG)
            if near.any():  # within rounding of an edge: decide as PostGIS does
                hits = covers_xy(self._polygons[candidates], self._boundaries[candidates],
                                 np.full(len(candidates), lon), np.full(len(candidates), lat))
            hits = hits.tolist()
            if True in hits:
                return self._with(int(candidates[hits.index(True)]), "boundary", False, None)
            row = int(covering_rows(self._polygons, self._boundaries, self._tree,
                                    np.array([lon]), np.array([lat]))[0])
            if row >= 0:
                return self._with(row, "boundary", False, None)
        if self.neighbours is not None:
            beyond = self.neighbours.name_at(lat, lon)
            if beyond is not None:
                return self._transfer(lat, lon, 0.0, beyond)
        rows, dist = self._nearest(np.array([lat]), np.array([lon]))
        if rows[0] < 0:
            raise NoStationNearbyError(
                f"no station covers ({lat:.6f}, {lon:.6f}) and none lies within "
                f"{self.nearest_limit_m:.0f} m"
            )
        return self._with(int(rows[0]), "nearest", True, float(dist[0]))

    def _with(self, row: int, method: str, out: bool, distance: float | None,
              outside: str | None = None) -> RouteAnswer:
        base = self._answers[row]
        return RouteAnswer(base.station_code, base.tehsil_code, base.district_code,
                           base.region_code, method, out, distance, base.station_name,
                           base.tehsil_name, base.district_name, base.region_name, outside)

    def _province_at(self, lat: float, lon: float) -> str | None:
        """The neighbouring province or territory at a valid point (``None``: none, or no
        neighbours given, or not a coordinate)."""
        if self.neighbours is None or not (math.isfinite(lat) and math.isfinite(lon)
                                           and abs(lat) <= 90 and abs(lon) <= 180):
            return None
        return self.neighbours.name_at(lat, lon)

    def _transfer(self, lat: float, lon: float, radius_m: float, province: str) -> RouteAnswer:
        """A point in another province: the Punjab station its circle overlaps most, else
        the nearest one at any distance, flagged with the province's name."""
        if radius_m < 0:
            raise NegativeRadiusError(Rejection.NEGATIVE_RADIUS.text(self.nearest_limit_m))
        if radius_m > 0:
            row = int(self._overlap_rows(np.array([lat]), np.array([lon]),
                                         np.array([radius_m]))[0])
            if row >= 0:
                return self._with(row, "overlap", True, None, province)
        rows, dist = self._nearest(np.array([lat]), np.array([lon]), unbounded=True)
        return self._with(int(rows[0]), "nearest", True, float(dist[0]), province)

    # ------------------------------------------------------------------ bulk
    def station_rows(self, lat: npt.ArrayLike, lon: npt.ArrayLike
                     ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """Covering station row (``-1`` if none) and method code for many points.

        Method codes index :data:`METHODS` (0 interior, 1 boundary). Vectorised: one H3
        pass, one ``searchsorted``, exact tests only for boundary-cell points. Large
        batches split the H3 and search step across threads (Rust and numpy release the
        GIL and share nothing); the GEOS exact tests stay on the calling thread, because
        prepared geometries build their point-locator indexes lazily and are not safe to
        touch from two threads at once.
        """
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        n = lat_a.size
        workers = min(self.threads, max(1, n // PARALLEL_CHUNK))
        if workers > 1:
            bounds = np.linspace(0, n, workers + 1).astype(int)
            parts = list(self._pool.map(
                lambda k: self._lookup(lat_a[bounds[k]:bounds[k + 1]], lon_a[bounds[k]:bounds[k + 1]]),
                range(workers),
            ))
            found = np.concatenate([p[0] for p in parts])
            owner = np.concatenate([p[1] for p in parts])
        else:
            found, owner = self._lookup(lat_a, lon_a)
        return self._settle(lat_a, lon_a, found, owner)

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.threads, thread_name_prefix="router")

    def _lookup(self, lat_a: npt.NDArray[np.float64], lon_a: npt.NDArray[np.float64]
                ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int32]]:
        """Index entry of each point: whether one exists, and its owner code."""
        cells = h3cells.latlng_to_cells(lat_a, lon_a, self.index.fine_res)
        # Searching sorted needles walks the index in order: five times faster than
        # random probes of a 3.4M-entry array, sort included.
        order = np.argsort(cells, kind="stable")
        sorted_cells = cells[order]
        i = np.maximum(np.searchsorted(self.index.lo, sorted_cells, side="right") - 1, 0)
        found = np.empty(cells.size, dtype=bool)
        owner = np.empty(cells.size, dtype=np.int32)
        found[order] = (sorted_cells >= self.index.lo[i]) & (sorted_cells <= self.index.hi[i])
        owner[order] = self.index.owner[i]
        return found, owner

    def _settle(self, lat_a: npt.NDArray[np.float64], lon_a: npt.NDArray[np.float64],
                found: npt.NDArray[np.bool_], owner: npt.NDArray[np.int32]
                ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int8]]:
        """Stations from index entries: interior owners, exact tests for boundary cells."""
        n = lat_a.size
        rows = np.full(n, -1, dtype=np.int64)
        method = np.zeros(n, dtype=np.int8)
        interior = found & (owner >= 0)
        rows[interior] = owner[interior]
        # boundary cells: test candidates in code order, first cover wins
        bnd = np.nonzero(found & (owner < 0))[0]
        if bnd.size:
            b = -1 - owner[bnd].astype(np.int64)
            ptr = self.index.candidate_ptr
            counts = ptr[b + 1] - ptr[b]
            point = np.repeat(bnd, counts)
            starts = np.repeat(ptr[b] - np.r_[0, np.cumsum(counts)[:-1]], counts)
            cand = self.index.candidates[np.arange(point.size) + starts]
            hit = covers_xy(self._polygons[cand], self._boundaries[cand], lon_a[point], lat_a[point])
            # candidates are ascending per point: the first hit per point is the lowest code
            hp, hc = point[hit], cand[hit]
            first = first_per_group(hp)
            rows[hp[first]] = hc[first]
            method[hp[first]] = 1
        # boundary-cell points no candidate covers: a full exact test (thin slivers).
        # Points outside every range are outside every station by construction.
        rest = np.nonzero(found & (rows < 0))[0]
        if rest.size:
            exact = covering_rows(self._polygons, self._boundaries, self._tree, lon_a[rest], lat_a[rest])
            rows[rest] = exact
            method[rest[exact >= 0]] = 1
        return rows, method

    def resolve_many(self, lat: npt.ArrayLike, lon: npt.ArrayLike,
                     radius_m: npt.ArrayLike | None = None) -> pd.DataFrame:
        """Route many calls; one row per input in input order.

        Columns: :data:`ANSWER_COLUMNS` and ``reason`` (why a row was ``rejected``,
        empty otherwise). Bad rows are answered, never dropped.
        """
        lat_a = np.asarray(lat, dtype=np.float64)
        lon_a = np.asarray(lon, dtype=np.float64)
        n = lat_a.size
        radius = (np.zeros(n) if radius_m is None
                  else np.nan_to_num(np.asarray(radius_m, dtype=np.float64), nan=0.0))
        rows = np.full(n, -1, dtype=np.int64)
        method = np.full(n, METHODS.index("rejected"), dtype=np.int8)
        distance = np.full(n, np.nan)
        reason = np.full(n, Rejection.NONE, dtype=np.int8)

        minx, miny, maxx, maxy = self.extent
        valid = np.isfinite(lat_a) & np.isfinite(lon_a) & (np.abs(lat_a) <= 90) & (np.abs(lon_a) <= 180)
        inside = valid & (lat_a >= miny) & (lat_a <= maxy) & (lon_a >= minx) & (lon_a <= maxx)
        reason[~valid] = Rejection.INVALID_COORDINATE
        reason[valid & ~inside] = Rejection.OUTSIDE_EXTENT
        if (radius < 0).any():
            bad = radius < 0
            reason[bad] = Rejection.NEGATIVE_RADIUS
            inside &= ~bad
            valid &= ~bad

        point_rows = np.nonzero(inside & (radius == 0))[0]
        r, m = self.station_rows(lat_a[point_rows], lon_a[point_rows])
        rows[point_rows] = r
        method[point_rows[r >= 0]] = m[r >= 0]

        province, flagged = self._provinces(lat_a, lon_a, radius=radius, valid=valid,
                                           inside=inside, rows=rows)
        reason[flagged] = Rejection.NONE
        inside |= flagged  # routed to a fallback station, whatever the distance

        circle_rows = np.nonzero(inside & (radius > 0))[0]
        if circle_rows.size:
            r = self._overlap_rows(lat_a[circle_rows], lon_a[circle_rows], radius[circle_rows])
            rows[circle_rows] = r
            method[circle_rows[r >= 0]] = METHODS.index("overlap")

        for unbounded in (False, True):
            lost = np.nonzero(inside & (rows < 0) & (flagged == unbounded))[0]
            if not lost.size:
                continue
            near, dist = self._nearest(lat_a[lost], lon_a[lost], unbounded=unbounded)
            ok = near >= 0
            rows[lost[ok]] = near[ok]
            method[lost[ok]] = METHODS.index("nearest")
            distance[lost[ok]] = dist[ok]
            reason[lost[~ok]] = Rejection.NO_STATION_NEARBY

        # categorical columns: building a million station-code strings would cost more
        # than routing them; "" stands for "no station"
        station_index = np.where(rows >= 0, rows, len(self.codes))
        return pd.DataFrame({
            "station_code": _categorical(station_index, self._categories["station_code"]),
            **{c: _categorical(
                   np.append(self._level_index[c], len(self._categories[c]) - 1)[station_index],
                   self._categories[c])
               for c in HIERARCHY[1:]},
            "method": _categorical(method, METHODS),
            "out_of_coverage": (method == METHODS.index("nearest")) | flagged,
            "distance_m": distance,
            "reason": _categorical(reason, [r.text(self.nearest_limit_m) for r in Rejection]),
            **{NAME_COLUMNS[c]: _labels(self._names[c], station_index) for c in HIERARCHY},
            "outside_punjab": province,
        })

    def _provinces(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], *,
                   radius: npt.NDArray[np.float64], valid: npt.NDArray[np.bool_],
                   inside: npt.NDArray[np.bool_], rows: npt.NDArray[np.int64]
                   ) -> tuple[pd.Categorical, npt.NDArray[np.bool_]]:
        """The neighbouring province of each valid point no station covers (a circle by its
        centre): the ``outside_punjab`` column ("" for none) and which rows have one.

        Asks only about points outside the extent or left uncovered by the lookup (a few
        in a batch of calls), in one vectorised query.
        """
        n = lat.size
        province = np.full(n, -1, dtype=np.int64)
        names = self.neighbours.names if self.neighbours is not None else []
        if self.neighbours is not None:
            covered = np.zeros(n, dtype=bool)
            covered[inside & (radius == 0) & (rows >= 0)] = True
            circles = np.nonzero(inside & (radius > 0))[0]
            if circles.size:
                covered[circles] = self.station_rows(lat[circles], lon[circles])[0] >= 0
            ask = np.nonzero(valid & ~covered)[0]
            province[ask] = self.neighbours.locate(lat[ask], lon[ask])
        flagged = province >= 0
        codes = np.where(flagged, province, len(names))
        return _categorical(codes, [*names, ""]), flagged

    # ------------------------------------------------------------------ metric helpers
    @cached_property
    def _polygons_utm(self) -> dict[int, npt.NDArray[np.object_]]:
        """Station polygons in both UTM zones (built on first use: nearest and overlap)."""
        return {epsg: shapely.transform(self._polygons, _projector(epsg))
                for epsg in (UTM_42N, UTM_43N)}

    @cached_property
    def _transformers(self) -> dict[int, Transformer]:
        return {epsg: Transformer.from_crs(WGS84, f"EPSG:{epsg}", always_xy=True)
                for epsg in (UTM_42N, UTM_43N)}

    def _project(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], epsg: int
                 ) -> npt.NDArray[np.object_]:
        x, y = self._transformers[epsg].transform(lon, lat)
        return np.asarray(shapely.points(x, y), dtype=object)

    def _candidate_pairs(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64],
                         reach_m: npt.NDArray[np.float64]
                         ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """(point, station) pairs whose bounding boxes lie within ``reach_m`` of the point."""
        dlat = reach_m / _M_PER_DEG_LAT
        dlon = reach_m / (_M_PER_DEG_LON_EQ * np.cos(np.radians(np.abs(lat) + dlat)))
        boxes = shapely.box(lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        pairs = self._tree.query(boxes)
        return pairs[0], pairs[1]

    def _by_zone(self, lon: npt.NDArray[np.float64]) -> list[tuple[int, npt.NDArray[np.int64]]]:
        west = lon < ZONE_EDGE_LON
        return [(UTM_42N, np.nonzero(west)[0]), (UTM_43N, np.nonzero(~west)[0])]

    def _nearest(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], *,
                 unbounded: bool = False) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Nearest station within the limit (metres, UTM of the point's zone); -1 if none.

        ``unbounded``: at any distance (the fallback for a point in another province).
        The station nearest in degrees bounds the search: no station is farther in metres
        than a degree of longitude at the equator times that distance.
        """
        rows = np.full(lat.size, -1, dtype=np.int64)
        dist = np.full(lat.size, np.nan)
        reach = np.full(lat.size, self.nearest_limit_m)
        if unbounded and lat.size:
            which, degrees = self._tree.query_nearest(shapely.points(lon, lat), return_distance=True)
            nearest_deg = np.full(lat.size, np.inf)
            np.minimum.at(nearest_deg, which[0], degrees)
            reach = nearest_deg * _M_PER_DEG_LON_EQ * 1.01 + 1.0
        for epsg, sel in self._by_zone(lon):
            if not sel.size:
                continue
            pt, st = self._candidate_pairs(lat[sel], lon[sel], reach[sel])
            if not pt.size:
                continue
            pts = self._project(lat[sel], lon[sel], epsg)
            d = shapely.distance(self._polygons_utm[epsg][st], pts[pt])
            ok = d <= reach[sel][pt]
            pt, st, d = pt[ok], st[ok], d[ok]
            order = np.lexsort((st, d, pt))
            pt, st, d = pt[order], st[order], d[order]
            first = first_per_group(pt)
            rows[sel[pt[first]]] = st[first]
            dist[sel[pt[first]]] = d[first]
        return rows, dist

    def _overlap_rows(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64],
                      radius: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Station with the greatest area of overlap with each circle; -1 if none."""
        rows = np.full(lat.size, -1, dtype=np.int64)
        for epsg, sel in self._by_zone(lon):
            if not sel.size:
                continue
            pt, st = self._candidate_pairs(lat[sel], lon[sel], radius[sel])
            if not pt.size:
                continue
            circles = shapely.buffer(self._project(lat[sel], lon[sel], epsg), radius[sel],
                                     quad_segs=16)
            area = shapely.area(shapely.intersection(self._polygons_utm[epsg][st], circles[pt]))
            ok = area > 0
            pt, st, area = pt[ok], st[ok], area[ok]
            order = np.lexsort((st, -area, pt))
            pt, st = pt[order], st[order]
            first = first_per_group(pt)
            rows[sel[pt[first]]] = st[first]
        return rows

    def _overlap(self, lat: float, lon: float, radius_m: float) -> RouteAnswer:
        if radius_m < 0:
            raise NegativeRadiusError(Rejection.NEGATIVE_RADIUS.text(self.nearest_limit_m))
        if self.neighbours is not None:  # a circle is out of Punjab when its centre is
            try:
                centre: RouteAnswer | None = self.resolve(lat, lon)
            except NoStationNearbyError:
                centre = None
            if centre is not None and centre.outside_punjab is not None:
                return self._transfer(lat, lon, radius_m, centre.outside_punjab)
        row = int(self._overlap_rows(np.array([lat]), np.array([lon]), np.array([radius_m]))[0])
        if row < 0:
            return self.resolve(lat, lon)
        return self._with(row, "overlap", False, None)


class _SingleLookup:
    """One-point lookup in plain Python containers (no numpy call per point).

    Entries are bucketed by their resolution-7 ancestor (the top bits of a fine cell),
    so a lookup is a dict hit and a short ``bisect`` over a compact ``array``.
    """

    BUCKET_RES = 7

    def __init__(self, index: RoutingIndex) -> None:
        self.shift = 3 * (h3cells.MAX_RES - self.BUCKET_RES)
        self.lo = array("Q", index.lo.tobytes())
        self.hi = array("Q", index.hi.tobytes())
        self.owner_of = array("i", index.owner.astype(np.int32).tobytes())
        self.candidate_ptr: list[int] = index.candidate_ptr.tolist()
        shift = np.uint64(self.shift)
        prefixes = np.unique(np.concatenate([index.lo >> shift, index.hi >> shift]))
        # coarse entries span many buckets: add every bucket between their ends
        spans = (index.hi >> shift) - (index.lo >> shift)
        wide = np.nonzero(spans > 0)[0]
        if wide.size:
            counts = spans[wide].astype(np.int64)
            starts = np.repeat((index.lo[wide] >> shift).astype(np.int64), counts)
            steps = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            prefixes = np.unique(np.concatenate([prefixes, (starts + steps + 1).astype(np.uint64)]))
        first = np.searchsorted(index.lo, prefixes << shift, side="right") - 1
        last = np.searchsorted(index.lo, (prefixes + np.uint64(1)) << shift, side="left")
        self.buckets = dict(zip(prefixes.tolist(),
                                zip(np.maximum(first, 0).tolist(), last.tolist(), strict=True),
                                strict=True))



_ALLOW_NAN = np.intc(0)  # shapely.HandleNaN.allow: coordinates are checked before this


def _point(lon: float, lat: float) -> shapely.Geometry:
    """One point geometry, through the ufunc (the Point class costs ~10 µs)."""
    point: shapely.Geometry = _points(np.array([lon, lat]), _ALLOW_NAN)
    return point


def _categorical(codes: npt.NDArray[np.integer], categories: Sequence[str]) -> pd.Categorical:
    """A categorical column from integer codes (cheap: no per-row strings)."""
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(list(categories)))  # type: ignore[return-value]


def _labels(per_station: npt.NDArray[np.str_], station_index: npt.NDArray[np.int64]
            ) -> pd.Categorical:
    """A categorical column of per-station labels (names repeat across stations; the
    index one past the last station, "no station", reads as "")."""
    values, inverse = np.unique(np.append(per_station, ""), return_inverse=True)
    return _categorical(inverse.reshape(-1)[station_index], values.tolist())


def _projector(epsg: int) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    """Coordinate-array function from lon/lat to a UTM zone (for ``shapely.transform``)."""
    transformer = Transformer.from_crs(WGS84, f"EPSG:{epsg}", always_xy=True)

    def project(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return project


def _raise_outside(lat: float, lon: float) -> NoReturn:
    if not (math.isfinite(lat) and math.isfinite(lon) and abs(lat) <= 90 and abs(lon) <= 180):
        raise OutsidePunjabError(f"({lat}, {lon}) is not a valid latitude/longitude")
    raise OutsidePunjabError(f"({lat:.6f}, {lon:.6f}) lies outside Punjab's extent")
