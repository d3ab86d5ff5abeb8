"""One map page for every map: what the browser client draws, and the HTML around it.

Every map page (``/maps/{kind}``, ``/maps/plans/{id}``) is the same template
(``api/templates/maps/page.html``) and the same client (``/static/maps/safecity-map.js``
on the vendored deck.gl). The server sends one compact JSON document embedded in the
page — columns, not per-cell HTML — holding:

- the cells (H3 ids, a class per cell, the figures the tooltip shows, the station each
  cell's centre lies in, as an index into small name tables, so a tooltip leads with
  station, tehsil and district names);
- area outlines (district, tehsil, station lines simplified to the page's scale, the
  study area's own boundary, a veil over everything outside it) and their name labels,
  each with the zoom from which it is shown;
- the basemap layers (:mod:`geo.basemap`) that reach into the frame, with the towns'
  label priority.

The legend, the minimum counts behind the classes, the "where" list and the credits are
server-rendered text, so they are readable without the canvas (and by screen readers).
The classes' colours are sent once and looked up per cell, so a cell's colour is always
its legend row's colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
import pandas as pd

from api.pages import templates
from geo import h3cells
from geo.basemap import ATTRIBUTION_LINES, Basemap
from jurisdictions.boundaries import BoundarySet

CLIENT_JS = "/static/maps/safecity-map.js"
CLIENT_CSS = "/static/maps/safecity-map.css"
DECK_JS = "/static/vendor/deck.gl/dist.min.js"
H3_JS = "/static/vendor/h3-js/h3-js.umd.js"

LOCAL_ONLY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
              "script-src 'self'; worker-src 'self' blob:; connect-src 'self'")
"""Content Security Policy of a map page: scripts, styles and data from this service only
(a closed network has nothing else; a page that tried would fail here as it would there)."""

STAND_IN_NOTE = "Police-station areas are stand-ins (no open data exists), not official boundaries"
"""Said on every map: the station layer is derived, not real."""

FRAME_MARGIN = 0.15
"""Share of the study area's extent added around it: neighbours at the edges stay visible."""
DETAIL = 4000
"""Outlines are simplified to 1/DETAIL of the frame's extent (a third of a pixel at the
first view, about a pixel two zoom steps in)."""
DECIMALS = 5
"""Decimal places of every coordinate sent (about 1 m)."""

STATION_LINES_LEVELS = ("district", "tehsil", "station")
"""Pages that draw every station's boundary (a region or the province has hundreds:
their tooltips still name the station, and the district pages draw the lines)."""

AREA_LABEL_ZOOMS: dict[str, tuple[float, float]] = {
    "district": (5.6, 24.0), "tehsil": (7.6, 24.0), "station": (10.0, 24.0),
}
"""Zoom range in which each level's names are shown: the province's zoom is about 6,
a district's 8–9, a station's 11–13. Regions are drawn as lines but not named: their
names are their capital districts' (the client ranks colliding labels)."""


@dataclass(frozen=True)
class MapClass:
    """One legend row: its text and the colour of the cells in it (RGBA, alpha 0–255)."""

    label: str
    color: tuple[int, int, int, int]

    @property
    def css(self) -> str:
        r, g, b, a = self.color
        return f"rgba({r}, {g}, {b}, {a / 255:.2f})"


@dataclass(frozen=True)
class Figure:
    """One line of a cell's tooltip: ``label: value unit`` (``digits`` ``None`` for text)."""

    key: str
    label: str
    digits: int | None = 0
    unit: str = ""


@dataclass
class CellLayer:
    """The cells of a map: one class per cell and the figures of each.

    ``values[key]`` holds one entry per cell for every :class:`Figure` (``None`` where the
    figure is not shown, e.g. no z for a cell with too few calls). ``weight`` ranks the
    stations in the legend's "where" list (0 = does not count); ``alpha`` optionally
    overrides each cell's opacity (0–255).
    """

    h3: npt.NDArray[Any]
    classes: list[MapClass]
    cls: npt.NDArray[np.int64]
    figures: list[Figure]
    values: dict[str, list[Any]]
    weight: npt.NDArray[np.float64]
    alpha: npt.NDArray[np.int64] | None = None


@dataclass
class MapPage:
    """What one page shows; :func:`render_page` turns it into HTML."""

    title: str
    subtitle: list[str]
    minimum: str
    cells: CellLayer
    area: Any
    area_level: str
    area_name: str
    where_title: str
    keys: list[tuple[str, str]] = field(default_factory=list)
    """Extra legend rows: (CSS class of the symbol, text)."""
    notes: list[str] = field(default_factory=list)
    sites: dict[str, Any] | None = None


# --------------------------------------------------------------------------- geometry


def _coords(geoms: Any, decimals: int = DECIMALS) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    import shapely  # noqa: PLC0415

    coords, index = shapely.get_coordinates(geoms, return_index=True)
    return np.round(coords, decimals), index


def _split(coords: npt.NDArray[np.float64], index: npt.NDArray[np.int64], n: int) -> list[list[Any]]:
    """``coords`` grouped by ``index`` (0..n-1, ascending) as nested lists."""
    cuts = np.searchsorted(index, np.arange(1, n))
    return [part.tolist() for part in np.split(coords, cuts)]


def decimals_for(tolerance: float) -> int:
    """Decimal places worth sending for lines simplified by ``tolerance`` degrees (3–5).

    >>> decimals_for(0.002), decimals_for(0.0004), decimals_for(0.0)
    (4, 5, 5)
    """
    if tolerance <= 0:
        return DECIMALS
    return int(min(DECIMALS, max(3, math.ceil(-math.log10(tolerance)) + 1)))


def paths(geoms: Any, tolerance: float = 0.0) -> list[list[list[float]]]:
    """Every line part of ``geoms`` (lines, or polygons' rings) as a list of ``[lon, lat]``,
    simplified by ``tolerance`` degrees and rounded to what that leaves meaningful."""
    import shapely  # noqa: PLC0415

    values = np.asarray(geoms)
    if values.size == 0:
        return []
    lines = shapely.boundary(values) if bool(shapely.get_type_id(values).max() >= 3) else values
    if tolerance > 0:
        lines = shapely.simplify(lines, tolerance)
    parts = shapely.get_parts(lines)
    parts = parts[~shapely.is_empty(parts)]
    coords, index = _coords(parts, decimals_for(tolerance))
    return _split(coords, index, len(parts))


def polygons(geoms: Any, decimals: int = DECIMALS) -> list[list[list[list[float]]]]:
    """Every polygon part of ``geoms`` as ``[outer ring, hole, …]`` rings of ``[lon, lat]``."""
    import shapely  # noqa: PLC0415

    values = np.asarray(geoms)
    if values.size == 0:
        return []
    parts = shapely.get_parts(values)
    rings, owner = shapely.get_rings(parts, return_index=True)
    coords, ring_of = _coords(rings, decimals)
    by_ring = _split(coords, ring_of, len(rings))
    cuts = np.searchsorted(owner, np.arange(1, len(parts)))
    return [[by_ring[i] for i in group] for group in np.split(np.arange(len(rings)), cuts)]


def label_points(geoms: Any) -> list[list[float]]:
    """A point inside each polygon (its largest part), ``[lon, lat]``."""
    import shapely  # noqa: PLC0415

    values = np.asarray(geoms)
    if values.size == 0:
        return []
    parts, owner = shapely.get_parts(values, return_index=True)
    areas = shapely.area(parts)
    order = np.lexsort((-areas, owner))
    first = order[np.r_[True, np.diff(owner[order]) != 0]]
    points = shapely.point_on_surface(parts[first])
    placed: list[list[float]] = np.round(shapely.get_coordinates(points), DECIMALS).tolist()
    return placed


def frame_of(area: Any) -> tuple[float, float, float, float]:
    """The study area's bounds with :data:`FRAME_MARGIN` around them."""
    west, south, east, north = area.bounds
    pad = FRAME_MARGIN * max(east - west, north - south, 0.01)
    return west - pad, south - pad, east + pad, north + pad


def veil(area: Any, decimals: int = DECIMALS) -> list[list[list[float]]]:
    """A polygon covering a wide frame with the study area cut out (dims what is outside it)."""
    import shapely  # noqa: PLC0415

    west, south, east, north = area.bounds
    outer = shapely.box(west - 20, max(south - 20, -85), east + 20, min(north + 20, 85))
    return polygons(shapely.difference(outer, area), decimals)[0] if not area.is_empty else []


# --------------------------------------------------------------------------- places


_TREES: dict[str, Any] = {}
"""An STRtree of each boundary set's stations, by set version (built once, ~720 polygons)."""


def cell_stations(hexes: npt.ArrayLike, boundaries: BoundarySet) -> npt.NDArray[np.int64]:
    """Row of ``boundaries.layer("station")`` whose area holds each cell's centre (-1: none)."""
    import shapely  # noqa: PLC0415

    stations = boundaries.layer("station")
    key = str(boundaries.version)
    tree = _TREES.get(key)
    if tree is None:
        tree = _TREES.setdefault(key, shapely.STRtree(stations.geometry.values))
    cells = h3cells.from_hex(np.asarray(hexes, dtype=str))
    found = np.full(len(cells), -1, dtype=np.int64)
    if len(cells) == 0:
        return found
    lat, lon = h3cells.cells_to_latlng(cells)
    point, station = tree.query(shapely.points(lon, lat), predicate="within")
    found[point[::-1]] = station[::-1]  # a centre on a shared border: the first station listed
    return found


@dataclass
class Places:
    """Compact name tables: the stations used, their tehsils and districts (indices upwards)."""

    station_rows: npt.NDArray[np.int64]
    """Rows of the station layer, in table order."""
    payload: dict[str, Any]

    def index_of(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Table position of station layer rows (-1 stays -1)."""
        out = np.full(len(rows), -1, dtype=np.int64)
        known = rows >= 0
        out[known] = np.searchsorted(self.station_rows, rows[known])
        return out


def place_tables(rows: npt.NDArray[np.int64], boundaries: BoundarySet) -> Places:
    """Name tables for the station layer ``rows`` (unique, ascending)."""
    stations = boundaries.layer("station").iloc[rows]
    tehsils = boundaries.layer("tehsil")
    districts = boundaries.layer("district")
    tehsil_codes = pd.Index(pd.unique(stations["tehsil_code"].astype(str)))
    tehsil_rows = tehsils.set_index(tehsils["code"].astype(str)).reindex(tehsil_codes)
    district_codes = pd.Index(pd.unique(tehsil_rows["district_code"].astype(str)))
    district_rows = districts.set_index(districts["code"].astype(str)).reindex(district_codes)
    stand_in = (stations["stand_in"].fillna(True).astype(bool) if "stand_in" in stations.columns
                else pd.Series(True, index=stations.index))
    payload = {
        "station": {"name": stations["name"].astype(str).tolist(),
                    "code": stations["code"].astype(str).tolist(),
                    "standIn": stand_in.tolist(),
                    "up": tehsil_codes.get_indexer(stations["tehsil_code"].astype(str)).tolist()},
        "tehsil": {"name": tehsil_rows["name"].fillna("").astype(str).tolist(),
                   "up": district_codes.get_indexer(tehsil_rows["district_code"].astype(str)).tolist()},
        "district": {"name": district_rows["name"].fillna("").astype(str).tolist()},
    }
    return Places(np.asarray(rows, dtype=np.int64), payload)


def station_title(places: Places, position: int) -> str:
    """``Station (Tehsil, District)`` of one table position."""
    table = places.payload
    tehsil = table["station"]["up"][position]
    district = table["tehsil"]["up"][tehsil] if tehsil >= 0 else -1
    parts = [table["tehsil"]["name"][tehsil] if tehsil >= 0 else "",
             table["district"]["name"][district] if district >= 0 else ""]
    inside = ", ".join(p for p in parts if p)
    name = table["station"]["name"][position]
    return f"{name} ({inside})" if inside else name


def top_stations(places: Places, cell_rows: npt.NDArray[np.int64], weight: npt.NDArray[np.float64],
                 limit: int = 5) -> list[str]:
    """The stations holding the most ``weight`` (``Station (Tehsil, District)``), largest first."""
    known = (cell_rows >= 0) & (weight > 0)
    if not known.any():
        return []
    totals = pd.Series(weight[known]).groupby(cell_rows[known]).sum()
    best = totals.sort_values(ascending=False, kind="stable").head(limit)
    positions = places.index_of(best.index.to_numpy(dtype=np.int64))
    return [station_title(places, int(p)) for p in positions]


# --------------------------------------------------------------------------- outlines


_LINEWORK: dict[tuple[str, str], Any] = {}
"""Each level's boundaries as merged lines, every shared border once, by (set version, level)."""


def linework(boundaries: BoundarySet, level: str) -> Any:
    """The boundary lines of a level with each border between two areas drawn once (about
    half the vertices of the polygons' rings; merged once per boundary set, ~1 s a level)."""
    import shapely  # noqa: PLC0415

    key = (str(boundaries.version), level)
    found = _LINEWORK.get(key)
    if found is None:
        rings = shapely.boundary(boundaries.layer(level).geometry.values)
        found = shapely.get_parts(shapely.line_merge(shapely.union_all(rings)))
        _LINEWORK[key] = found
    return found


def window_lines(lines: Any, window: tuple[float, float, float, float]) -> Any:
    """The parts of ``lines`` inside ``window``, cut to it."""
    import shapely  # noqa: PLC0415

    inside = lines[shapely.intersects(lines, shapely.box(*window))]
    return shapely.clip_by_rect(inside, *window)


def tolerance_of(window: tuple[float, float, float, float]) -> float:
    """Simplification tolerance of a frame (degrees): 1/:data:`DETAIL` of its extent."""
    return max(window[2] - window[0], window[3] - window[1]) / DETAIL


def outlines(boundaries: BoundarySet, area: Any, level: str) -> tuple[dict[str, Any], npt.NDArray[np.int64]]:
    """Lines and labels of the levels around ``area`` (a ``level`` page), and the station
    rows whose names the labels use (they go into the place tables)."""
    import shapely  # noqa: PLC0415

    window = frame_of(area)
    box = shapely.box(*window)
    tolerance = tolerance_of(window)
    levels = ["district", "tehsil"]
    if level == "province":
        levels.insert(0, "region")
    if level in STATION_LINES_LEVELS:
        levels.append("station")
    lines: dict[str, Any] = {}
    labels: list[dict[str, Any]] = []
    station_rows = np.empty(0, dtype=np.int64)
    for name in levels:
        layer = boundaries.layer(name)
        near = np.flatnonzero(shapely.intersects(layer.geometry.values, box))
        if name == "station":
            station_rows = near
        lines[name] = paths(window_lines(linework(boundaries, name), window), tolerance)
        if name not in AREA_LABEL_ZOOMS:
            continue
        low, high = AREA_LABEL_ZOOMS[name]
        rows = layer.iloc[near]
        if name == level:  # the study area is named by the legend, not over its own cells
            rows = rows[~shapely.equals(rows.geometry.values, area)]
        labels.append({"level": name, "minZoom": low, "maxZoom": high,
                       "items": [[*p, str(n)] for p, n in
                                 zip(label_points(rows.geometry.values), rows["name"], strict=True)]})
    shape = shapely.simplify(area, tolerance)
    lines["focus"] = paths(np.asarray([shape]), tolerance)
    return {"lines": lines, "labels": labels, "veil": veil(shape, decimals_for(tolerance))}, station_rows


# --------------------------------------------------------------------------- basemap


def basemap_payload(basemap: Basemap, bounds: tuple[float, float, float, float]) -> dict[str, Any]:
    """The basemap features reaching into ``bounds``, ready to draw (towns with label zoom)."""
    import shapely  # noqa: PLC0415

    clipped = basemap.clip(bounds)
    road_parts, road_of = shapely.get_parts(clipped.roads.geometry.values, return_index=True)
    roads = paths(road_parts)
    river_points = [[round(float(x), DECIMALS), round(float(y), DECIMALS)] for x, y in
                    shapely.get_coordinates(shapely.line_interpolate_point(
                        clipped.rivers.geometry.values, 0.5, normalized=True))]
    towns = clipped.towns
    return {
        "urban": polygons(clipped.urban.geometry.values),
        "lakes": polygons(clipped.lakes.geometry.values),
        "rivers": paths(clipped.rivers.geometry.values),
        "riverNames": [[*p, str(n)] for p, n in zip(river_points, clipped.rivers["name"].fillna(""),
                                                     strict=True) if n],
        "railways": paths(clipped.railways.geometry.values),
        "roads": [{"path": p, "kind": str(k), "rank": int(r)} for p, k, r in zip(
            roads, clipped.roads["kind"].to_numpy()[road_of], clipped.roads["scalerank"].to_numpy()[road_of],
            strict=True)],
        "towns": [[round(float(x), DECIMALS), round(float(y), DECIMALS), str(n), float(z), int(p)]
                  for x, y, n, z, p in zip(shapely.get_x(towns.geometry.values),
                                           shapely.get_y(towns.geometry.values), towns["name"],
                                           towns["min_zoom"], towns["priority"], strict=True)],
    }


# --------------------------------------------------------------------------- the page


def _templates() -> Any:
    return templates()  # the one environment of every page (api/pages.py)


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``<`` at all)."""
    return msgspec.json.encode(value).decode().replace("<", "\\u003c")


def payload(page: MapPage, boundaries: BoundarySet, basemap: Basemap) -> tuple[dict[str, Any], list[str]]:
    """The JSON the client draws, and the legend's "where" list."""
    cells = page.cells
    cell_rows = cell_stations(cells.h3, boundaries)
    context, line_rows = outlines(boundaries, page.area, page.area_level)
    rows = np.union1d(cell_rows[cell_rows >= 0], line_rows).astype(np.int64)
    places = place_tables(rows, boundaries)
    where = top_stations(places, cell_rows, cells.weight)
    bounds = frame_of(page.area)
    data = {
        "title": page.title,
        "area": {"name": page.area_name, "level": page.area_level,
                 "bounds": [round(b, DECIMALS) for b in page.area.bounds]},
        "cells": {
            "h3": [str(h) for h in cells.h3],
            "cls": cells.cls.tolist(),
            "at": places.index_of(cell_rows).tolist(),
            "alpha": None if cells.alpha is None else cells.alpha.tolist(),
            "values": cells.values,
        },
        "figures": [{"key": f.key, "label": f.label, "digits": f.digits, "unit": f.unit}
                    for f in cells.figures],
        "classes": [{"label": c.label, "color": list(c.color)} for c in cells.classes],
        "places": places.payload,
        "stationLines": page.area_level in STATION_LINES_LEVELS,
        **context,
        "basemap": basemap_payload(basemap, bounds),
        "sites": page.sites,
    }
    return data, where


def render_page(page: MapPage, boundaries: BoundarySet, basemap: Basemap) -> str:
    """The whole HTML page (legend, credits and the embedded JSON of the map)."""
    data, where = payload(page, boundaries, basemap)
    return str(_templates().get_template("maps/page.html").render(
        page=page, where=where, credits=[*ATTRIBUTION_LINES, STAND_IN_NOTE],
        data=script_json(data), h3_js=H3_JS, deck_js=DECK_JS, client_js=CLIENT_JS, client_css=CLIENT_CSS,
        map_label=map_label(page, where), station_lines_levels=STATION_LINES_LEVELS, csp=LOCAL_ONLY))


def map_label(page: MapPage, where: list[str]) -> str:
    """The canvas's accessible name: what the map shows and where the strongest cells are."""
    text = f"Map of {page.title.lower()}, {page.area_name} ({page.area_level})"
    if where:
        text += f". {page.where_title}: {'; '.join(where[:3])}"
    return text + ". The legend and figures are also given as text beside the map."


def res_for_budget(area_km2: float, res: int, max_cells: int, cell_km2: Any) -> int:
    """The finest resolution ≤ ``res`` at which ``area_km2`` holds at most ``max_cells``
    cells of ``cell_km2(r)`` km² each (never coarser than 5, the coarsest analysed)."""
    chosen = res
    while chosen > 5 and area_km2 / float(cell_km2(chosen)) > max_cells:
        chosen -= 1
    return chosen


def km2_label(km2: float) -> str:
    """An area for people: ``5 km²``, ``0.7 km²``."""
    return f"{km2:.0f} km²" if km2 >= 10 else f"{km2:.1g} km²" if km2 < 1 else f"{km2:.1f} km²"


def finite(values: npt.ArrayLike, digits: int) -> list[float | None]:
    """Rounded floats with NaN/inf as ``None`` (JSON null)."""
    array = np.round(np.asarray(values, dtype=np.float64), digits)
    return [None if not math.isfinite(v) else float(v) for v in array.tolist()]
