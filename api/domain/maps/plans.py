"""The offline map page of a Safe City expansion plan (``GET /maps/plans/{id}``).

The same machinery as the analytics pages (:mod:`api.domain.maps.services`): pydeck's
HTML rewritten to load deck.gl from this service, district and tehsil outlines instead
of tiles. Layers: the tehsil's demand cells coloured by coverage (by existing sites, by
new ones, not covered; stronger where demand is higher), each site's coverage disk and
the sites themselves (existing and new).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from api.domain.maps.services import ATTRIBUTION, offline_html, outlined_deck_html
from api.workers import worker_state
from geo.aggregate import LOCAL_TZ
from jurisdictions.boundaries import BoundarySet

COVERED_BEFORE = [49, 130, 189]
COVERED_NEW = [230, 85, 13]
NOT_COVERED = [150, 150, 150]
EXISTING_SITE = [8, 69, 148]
NEW_SITE = [166, 54, 3]


def _alpha(demand: np.ndarray) -> np.ndarray:
    """Opacity 70..230 by the rank of a cell's demand (a few heavy cells would wash out a ramp)."""
    if demand.size == 0:
        return np.empty(0, dtype=int)
    ranks = pd.Series(demand).rank(pct=True).to_numpy()
    return np.asarray(np.round(70 + 160 * ranks), dtype=int)


def demand_layer_data(demand: pd.DataFrame) -> pd.DataFrame:
    """Per demand cell: ``h3``, ``color`` and ``tip``."""
    before = demand["covered_before"].astype(bool).to_numpy()
    after = demand["covered_after"].astype(bool).to_numpy()
    alpha = _alpha(demand["demand"].to_numpy(dtype=float))
    colors = [(COVERED_BEFORE if b else COVERED_NEW if a else NOT_COVERED) + [int(x)]
              for b, a, x in zip(before, after, alpha, strict=True)]
    status = np.where(before, "covered by existing sites", np.where(after, "covered by new sites",
                                                                    "not covered"))
    tips = [f"<b>{html.escape(str(h))}</b><br/>calls: {c} (serious {s})<br/>demand: {d:g}"
            f"<br/>{st}" + (f"<br/>nearest site: {html.escape(str(site))}" if site else "")
            for h, c, s, d, st, site in zip(demand["h3"], demand["calls"], demand["serious_calls"],
                                            demand["demand"].astype(float), status,
                                            demand["site_id"], strict=True)]
    return pd.DataFrame({"h3": demand["h3"].astype(str), "color": colors, "tip": tips})


def site_layer_data(sites: dict[str, Any]) -> pd.DataFrame:
    """Per site of the FeatureCollection: ``lon, lat, existing, color, tip``."""
    rows = []
    for feature in sites.get("features", []):
        props = feature.get("properties", {})
        lon, lat = feature["geometry"]["coordinates"][:2]
        existing = bool(props.get("existing"))
        kind = ("existing site" + (" (stand-in)" if props.get("stand_in") else "")
                if existing else "new site")
        share = props.get("share_assigned") or 0.0
        rows.append({
            "lon": float(lon), "lat": float(lat), "existing": existing,
            "color": (EXISTING_SITE if existing else NEW_SITE) + [230],
            "disk": (EXISTING_SITE if existing else NEW_SITE) + [40],
            "tip": f"<b>{html.escape(str(props.get('name') or props.get('site_id')))}</b><br/>{kind}"
                   f"<br/>demand assigned: {float(props.get('demand_assigned') or 0):g} "
                   f"({float(share) * 100:.1f} % of the tehsil's)",
        })
    return pd.DataFrame(rows, columns=["lon", "lat", "existing", "color", "disk", "tip"])


def _area(boundaries: BoundarySet, tehsil_code: str, demand: pd.DataFrame, sites: pd.DataFrame) -> Any:
    """The tehsil's polygon, or (a tehsil gone from the set being served) the hull of the plan."""
    import shapely  # noqa: PLC0415

    tehsils = boundaries.layer("tehsil")
    found = tehsils[tehsils["code"].astype(str) == tehsil_code]
    if len(found):
        return found.geometry.iloc[0]
    from geo import h3cells  # noqa: PLC0415

    lat, lon = h3cells.cells_to_latlng(h3cells.from_hex(demand["h3"].to_numpy()))
    xy = np.column_stack([np.concatenate([lon, sites["lon"]]), np.concatenate([lat, sites["lat"]])])
    return shapely.MultiPoint(xy).convex_hull.buffer(0.01)


def plan_map_page(plan: dict[str, Any], sites: dict[str, Any], demand: pd.DataFrame,
                  boundaries: BoundarySet) -> str:
    """The offline HTML page of one succeeded plan (``plan``: its row with the summary)."""
    import pydeck as pdk  # noqa: PLC0415

    summary = plan["summary"] or {}
    radius = float(summary.get("radius_m") or plan["params"]["radius_m"])
    cells = demand_layer_data(demand)
    points = site_layer_data(sites)
    area = _area(boundaries, str(plan["tehsil_code"]), demand, points)
    overlays = [
        pdk.Layer("ScatterplotLayer", points, id="coverage", get_position=["lon", "lat"],
                  get_radius=radius, get_fill_color="disk",  # radius in metres (the default)
                  get_line_color="color", stroked=True, filled=True, line_width_min_pixels=1,
                  pickable=False),
        pdk.Layer("ScatterplotLayer", points, id="sites", get_position=["lon", "lat"], get_radius=1,
                  radius_min_pixels=4, get_fill_color="color", get_line_color=[255, 255, 255],
                  stroked=True, line_width_min_pixels=1, pickable=True),
    ]
    page = outlined_deck_html(boundaries, area, cells, "demand", overlays)
    return offline_html(page, _overlay(plan, summary, radius))


def plan_map_job(plan: dict[str, Any], sites: dict[str, Any], demand: pd.DataFrame,
                 version: str) -> str:
    """Worker job: :func:`plan_map_page` on the boundary set being served."""
    return plan_map_page(plan, sites, demand, worker_state().boundaries(version))


def _swatch(color: list[int], alpha: float = 0.8) -> str:
    return (f'<span class="swatch" style="background: rgba({color[0]},{color[1]},{color[2]},'
            f'{alpha:.2f})"></span>')


def _local_date(value: str | None) -> str:
    """A stored UTC time as its date in Pakistan (the zone requests are read in)."""
    if not value:
        return "…"
    return datetime.fromisoformat(value).astimezone(ZoneInfo(LOCAL_TZ)).date().isoformat()


def _share(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f} %"


def _overlay(plan: dict[str, Any], summary: dict[str, Any], radius: float) -> str:
    params = plan["params"]
    window = f"{_local_date(params.get('from'))} – {_local_date(params.get('until'))}"
    model = str(summary.get("model") or params["model"]).upper()
    gap = summary.get("gap")
    lines = [
        f"{html.escape(str(plan['tehsil_name']))} ({html.escape(str(plan['tehsil_code']))}), "
        f"{html.escape(str(summary.get('district', plan['district_code'])))}",
        f"{model}, radius {radius:g} m, H3 res {params['res']}; calls {html.escape(window)}",
        f"{summary.get('new_sites', '–')} new + {summary.get('existing_sites', '–')} existing sites",
        f"covered share {_share(summary.get('covered_share_before'))} → "
        f"<b>{_share(summary.get('covered_share_after'))}</b> "
        f"(greedy {_share(summary.get('greedy_covered_share'))} with "
        f"{summary.get('greedy_new_sites', '–')} new)",
        f"{html.escape(str(summary.get('solver', '')))}: {html.escape(str(summary.get('status', '')))}"
        + ("" if gap is None else f", gap {float(gap):.2g}"),
    ]
    if summary.get("existing_sites_stand_in"):
        lines.append("<i>existing sites are the stand-in layer, not the real cameras</i>")
    rows = "".join(f'<div class="row">{body}</div>' for body in (
        _swatch(COVERED_BEFORE) + "demand covered by existing sites",
        _swatch(COVERED_NEW) + "demand covered by new sites",
        _swatch(NOT_COVERED) + "demand not covered",
        _swatch(EXISTING_SITE, 1.0) + "existing site (disk: coverage radius)",
        _swatch(NEW_SITE, 1.0) + "new site (disk: coverage radius)",
        '<span class="line thick"></span>district &nbsp;<span class="line"></span>tehsil',
    ))
    return f"""
    <div id="legend" class="sc-panel">
      <div class="title">Safe City expansion plan</div>
      <div class="sub">{'<br/>'.join(lines)}</div>
      {rows}
      <div class="sub">Darker cells: more seriousness-weighted calls.</div>
    </div>
    <div id="attribution" class="sc-panel">{html.escape(ATTRIBUTION)}</div>"""
