"""The map page of a Safe City expansion plan (``GET /maps/plans/{id}``).

The same page and client as the analytics maps (:mod:`api.domain.maps.page`): the
tehsil's demand cells coloured by coverage (by existing sites, by new ones, not covered;
stronger where demand is higher), each site's coverage disk and the sites themselves
(existing and new), over the basemap and the area outlines.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from api.domain.maps.basemap import shipped_basemap
from api.domain.maps.page import CellLayer, Figure, MapClass, MapPage, render_page
from api.workers import worker_state
from geo.aggregate import LOCAL_TZ
from jurisdictions.boundaries import BoundarySet

COVERED_BEFORE = (49, 130, 189)
COVERED_NEW = (230, 85, 13)
NOT_COVERED = (150, 150, 150)
EXISTING_SITE = (8, 69, 148)
NEW_SITE = (166, 54, 3)
STATUS = ("covered by existing sites", "covered by new sites", "not covered")


def demand_alpha(demand: np.ndarray) -> np.ndarray:
    """Opacity 70..230 by the rank of a cell's demand (a few heavy cells would wash out a ramp)."""
    if demand.size == 0:
        return np.empty(0, dtype=np.int64)
    ranks = pd.Series(demand).rank(pct=True).to_numpy()
    return np.asarray(np.round(70 + 160 * ranks), dtype=np.int64)


def demand_layer(demand: pd.DataFrame) -> CellLayer:
    """Per demand cell: its coverage class, opacity by demand, and its figures."""
    before = demand["covered_before"].astype(bool).to_numpy()
    after = demand["covered_after"].astype(bool).to_numpy()
    weights = demand["demand"].to_numpy(dtype=float)
    cls = np.where(before, 0, np.where(after, 1, 2)).astype(np.int64)
    classes = [MapClass(f"demand {label}", (*color, 200)) for label, color in
               zip(STATUS, (COVERED_BEFORE, COVERED_NEW, NOT_COVERED), strict=True)]
    figures = [Figure("calls", "calls"), Figure("serious", "serious calls"),
               Figure("demand", "demand (weighted calls)", 1), Figure("site", "nearest site", None)]
    sites = demand["site_id"].astype(object).where(demand["site_id"].notna(), None)
    values = {"calls": demand["calls"].astype(int).tolist(),
              "serious": demand["serious_calls"].astype(int).tolist(),
              "demand": np.round(weights, 1).tolist(),
              "site": [None if s is None or s == "" else str(s) for s in sites]}
    return CellLayer(demand["h3"].astype(str).to_numpy(), classes, cls, figures, values,
                     np.where(after, 0.0, weights), alpha=demand_alpha(weights))


def site_payload(sites: dict[str, Any], radius_m: float) -> dict[str, Any]:
    """The sites of the FeatureCollection as columns the client draws (disk of ``radius_m``)."""
    columns: dict[str, list[Any]] = {k: [] for k in ("lon", "lat", "name", "kind", "demand", "share",
                                                     "color", "disk")}
    for feature in sites.get("features", []):
        props = feature.get("properties", {})
        lon, lat = feature["geometry"]["coordinates"][:2]
        existing = bool(props.get("existing"))
        color = EXISTING_SITE if existing else NEW_SITE
        columns["lon"].append(round(float(lon), 6))
        columns["lat"].append(round(float(lat), 6))
        columns["name"].append(str(props.get("name") or props.get("site_id")))
        columns["kind"].append(("existing site" + (" (stand-in)" if props.get("stand_in") else ""))
                               if existing else "new site")
        columns["demand"].append(f"{float(props.get('demand_assigned') or 0):g}")
        columns["share"].append(f"{float(props.get('share_assigned') or 0.0) * 100:.1f} %")
        columns["color"].append([*color, 235])
        columns["disk"].append([*color, 40])
    return {**columns, "radius": float(radius_m)}


def _area(boundaries: BoundarySet, tehsil_code: str, demand: pd.DataFrame, sites: dict[str, Any]) -> Any:
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


def _local_date(value: str | None) -> str:
    """A stored UTC time as its date in Pakistan (the zone requests are read in)."""
    if not value:
        return "…"
    return datetime.fromisoformat(value).astimezone(ZoneInfo(LOCAL_TZ)).date().isoformat()


def _share(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f} %"


def plan_map_page(plan: dict[str, Any], sites: dict[str, Any], demand: pd.DataFrame,
                  boundaries: BoundarySet) -> str:
    """The offline HTML page of one succeeded plan (``plan``: its row with the summary)."""
    summary = plan["summary"] or {}
    params = plan["params"]
    radius = float(summary.get("radius_m") or params["radius_m"])
    points = site_payload(sites, radius)
    gap = summary.get("gap")
    subtitle = [
        f"{plan['tehsil_name']} ({plan['tehsil_code']}), {summary.get('district', plan['district_code'])}",
        f"{str(summary.get('model') or params['model']).upper()}, radius {radius:g} m, "
        f"H3 res {params['res']}; calls {_local_date(params.get('from'))} – "
        f"{_local_date(params.get('until'))}",
        f"{summary.get('new_sites', '–')} new + {summary.get('existing_sites', '–')} existing sites",
        f"covered share {_share(summary.get('covered_share_before'))} → "
        f"{_share(summary.get('covered_share_after'))} (greedy {_share(summary.get('greedy_covered_share'))} "
        f"with {summary.get('greedy_new_sites', '–')} new)",
        f"{summary.get('solver', '')}: {summary.get('status', '')}"
        + ("" if gap is None else f", gap {float(gap):.2g}"),
    ]
    notes = ["Darker cells: more seriousness-weighted calls."]
    if summary.get("existing_sites_stand_in"):
        notes.append("Existing sites are the stand-in layer, not the real cameras.")
    page = MapPage(
        title="Safe City expansion plan", subtitle=subtitle,
        minimum="No minimum: every call counts towards its cell's demand, weighted by seriousness.",
        cells=demand_layer(demand), area=_area(boundaries, str(plan["tehsil_code"]), demand, points),
        area_level="tehsil", area_name=str(plan["tehsil_name"]),
        where_title="Most demand left uncovered in",
        keys=[("sc-site-existing", "existing site (disk: coverage radius)"),
              ("sc-site-new", "new site (disk: coverage radius)")],
        notes=notes, sites=points)
    return render_page(page, boundaries, shipped_basemap())


def plan_map_job(plan: dict[str, Any], sites: dict[str, Any], demand: pd.DataFrame,
                 version: str) -> str:
    """Worker job: :func:`plan_map_page` on the boundary set being served."""
    return plan_map_page(plan, sites, demand, worker_state().boundaries(version))
