"""Safe City camera siting per tehsil: demand, sites, MCLP and LSCP, greedy baseline, curves.

The question a planner asks of a tehsil is *how many camera sites, where, and what share of
serious-crime demand do they cover*. This module answers it in four steps.

1. **Demand** (:func:`demand_cells`): the tehsil's calls, each weighted by its category's
   ``seriousness_weight`` (:func:`geo.categories.load_categories`), summed per H3 cell
   (resolution 9 by default, about 0.1 km²). A demand point is the cell centre.
2. **Sites**: candidate new sites are the centres of the demand cells
   (:func:`candidates_from_demand`) or a user's file (:func:`read_sites`, GeoJSON, GPKG,
   Shapefile or CSV). Existing Safe City sites are fixed in every plan. Until a user
   imports the real layer, safecity uses a **stand-in** (:func:`stand_in_existing_sites`):
   a hexagonal grid of points over the urban core of every district headquarters town,
   since Punjab's Safe Cities phases 1 and 2 cover those cores. The stand-in is not the
   real camera layer and every output that uses it says so.
3. **Coverage** (:class:`CoverageMatrix`): a demand point is covered by a site within the
   coverage radius, Euclidean distance in metres in the tehsil's UTM zone
   (:func:`geo.crs.utm_epsg`: EPSG:32642 west of 72° E, EPSG:32643 east of it).
4. **Models**: :class:`MaximalCoverage` (MCLP, Church & ReVelle 1974: a budget of new sites
   → the most covered demand), :class:`SetCoverage` (LSCP, Toregas et al. 1971: fewest
   sites covering all demand, or a documented *share-constrained* variant that covers a
   target share of it), :func:`greedy_coverage` (the classical greedy baseline) and
   :func:`coverage_curve` (new sites 0..N → covered share, non-decreasing).

The formulations are spopt's (``spopt.locate.MCLP`` / ``LSCP``) and existing sites are
fixed exactly as spopt fixes a ``predefined_facility_col`` (spopt's own
``FacilityModelBuilder.add_predefined_facility_constraint``). What differs is how the model
is *built*: spopt writes every constraint over the dense demand × site matrix, one Python
term per pair (measured on this machine: 29 s to build 1,500 × 1,500, 131 s for
3,000 × 3,000, growing with the square), while a large tehsil has several thousand demand
cells and candidates of which only a few dozen lie within any cell's radius. Here the
coverage pairs come from a k-d tree and only those are written, so the model spopt would
solve is built in about a second; the tests check that both give the same objective.

Models are solved with HiGHS (highspy, through pulp) or CBC (as pulp ships it); every
result reports the solver, its status, the best bound, the relative optimality gap and the
build and solve times (:class:`SolveReport`).

References
----------
Church, R. and ReVelle, C. (1974). The maximal covering location problem. *Papers of the
Regional Science Association* 32(1), 101–118.

Toregas, C., Swain, R., ReVelle, C. and Bergman, L. (1971). The location of emergency
service facilities. *Operations Research* 19(6), 1363–1373.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pulp
import shapely
from pyproj import Transformer
from scipy import sparse
from scipy.spatial import cKDTree

from geo import h3cells
from geo.aggregate import call_coordinates
from geo.categories import load_categories
from geo.crs import WGS84, utm_epsg

if TYPE_CHECKING:
    from jurisdictions.boundaries import BoundarySet

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

DEFAULT_RES = 9
"""H3 resolution of demand cells (res 9: about 0.105 km², edge about 174 m)."""

DEFAULT_RADIUS_M = 500.0
"""Default coverage radius of a camera site, in metres."""

DEFAULT_GAP_REL = 1e-4
"""Relative optimality gap at which the MILP solver may stop (HiGHS's own default)."""

DEFAULT_TIME_LIMIT_S = 120.0
"""Default wall-clock limit of one MILP solve, in seconds."""

HIGHS_PRESOLVE = "off"
"""HiGHS's presolve, off: on these models it spent most of the time (12.8 s of 13.3 s for one
new site in Lahore City) while :class:`Reduction` already does the useful part; measured
with it off, every instance tried solved faster or ended with a smaller gap at the limit."""

Solver = Literal["highs", "cbc"]
SOLVERS: tuple[Solver, ...] = ("highs", "cbc")
ModelName = Literal["mclp", "lscp"]

STAND_IN_SOURCE = ("stand-in: hexagonal grid over the urban core of each district headquarters "
                   "town (Safe Cities phases 1-2 scope), not the real camera layer; replace it "
                   "by importing the real sites")
"""The ``source`` of every stand-in existing site, repeated in every plan that uses them."""

HQ_TOWN_NAMES: dict[str, str] = {
    "Attock": "Attock City",
    "Jhang": "Jhang Sadr",
    "Khushab": "Jauharabad",
    "Leiah": "Layyah",
    "Sheikhupura": "Shekhupura",
    "Vehari": "Vihari",
}
"""GeoNames name of a district's headquarters town where it is not the district's name
(Khushab district's headquarters is Jauharabad)."""


# --------------------------------------------------------------------------- errors


class CoverageError(Exception):
    """Base class of every error raised by the coverage and planning functions."""


class CoverageInputError(CoverageError, ValueError):
    """Input that cannot be planned with: unknown categories, missing columns, bad options."""


class UnknownTehsilError(CoverageInputError):
    """No tehsil has the given code (or name)."""


class NoDemandError(CoverageError, ValueError):
    """A tehsil has no calls, or none of a category with a seriousness weight above zero."""


class SiteFileError(CoverageInputError):
    """A site file (candidates or existing sites) cannot be read or has no usable points."""


class InfeasiblePlanError(CoverageError, ValueError):
    """The requested plan cannot exist (target share out of reach, too few candidates)."""


class SolverError(CoverageError, RuntimeError):
    """The MILP solver failed or returned no solution."""


# --------------------------------------------------------------------------- tehsils


@dataclass(frozen=True)
class TehsilRef:
    """One tehsil with what planning needs: names, polygon (EPSG:4326) and its UTM zone."""

    code: str
    name: str
    district_code: str
    district: str
    population_2023: int
    geometry: shapely.Geometry = field(repr=False)

    @property
    def epsg(self) -> int:
        """EPSG code of the UTM zone of the tehsil's centre (:func:`geo.crs.utm_epsg`)."""
        return utm_epsg(float(shapely.centroid(self.geometry).x))

    @property
    def label(self) -> str:
        """``"Name (CODE)"`` for messages."""
        return f"{self.name} ({self.code})"


def default_boundaries() -> BoundarySet:
    """The shipped Punjab boundary set (cached on disk by :mod:`jurisdictions.catalog`)."""
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415 (heavy, optional)

    return punjab_boundary_set()


def tehsil_ref(tehsil: str, boundaries: BoundarySet | None = None) -> TehsilRef:
    """The tehsil with P-code ``tehsil`` (or, failing that, the one tehsil of that name).

    Raises :class:`UnknownTehsilError` naming close matches when there is none.
    """
    boundaries = boundaries or default_boundaries()
    tehsils = boundaries.tehsils
    key = str(tehsil).strip()
    rows = tehsils[tehsils["code"].astype(str).str.upper() == key.upper()]
    if rows.empty:
        rows = tehsils[tehsils["name"].astype(str).str.lower() == key.lower()]
    if len(rows) != 1:
        hint = tehsils[tehsils["name"].astype(str).str.lower().str.contains(
            re.escape(key.lower()[:4]), regex=True)]
        near = ", ".join(f"{r.code} {r.name}" for r in hint.head(5).itertuples())
        what = "several tehsils are" if len(rows) > 1 else "no tehsil is"
        raise UnknownTehsilError(f"{what} named {key!r}" + (f"; did you mean {near}?" if near else
                                 "; tehsil codes look like PK61701"))
    row = rows.iloc[0]
    districts = boundaries.districts.set_index("code")["name"]
    return TehsilRef(code=str(row["code"]), name=str(row["name"]),
                     district_code=str(row["district_code"]),
                     district=str(districts.get(row["district_code"], row["district_code"])),
                     population_2023=int(row["population_2023"]), geometry=row.geometry)


# --------------------------------------------------------------------------- demand


def call_weights(calls: pd.DataFrame, categories: pd.DataFrame | None = None) -> FloatArray:
    """Seriousness weight of each call, from its ``category`` and the category table.

    Raises :class:`CoverageInputError` when the column is missing or a category is unknown.
    """
    if "category" not in calls.columns:
        raise CoverageInputError("calls need a 'category' column to be weighted by seriousness")
    table = load_categories() if categories is None else categories
    lookup = dict(zip(table["code"].astype(str), table["seriousness_weight"].astype(float), strict=True))
    codes = calls["category"].astype(str)
    weights = codes.map(lookup)
    if weights.isna().any():
        unknown = sorted(set(codes[weights.isna()]))
        raise CoverageInputError(f"calls of unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                                 f"{', '.join(unknown[:10])}; known: {', '.join(lookup)}")
    return np.asarray(weights.to_numpy(dtype=np.float64), dtype=np.float64)


def call_serious(calls: pd.DataFrame, categories: pd.DataFrame | None = None) -> BoolArray:
    """Whether each call is a serious crime: its ``serious`` column, else the category table."""
    if "serious" in calls.columns:
        return calls["serious"].fillna(False).to_numpy(dtype=bool)
    table = load_categories() if categories is None else categories
    lookup = dict(zip(table["code"].astype(str), table["serious"].astype(bool), strict=True))
    return calls["category"].astype(str).map(lookup).fillna(False).to_numpy(dtype=bool)


def aggregate_demand(lat: npt.ArrayLike, lon: npt.ArrayLike, weight: npt.ArrayLike,
                     serious: npt.ArrayLike, *, res: int = DEFAULT_RES,
                     group: npt.ArrayLike | None = None) -> pd.DataFrame:
    """Weighted calls summed per H3 cell (and per ``group``, e.g. tehsil code).

    Calls with a weight of zero or without a valid position are left out. Returns
    ``[group,] cell (uint64), calls, serious_calls, demand``, sorted by group and cell.

    >>> frame = aggregate_demand([31.5, 31.5, 31.6], [74.3, 74.3, 74.3], [2.0, 10.0, 0.0],
    ...                          [False, True, False])
    >>> frame[["calls", "serious_calls", "demand"]].to_dict("records")
    [{'calls': 2, 'serious_calls': 1, 'demand': 12.0}]
    """
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = np.asarray(lon, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    keep = np.isfinite(lat_a) & np.isfinite(lon_a) & (w > 0)
    frame = pd.DataFrame({
        "cell": h3cells.latlng_to_cells(lat_a[keep], lon_a[keep], res),
        "calls": np.ones(int(keep.sum()), dtype=np.int64),
        "serious_calls": np.asarray(serious, dtype=bool)[keep].astype(np.int64),
        "demand": w[keep],
    })
    keys = ["cell"]
    if group is not None:
        frame.insert(0, "group", np.asarray(group)[keep])
        keys = ["group", "cell"]
    return frame.groupby(keys, sort=True, observed=True).sum().reset_index()


def calls_in_tehsil(calls: pd.DataFrame, tehsil: TehsilRef) -> pd.DataFrame:
    """The calls of one tehsil: by the routed ``tehsil_code`` when present, else by position."""
    if "tehsil_code" in calls.columns:
        return calls[calls["tehsil_code"].astype(str).to_numpy() == tehsil.code]
    lat, lon = call_coordinates(calls)
    inside = shapely.contains_xy(tehsil.geometry, lon, lat)
    return calls[inside]


def demand_cells(calls: pd.DataFrame, tehsil: str | TehsilRef, *, res: int = DEFAULT_RES,
                 boundaries: BoundarySet | None = None,
                 categories: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """Seriousness-weighted demand of one tehsil per H3 cell, as cell-centre points.

    Parameters
    ----------
    calls : pandas.DataFrame
        Any call history with ``lat, lon`` (or a point geometry) and ``category``; a
        ``tehsil_code`` column, when present, decides which calls are the tehsil's.
    tehsil : str or TehsilRef
        Tehsil P-code (``PK61701``) or name.
    res : int
        H3 resolution of the demand cells.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell`` (hex), ``lat, lon`` (cell centre), ``calls``, ``serious_calls``,
        ``demand`` (sum of weights), point geometry in EPSG:4326; only cells with demand.

    Raises
    ------
    NoDemandError
        The tehsil has no calls, or none with a seriousness weight above zero.
    """
    ref = tehsil if isinstance(tehsil, TehsilRef) else tehsil_ref(tehsil, boundaries)
    if not 0 <= res <= h3cells.MAX_RES:
        raise CoverageInputError(f"H3 resolution must lie in 0..{h3cells.MAX_RES}, got {res}")
    mine = calls_in_tehsil(calls, ref)
    if mine.empty:
        raise NoDemandError(f"tehsil {ref.label} has no calls in this history "
                            f"({len(calls):,} calls in all): there is no demand to plan camera "
                            "sites for; give a longer or wider history with --calls")
    lat, lon = call_coordinates(mine)
    table = aggregate_demand(lat, lon, call_weights(mine, categories), call_serious(mine, categories),
                             res=res)
    if table.empty:
        raise NoDemandError(f"tehsil {ref.label} has {len(mine):,} calls but none of a category "
                            "with a seriousness weight above zero (see data/categories.csv)")
    cells = table["cell"].to_numpy(dtype=np.uint64)
    clat, clon = h3cells.cells_to_latlng(cells)
    return gpd.GeoDataFrame({
        "cell": h3cells.hex_strings(cells),
        "lat": clat, "lon": clon,
        "calls": table["calls"].to_numpy(), "serious_calls": table["serious_calls"].to_numpy(),
        "demand": table["demand"].to_numpy(dtype=np.float64),
    }, geometry=gpd.points_from_xy(clon, clat), crs=WGS84)


# --------------------------------------------------------------------------- sites

SITE_COLUMNS = ("site_id", "name", "existing", "stand_in", "source", "geometry")


def _site_frame(site_id: Any, name: Any, geometry: Any, *, existing: bool, stand_in: bool,
                source: str, **extra: Any) -> gpd.GeoDataFrame:
    n = len(geometry)
    columns: dict[str, Any] = {"site_id": np.asarray(site_id, dtype=object),
                               "name": np.asarray(name, dtype=object),
                               "existing": np.full(n, existing), "stand_in": np.full(n, stand_in),
                               "source": np.full(n, source, dtype=object)}
    columns.update({key: np.asarray(value, dtype=object) if np.ndim(value) else np.full(n, value)
                    for key, value in extra.items()})
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=WGS84), crs=WGS84)


def candidates_from_demand(demand: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Candidate new sites at the centres of the demand cells (``site_id`` ``h3:<cell>``)."""
    return _site_frame(("h3:" + demand["cell"].astype(str)).to_numpy(),
                       ("cell " + demand["cell"].astype(str)).to_numpy(), demand.geometry.to_numpy(),
                       existing=False, stand_in=False, source="candidate: demand cell centre")


def read_sites(path: Path | str, *, existing: bool) -> gpd.GeoDataFrame:
    """Sites from a point file: GeoJSON, GPKG, Shapefile, GeoParquet, or CSV with ``lat, lon``.

    An id is taken from ``site_id``, ``id`` or ``name`` (in that order) and made up from
    the file name otherwise; a name from ``name``. Geometries are converted to EPSG:4326
    (a file without a CRS is read as EPSG:4326, as GeoJSON prescribes).

    Raises :class:`SiteFileError` for an unreadable file, non-point geometry, missing
    coordinates or duplicate ids, naming the problem.
    """
    source = Path(path)
    if not source.is_file():
        raise SiteFileError(f"{source}: no such file")
    suffix = source.suffix.lower()
    try:
        if suffix in {".csv", ".txt"}:
            table = pd.read_csv(source)
            cols = {c.lower(): c for c in table.columns}
            lat_c = cols.get("lat", cols.get("latitude"))
            lon_c = cols.get("lon", cols.get("lng", cols.get("longitude")))
            if lat_c is None or lon_c is None:
                raise SiteFileError(f"{source}: a site CSV needs 'lat' and 'lon' columns "
                                    f"(has {', '.join(map(str, table.columns))})")
            lat = pd.to_numeric(table[lat_c], errors="coerce")
            lon = pd.to_numeric(table[lon_c], errors="coerce")
            bad = lat.isna() | lon.isna() | ~lat.between(-90, 90) | ~lon.between(-180, 180)
            if bad.any():
                raise SiteFileError(f"{source}: rows {(table.index[bad] + 2).tolist()[:10]} "
                                    "have no valid lat/lon")
            frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon, lat), crs=WGS84)
        elif suffix in {".parquet", ".geoparquet"}:
            frame = gpd.read_parquet(source)
        else:
            frame = gpd.read_file(source)
    except SiteFileError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise SiteFileError(f"cannot read {source}: {exc}") from exc
    if frame.empty:
        raise SiteFileError(f"{source}: no sites")
    if frame.crs is None:
        frame = frame.set_crs(WGS84)
    frame = frame.to_crs(WGS84)
    kinds = set(frame.geometry.geom_type.dropna())
    if frame.geometry.isna().any() or frame.geometry.is_empty.any() or not kinds <= {"Point"}:
        raise SiteFileError(f"{source}: every site must be one point (found {', '.join(sorted(kinds))} "
                            "or empty geometries)")
    cols = {c.lower(): c for c in frame.columns if c != "geometry"}
    id_col = next((cols[c] for c in ("site_id", "id", "name") if c in cols), None)
    ids = (frame[id_col].astype(str).to_numpy() if id_col is not None
           else np.array([f"{source.stem}-{i + 1:05d}" for i in range(len(frame))]))
    if pd.Series(ids).duplicated().any():
        first = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise SiteFileError(f"{source}: duplicate site ids, e.g. {first!r}")
    names = frame[cols["name"]].astype(str).to_numpy() if "name" in cols else ids
    return _site_frame(ids, names, frame.geometry.to_numpy(), existing=existing, stand_in=False,
                       source=f"file: {source.name}")


STAND_IN_ALGORITHM = 1
"""Bumped whenever :func:`stand_in_existing_sites` changes, so cached layers are rebuilt."""


@dataclass(frozen=True)
class ExistingSiteParameters:
    """Knobs of the stand-in existing-site layer (:func:`stand_in_existing_sites`).

    The urban core of a headquarters town is a disk of area
    ``urban_2023 / 10,000 × core_km2_per_10k_urban`` km² (the urban population of the
    tehsil holding the town, census 2023), its radius clipped to
    ``[min_radius_m, max_radius_m]``; sites sit on a hexagonal lattice ``spacing_m``
    apart within that disk and within the district.
    """

    spacing_m: float = 500.0
    core_km2_per_10k_urban: float = 0.25
    min_radius_m: float = 1_000.0
    max_radius_m: float = 10_000.0


def district_headquarters(boundaries: BoundarySet | None = None,
                          towns: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each district's headquarters town from GeoNames (:func:`jurisdictions.stations.town_points`).

    The town named after the district (or as :data:`HQ_TOWN_NAMES` says) nearest the
    district; when GeoNames has no such town, the district's most populous town inside it;
    failing that, a point inside the district. Returns ``district_code, district, town,
    lon, lat, tehsil_code, urban_2023`` (the urban population of the tehsil holding the town).
    """
    from jurisdictions.stations import town_points  # noqa: PLC0415 (loads GeoNames)

    boundaries = boundaries or default_boundaries()
    towns = town_points() if towns is None else towns
    tehsils = boundaries.tehsils
    tehsil_tree = shapely.STRtree(tehsils.geometry.values)
    norm = towns["name"].astype(str).str.lower().str.replace(r"[^a-z]", "", regex=True)
    rows = []
    for district in boundaries.districts.itertuples():
        polygon = district.geometry
        wanted = re.sub(r"[^a-z]", "", HQ_TOWN_NAMES.get(str(district.name), str(district.name)).lower())
        named = towns[norm == wanted]
        pick: pd.Series | None = None
        if len(named):
            dist = shapely.distance(polygon, shapely.points(named["lon"], named["lat"]))
            if float(dist.min()) < 0.1:  # degrees; about 10 km
                pick = named.iloc[int(np.argmin(dist))]
        if pick is None:
            inside = towns[shapely.contains_xy(polygon, towns["lon"], towns["lat"])]
            if len(inside):
                pick = inside.sort_values(["population", "name"], ascending=[False, True]).iloc[0]
        if pick is None:
            point = shapely.point_on_surface(polygon)
            lon, lat, town = point.x, point.y, str(district.name)
        else:
            lon, lat, town = float(pick["lon"]), float(pick["lat"]), str(pick["name"])
        hit = tehsil_tree.query(shapely.Point(lon, lat), predicate="within")
        if len(hit) == 0:
            hit = np.array([tehsil_tree.nearest(shapely.Point(lon, lat))])
        tehsil = tehsils.iloc[int(hit[0])]
        rows.append({"district_code": district.code, "district": district.name, "town": town,
                     "lon": lon, "lat": lat, "tehsil_code": tehsil["code"],
                     "urban_2023": int(tehsil["urban_2023"])})
    return pd.DataFrame(rows)


def _hex_lattice(radius: float, spacing: float) -> FloatArray:
    """Points of a hexagonal lattice with ``spacing`` inside a disk of ``radius`` (metres)."""
    n = int(np.ceil(radius / spacing)) + 1
    i, j = np.meshgrid(np.arange(-n, n + 1), np.arange(-2 * n, 2 * n + 1), indexing="ij")
    x = (i + (j % 2) / 2.0) * spacing
    y = j * spacing * np.sqrt(3) / 2.0
    xy = np.column_stack([x.ravel(), y.ravel()])
    return xy[np.hypot(xy[:, 0], xy[:, 1]) <= radius]


def stand_in_existing_sites(boundaries: BoundarySet | None = None,
                            params: ExistingSiteParameters | None = None,
                            towns: pd.DataFrame | None = None) -> gpd.GeoDataFrame:
    """The **stand-in** layer of existing Safe City camera sites (deterministic).

    No open data gives the Punjab Safe Cities camera positions. Phases 1 and 2 cover the
    urban cores of district headquarters towns, so the stand-in puts a hexagonal lattice
    of sites over a disk around each headquarters town (:func:`district_headquarters`),
    sized by the urban population of the tehsil holding it (:class:`ExistingSiteParameters`),
    clipped to the district. Sites are marked ``stand_in=True`` with
    :data:`STAND_IN_SOURCE`; a user replaces the layer with :func:`read_sites`
    (``--existing FILE`` on the command line).

    Returns ``site_id, name, existing, stand_in, source, district_code, tehsil_code`` and
    point geometry in EPSG:4326. Built once per boundary-set version and parameters, then
    read from the cache (:func:`jurisdictions.sources.cache_dir`); with ``towns`` given it
    is built from those towns and not cached.
    """
    boundaries = boundaries or default_boundaries()
    params = params or ExistingSiteParameters()
    if towns is not None:
        return _build_stand_in(boundaries, params, towns)
    from jurisdictions.sources import cache_dir  # noqa: PLC0415

    key = json.dumps({**asdict(params), "algorithm": STAND_IN_ALGORITHM, "boundaries": boundaries.version},
                     sort_keys=True)
    path = cache_dir() / f"safecity-sites-{hashlib.sha256(key.encode()).hexdigest()[:12]}.parquet"
    if path.exists():
        return gpd.read_parquet(path)
    frame = _build_stand_in(boundaries, params, None)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp)
    tmp.replace(path)
    return frame


def _build_stand_in(boundaries: BoundarySet, params: ExistingSiteParameters,
                    towns: pd.DataFrame | None) -> gpd.GeoDataFrame:
    hq = district_headquarters(boundaries, towns)
    districts = boundaries.districts.set_index("code")
    tehsils = boundaries.tehsils
    tehsil_tree = shapely.STRtree(tehsils.geometry.values)
    parts: list[gpd.GeoDataFrame] = []
    for town in hq.to_dict("records"):
        epsg = utm_epsg(float(town["lon"]))
        to_m = Transformer.from_crs(WGS84, f"EPSG:{epsg}", always_xy=True)
        to_deg = Transformer.from_crs(f"EPSG:{epsg}", WGS84, always_xy=True)
        cx, cy = to_m.transform(town["lon"], town["lat"])
        area_m2 = float(town["urban_2023"]) / 10_000 * params.core_km2_per_10k_urban * 1e6
        radius = float(np.clip(np.sqrt(area_m2 / np.pi), params.min_radius_m, params.max_radius_m))
        xy = _hex_lattice(radius, params.spacing_m) + np.array([cx, cy])
        lon, lat = to_deg.transform(xy[:, 0], xy[:, 1])
        lon, lat = np.asarray(lon), np.asarray(lat)
        inside = shapely.contains_xy(districts.geometry[town["district_code"]], lon, lat)
        points = np.asarray(shapely.points(lon[inside], lat[inside]), dtype=object)
        owner = tehsil_tree.query(points, predicate="within")
        tehsil_code = np.empty(len(points), dtype=object)
        tehsil_code[owner[0]] = tehsils["code"].to_numpy()[owner[1]]
        k = np.arange(1, len(points) + 1)
        parts.append(_site_frame(
            np.char.add(f"{town['district_code']}-cam-", np.char.zfill(k.astype(str), 4)),
            np.char.add(np.char.add(f"{town['town']} Safe City site ", k.astype(str)), " (stand-in)"),
            points, existing=True, stand_in=True, source=STAND_IN_SOURCE,
            district_code=town["district_code"], tehsil_code=tehsil_code))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["tehsil_code"].notna()].reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)


def _project(frame: gpd.GeoDataFrame, epsg: int) -> FloatArray:
    projected = frame.geometry.to_crs(epsg)
    return np.column_stack([projected.x.to_numpy(), projected.y.to_numpy()])


# --------------------------------------------------------------------------- the instance


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
        return cls.from_points(_project(gdf_demand, target), _project(gdf_fac, target),
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


# --------------------------------------------------------------------------- solving


@dataclass(frozen=True)
class SolveReport:
    """How a MILP was solved.

    ``gap`` is the relative optimality gap ``|bound − objective| / max(|objective|, 1e-9)``
    of the returned plan: 0 means proven optimal (within the solver's tolerance).
    """

    solver: str
    status: str
    objective: float
    bound: float
    gap: float
    build_seconds: float
    solve_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return {"solver": self.solver, "status": self.status, "objective": self.objective,
                "bound": self.bound, "gap": self.gap, "build_seconds": self.build_seconds,
                "solve_seconds": self.solve_seconds}


@cache
def _highs_version() -> str:
    """HiGHS's version, read from a first ``Highs`` object made with stdout silenced.

    HiGHS prints a banner to the process's stdout when its first object is made, even with
    ``output_flag`` off; commands that write results to stdout must not carry it.
    """
    import highspy  # noqa: PLC0415

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with Path(os.devnull).open("w") as devnull:
            os.dup2(devnull.fileno(), 1)
            version = str(highspy.Highs().version())
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return version


def solver_label(solver: Solver) -> str:
    """Human name and version of a solver choice, e.g. ``HiGHS 1.16.0 (highspy) via pulp 3.3.2``."""
    if solver == "highs":
        return f"HiGHS {_highs_version()} (highspy) via pulp {pulp.__version__}"
    if solver == "cbc":
        return f"CBC (bundled with pulp {pulp.__version__})"
    raise CoverageInputError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


class _HiGHS(pulp.HiGHS):  # type: ignore[misc]
    """pulp's highspy interface, handing HiGHS the variables' initial values as a MIP start.

    pulp passes ``warmStart`` to CBC but not to highspy; a start matters here because the
    greedy plan then bounds the MILP's answer from below even when a time limit stops it.
    """

    def __init__(self, *, warm_start: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warm_start = warm_start

    def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 (pulp's method name)
        if self.warm_start:
            import highspy  # noqa: PLC0415

            variables = lp.variables()
            values = np.zeros(len(variables))
            for var in variables:
                values[var.index] = var.varValue if var.varValue is not None else 0.0
            start = highspy.HighsSolution()
            start.col_value = values.tolist()
            start.value_valid = True
            lp.solverModel.setSolution(start)
        super().callSolver(lp)


def _pulp_solver(solver: Solver, *, time_limit: float | None, gap_rel: float,
                 threads: int | None, warm_start: bool) -> pulp.LpSolver:
    if solver == "highs":
        _highs_version()
        return _HiGHS(warm_start=warm_start, msg=False, timeLimit=time_limit, gapRel=gap_rel,
                      threads=threads, presolve=HIGHS_PRESOLVE)
    if solver == "cbc":
        with warnings.catch_warnings():  # pulp 3.3 deprecates its bundled CBC (gone in pulp 4)
            warnings.filterwarnings("ignore", "PULP_CBC_CMD is deprecated", DeprecationWarning)
            return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap_rel, threads=threads,
                                     warmStart=warm_start)
    raise CoverageInputError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


def _relative_gap(objective: float, bound: float, maximise: bool) -> float:
    diff = (bound - objective) if maximise else (objective - bound)
    if diff <= 1e-9 * max(1.0, abs(objective)):  # floating-point noise of the solver's bound
        return 0.0
    return diff / max(abs(objective), 1e-9)


@dataclass(frozen=True)
class _Outcome:
    objective: float
    bound: float
    status: str
    seconds: float


def _run(problem: pulp.LpProblem, solver: Solver, *, time_limit: float | None, gap_rel: float,
         threads: int | None, warm_start: bool, what: str) -> _Outcome:
    """Solve ``problem`` and read status, objective and best bound, or raise."""
    started = time.perf_counter()
    try:
        problem.solve(_pulp_solver(solver, time_limit=time_limit, gap_rel=gap_rel, threads=threads,
                                   warm_start=warm_start))
    except pulp.PulpSolverError as exc:
        raise SolverError(f"{solver_label(solver)} failed on the {what}: {exc}") from exc
    seconds = time.perf_counter() - started
    if problem.status == pulp.LpStatusInfeasible:
        raise InfeasiblePlanError(f"the {what} has no feasible plan")
    if problem.status != pulp.LpStatusOptimal or problem.sol_status not in (
            pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        raise SolverError(f"{solver_label(solver)} found no plan for the {what} "
                          f"(status {pulp.LpStatus[problem.status]}"
                          + (f" within the {time_limit:g} s limit" if time_limit else "") + ")")
    objective = float(pulp.value(problem.objective) or 0.0)
    maximise = problem.sense == pulp.LpMaximize
    status = "optimal" if problem.sol_status == pulp.LpSolutionOptimal else "feasible (stopped early)"
    if solver == "highs":
        # HiGHS minimises the negated objective and never sees pulp's objective constant
        dual = float(problem.solverModel.getInfo().mip_dual_bound)
        offset = float(problem.objective.constant)
        bound = (-dual if maximise else dual) + offset
        if not np.isfinite(bound) or status == "optimal":
            bound = objective if not np.isfinite(bound) else bound
    elif status == "optimal":
        bound = objective  # CBC proved optimality within gap_rel; pulp reports no bound
    else:
        bound = _lp_bound(problem, maximise)
    return _Outcome(objective, bound, status, seconds)


def _lp_bound(problem: pulp.LpProblem, maximise: bool) -> float:
    """Objective of the LP relaxation: a valid bound when CBC stops without proving optimality."""
    relaxed = problem.deepcopy()
    for var in relaxed.variables():
        var.cat = pulp.LpContinuous
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PULP_CBC_CMD is deprecated", DeprecationWarning)
        relaxed.solve(pulp.PULP_CBC_CMD(msg=False, mip=False))
    value = float(pulp.value(relaxed.objective) or 0.0)
    return value if relaxed.status == pulp.LpStatusOptimal else (np.inf if maximise else -np.inf)


@dataclass(frozen=True)
class Reduction:
    """Exact reductions of a coverage instance before it becomes a MILP.

    1. Demand already covered by an existing site is covered in every plan: it becomes a
       constant (``base_weight``) and leaves the model.
    2. Demand no candidate can reach is never covered: it leaves the model.
    3. Demand points covered by exactly the same candidates merge into one group whose
       weight is their sum.
    4. A candidate whose groups are a subset of another candidate's (ties: the lower
       index stays) is dominated: any plan using it is matched or beaten by one using the
       other instead, for the MCLP and the LSCP alike, so it is fixed to 0 (``kept`` is
       ``False``); so is a candidate that covers no remaining demand.

    The optimum value is unchanged (the tests compare with spopt on the full matrix);
    only the model gets smaller, which is what makes tehsil-sized instances quick.
    """

    base_covered: BoolArray
    base_weight: float
    group_weights: FloatArray
    group_sites: tuple[IntArray, ...]
    kept: BoolArray

    @classmethod
    def of(cls, matrix: CoverageMatrix) -> Reduction:
        """Reduce ``matrix``."""
        base = matrix.covered(matrix.predefined)
        free = ~matrix.predefined
        keep_pair = ~base[matrix.rows] & free[matrix.cols]
        rows, cols = matrix.rows[keep_pair], matrix.cols[keep_pair]
        groups: dict[bytes, int] = {}
        group_of_row = np.full(matrix.n_clients, -1, dtype=np.int64)
        bounds = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1], True]) if rows.size else np.zeros(1, int)
        members: list[IntArray] = []
        for a, b in itertools.pairwise(bounds):
            key = cols[a:b].tobytes()
            g = groups.setdefault(key, len(groups))
            if g == len(members):
                members.append(cols[a:b])
            group_of_row[rows[a]] = g
        n_groups = len(members)
        in_group = group_of_row >= 0
        weights = np.bincount(group_of_row[in_group], weights=matrix.weights[in_group],
                              minlength=n_groups).astype(np.float64)
        kept = np.zeros(matrix.n_facilities, dtype=bool)
        if n_groups:
            g_idx = np.repeat(np.arange(n_groups), [m.size for m in members])
            f_idx = np.concatenate(members)
            b = sparse.csr_matrix((np.ones(f_idx.size), (g_idx, f_idx)),
                                  shape=(n_groups, matrix.n_facilities))
            size = np.asarray(b.sum(axis=0)).reshape(-1)
            overlap = (b.T @ b).tocoo()
            j, k, v = overlap.row, overlap.col, overlap.data
            beaten = (j != k) & (v >= size[j]) & ((size[k] > size[j]) | ((size[k] == size[j]) & (k < j)))
            dominated = np.zeros(matrix.n_facilities, dtype=bool)
            dominated[j[beaten]] = True
            kept = (size > 0) & ~dominated
            members = [m[kept[m]] for m in members]
        return cls(base, float(matrix.weights[base].sum()), weights, tuple(members), kept)

    @property
    def n_groups(self) -> int:
        """Demand groups left in the model."""
        return int(self.group_weights.size)


def _selected(fac_vars: list[pulp.LpVariable]) -> BoolArray:
    return np.array([(v.varValue or 0.0) > 0.5 for v in fac_vars], dtype=bool)


class _Model:
    """Shared parts of the two models: site variables, fixed sites, start, results."""

    name = "model"

    def __init__(self, matrix: CoverageMatrix) -> None:
        # spopt's model builder fixes predefined sites; importing spopt takes seconds, so it
        # happens here, outside the timed build, and only when a model is made
        from spopt.locate.base import FacilityModelBuilder  # noqa: PLC0415

        self._builder = FacilityModelBuilder
        self._started = time.perf_counter()  # build time counts the reductions too
        self.matrix = matrix
        self.problem: pulp.LpProblem
        self.fac_vars: list[pulp.LpVariable] = []
        self.cli_vars: list[pulp.LpVariable] = []
        self.selected: BoolArray = matrix.predefined.copy()
        """Sites in the plan (existing and new), after :meth:`solve`."""
        self.report: SolveReport | None = None
        """How the last solve went, after :meth:`solve`."""
        self.build_seconds = 0.0
        self.reduction = Reduction.of(matrix)
        """The exact reductions applied (:class:`Reduction`)."""

    def _add_facilities(self) -> None:
        with warnings.catch_warnings():  # spopt builds LpVariable directly, which pulp 3.3 deprecates
            warnings.filterwarnings("ignore", "Constructing LpVariable", DeprecationWarning)
            self._builder.add_facility_integer_variable(self, range(self.matrix.n_facilities), "x[{i}]")
        if self.matrix.predefined.any():
            # spopt's own fixing of predefined_facility_col: x_j fixed to 1
            self._builder.add_predefined_facility_constraint(
                self, self.matrix.predefined.astype(np.int64))
        for j in np.flatnonzero(~self.matrix.predefined & ~self.reduction.kept):
            self.fac_vars[j].upBound = 0  # dominated, or covers nothing left (Reduction)

    def _add_groups(self) -> None:
        """``y_g ≤ Σ_{j ∈ N_g} x_j`` for every demand group, ``0 ≤ y_g ≤ 1``."""
        fac = self.fac_vars
        self.cli_vars = [self.problem.add_variable(f"y[{g}]", lowBound=0, upBound=1)
                         for g in range(self.reduction.n_groups)]
        for g, sites in enumerate(self.reduction.group_sites):
            expr = pulp.LpAffineExpression([(fac[j], 1.0) for j in sites] + [(self.cli_vars[g], -1.0)])
            self.problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"cover_{g}", 0.0))

    def _start_from(self, selected: BoolArray) -> None:
        """Give the solver ``selected`` (a feasible plan) as its starting incumbent."""
        for var, value in zip(self.fac_vars, selected, strict=True):
            var.setInitialValue(1.0 if value else 0.0)
        if self.cli_vars:  # the share-constrained LSCP and the MCLP; Toregas's LSCP has none
            for var, sites in zip(self.cli_vars, self.reduction.group_sites, strict=True):
                var.setInitialValue(1.0 if selected[sites].any() else 0.0)

    def _greedy_start(self, new_sites: int | None, target: float | None) -> BoolArray:
        return greedy_coverage(self.matrix, new_sites, target=target,
                               allowed=self.reduction.kept | self.matrix.predefined).selected

    @property
    def new_selected(self) -> BoolArray:
        """New sites in the plan (selected and not predefined)."""
        return self.selected & ~self.matrix.predefined

    @property
    def covered(self) -> BoolArray:
        """Clients covered by the plan."""
        return self.matrix.covered(self.selected)

    @property
    def covered_share(self) -> float:
        """Share of demand covered by the plan (existing and new sites)."""
        return self.matrix.covered_share(self.selected)

    @property
    def covered_share_before(self) -> float:
        """Share of demand covered by the existing (predefined) sites alone."""
        return self.matrix.covered_share(self.matrix.predefined)

    def _finish(self, solver: Solver, outcome: _Outcome, *, maximise: bool) -> None:
        self.selected = _selected(self.fac_vars) | self.matrix.predefined
        # the plan's true value, read from the sites (y may sit below its bound in a solution)
        objective = self.matrix.covered_weight(self.selected) if maximise else float(self.selected.sum())
        self.report = SolveReport(solver_label(solver), outcome.status, objective, outcome.bound,
                                  _relative_gap(objective, outcome.bound, maximise),
                                  self.build_seconds, outcome.seconds)


class MaximalCoverage(_Model):
    r"""Maximal covering location problem (MCLP; Church & ReVelle 1974), existing sites fixed.

    .. math::

        \max \sum_i w_i y_i \quad\text{s.t.}\quad
        y_i \le \sum_{j \in N_i} x_j\ \forall i,\qquad
        \sum_j x_j \le p_0 + p,\qquad
        x_j = 1\ (j \text{ existing}),\qquad x_j \in \{0,1\},\ 0 \le y_i \le 1

    with ``N_i = {j : d_ij <= r}``, ``p_0`` existing sites and a budget of ``p`` new ones.
    This is spopt's ``MCLP`` with ``predefined_facility_col`` (spopt's budget counts the
    existing sites too: ``p_facilities = p_0 + p``, as an equality; more sites never cover
    less, so ``≤`` has the same optimum and lets a plan stop once nothing more can be
    covered). ``y_i`` may be continuous because at any integral ``x`` the best ``y_i`` is
    0 or 1. The model is built after the exact :class:`Reduction` and started from the
    greedy plan, so the answer is never worse than greedy even when a time limit stops
    the solver.

    Build with :meth:`from_geodataframe` (or :meth:`from_cost_matrix`), then :meth:`solve`.

    Attributes
    ----------
    selected : numpy.ndarray
        Sites in the plan (existing and new).
    objective : float
        Covered demand ``Σ w_i`` of the plan.
    covered_share, covered_share_before : float
        Share of demand covered with and without the new sites.
    report : SolveReport
        Solver, status, bound, gap and times.

    References
    ----------
    Church, R. and ReVelle, C. (1974). The maximal covering location problem. *Papers of
    the Regional Science Association* 32(1), 101–118.

    Examples
    --------
    Three demand points on a line 1 km apart, sites at each, a 600 m radius, one new
    site: the heaviest point wins.

    >>> m = MaximalCoverage.from_cost_matrix(
    ...     [[0, 1000, 2000], [1000, 0, 1000], [2000, 1000, 0]], [1.0, 5.0, 2.0],
    ...     service_radius=600, new_sites=1).solve()
    >>> m.selected.tolist(), m.objective
    ([False, True, False], 5.0)
    """

    name = "mclp"

    def __init__(self, matrix: CoverageMatrix, new_sites: int) -> None:
        super().__init__(matrix)
        self.problem = pulp.LpProblem(self.name, pulp.LpMaximize)
        self._add_facilities()
        self._add_groups()
        red = self.reduction
        self.problem += pulp.LpAffineExpression(
            [(y, float(w)) for y, w in zip(self.cli_vars, red.group_weights, strict=True)],
            constant=red.base_weight)
        self._budget = pulp.LpConstraint(pulp.LpAffineExpression([(x, 1.0) for x in self.fac_vars]),
                                         pulp.LpConstraintLE, "budget", 0.0)
        self.problem.addConstraint(self._budget)
        self.new_sites = 0
        self.set_budget(new_sites)
        self.build_seconds = time.perf_counter() - self._started

    def set_budget(self, new_sites: int) -> MaximalCoverage:
        """Change the number of new sites (the model is kept; only the budget changes)."""
        new_sites = int(new_sites)
        if new_sites < 0:
            raise CoverageInputError(f"the number of new sites must be ≥ 0, got {new_sites}")
        if new_sites > self.matrix.free_sites:
            raise InfeasiblePlanError(f"{new_sites} new sites asked for but only "
                                      f"{self.matrix.free_sites} candidate sites exist")
        self._budget.constant = -float(int(self.matrix.predefined.sum()) + new_sites)
        self.new_sites = new_sites
        self.report = None
        return self

    @classmethod
    def from_cost_matrix(cls, cost_matrix: npt.ArrayLike, weights: npt.ArrayLike,
                         service_radius: float, *, new_sites: int,
                         predefined_facilities_arr: npt.ArrayLike | None = None) -> MaximalCoverage:
        """From a dense cost matrix (clients × sites), as ``spopt.locate.MCLP.from_cost_matrix``."""
        return cls(CoverageMatrix.from_cost_matrix(cost_matrix, weights, service_radius,
                                                   predefined_facilities_arr), new_sites)

    @classmethod
    def from_geodataframe(cls, gdf_demand: gpd.GeoDataFrame, gdf_fac: gpd.GeoDataFrame,
                          weights_cols: str, service_radius: float, *, new_sites: int,
                          predefined_facility_col: str | None = None,
                          epsg: int | None = None) -> MaximalCoverage:
        """From demand and site points (see :meth:`CoverageMatrix.from_geodataframe`)."""
        return cls(CoverageMatrix.from_geodataframe(
            gdf_demand, gdf_fac, weights_cols, service_radius,
            predefined_facility_col=predefined_facility_col, epsg=epsg), new_sites)

    def solve(self, solver: Solver = "highs", *, time_limit: float | None = DEFAULT_TIME_LIMIT_S,
              gap_rel: float = DEFAULT_GAP_REL, threads: int | None = None,
              start: npt.ArrayLike | None = None) -> MaximalCoverage:
        """Solve with HiGHS or CBC; fills :attr:`selected` and :attr:`report`. Returns self.

        ``start`` (a feasible plan, e.g. the previous budget's) replaces the greedy start.
        """
        if start is None:
            initial = self._greedy_start(self.new_sites, None)
        else:
            initial = np.asarray(start, dtype=bool) & (self.reduction.kept | self.matrix.predefined)
            if int((initial & ~self.matrix.predefined).sum()) > self.new_sites:
                initial = self._greedy_start(self.new_sites, None)
        self._start_from(initial)
        outcome = _run(self.problem, solver, time_limit=time_limit, gap_rel=gap_rel, threads=threads,
                       warm_start=True, what=f"MCLP with {self.new_sites} new sites")
        self._finish(solver, outcome, maximise=True)
        if self.matrix.covered_weight(initial) > self.matrix.covered_weight(self.selected):
            # a solver stopped early below its own start: keep the better, known plan
            self.selected = initial
            self._finish_known(solver, outcome)
        return self

    def _finish_known(self, solver: Solver, outcome: _Outcome) -> None:
        objective = self.matrix.covered_weight(self.selected)
        self.report = SolveReport(solver_label(solver), outcome.status, objective, outcome.bound,
                                  _relative_gap(objective, outcome.bound, True),
                                  self.build_seconds, outcome.seconds)

    @property
    def objective(self) -> float:
        """Covered demand of the plan (after :meth:`solve`)."""
        if self.report is None:
            raise CoverageError("solve the model first")
        return self.report.objective


class SetCoverage(_Model):
    r"""Location set covering (LSCP; Toregas et al. 1971), optionally for a target share.

    With ``target = 1`` this is Toregas's model as spopt's ``LSCP`` builds it:

    .. math::

        \min \sum_j x_j \quad\text{s.t.}\quad \sum_{j \in N_i} x_j \ge 1\ \forall i,\qquad
        x_j = 1\ (j \text{ existing})

    which covers *all* demand. A planner usually asks for the fewest sites covering a
    share ``τ`` of it; spopt has no such model (its ``LSCP`` always covers every client,
    and ``LSCPB`` maximises backup coverage), so for ``τ < 1`` the covering constraints
    become the share-constrained (partial covering) form

    .. math::

        y_i \le \sum_{j \in N_i} x_j\ \forall i,\qquad \sum_i w_i y_i \ge τ \sum_i w_i,
        \qquad 0 \le y_i \le 1

    whose optimum is the smallest budget at which the MCLP covers at least ``τ`` (the
    tests check that equivalence). The number of new sites is ``Σ x_j − p_0``;
    ``max_new_sites`` optionally caps it. Built after the exact :class:`Reduction`,
    started from the greedy plan.

    Attributes
    ----------
    selected : numpy.ndarray
        Sites in the plan (existing and new).
    new_sites : int
        New sites needed (after :meth:`solve`).
    report : SolveReport
        Solver, status, bound, gap and times (objective: total sites).

    References
    ----------
    Toregas, C., Swain, R., ReVelle, C. and Bergman, L. (1971). The location of emergency
    service facilities. *Operations Research* 19(6), 1363–1373.

    Examples
    --------
    The greedy trap: a site covering four of six points tempts greedy, two others cover all.

    >>> cost = [[0, 9, 0], [0, 9, 0], [0, 9, 9], [9, 0, 0], [9, 0, 0], [9, 0, 9]]
    >>> SetCoverage.from_cost_matrix(cost, [1.0] * 6, 1.0).solve().selected.tolist()
    [True, True, False]
    >>> SetCoverage.from_cost_matrix(cost, [1.0] * 6, 1.0, target=0.6).solve().new_sites
    1
    """

    name = "lscp"

    def __init__(self, matrix: CoverageMatrix, target: float = 1.0,
                 max_new_sites: int | None = None) -> None:
        super().__init__(matrix)
        if not 0.0 < target <= 1.0:
            raise CoverageInputError(f"the target share must lie in (0, 1], got {target}")
        self.target = float(target)
        coverable = matrix.weights[matrix.coverable].sum() / matrix.total_weight
        if coverable < target - 1e-12:
            raise InfeasiblePlanError(
                f"at most {coverable:.1%} of the demand lies within {matrix.service_radius:g} m of a "
                f"site, so no plan covers {target:.1%}; lower the target or add candidate sites")
        red = self.reduction
        self.problem = pulp.LpProblem(self.name, pulp.LpMinimize)
        self._add_facilities()
        self.problem += pulp.LpAffineExpression([(x, 1.0) for x in self.fac_vars])
        fac = self.fac_vars
        need = target * matrix.total_weight * (1 - 1e-12) - red.base_weight
        if target >= 1.0:
            for g, sites in enumerate(red.group_sites):
                self.problem.addConstraint(pulp.LpConstraint(
                    pulp.LpAffineExpression([(fac[j], 1.0) for j in sites]), pulp.LpConstraintGE,
                    f"cover_{g}", 1.0))
        elif need > 0:
            self._add_groups()
            self.problem.addConstraint(pulp.LpConstraint(
                pulp.LpAffineExpression([(y, float(w)) for y, w in
                                         zip(self.cli_vars, red.group_weights, strict=True)]),
                pulp.LpConstraintGE, "target_share", need))
        self.max_new_sites = max_new_sites
        if max_new_sites is not None:
            self.problem.addConstraint(pulp.LpConstraint(
                pulp.LpAffineExpression([(x, 1.0) for x, pre in zip(fac, matrix.predefined, strict=True)
                                         if not pre]),
                pulp.LpConstraintLE, "max_new_sites", float(max_new_sites)))
        self.build_seconds = time.perf_counter() - self._started

    @classmethod
    def from_cost_matrix(cls, cost_matrix: npt.ArrayLike, weights: npt.ArrayLike,
                         service_radius: float, *, target: float = 1.0,
                         predefined_facilities_arr: npt.ArrayLike | None = None,
                         max_new_sites: int | None = None) -> SetCoverage:
        """From a dense cost matrix (clients × sites), as ``spopt.locate.LSCP.from_cost_matrix``."""
        return cls(CoverageMatrix.from_cost_matrix(cost_matrix, weights, service_radius,
                                                   predefined_facilities_arr), target, max_new_sites)

    @classmethod
    def from_geodataframe(cls, gdf_demand: gpd.GeoDataFrame, gdf_fac: gpd.GeoDataFrame,
                          weights_cols: str, service_radius: float, *, target: float = 1.0,
                          predefined_facility_col: str | None = None, epsg: int | None = None,
                          max_new_sites: int | None = None) -> SetCoverage:
        """From demand and site points (see :meth:`CoverageMatrix.from_geodataframe`)."""
        return cls(CoverageMatrix.from_geodataframe(
            gdf_demand, gdf_fac, weights_cols, service_radius,
            predefined_facility_col=predefined_facility_col, epsg=epsg), target, max_new_sites)

    def solve(self, solver: Solver = "highs", *, time_limit: float | None = DEFAULT_TIME_LIMIT_S,
              gap_rel: float = DEFAULT_GAP_REL, threads: int | None = None) -> SetCoverage:
        """Solve with HiGHS or CBC; fills :attr:`selected`, :attr:`new_sites`, :attr:`report`."""
        initial = self._greedy_start(None, self.target)
        extra = int((initial & ~self.matrix.predefined).sum())
        fits = self.max_new_sites is None or extra <= self.max_new_sites
        if fits:
            self._start_from(initial)
        what = f"LSCP for {self.target:.1%} of the demand"
        try:
            outcome = _run(self.problem, solver, time_limit=time_limit, gap_rel=gap_rel,
                           threads=threads, warm_start=fits, what=what)
        except InfeasiblePlanError as exc:
            if self.max_new_sites is None:
                raise
            raise InfeasiblePlanError(f"covering {self.target:.1%} of the demand needs more than "
                                      f"{self.max_new_sites} new sites") from exc
        self._finish(solver, outcome, maximise=False)
        return self

    @property
    def new_sites(self) -> int:
        """Number of new sites in the plan."""
        return int(self.new_selected.sum())


# --------------------------------------------------------------------------- baselines, curves


@dataclass(frozen=True)
class GreedyResult:
    """The greedy plan: ``order`` of new sites picked, covered share after each pick."""

    selected: BoolArray
    order: IntArray
    shares: FloatArray
    """``shares[k]``: covered share with the first ``k`` greedy sites (``shares[0]``: existing)."""
    seconds: float

    @property
    def covered_share(self) -> float:
        """Covered share of the full greedy plan."""
        return float(self.shares[-1])

    def share_at(self, k: int) -> float:
        """Covered share with ``k`` greedy sites (greedy stops once nothing more is covered)."""
        return float(self.shares[min(k, self.shares.size - 1)])


def greedy_coverage(matrix: CoverageMatrix, new_sites: int | None = None, *,
                    target: float | None = None, allowed: npt.ArrayLike | None = None) -> GreedyResult:
    """Greedy baseline: add, one at a time, the site covering the most uncovered demand.

    Stops after ``new_sites`` sites, once ``target`` share is covered (whichever comes
    first when both are given), or when no site adds anything. Greedy achieves at least
    ``1 − 1/e`` of the MCLP's optimal gain (Nemhauser, Wolsey & Fisher 1978); ties go to
    the lowest site index. ``allowed`` restricts the sites it may add.

    >>> m = CoverageMatrix.from_cost_matrix([[0, 9], [9, 0], [5, 5]], [1.0, 1.0, 3.0], 5)
    >>> greedy_coverage(m, 2).shares.round(2).tolist()
    [0.0, 0.8, 1.0]
    """
    if new_sites is None and target is None:
        raise CoverageInputError("give new_sites or target")
    started = time.perf_counter()
    limit = matrix.free_sites if new_sites is None else min(int(new_sites), matrix.free_sites)
    selected = matrix.predefined.copy()
    blocked = selected.copy() if allowed is None else selected | ~np.asarray(allowed, dtype=bool)
    residual = np.where(matrix.covered(selected), 0.0, matrix.weights)
    total = matrix.total_weight
    shares = [1.0 - residual.sum() / total]
    order: list[int] = []
    aij_t = matrix.aij_t
    while len(order) < limit and (target is None or shares[-1] < target - 1e-12):
        gains = aij_t @ residual
        gains[blocked] = -1.0
        j = int(np.argmax(gains))
        if gains[j] <= 0:
            break
        selected[j] = blocked[j] = True
        order.append(j)
        residual[aij_t.indices[aij_t.indptr[j]:aij_t.indptr[j + 1]]] = 0.0
        shares.append(1.0 - residual.sum() / total)
    return GreedyResult(selected, np.asarray(order, dtype=np.int64), np.asarray(shares),
                        time.perf_counter() - started)


def coverage_curve(matrix: CoverageMatrix, max_sites: int, *, solver: Solver = "highs",
                   time_limit: float | None = DEFAULT_TIME_LIMIT_S, gap_rel: float = DEFAULT_GAP_REL,
                   threads: int | None = None) -> pd.DataFrame:
    """Covered share for 0..``max_sites`` new sites (the MCLP at each budget), non-decreasing.

    One model is built and only its budget changes between solves. The solve for ``k``
    sites starts from the plan for ``k − 1`` plus the best single added site, and keeps that
    start if the solver stops early below it, so every row is the share of a concrete plan
    and the curve never falls even when a time limit cuts a solve short. Once all
    coverable demand is covered, further rows repeat the share (``status = "saturated"``).

    Returns ``sites, covered_share, covered_demand, greedy_share, gap, status,
    solve_seconds``; rows stop at the number of candidate sites.
    """
    if max_sites < 0:
        raise CoverageInputError(f"max_sites must be ≥ 0, got {max_sites}")
    top = min(int(max_sites), matrix.free_sites)
    greedy = greedy_coverage(matrix, top)
    ceiling = float(matrix.weights[matrix.coverable].sum())
    model = MaximalCoverage(matrix, 0)
    allowed = model.reduction.kept | matrix.predefined
    rows: list[dict[str, Any]] = []
    previous = matrix.predefined.copy()
    for k in range(top + 1):
        if k and matrix.covered_weight(previous) >= ceiling * (1 - 1e-12):
            rows.append({**rows[-1], "sites": k, "greedy_share": greedy.share_at(k), "gap": 0.0,
                         "status": "saturated", "solve_seconds": 0.0})
            continue
        start = previous if k == 0 else greedy_coverage(replace(matrix, predefined=previous), 1,
                                                        allowed=allowed).selected
        model.set_budget(k).solve(solver, time_limit=time_limit, gap_rel=gap_rel, threads=threads,
                                  start=start)
        assert model.report is not None
        previous = model.selected
        share = matrix.covered_share(previous)
        rows.append({"sites": k, "covered_share": share, "covered_demand": share * matrix.total_weight,
                     "greedy_share": greedy.share_at(k), "gap": model.report.gap,
                     "status": model.report.status, "solve_seconds": model.report.solve_seconds})
    return pd.DataFrame(rows, columns=["sites", "covered_share", "covered_demand", "greedy_share",
                                       "gap", "status", "solve_seconds"])


# --------------------------------------------------------------------------- tehsil plans


@dataclass
class TehsilInstance:
    """Everything about one tehsil's siting problem before a model is chosen.

    ``facilities`` lists existing sites first (``existing=True``), then candidates; row
    ``j`` is site ``j`` of ``matrix``.
    """

    tehsil: TehsilRef
    demand: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    matrix: CoverageMatrix
    radius_m: float
    res: int
    calls: int
    existing_source: str

    @property
    def epsg(self) -> int:
        """EPSG code of the UTM zone distances are measured in."""
        return self.tehsil.epsg


def _existing_source(existing: gpd.GeoDataFrame) -> str:
    sources = sorted(set(existing["source"].astype(str))) if "source" in existing.columns else []
    return "; ".join(sources) if sources else "none"


def tehsil_instance(calls: pd.DataFrame, tehsil: str | TehsilRef, *, radius_m: float = DEFAULT_RADIUS_M,
                    res: int = DEFAULT_RES, candidates: gpd.GeoDataFrame | None = None,
                    existing: gpd.GeoDataFrame | None = None, boundaries: BoundarySet | None = None,
                    categories: pd.DataFrame | None = None) -> TehsilInstance:
    """Demand, sites and coverage matrix of one tehsil.

    ``candidates``: new-site candidates (default: demand cell centres); only those inside
    the tehsil are kept. ``existing``: existing sites (default: the stand-in layer,
    :func:`stand_in_existing_sites`); those within ``radius_m`` of the tehsil are kept,
    since they cover some of its demand.
    """
    if not radius_m > 0:
        raise CoverageInputError(f"the coverage radius must be > 0 m, got {radius_m}")
    if boundaries is None and (existing is None or not isinstance(tehsil, TehsilRef)):
        boundaries = default_boundaries()
    ref = tehsil if isinstance(tehsil, TehsilRef) else tehsil_ref(tehsil, boundaries)
    demand = demand_cells(calls, ref, res=res, categories=categories)
    n_calls = len(calls_in_tehsil(calls, ref))
    epsg = ref.epsg
    to_m = Transformer.from_crs(WGS84, f"EPSG:{epsg}", always_xy=True)
    tehsil_m = shapely.transform(ref.geometry, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))
    if existing is None:
        assert boundaries is not None
        existing = stand_in_existing_sites(boundaries)
    existing = existing.assign(existing=True)
    if len(existing):
        exy = _project(existing, epsg)
        near = shapely.dwithin(tehsil_m, shapely.points(exy), radius_m)
        existing = existing[near]
    if candidates is None:
        candidates = candidates_from_demand(demand)
    else:
        cxy = _project(candidates, epsg)
        candidates = candidates[shapely.contains_xy(tehsil_m, cxy[:, 0], cxy[:, 1])]
        if candidates.empty:
            raise SiteFileError(f"no candidate site lies inside tehsil {ref.label}")
    candidates = candidates.assign(existing=False, tehsil_code=ref.code, district_code=ref.district_code)
    facilities = gpd.GeoDataFrame(pd.concat([existing, candidates], ignore_index=True),
                                  geometry="geometry", crs=WGS84)
    facilities = facilities[[c for c in facilities.columns if c != "geometry"] + ["geometry"]]
    matrix = CoverageMatrix.from_points(_project(demand, epsg), _project(facilities, epsg),
                                        demand["demand"].to_numpy(), radius_m,
                                        facilities["existing"].to_numpy(dtype=bool))
    return TehsilInstance(ref, demand, facilities, matrix, float(radius_m), res, n_calls,
                          _existing_source(existing))


@dataclass
class SitePlan:
    """A tehsil's plan: the chosen sites, the demand cells and a summary.

    Attributes
    ----------
    sites : geopandas.GeoDataFrame
        Sites in the plan (existing ones marked ``existing=True``) with ``demand_within``
        (all demand within the radius), ``demand_assigned`` (the demand for which it is the
        nearest site of the plan; these sum to the covered demand), ``cells_assigned`` and
        ``share_assigned``.
    demand : geopandas.GeoDataFrame
        Demand cells with ``covered_before``, ``covered_after`` and ``site_id`` (nearest).
    summary : dict
        Tehsil, model, radius, covered share before and after, greedy baseline, solver,
        status, gap and times, and where the existing sites come from.
    """

    sites: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    summary: dict[str, Any]

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection of the sites, with the summary as a foreign member."""
        collection: dict[str, Any] = json.loads(self.sites.to_json(drop_id=True))
        collection["summary"] = self.summary
        return collection


def _plan_from(instance: TehsilInstance, selected: BoolArray, summary: dict[str, Any]) -> SitePlan:
    matrix = instance.matrix
    before = matrix.covered(matrix.predefined)
    nearest = matrix.assignment(selected)
    w = matrix.weights
    within = np.asarray(matrix.aij_t @ w).reshape(-1)
    assigned = np.bincount(nearest[nearest >= 0], weights=w[nearest >= 0], minlength=matrix.n_facilities)
    cells = np.bincount(nearest[nearest >= 0], minlength=matrix.n_facilities)
    sites = instance.facilities.copy()
    sites["new"] = selected & ~matrix.predefined
    sites["demand_within"] = within
    sites["demand_assigned"] = assigned
    sites["cells_assigned"] = cells
    sites["share_assigned"] = assigned / matrix.total_weight
    sites["lat"] = sites.geometry.y
    sites["lon"] = sites.geometry.x
    sites = sites[selected].reset_index(drop=True)
    sites = sites.sort_values(["existing", "demand_assigned", "site_id"],
                              ascending=[True, False, True], ignore_index=True)
    front = ["site_id", "name", "existing", "new", "stand_in", "demand_within", "demand_assigned",
             "cells_assigned", "share_assigned", "lat", "lon", "source"]
    sites = sites[front + [c for c in sites.columns if c not in front and c != "geometry"] + ["geometry"]]
    demand = instance.demand.copy()
    demand["covered_before"] = before
    demand["covered_after"] = nearest >= 0
    site_ids = instance.facilities["site_id"].astype(str).to_numpy()
    demand["site_id"] = np.where(nearest >= 0, site_ids[np.maximum(nearest, 0)], None)
    ref = instance.tehsil
    head = {
        "tehsil_code": ref.code, "tehsil": ref.name, "district_code": ref.district_code,
        "district": ref.district, "radius_m": instance.radius_m, "h3_res": instance.res,
        "epsg": instance.epsg, "calls": instance.calls, "demand_cells": matrix.n_clients,
        "demand_total": matrix.total_weight,
        "existing_sites": int(matrix.predefined.sum()),
        "existing_sites_source": instance.existing_source,
        "existing_sites_stand_in": bool(instance.facilities.loc[instance.facilities["existing"],
                                                                "stand_in"].astype(bool).any()),
        "candidate_sites": matrix.free_sites,
        "covered_share_before": matrix.covered_share(matrix.predefined),
        "covered_share_after": matrix.covered_share(selected),
        "new_sites": int((selected & ~matrix.predefined).sum()),
    }
    return SitePlan(gpd.GeoDataFrame(sites, geometry="geometry", crs=WGS84), demand, {**head, **summary})


def plan_sites(calls: pd.DataFrame, tehsil: str | TehsilRef, *, new_sites: int | None = None,
               radius_m: float = DEFAULT_RADIUS_M, model: ModelName = "mclp",
               target: float | None = None, res: int = DEFAULT_RES,
               candidates: gpd.GeoDataFrame | None = None, existing: gpd.GeoDataFrame | None = None,
               boundaries: BoundarySet | None = None, categories: pd.DataFrame | None = None,
               solver: Solver = "highs", time_limit: float | None = DEFAULT_TIME_LIMIT_S,
               gap_rel: float = DEFAULT_GAP_REL) -> SitePlan:
    """Plan a tehsil's new camera sites with the MCLP (a budget) or the LSCP (a target share).

    ``model="mclp"`` needs ``new_sites``: the plan covers the most demand with that many
    new sites. ``model="lscp"`` finds the fewest new sites covering ``target`` (default 1.0,
    all demand); ``new_sites``, if given, caps that number. Either way the summary compares
    with the greedy baseline on the same instance.

    Raises :class:`NoDemandError` for a tehsil without calls, :class:`InfeasiblePlanError`
    when the request cannot be met, :class:`CoverageInputError` for bad options.
    """
    if model not in ("mclp", "lscp"):
        raise CoverageInputError(f"unknown model {model!r}; choose mclp or lscp")
    if model == "mclp" and new_sites is None:
        raise CoverageInputError("the MCLP needs a number of new sites")
    if model == "mclp" and target is not None:
        raise CoverageInputError("a target share goes with the LSCP (model='lscp')")
    instance = tehsil_instance(calls, tehsil, radius_m=radius_m, res=res, candidates=candidates,
                               existing=existing, boundaries=boundaries, categories=categories)
    matrix = instance.matrix
    if model == "mclp":
        assert new_sites is not None
        solved: _Model = MaximalCoverage(matrix, new_sites).solve(
            solver, time_limit=time_limit, gap_rel=gap_rel)
        greedy = greedy_coverage(matrix, new_sites)
        extra: dict[str, Any] = {"model": "mclp", "target": None, "sites_requested": new_sites,
                                 "greedy_covered_share": greedy.covered_share,
                                 "greedy_new_sites": int(greedy.order.size)}
    else:
        share = 1.0 if target is None else float(target)
        solved = SetCoverage(matrix, share, new_sites).solve(solver, time_limit=time_limit,
                                                             gap_rel=gap_rel)
        greedy = greedy_coverage(matrix, target=share)
        extra = {"model": "lscp", "target": share, "sites_requested": new_sites,
                 "greedy_covered_share": greedy.covered_share,
                 "greedy_new_sites": int(greedy.order.size)}
    assert solved.report is not None
    return _plan_from(instance, solved.selected, {**extra, **solved.report.to_dict()})


def plan_curve(calls: pd.DataFrame, tehsil: str | TehsilRef, *, max_sites: int,
               radius_m: float = DEFAULT_RADIUS_M, res: int = DEFAULT_RES,
               candidates: gpd.GeoDataFrame | None = None, existing: gpd.GeoDataFrame | None = None,
               boundaries: BoundarySet | None = None, categories: pd.DataFrame | None = None,
               solver: Solver = "highs", time_limit: float | None = DEFAULT_TIME_LIMIT_S,
               gap_rel: float = DEFAULT_GAP_REL) -> pd.DataFrame:
    """A tehsil's coverage curve (:func:`coverage_curve`) with the tehsil code in ``attrs``."""
    instance = tehsil_instance(calls, tehsil, radius_m=radius_m, res=res, candidates=candidates,
                               existing=existing, boundaries=boundaries, categories=categories)
    curve = coverage_curve(instance.matrix, max_sites, solver=solver, time_limit=time_limit,
                           gap_rel=gap_rel)
    curve.attrs.update({"tehsil_code": instance.tehsil.code, "tehsil": instance.tehsil.name,
                        "radius_m": radius_m, "existing_sites": int(instance.matrix.predefined.sum()),
                        "existing_sites_source": instance.existing_source,
                        "candidate_sites": instance.matrix.free_sites, "solver": solver_label(solver)})
    return curve
