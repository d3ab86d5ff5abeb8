"""Which tehsils first: a transparent need score for Safe City expansion.

Every tehsil gets four components from the call history, the census and the existing
Safe City sites:

``serious_per_100k``
    Serious-crime calls (categories with ``serious = true``) per 100,000 residents
    (census 2023 ``population_2023``) over the whole history.
``p90_response_min``
    The 90th percentile of minutes from call receipt (``received_at``) to police on scene
    (``on_scene_at``), over the tehsil's calls that reached the scene; at least
    :data:`MIN_RESPONSES` of them are needed, otherwise the value is missing.
``demand_growth``
    Symmetric growth of seriousness-weighted demand between the first and the second half
    of the history (split at the midpoint of its time span, the same for every tehsil):
    ``(late − early) / ((late + early) / 2)``, from −2 (all early) to +2 (all late).
``covered_share``
    Share of the tehsil's seriousness-weighted demand (H3 cell centres, as in
    :mod:`geo.coverage`) within the coverage radius of an existing Safe City site.

Each component is scaled to 0..1 by its rank among the tehsils that have a value,
``(rank − 1) / (n − 1)`` with ties sharing their average rank, turned round for components
where lower means more need (``direction = lower``): 1 is the most need. Ranks rather than
min-max because one outlier (a planted hotspot in a small tehsil is eight times the median
rate) would otherwise squash every other tehsil to the bottom of the scale. A tehsil
without a value gets the median scaled value of the others (neutral) and a note. With the
configured weights ``w_c`` (a table like ``data/planning_weights.csv``, read by
:func:`read_planning_weights` and normalised to sum 1) a tehsil
earns ``points_c = 100 · w_c · scaled_c`` per component and its ``score`` is the sum of its
points (0..100): the ranking shows every tehsil's score by its parts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from geo import h3cells
from geo.aggregate import call_coordinates
from geo.coverage import (
    DEFAULT_RADIUS_M,
    DEFAULT_RES,
    CoverageInputError,
    aggregate_demand,
    call_serious,
    call_weights,
)
from geo.crs import WGS84, utm_epsg_array

if TYPE_CHECKING:
    from jurisdictions.boundaries import BoundarySet

COMPONENTS = ("serious_per_100k", "p90_response_min", "demand_growth", "covered_share")
"""The need components, in output order."""

DIRECTIONS = ("higher", "lower")
"""``higher``: a larger value means more need; ``lower``: a smaller value does."""

MIN_RESPONSES = 5
"""Fewest on-scene calls for a tehsil's p90 response time to be estimated."""


class PlanningWeightsError(CoverageInputError):
    """The planning weights table is missing, malformed or inconsistent."""


def read_planning_weights(path: Path | str) -> pd.DataFrame:
    """The component weights of the CSV file ``path``: ``component, weight, direction,
    description, raw_weight``.

    ``weight`` is ``raw_weight`` normalised to sum 1. Every component of
    :data:`COMPONENTS` must appear once, with a weight ≥ 0 (at least one above 0) and a
    direction ``higher`` or ``lower``; a weight of 0 leaves a component out of the score.
    """
    source = Path(path)
    try:
        table = pd.read_csv(source)
    except (OSError, ValueError) as exc:
        raise PlanningWeightsError(f"cannot read planning weights {source}: {exc}") from exc
    missing = {"component", "weight", "direction"} - set(table.columns)
    if missing:
        raise PlanningWeightsError(f"{source} lacks column(s) {', '.join(sorted(missing))}")
    table["component"] = table["component"].astype(str).str.strip()
    unknown = sorted(set(table["component"]) - set(COMPONENTS))
    absent = [c for c in COMPONENTS if c not in set(table["component"])]
    if unknown or absent or table["component"].duplicated().any():
        raise PlanningWeightsError(f"{source}: components must be exactly {', '.join(COMPONENTS)} once "
                                   f"each (unknown {unknown}, missing {absent})")
    weight = pd.to_numeric(table["weight"], errors="coerce")
    if weight.isna().any() or (weight < 0).any() or not weight.sum() > 0:
        raise PlanningWeightsError(f"{source}: weights must be numbers ≥ 0, not all 0")
    direction = table["direction"].astype(str).str.strip().str.lower()
    if not direction.isin(DIRECTIONS).all():
        raise PlanningWeightsError(f"{source}: direction must be 'higher' or 'lower'")
    return pd.DataFrame({
        "component": table["component"],
        "weight": weight / weight.sum(),
        "direction": direction,
        "description": table["description"].astype(str) if "description" in table else "",
        "raw_weight": weight,
    }).set_index("component").loc[list(COMPONENTS)].reset_index()


def call_tehsils(calls: pd.DataFrame, boundaries: BoundarySet) -> np.ndarray:
    """Tehsil code of each call: the routed ``tehsil_code``, else by point in polygon (or None)."""
    if "tehsil_code" in calls.columns:
        return calls["tehsil_code"].astype(object).where(calls["tehsil_code"].notna(), None).to_numpy()
    lat, lon = call_coordinates(calls)
    tehsils = boundaries.tehsils
    points = shapely.points(np.nan_to_num(lon), np.nan_to_num(lat))
    hit = shapely.STRtree(tehsils.geometry.values).query(points, predicate="within")
    codes = np.empty(len(calls), dtype=object)
    codes[hit[0]] = tehsils["code"].to_numpy()[hit[1]]
    return codes


def existing_coverage(demand: pd.DataFrame, existing: gpd.GeoDataFrame, radius_m: float,
                      epsg: np.ndarray) -> np.ndarray:
    """Whether each demand cell centre lies within ``radius_m`` of an existing site.

    ``demand`` has ``cell`` (uint64); ``epsg`` gives each row's UTM zone (its tehsil's), and
    distances are measured in that zone.
    """
    covered = np.zeros(len(demand), dtype=bool)
    if len(existing) == 0 or len(demand) == 0:
        return covered
    lat, lon = h3cells.cells_to_latlng(demand["cell"].to_numpy(dtype=np.uint64))
    ex_lon, ex_lat = existing.geometry.x.to_numpy(), existing.geometry.y.to_numpy()
    for zone in np.unique(epsg):
        rows = epsg == zone
        to_m = Transformer.from_crs(WGS84, f"EPSG:{int(zone)}", always_xy=True)
        sx, sy = to_m.transform(ex_lon, ex_lat)
        dx, dy = to_m.transform(lon[rows], lat[rows])
        dist, _ = cKDTree(np.column_stack([sx, sy])).query(np.column_stack([dx, dy]), k=1,
                                                            distance_upper_bound=radius_m * (1 + 1e-12))
        covered[rows] = np.isfinite(dist) & (dist <= radius_m)
    return covered


def tehsil_metrics(calls: pd.DataFrame, *, boundaries: BoundarySet, existing: gpd.GeoDataFrame,
                   categories: pd.DataFrame, radius_m: float = DEFAULT_RADIUS_M,
                   res: int = DEFAULT_RES) -> pd.DataFrame:
    """The raw need components of every tehsil of ``boundaries`` (one row per tehsil, even
    without calls).

    Columns: ``tehsil_code, tehsil, district_code, district, population_2023, calls,
    serious_calls, demand, on_scene_calls`` and the four :data:`COMPONENTS`. ``existing``
    are the existing Safe City sites (the real layer, or the stand-in of
    :func:`geo.coverage.stand_in_existing_sites`); ``categories`` weighs the calls.
    """
    tehsils = pd.DataFrame(boundaries.tehsils.drop(columns="geometry"))
    districts = boundaries.districts.set_index("code")["name"]
    base = pd.DataFrame({
        "tehsil_code": tehsils["code"].astype(str), "tehsil": tehsils["name"].astype(str),
        "district_code": tehsils["district_code"].astype(str),
        "district": tehsils["district_code"].map(districts).astype(str),
        "population_2023": tehsils["population_2023"].astype(np.int64),
    }).set_index("tehsil_code")
    codes = pd.Series(call_tehsils(calls, boundaries), index=calls.index)
    known = codes.isin(base.index).to_numpy()
    frame = calls[known]
    codes = codes[known].astype(str)
    weights = call_weights(frame, categories)
    serious = call_serious(frame, categories)

    base["calls"] = codes.value_counts().reindex(base.index, fill_value=0)
    base["serious_calls"] = pd.Series(serious, index=codes.index).groupby(codes).sum() \
        .reindex(base.index, fill_value=0).astype(np.int64)
    base["demand"] = pd.Series(weights, index=codes.index).groupby(codes).sum() \
        .reindex(base.index, fill_value=0.0)
    base["serious_per_100k"] = base["serious_calls"] / base["population_2023"].clip(lower=1) * 1e5

    base["on_scene_calls"] = 0
    base["p90_response_min"] = np.nan
    if {"received_at", "on_scene_at"} <= set(frame.columns):
        received = pd.to_datetime(frame["received_at"], utc=True)
        on_scene = pd.to_datetime(frame["on_scene_at"], utc=True)
        minutes = (on_scene - received).dt.total_seconds() / 60.0
        ok = minutes.notna() & (minutes >= 0)
        grouped = minutes[ok].groupby(codes[ok])
        count = grouped.size().reindex(base.index, fill_value=0)
        p90 = grouped.quantile(0.9).reindex(base.index)
        base["on_scene_calls"] = count.astype(np.int64)
        base["p90_response_min"] = p90.where(count >= MIN_RESPONSES)

    base["demand_growth"] = np.nan
    if "received_at" in frame.columns and len(frame):
        received = pd.to_datetime(frame["received_at"], utc=True)
        middle = received.min() + (received.max() - received.min()) / 2
        late = (received > middle).to_numpy()
        w = pd.Series(weights, index=codes.index)
        early_d = w[~late].groupby(codes[~late]).sum().reindex(base.index, fill_value=0.0)
        late_d = w[late].groupby(codes[late]).sum().reindex(base.index, fill_value=0.0)
        mean = (early_d + late_d) / 2
        base["demand_growth"] = ((late_d - early_d) / mean).where(mean > 0)

    lat, lon = call_coordinates(frame)
    cells = aggregate_demand(lat, lon, weights, serious, res=res, group=codes.to_numpy())
    centre_lon = shapely.centroid(boundaries.tehsils.set_index("code").geometry).x
    zone = utm_epsg_array(centre_lon.reindex(cells["group"]).to_numpy())
    cells["covered"] = existing_coverage(cells, existing, radius_m, zone)
    covered = (cells["demand"] * cells["covered"]).groupby(cells["group"]).sum()
    total = cells.groupby("group")["demand"].sum()
    base["covered_share"] = (covered / total).reindex(base.index)
    return base.reset_index()


def score_components(metrics: pd.DataFrame, weights: pd.DataFrame) -> pd.DataFrame:
    """Scaled components, points and score for each row of ``metrics``.

    Adds ``<component>_points`` for each component, ``score`` (their sum, 0..100) and
    ``notes`` (components imputed as neutral). ``weights`` comes from
    :func:`read_planning_weights`.

    >>> m = pd.DataFrame({"serious_per_100k": [10.0, 20.0], "p90_response_min": [30.0, 20.0],
    ...                   "demand_growth": [0.0, 0.5], "covered_share": [0.5, 0.0]})
    >>> w = pd.DataFrame({"component": list(COMPONENTS), "weight": [0.25] * 4,
    ...                   "direction": ["higher", "higher", "higher", "lower"]})
    >>> score_components(m, w)["score"].tolist()
    [25.0, 75.0]
    """
    out = metrics.copy()
    notes: list[list[str]] = [[] for _ in range(len(out))]
    points_total = np.zeros(len(out))
    for row in weights.to_dict("records"):
        component = str(row["component"])
        values = out[component].to_numpy(dtype=np.float64)
        have = np.isfinite(values)
        scaled = np.zeros(len(out))
        if have.sum() > 1:
            ranks = pd.Series(values[have]).rank(method="average").to_numpy()
            scaled[have] = (ranks - 1.0) / (have.sum() - 1.0)
            if row["direction"] == "lower":
                scaled[have] = 1.0 - scaled[have]
        if have.any():
            scaled[~have] = float(np.median(scaled[have]))
        for i in np.flatnonzero(~have):
            notes[i].append(f"{component} missing (neutral)")
        points = 100.0 * float(row["weight"]) * scaled
        out[f"{component}_points"] = points
        points_total += points
    out["score"] = points_total
    out["notes"] = ["; ".join(n) for n in notes]
    return out


def rank_tehsils(calls: pd.DataFrame, *, boundaries: BoundarySet, existing: gpd.GeoDataFrame,
                 weights: pd.DataFrame, categories: pd.DataFrame,
                 radius_m: float = DEFAULT_RADIUS_M, res: int = DEFAULT_RES) -> pd.DataFrame:
    """Rank every tehsil by need for Safe City expansion, the score explained by its parts.

    Parameters
    ----------
    calls : pandas.DataFrame
        Any call history: ``lat, lon`` (or point geometry), ``category``; ``tehsil_code``
        (else tehsils are found by position), ``received_at`` and ``on_scene_at`` for the
        response and growth components.
    boundaries : BoundarySet
        The tehsils to rank (with census population).
    existing : geopandas.GeoDataFrame
        Existing Safe City sites (the real layer, or the stand-in one).
    weights : pandas.DataFrame
        From :func:`read_planning_weights`.
    categories : pandas.DataFrame
        The category table (seriousness weights and flags).
    radius_m, res : float, int
        Coverage radius and H3 resolution for ``covered_share``.

    Returns
    -------
    pandas.DataFrame
        Sorted by score: ``tehsil_code, tehsil, district, score``, the four components, their
        ``*_points`` (which sum to ``score``), ``rank`` and the counts behind them.
    """
    metrics = tehsil_metrics(calls, boundaries=boundaries, existing=existing, categories=categories,
                             radius_m=radius_m, res=res)
    scored = score_components(metrics, weights)
    scored = scored.sort_values(["score", "tehsil_code"], ascending=[False, True], ignore_index=True)
    scored["rank"] = np.arange(1, len(scored) + 1)
    columns = ["tehsil_code", "tehsil", "district", "score", *COMPONENTS,
               *(f"{c}_points" for c in COMPONENTS), "rank", "district_code", "population_2023",
               "calls", "serious_calls", "demand", "on_scene_calls", "notes"]
    return scored[columns]
