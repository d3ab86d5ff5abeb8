"""Map pages of the analytics results (``GET /maps/{kind}``): classes, minimums, the page.

Each kind becomes a :class:`~api.domain.maps.page.CellLayer` — one legend class per
cell, the figures its tooltip shows — drawn by the one map client
(:mod:`api.domain.maps.page`). The rules that keep a map honest live here:

- **Legend classes are integer ranges that exist.** Call counts are classed by
  :func:`count_classes`: breaks from the quantiles of the positive counts, made distinct
  integers, classes that would hold no cell merged into the next, so labels read
  ``1``, ``2–3``, ``4–9``, never ``1–1``, and a cell's colour is its class's colour.
- **Minimums are stated and applied.** A response-time cell with fewer than
  ``min_count`` valid times, and a hot-spot or emerging cell whose neighbourhood (the
  cell and its k-ring) holds fewer than ``min_count`` calls over the window, is drawn
  grey as "too few calls" and its tooltip gives no median, z, p or trend. The legend
  says the minimum in words.
- **The province stays small.** A page draws at most :data:`MAP_MAX_CELLS` cells: when
  the asked resolution would give more, the analysis runs at the finest coarser
  resolution that fits, and the legend says so (the province at res 7 is ~40,000 cells,
  11.7 MB of HTML before; at res 6 it is ~5,700).

Why not pydeck: its ``to_html`` wrote every cell as a JSON row with its own tooltip HTML
and loaded a 4.3 MB deck.gl 8 bundle; its layer specs (``@deck.gl/json`` strings) cannot
carry index accessors over columns, zoom-dependent labels with collision priority, or a
scale bar. The page therefore loads the vendored deck.gl 9 bundle directly and sends
compact columns (pydeck stays a project dependency, unused by the pages).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from api.domain.analytics.schemas import CellQuery, CellResult
from api.domain.analytics.services import cell_analysis
from api.domain.maps.basemap import shipped_basemap
from api.domain.maps.page import (
    DECIMALS,
    DECK_JS,
    LOCAL_ONLY,
    CellLayer,
    Figure,
    MapClass,
    MapPage,
    basemap_payload,
    finite,
    frame_of,
    km2_label,
    label_points,
    paths,
    payload,
    polygons,
    render_page,
    res_for_budget,
    script_json,
    tolerance_of,
)
from api.domain.maps.page import _templates as templates
from geo.emerging import EMERGING_CLASSES
from jurisdictions.boundaries import BoundarySet

__all__ = [  # this module's own names, and the map pages' parts the dashboard's map shares
    "AUTO_RES", "BIN_COLORS", "BIN_LABELS", "DECIMALS", "DECK_JS", "LOCAL_ONLY", "MAP_MAX_CELLS",
    "NONE", "OVERLAY_KINDS", "RAMP", "RAMP_ALPHA", "RESPONSE_BREAKS", "RESPONSE_LABELS", "TITLES",
    "TOO_FEW", "WHERE_TITLES", "area_km2", "basemap_payload", "calls_layer", "cell_layer",
    "count_classes", "count_label", "display_res", "emerging_layer", "frame_of", "hidden",
    "hotspots_layer", "label_points", "map_page", "map_page_job", "overlay_job", "overlay_payload",
    "paths", "polygons", "ramp_colors", "response_layer", "ring_minimum", "ring_totals",
    "script_json", "shipped_basemap", "templates", "tolerance_of", "too_few_around",
]

MAP_MAX_CELLS = 12_000
"""Most cells one page draws (the largest region at res 7 is ~8,800; the province at
res 6 ~5,700): a page of this many cells stays well under 2 MB and draws in about a second."""
AUTO_MAX_CELLS, AUTO_FINEST = 8_000, 9
"""Without ``res`` a page takes the finest resolution up to 9 (cells of 0.1 km²) that keeps
the area under 8,000 cells: the province at 6, a region or district at 7, a tehsil at 8,
a station at 9 (res 7 would draw a station as three hexagons)."""
AUTO_RES = 7
"""The resolution the query's checks see when the page picks its own."""

NONE = (255, 255, 255, 0)
"""Drawn as nothing: no calls, not significant, no pattern (the basemap shows through)."""
TOO_FEW = (115, 115, 115, 70)
RAMP = [(254, 217, 118), (254, 178, 76), (253, 141, 60), (240, 59, 32), (189, 0, 38)]
"""YlOrRd (ColorBrewer), the six-class ramp without its palest yellow, which vanished on the
basemap's paper colour."""
RAMP_ALPHA = 200
BIN_COLORS = {3: (215, 48, 39, 215), 2: (252, 141, 89, 205), 1: (254, 224, 144, 200), 0: NONE,
              -1: (200, 230, 240, 200), -2: (145, 191, 219, 205), -3: (69, 117, 181, 215)}
BIN_LABELS = {3: "hot spot, 99 %", 2: "hot spot, 95 %", 1: "hot spot, 90 %", 0: "not significant",
              -1: "cold spot, 90 %", -2: "cold spot, 95 %", -3: "cold spot, 99 %"}
EMERGING_COLORS: dict[str, tuple[int, int, int, int]] = {
    "no pattern detected": NONE,
    "new hot spot": (255, 0, 200, 215), "consecutive hot spot": (255, 120, 180, 210),
    "intensifying hot spot": (200, 0, 0, 215), "persistent hot spot": (240, 100, 40, 210),
    "diminishing hot spot": (250, 190, 110, 210), "sporadic hot spot": (255, 230, 120, 210),
    "oscillating hot spot": (170, 110, 60, 210), "historical hot spot": (190, 160, 140, 210),
    "new cold spot": (0, 200, 200, 210), "consecutive cold spot": (120, 200, 230, 210),
    "intensifying cold spot": (0, 60, 200, 210), "persistent cold spot": (60, 120, 220, 210),
    "diminishing cold spot": (140, 170, 230, 210), "sporadic cold spot": (170, 220, 250, 210),
    "oscillating cold spot": (110, 140, 160, 210), "historical cold spot": (160, 170, 190, 210),
}
RESPONSE_BREAKS = (10.0, 15.0, 20.0, 30.0)
RESPONSE_LABELS = ("under 10 min", "10 to 15 min", "15 to 20 min", "20 to 30 min", "30 min or more")
TITLES = {"calls": "Calls per cell", "response": "Median minutes to scene",
          "hotspots": "Gi* hot spots", "emerging": "Emerging hot spots"}
WHERE_TITLES = {"calls": "Most calls in", "response": "Most calls over their time limit in",
                "hotspots": "Most calls in hot spots in", "emerging": "Most calls in emerging hot spots in"}


def ramp_colors(n: int) -> list[tuple[int, int, int, int]]:
    """``n`` colours of the ramp, spread over it (the top class is always the darkest)."""
    if n <= 0:
        return []
    picks = [len(RAMP) - 1] if n == 1 else np.linspace(0, len(RAMP) - 1, n).round().astype(int).tolist()
    return [(*RAMP[i], RAMP_ALPHA) for i in picks]


def count_classes(counts: npt.ArrayLike, max_classes: int = 5) -> tuple[list[tuple[int, int]],
                                                                        npt.NDArray[np.int64]]:
    """Integer classes ``[(low, high), …]`` of the positive counts and each count's class.

    Breaks are the 20/40/60/80 % quantiles (for five classes) of the positive counts,
    floored to integers and made distinct; a class no count falls in is merged into the
    next one. So the classes are contiguous from 1 to the largest count, each holds at
    least one count, and count ``c`` is in class ``i`` exactly when
    ``low_i <= c <= high_i``. Zero (and negative) counts get class -1.

    >>> count_classes([0, 1, 1, 2, 2, 3, 9, 40])
    ([(1, 1), (2, 2), (3, 7), (8, 40)], array([-1,  0,  0,  1,  1,  2,  3,  3]))
    >>> count_classes([0, 0])[0]
    []
    """
    values = np.asarray(counts, dtype=np.int64)
    cls = np.full(values.shape, -1, dtype=np.int64)
    positive = values[values > 0]
    if positive.size == 0:
        return [], cls
    top = int(positive.max())
    quantiles = np.quantile(positive, np.arange(1, max_classes) / max_classes)
    uppers = np.unique(np.floor(quantiles).astype(np.int64))
    highs = np.append(uppers[(uppers >= 1) & (uppers < top)], top)
    used = np.unique(np.searchsorted(highs, positive, side="left"))
    highs = highs[used]
    lows = np.concatenate([[1], highs[:-1] + 1])
    on = values > 0
    cls[on] = np.searchsorted(highs, values[on], side="left")
    return [(int(lo), int(hi)) for lo, hi in zip(lows, highs, strict=True)], cls


def count_label(low: int, high: int) -> str:
    """``3`` or ``4–9``."""
    return str(low) if low == high else f"{low}–{high}"


def ring_totals(hexes: npt.ArrayLike, counts: npt.ArrayLike, k: int) -> npt.NDArray[np.float64]:
    """Calls in each cell and its k-ring (the neighbourhood Gi* weighs), inside the area."""
    from geo import h3cells  # noqa: PLC0415
    from geo.hotspots import kring_weights  # noqa: PLC0415

    cells = h3cells.from_hex(np.asarray(hexes, dtype=str))
    order = np.argsort(cells)
    weights = kring_weights(cells[order], k)
    totals = np.empty(len(cells), dtype=np.float64)
    totals[order] = weights.matrix @ np.asarray(counts, dtype=np.float64)[order]
    return totals


def hidden(values: list[Any], hide: npt.NDArray[np.bool_]) -> list[Any]:
    """``values`` with ``None`` where ``hide``: figures a cell under the minimum must not show."""
    return [None if h else v for v, h in zip(values, hide, strict=True)]


def too_few_around(result: CellResult, min_count: int, k: int) -> tuple[npt.NDArray[np.float64],
                                                                        npt.NDArray[np.float64],
                                                                        npt.NDArray[np.bool_]]:
    """Calls per cell, calls in each cell and its k-ring, and which rings hold too few."""
    counts = result.frame["count"].to_numpy(dtype=np.float64)
    ring = ring_totals(result.frame["h3"].to_numpy(), counts, k)
    return counts, ring, ring < min_count


def ring_minimum(min_count: int, k: int, window: str, withheld: str) -> str:
    """The legend's sentence for a minimum over a cell's neighbourhood."""
    return (f"Minimum: {min_count} calls in a cell and its {k}-ring of neighbours{window}; with fewer "
            f"the cell is grey (too few calls) and gets no {withheld}.")


# --------------------------------------------------------------------------- the kinds


def calls_layer(result: CellResult) -> tuple[CellLayer, str]:
    """Calls per cell in integer classes; empty cells are not drawn."""
    frame = result.frame
    counts = frame["count"].to_numpy(dtype=np.int64)
    ranges, cls = count_classes(counts)
    classes = [MapClass("no calls", NONE)] + [
        MapClass(count_label(lo, hi), color) for (lo, hi), color in zip(ranges, ramp_colors(len(ranges)),
                                                                      strict=True)]
    layer = CellLayer(frame["h3"].to_numpy(), classes, cls + 1, [Figure("calls", "calls")],
                      {"calls": counts.tolist()}, counts.astype(np.float64))
    return layer, "No minimum: a cell shows the calls counted in it (no statistic is inferred)."


def response_layer(result: CellResult, min_count: int) -> tuple[CellLayer, str]:
    """Median minutes to scene per cell; fewer than ``min_count`` valid times is too few."""
    frame = result.frame
    valid = frame["calls"].to_numpy(dtype=np.int64)
    invalid = frame["invalid"].to_numpy(dtype=np.int64)
    median = frame["median_min"].to_numpy(dtype=np.float64)
    too_few = valid < min_count
    empty = (valid == 0) & (invalid == 0)
    band = np.searchsorted(np.asarray(RESPONSE_BREAKS), np.nan_to_num(median), side="right")
    cls = np.where(empty, 0, np.where(too_few, 1, 2 + band))
    classes = [MapClass("no calls", NONE),
               MapClass(f"too few calls (under {min_count} valid times)", TOO_FEW),
               *[MapClass(label, color) for label, color in
                 zip(RESPONSE_LABELS, ramp_colors(len(RESPONSE_LABELS)), strict=True)]]
    over = frame["share_over_sla"].to_numpy(dtype=np.float64)
    figures = [Figure("valid", "valid response times"), Figure("invalid", "invalid times"),
               Figure("median", "median", 1, " min"), Figure("p90", "90th percentile", 1, " min"),
               Figure("over", "over the time limit", 0, " %")]
    values = {"valid": valid.tolist(), "invalid": invalid.tolist(),
              "median": hidden(finite(median, 1), too_few),
              "p90": hidden(finite(frame["p90_min"], 1), too_few),
              "over": hidden(finite(over * 100, 0), too_few)}
    weight = np.where(too_few, 0.0, np.nan_to_num(over) * valid)
    minimum = (f"Minimum: {min_count} valid response times in a cell; a cell with fewer is grey "
               "(too few calls) and gets no median.")
    return CellLayer(frame["h3"].to_numpy(), classes, cls, figures, values, weight), minimum


def hotspots_layer(result: CellResult, min_count: int, k: int) -> tuple[CellLayer, str]:
    """Gi* confidence bins; a neighbourhood under ``min_count`` calls is too few (no z, p)."""
    frame = result.frame
    counts, ring, too_few = too_few_around(result, min_count, k)
    bins = frame["bin"].to_numpy(dtype=np.int64)
    order = [3, 2, 1, 0, -1, -2, -3]
    classes = [MapClass(BIN_LABELS[b], BIN_COLORS[b]) for b in order]
    classes.append(MapClass(f"too few calls (under {min_count} around the cell)", TOO_FEW))
    position = {b: i for i, b in enumerate(order)}
    cls = np.where(too_few, len(order), np.vectorize(position.__getitem__, otypes=[np.int64])(bins))
    figures = [Figure("calls", "calls in the cell"), Figure("ring", f"calls in the cell and {k}-ring"),
               Figure("z", "Gi* z", 2), Figure("p", "p", 4)]
    values = {"calls": counts.astype(np.int64).tolist(), "ring": ring.astype(np.int64).tolist(),
              "z": hidden(finite(frame["z"], 2), too_few), "p": hidden(finite(frame["p"], 4), too_few)}
    weight = np.where((bins > 0) & ~too_few, counts, 0.0)
    minimum = ring_minimum(min_count, k, "", "z or p")
    return CellLayer(frame["h3"].to_numpy(), classes, cls, figures, values, weight), minimum


def emerging_layer(result: CellResult, min_count: int, k: int) -> tuple[CellLayer, str]:
    """Emerging hot-spot classes; a neighbourhood under ``min_count`` calls is too few."""
    frame = result.frame
    counts, ring, too_few = too_few_around(result, min_count, k)
    category = frame["category"].astype(str).to_numpy()
    present = [c for c in EMERGING_CLASSES if c in set(category[~too_few])]
    classes = [MapClass(c, EMERGING_COLORS[c]) for c in present]
    classes.append(MapClass(f"too few calls (under {min_count} around the cell)", TOO_FEW))
    position = {c: i for i, c in enumerate(present)}
    cls = np.array([len(present) if t else position[c] for c, t in zip(category, too_few, strict=True)],
                   dtype=np.int64)
    figures = [Figure("calls", "calls in the cell"), Figure("ring", f"calls in the cell and {k}-ring"),
               Figure("pattern", "pattern", None), Figure("tau", "trend τ", 2),
               Figure("trend_p", "trend p", 4), Figure("z", "last step Gi* z", 2)]
    values = {"calls": counts.astype(np.int64).tolist(), "ring": ring.astype(np.int64).tolist(),
              "pattern": hidden(category.tolist(), too_few),
              "tau": hidden(finite(frame["trend_tau"], 2), too_few),
              "trend_p": hidden(finite(frame["trend_p"], 4), too_few),
              "z": hidden(finite(frame["z"], 2), too_few)}
    hot = np.char.endswith(category.astype(str), "hot spot")
    weight = np.where(hot & ~too_few, counts, 0.0)
    minimum = ring_minimum(min_count, k, " over the whole window", "pattern, trend or z")
    return CellLayer(frame["h3"].to_numpy(), classes, cls, figures, values, weight), minimum


def cell_layer(result: CellResult, query: CellQuery) -> tuple[CellLayer, str]:
    """The layer and the minimum sentence of ``result`` (its kind decides)."""
    kind = result.meta.kind
    if kind == "calls":
        return calls_layer(result)
    if kind == "response":
        return response_layer(result, query.min_count)
    if kind == "hotspots":
        return hotspots_layer(result, query.min_count, query.k)
    return emerging_layer(result, query.min_count, query.k)


# --------------------------------------------------------------------------- the page


def area_km2(geometry: Any) -> float:
    """Area of a lon/lat polygon on the WGS84 ellipsoid (km²)."""
    from pyproj import Geod  # noqa: PLC0415

    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(geometry)
    return abs(area) / 1e6


def display_res(area: Any, res: int, *, chosen: bool = True) -> int:
    """The resolution a map of ``area`` is drawn at: a ``chosen`` ``res`` unless that is
    more than :data:`MAP_MAX_CELLS` cells (then the finest coarser one that fits), else the
    finest up to :data:`AUTO_FINEST` within :data:`AUTO_MAX_CELLS` cells."""
    import h3  # noqa: PLC0415

    def cell_km2(r: int) -> float:
        return float(h3.average_hexagon_area(r, "km^2"))

    if chosen:
        return res_for_budget(area_km2(area), res, MAP_MAX_CELLS, cell_km2)
    return res_for_budget(area_km2(area), AUTO_FINEST, AUTO_MAX_CELLS, cell_km2)


def map_page(result: CellResult, query: CellQuery, boundaries: BoundarySet, area: Any, *,
             asked_res: int | None = None) -> str:
    """The HTML page of one analytics result over its study area."""
    import h3  # noqa: PLC0415

    meta = result.meta
    layer, minimum = cell_layer(result, query)
    window = ("all dates" if meta.since is None and meta.until is None else
              " – ".join(t.date().isoformat() if t else "…" for t in (meta.since, meta.until)))
    scale = (f"H3 res {meta.res} cells of about {km2_label(h3.average_hexagon_area(meta.res, 'km^2'))}")
    subtitle = [f"{meta.area.name} ({meta.area.level})", scale,
                f"{meta.calls:,} calls in {meta.cells:,} cells{', FDR' if meta.fdr else ''}; {window}"]
    notes = []
    if asked_res is not None and asked_res != meta.res:
        notes.append(f"Drawn at res {meta.res}: res {asked_res} would be more than {MAP_MAX_CELLS:,} "
                     "cells for one page. Open a region or district map for finer cells.")
    if meta.outside:
        notes.append(f"{meta.outside:,} {'call' if meta.outside == 1 else 'calls'} routed to this area "
                     f"{'lies' if meta.outside == 1 else 'lie'} in cells outside it (not drawn).")
    page = MapPage(title=TITLES[meta.kind], subtitle=subtitle, minimum=minimum, cells=layer, area=area,
                   area_level=meta.area.level, area_name=meta.area.name,
                   where_title=WHERE_TITLES[meta.kind], notes=notes)
    return render_page(page, boundaries, shipped_basemap())


def map_page_job(kind: str, query: CellQuery, version: str, chosen: bool) -> str:
    """Worker job: compute ``kind`` for an already authorised query at the page's
    resolution (``query.res`` when the caller ``chosen`` it, see :func:`display_res`) on the
    boundary set ``version``, and render the page (both are seconds of work for a
    province: never on the event loop that takes calls)."""
    analysis = cell_analysis(version)
    area = analysis.area_geometry(query)
    shown = replace(query, res=display_res(area, query.res, chosen=chosen))
    result = analysis.compute(kind, shown)
    return map_page(result, shown, analysis.boundaries, area,
                    asked_res=query.res if chosen else None)


def area_map_job(level: str, code: str, version: str) -> str:
    """Worker job: the map client's JSON (``<script id="map-data">``) for one area with no
    cells — its outlines, names and the offline basemap — for pages that draw their own
    points over it (the SHO console's calls). Seconds of geometry work for a large area:
    never on the event loop."""
    from geo.aggregate import AreaRef, area_geometry  # noqa: PLC0415

    boundaries = cell_analysis(version).boundaries
    area = area_geometry(AreaRef(level, code), boundaries)
    empty = CellLayer(h3=np.array([], dtype=object), classes=[], cls=np.array([], dtype=np.int64),
                      figures=[], values={}, weight=np.array([], dtype=np.float64))
    name = next((str(n) for c, n in zip(boundaries.layer(level)["code"], boundaries.layer(level)["name"],
                                        strict=True) if str(c) == code), code)
    page = MapPage(title="Calls", subtitle=[], minimum="", cells=empty, area=area, area_level=level,
                   area_name=name, where_title="")
    data, _ = payload(page, boundaries, shipped_basemap())
    return script_json(data)


# --------------------------------------------------------------------------- dashboard overlays

OVERLAY_KINDS = ("hotspots", "response")
"""The heatmaps the area dashboard's map can draw over its layers (**Hotspot heatmap**,
**Response-time heatmap**)."""
API_PATHS = {"calls": "/api/v1/heatmaps/calls", "response": "/api/v1/heatmaps/response",
             "hotspots": "/api/v1/hotspots", "emerging": "/api/v1/hotspots/emerging"}
GI_NOTE = ("Gi* (Getis–Ord) z and p per cell over the cell and its {k}-ring of neighbours, "
           "{fdr}; hot spot at 90/95/99 % confidence (|z| above 1.65, 1.96, 2.58).")


def overlay_payload(result: CellResult, query: CellQuery) -> dict[str, Any]:
    """A heatmap for the dashboard's map: the cells a map page of ``result`` colours (not
    the uncoloured ones: no calls, not significant) as columns — H3 index, legend class and
    the tooltip's figures, the same :func:`cell_layer` the map pages draw — and the legend
    saying what they rest on: the classes present, calls and cells counted, resolution,
    window, the minimum per cell, and for Gi* what z and p mean."""
    import h3  # noqa: PLC0415

    meta = result.meta
    layer, minimum = cell_layer(result, query)
    drawn = np.array([layer.classes[c].color[3] > 0 for c in layer.cls], dtype=bool)
    used = sorted({int(c) for c in layer.cls[drawn]})
    renumber = {c: i for i, c in enumerate(used)}
    window = ("all dates on record" if meta.since is None and meta.until is None else
              " – ".join(t.date().isoformat() if t else "…" for t in (meta.since, meta.until)))
    params = f"level={meta.area.level}" + (f"&code={meta.area.code}" if meta.area.code else "")
    notes = [minimum]
    if meta.kind == "hotspots":
        notes.append(GI_NOTE.format(k=query.k, fdr="false discovery rate controlled" if meta.fdr
                                    else "p not corrected for the many cells tested"))
    return {
        "kind": meta.kind, "title": TITLES[meta.kind],
        "area": {"level": meta.area.level, "code": meta.area.code, "name": meta.area.name},
        "res": meta.res, "cell_km2": km2_label(h3.average_hexagon_area(meta.res, "km^2")),
        "window": window, "calls": meta.calls, "cells": meta.cells, "drawn": int(drawn.sum()),
        "outside": meta.outside, "min_count": query.min_count, "notes": notes,
        "classes": [{"label": layer.classes[c].label, "color": list(layer.classes[c].color)} for c in used],
        "not_drawn": [c.label for c in layer.classes if c.color[3] == 0],
        "figures": [{"key": f.key, "label": f.label, "digits": f.digits, "unit": f.unit}
                    for f in layer.figures],
        "columns": {"h3": [str(h) for h in layer.h3[drawn]],
                    "cls": [renumber[int(c)] for c in layer.cls[drawn]],
                    "values": {k: [v for v, d in zip(vals, drawn, strict=True) if d]
                               for k, vals in layer.values.items()}},
        "api": f"{API_PATHS[meta.kind]}?{params}&res={meta.res}",
        "page": f"/maps/{meta.kind}?{params}",
    }


def overlay_job(kind: str, query: CellQuery, version: str) -> bytes:
    """Worker job: ``kind`` for an already authorised query at the map pages' own resolution
    for the area (:func:`display_res`), as the dashboard's overlay JSON."""
    import msgspec  # noqa: PLC0415

    analysis = cell_analysis(version)
    shown = replace(query, res=display_res(analysis.area_geometry(query), query.res, chosen=False))
    return msgspec.json.encode(overlay_payload(analysis.compute(kind, shown), shown))
