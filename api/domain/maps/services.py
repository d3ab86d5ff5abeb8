"""Map pages from analytics results: pydeck's HTML with every asset served by us.

pydeck's template links its deck.gl bundle and stylesheets from CDNs (jsdelivr, unpkg,
maxcdn, mapbox). A control room may have no internet, so :func:`offline_html` rewrites
the page: the bundle pydeck ships in its own package (``nbextension/static/index.js``)
is served under ``/static/pydeck/``, our one small stylesheet under ``/static/maps/``,
and links nothing uses (Mapbox GL, Bootstrap, Font Awesome, MapLibre CSS: there is no
base map) are removed. The base is drawn from the boundary set: district and tehsil
outlines stand in for tiles. A page that still names a remote URL is refused.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from api.domain.analytics.schemas import CellQuery, CellResult
from api.domain.analytics.services import cell_analysis
from geo.emerging import EMERGING_CLASSES
from jurisdictions.boundaries import BoundarySet

PYDECK_STATIC_URL = "/static/pydeck"
MAPS_STATIC_URL = "/static/maps"
ATTRIBUTION = ("Administrative boundaries: OCHA / WFP / ITOS, Pakistan COD-AB (2022), via HDX, "
               "CC BY-IGO · districts and regions © OpenStreetMap contributors (ODbL) · "
               "police stations are stand-ins")
"""Credits shown on every map (the data behind the outlines and the generated calls)."""

WIDTH_PX, HEIGHT_PX = 1200, 800
"""Viewport the initial zoom is fitted to."""

ZERO = [210, 210, 210, 60]
TOO_FEW = [150, 150, 150, 110]
RAMP = [[255, 255, 178], [254, 204, 92], [253, 141, 60], [240, 59, 32], [189, 0, 38]]
"""YlOrRd, five classes (ColorBrewer)."""
BIN_COLORS = {-3: [69, 117, 181], -2: [145, 191, 219], -1: [200, 230, 240], 0: ZERO,
              1: [254, 224, 144], 2: [252, 141, 89], 3: [215, 48, 39]}
BIN_LABELS = {3: "hot spot, 99 %", 2: "hot spot, 95 %", 1: "hot spot, 90 %", 0: "not significant",
              -1: "cold spot, 90 %", -2: "cold spot, 95 %", -3: "cold spot, 99 %"}
EMERGING_COLORS: dict[str, list[int]] = {
    "no pattern detected": ZERO,
    "new hot spot": [255, 0, 200], "consecutive hot spot": [255, 120, 180],
    "intensifying hot spot": [200, 0, 0], "persistent hot spot": [240, 100, 40],
    "diminishing hot spot": [250, 190, 110], "sporadic hot spot": [255, 230, 120],
    "oscillating hot spot": [170, 110, 60], "historical hot spot": [190, 160, 140],
    "new cold spot": [0, 200, 200], "consecutive cold spot": [120, 200, 230],
    "intensifying cold spot": [0, 60, 200], "persistent cold spot": [60, 120, 220],
    "diminishing cold spot": [140, 170, 230], "sporadic cold spot": [170, 220, 250],
    "oscillating cold spot": [110, 140, 160], "historical cold spot": [160, 170, 190],
}
TITLES = {"calls": "Calls per cell", "response": "Median minutes to scene",
          "hotspots": "Gi* hot spots", "emerging": "Emerging hot spots"}

_REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


class OfflinePageError(RuntimeError):
    """pydeck's page still links a remote asset after rewriting (a new pydeck template?)."""


def pydeck_static_dir() -> Path:
    """Folder of the deck.gl bundle pydeck ships (served as ``/static/pydeck``)."""
    import pydeck  # noqa: PLC0415

    return Path(pydeck.__file__).resolve().parent / "nbextension" / "static"


def maps_static_dir() -> Path:
    """Folder of our map stylesheet (served as ``/static/maps``)."""
    return Path(__file__).resolve().parents[2] / "static" / "maps"


def offline_html(page: str, overlay: str) -> str:
    """pydeck's page with CDN links replaced by the service's own ``/static`` files."""
    from pydeck.io.html import CDN_CSS_URL, CDN_URL  # noqa: PLC0415

    page = page.replace(CDN_URL, f"{PYDECK_STATIC_URL}/index.js")
    page = page.replace(f"href={CDN_CSS_URL}", f'href="{MAPS_STATIC_URL}/map.css"')
    page = re.sub(r"<script src=\"https://api\.tiles\.mapbox\.com[^>]*></script>\s*", "", page)
    page = re.sub(r"<script src=\"https://maps\.googleapis\.com[^>]*></script>\s*", "", page)
    page = re.sub(r"<link rel=\"stylesheet\" href=\"https?://[^\"]*\"\s*/>\s*", "", page)
    page = page.replace("<title>pydeck</title>", "<title>safecity map</title>")
    page = page.replace("</body>", overlay + "\n  </body>", 1)
    remote = _REMOTE.search(page)
    if remote:
        start = max(0, remote.start() - 60)
        raise OfflinePageError(f"map page still links a remote asset: {page[start:remote.end() + 80]!r}")
    return page


def _ramp(values: np.ndarray, breaks: list[float]) -> list[list[int]]:
    idx = np.searchsorted(np.asarray(breaks), values, side="right")
    return [RAMP[min(int(i), len(RAMP) - 1)] + [190] for i in idx]


def _quantile_breaks(values: np.ndarray) -> list[float]:
    positive = values[values > 0]
    if positive.size == 0:
        return [1, 2, 3, 4]
    qs = np.unique(np.quantile(positive, [0.2, 0.4, 0.6, 0.8]).round())
    return [float(q) for q in qs]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def cell_layer_data(result: CellResult) -> tuple[pd.DataFrame, list[tuple[list[int], str]]]:
    """Per cell: ``h3``, ``color`` and ``tip`` (tooltip HTML), and the legend entries."""
    frame = result.frame
    kind = result.meta.kind
    out = pd.DataFrame({"h3": frame["h3"].astype(str)})
    legend: list[tuple[list[int], str]]
    if kind == "calls":
        counts = frame["count"].to_numpy()
        breaks = _quantile_breaks(counts)
        colors = _ramp(counts, breaks)
        out["color"] = [ZERO if c == 0 else col for c, col in zip(counts, colors, strict=True)]
        edges = [1, *[int(b) + 1 for b in breaks]]
        legend = [(ZERO, "no calls")] + [
            (RAMP[i] + [190], f"{lo}–{edges[i + 1] - 1}" if i + 1 < len(edges) else f"≥ {lo}")
            for i, lo in enumerate(edges) if i < len(RAMP)]
        out["tip"] = [f"<b>{h}</b><br/>calls: {c}" for h, c in zip(out["h3"], counts, strict=True)]
    elif kind == "response":
        median = frame["median_min"].to_numpy(dtype=float)
        too_few = frame["too_few"].to_numpy(dtype=bool)
        breaks = [10.0, 15.0, 20.0, 30.0]
        colors = _ramp(np.nan_to_num(median), breaks)
        out["color"] = [TOO_FEW if tf else col for tf, col in zip(too_few, colors, strict=True)]
        legend = [(TOO_FEW, f"too few (< {result.extra.get('min_count', 'min')} valid times)"),
                  (RAMP[0] + [190], "< 10 min"), (RAMP[1] + [190], "10–15 min"),
                  (RAMP[2] + [190], "15–20 min"), (RAMP[3] + [190], "20–30 min"),
                  (RAMP[4] + [190], "≥ 30 min")]
        out["tip"] = [
            f"<b>{h}</b><br/>valid response times: {n} (invalid {inv})<br/>median: {_fmt(m)} min"
            f"<br/>p90: {_fmt(p)} min<br/>over SLA: {_fmt(s * 100, 0)} %"
            + ("<br/><i>too few to say</i>" if tf else "")
            for h, n, inv, m, p, s, tf in zip(out["h3"], frame["calls"], frame["invalid"], median,
                                                frame["p90_min"].to_numpy(dtype=float),
                                                frame["share_over_sla"].to_numpy(dtype=float),
                                                too_few, strict=True)]
    elif kind == "hotspots":
        bins = frame["bin"].to_numpy(dtype=int)
        out["color"] = [BIN_COLORS[int(b)] + ([] if b == 0 else [200]) for b in bins]
        legend = [(BIN_COLORS[b] + ([] if b == 0 else [200]), BIN_LABELS[b])
                  for b in (3, 2, 1, 0, -1, -2, -3)]
        out["tip"] = [f"<b>{h}</b><br/>calls: {c}<br/>Gi* z: {z:.2f}, p: {p:.3g}<br/>{BIN_LABELS[int(b)]}"
                      for h, c, z, p, b in zip(out["h3"], frame["count"], frame["z"], frame["p"], bins,
                                               strict=True)]
    else:
        classes = frame["category"].astype(str).to_numpy()
        out["color"] = [EMERGING_COLORS[c] + ([] if c == "no pattern detected" else [210])
                        for c in classes]
        present = [c for c in EMERGING_CLASSES if c in set(classes)]
        legend = [(EMERGING_COLORS[c] + ([] if c == "no pattern detected" else [210]), c)
                  for c in present]
        out["tip"] = [f"<b>{h}</b><br/>{c}<br/>calls: {n}<br/>trend τ: {t:.2f} (p {tp:.3g})"
                      f"<br/>final step z: {z:.2f}"
                      for h, c, n, t, tp, z in zip(out["h3"], classes, frame["count"], frame["trend_tau"],
                                                   frame["trend_p"], frame["z"], strict=True)]
    return out, legend


def _view(bounds: tuple[float, float, float, float]) -> dict[str, float]:
    """Centre and zoom that fit ``bounds`` (lon/lat) into the page viewport."""
    west, south, east, north = bounds
    lat = (south + north) / 2
    lon_span = max(east - west, 1e-3)
    lat_span = max((north - south) / max(math.cos(math.radians(lat)), 0.2), 1e-3)
    zoom = min(math.log2(360 * WIDTH_PX / 512 / lon_span), math.log2(360 * HEIGHT_PX / 512 / lat_span))
    return {"longitude": (west + east) / 2, "latitude": lat, "zoom": max(1.0, zoom - 0.25)}


def _outlines(boundaries: BoundarySet, level: str, area: Any, tolerance: float) -> dict[str, Any]:
    """GeoJSON of one level's areas that touch the study area (simplified, names only)."""
    import shapely  # noqa: PLC0415

    layer = boundaries.layer(level)
    near = layer[shapely.intersects(layer.geometry.values, area.buffer(0.02))]
    geoms = shapely.simplify(near.geometry.values, tolerance, preserve_topology=True)
    features = [{"type": "Feature", "geometry": shapely.geometry.mapping(g),
                 "properties": {"name": str(n)}} for g, n in zip(geoms, near["name"], strict=True)]
    return {"type": "FeatureCollection", "features": features}


def _stations(boundaries: BoundarySet, area: Any) -> pd.DataFrame:
    import shapely  # noqa: PLC0415

    layer = boundaries.layer("station")
    points = shapely.point_on_surface(layer.geometry.values)
    inside = shapely.covers(area, points)
    stand_in = (layer["stand_in"].astype(bool).to_numpy() if "stand_in" in layer.columns
                else np.ones(len(layer), bool))
    frame = pd.DataFrame({"lon": shapely.get_x(points[inside]), "lat": shapely.get_y(points[inside])})
    kinds = {True: "stand-in station (not a real position)", False: "station"}
    frame["tip"] = [f"<b>{html.escape(str(n))}</b><br/>{kinds[bool(s)]}"
                    for n, s in zip(layer["name"][inside], stand_in[inside], strict=True)]
    return frame


def map_page(result: CellResult, boundaries: BoundarySet, area: Any) -> str:
    """The offline HTML page of one analytics result over its study area."""
    import pydeck as pdk  # noqa: PLC0415

    cells, legend = cell_layer_data(result)
    stations = pdk.Layer("ScatterplotLayer", _stations(boundaries, area), id="stations",
                         get_position=["lon", "lat"], get_radius=1, radius_min_pixels=3,
                         get_fill_color=[30, 30, 30, 200], get_line_color=[255, 255, 255],
                         stroked=True, line_width_min_pixels=1, pickable=True)
    page = outlined_deck_html(boundaries, area, cells, "cells", [stations])
    return offline_html(page, _overlay(result, legend))


def map_page_job(kind: str, query: CellQuery, version: str) -> str:
    """Worker job: the map page of one analytics result (computed there too)."""
    analysis = cell_analysis(version)
    result = analysis.compute(kind, query)
    return map_page(result, analysis.boundaries, analysis.area_geometry(query))


def outlined_deck_html(boundaries: BoundarySet, area: Any, cells: Any, cells_id: str,
                       overlays: list[Any]) -> str:
    """deck.gl HTML framed on ``area``: tehsil outlines, the H3 cells (``h3``, ``color``,
    ``tip`` columns), district outlines, then ``overlays`` — the plain base that stands in
    for map tiles on a closed network (pass the result to :func:`offline_html`)."""
    import pydeck as pdk  # noqa: PLC0415

    west, south, east, north = area.bounds
    tolerance = max(east - west, north - south) / 2000
    layers = [
        pdk.Layer("GeoJsonLayer", _outlines(boundaries, "tehsil", area, tolerance), id="tehsils",
                  stroked=True, filled=False, get_line_color=[120, 120, 120, 160], get_line_width=0,
                  line_width_min_pixels=1, pickable=False),
        pdk.Layer("H3HexagonLayer", cells, id=cells_id, get_hexagon="h3", get_fill_color="color",
                  stroked=False, extruded=False, filled=True, pickable=True),
        pdk.Layer("GeoJsonLayer", _outlines(boundaries, "district", area, tolerance), id="districts",
                  stroked=True, filled=False, get_line_color=[40, 40, 40, 220], get_line_width=0,
                  line_width_min_pixels=2, pickable=False),
        *overlays,
    ]
    deck = pdk.Deck(layers=layers, initial_view_state=pdk.ViewState(**_view(area.bounds)),
                    map_provider=None, map_style=None,
                    tooltip={"html": "{tip}", "style": {"fontSize": "12px"}})
    page: str = deck.to_html(as_string=True, offline=False, notebook_display=False,
                             css_background_color="#f3f1ec")
    return page


def _overlay(result: CellResult, legend: list[tuple[list[int], str]]) -> str:
    meta = result.meta
    window = " – ".join(t.date().isoformat() if t else "…" for t in (meta.since, meta.until))
    rows = "".join(
        f'<div class="row"><span class="swatch" style="background: rgba({c[0]},{c[1]},{c[2]},'
        f'{(c[3] if len(c) > 3 else 255) / 255:.2f})"></span>{html.escape(label)}</div>'
        for c, label in legend)
    return f"""
    <div id="legend" class="sc-panel">
      <div class="title">{html.escape(TITLES[meta.kind])}</div>
      <div class="sub">{html.escape(meta.area.name)} ({html.escape(meta.area.level)}), H3 res {meta.res}<br/>
      {meta.calls:,} calls, {meta.cells:,} cells{', FDR' if meta.fdr else ''}; {html.escape(window)}</div>
      {rows}
      <div class="row"><span class="dot"></span>police station (stand-in position)</div>
      <div class="row"><span class="line thick"></span>district &nbsp;<span class="line"></span>tehsil</div>
    </div>
    <div id="attribution" class="sc-panel">{html.escape(ATTRIBUTION)}</div>"""
