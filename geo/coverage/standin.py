"""The stand-in layer of existing Safe City camera sites, until the real one is imported.

No open data gives the positions of Punjab's Safe City cameras, and a plan must know what
is covered already. Phases 1 and 2 cover the urban cores of the district headquarters
towns, so the stand-in puts a hexagonal lattice of sites over a disk around each
headquarters town, sized by its tehsil's urban population and clipped to the district.
Every stand-in site says so (``stand_in=True``, :data:`STAND_IN_SOURCE`), and so does every
plan that uses them. The towns and the boundary set are arguments; the application loads
and caches them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo.coverage.matrix import FloatArray
from geo.coverage.sites import site_frame
from geo.crs import WGS84, utm_epsg

if TYPE_CHECKING:
    from jurisdictions.boundaries import BoundarySet


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


def district_headquarters(boundaries: BoundarySet, towns: pd.DataFrame) -> pd.DataFrame:
    """Each district's headquarters town among ``towns`` (``name, lon, lat, population``;
    the application passes the GeoNames towns, ``api.shipped.load_towns``).

    The town named after the district (or as :data:`HQ_TOWN_NAMES` says) nearest the
    district; when no town has that name, the district's most populous town inside it;
    failing that, a point inside the district. Returns ``district_code, district, town,
    lon, lat, tehsil_code, urban_2023`` (the urban population of the tehsil holding the town).
    """
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
    return np.asarray(xy[np.hypot(xy[:, 0], xy[:, 1]) <= radius], dtype=np.float64)


def stand_in_existing_sites(boundaries: BoundarySet, towns: pd.DataFrame,
                            params: ExistingSiteParameters | None = None) -> gpd.GeoDataFrame:
    """The **stand-in** layer of existing Safe City camera sites (deterministic).

    No open data gives the Punjab Safe Cities camera positions. Phases 1 and 2 cover the
    urban cores of district headquarters towns, so the stand-in puts a hexagonal lattice
    of sites over a disk around each headquarters town (:func:`district_headquarters`
    among ``towns``), sized by the urban population of the tehsil holding it
    (:class:`ExistingSiteParameters`), clipped to the district. Sites are marked
    ``stand_in=True`` with :data:`STAND_IN_SOURCE`; a user replaces the layer with
    :func:`geo.coverage.sites.read_sites` (``--existing FILE`` on the command line).

    Returns ``site_id, name, existing, stand_in, source, district_code, tehsil_code`` and
    point geometry in EPSG:4326. The application caches the layer per boundary-set version
    and parameters under :func:`stand_in_sites_file`.
    """
    params = params or ExistingSiteParameters()
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
        parts.append(site_frame(
            np.char.add(f"{town['district_code']}-cam-", np.char.zfill(k.astype(str), 4)),
            np.char.add(np.char.add(f"{town['town']} Safe City site ", k.astype(str)), " (stand-in)"),
            points, existing=True, stand_in=True, source=STAND_IN_SOURCE,
            district_code=town["district_code"], tehsil_code=tehsil_code))
    frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["tehsil_code"].notna()].reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=WGS84)


def stand_in_sites_file(cache_dir: Path, boundaries_version: str,
                        params: ExistingSiteParameters | None = None) -> Path:
    """Where the stand-in layer of a boundary-set version and ``params`` is cached in
    ``cache_dir`` (the name changes with :data:`STAND_IN_ALGORITHM`, so old layers are
    never read)."""
    key = json.dumps({**asdict(params or ExistingSiteParameters()), "algorithm": STAND_IN_ALGORITHM,
                      "boundaries": boundaries_version}, sort_keys=True)
    return Path(cache_dir) / f"safecity-sites-{hashlib.sha256(key.encode()).hexdigest()[:12]}.parquet"
