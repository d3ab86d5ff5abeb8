"""One tehsil's plan from end to end: its instance, the model's answer, and the plan's tables.

:func:`tehsil_instance` gathers a tehsil's demand cells, the existing sites near it, the
candidate sites inside it and the coverage matrix between them; :func:`solve_plan` runs
the MCLP or the LSCP on it with the greedy baseline beside; :func:`plan_from` turns the
chosen sites into the tables a planner reads (each site's demand, each cell's nearest
site, a summary that names the solver, the gap and where the existing sites come from).
:func:`plan_sites` and :func:`plan_curve` do it all for a notebook or a script. The tehsil,
the calls, the category table and the existing sites are arguments: nothing is loaded here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from geo.coverage.curves import coverage_curve
from geo.coverage.demand import DEFAULT_RES, TehsilRef, calls_in_tehsil, demand_cells, tehsil_ref
from geo.coverage.errors import CoverageInputError, SiteFileError
from geo.coverage.greedy import greedy_coverage
from geo.coverage.matrix import DEFAULT_RADIUS_M, BoolArray, CoverageMatrix, projected_xy
from geo.coverage.models import MaximalCoverage, ModelName, SetCoverage
from geo.coverage.sites import candidates_from_demand
from geo.coverage.solvers import DEFAULT_GAP_REL, DEFAULT_TIME_LIMIT_S, Solver, solver_label
from geo.crs import WGS84

if TYPE_CHECKING:
    from jurisdictions.boundaries import BoundarySet


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


def as_tehsil(tehsil: str | TehsilRef, boundaries: BoundarySet | None) -> TehsilRef:
    """``tehsil`` itself, or the tehsil of ``boundaries`` with that code or name."""
    if isinstance(tehsil, TehsilRef):
        return tehsil
    if boundaries is None:
        raise CoverageInputError(f"tehsil {tehsil!r} is given by code or name: give the boundary "
                                 "set to find it in")
    return tehsil_ref(tehsil, boundaries)


def tehsil_instance(calls: pd.DataFrame, tehsil: str | TehsilRef, *, existing: gpd.GeoDataFrame,
                    categories: pd.DataFrame, radius_m: float = DEFAULT_RADIUS_M,
                    res: int = DEFAULT_RES, candidates: gpd.GeoDataFrame | None = None,
                    boundaries: BoundarySet | None = None) -> TehsilInstance:
    """Demand, sites and coverage matrix of one tehsil.

    ``tehsil``: a :class:`TehsilRef`, or a code or name of a tehsil in ``boundaries``.
    ``existing``: existing sites (the real layer, or the stand-in of
    :mod:`geo.coverage.standin`); those within ``radius_m`` of the tehsil are kept, since
    they cover some of its demand. ``categories``: the category table that weighs the
    calls. ``candidates``: new-site candidates (default: demand cell centres); only those
    inside the tehsil are kept.
    """
    if not radius_m > 0:
        raise CoverageInputError(f"the coverage radius must be > 0 m, got {radius_m}")
    ref = as_tehsil(tehsil, boundaries)
    demand = demand_cells(calls, ref, categories=categories, res=res)
    n_calls = len(calls_in_tehsil(calls, ref))
    epsg = ref.epsg
    to_m = Transformer.from_crs(WGS84, f"EPSG:{epsg}", always_xy=True)
    tehsil_m = shapely.transform(ref.geometry, lambda xy: np.column_stack(to_m.transform(xy[:, 0], xy[:, 1])))
    existing = existing.assign(existing=True)
    if len(existing):
        exy = projected_xy(existing, epsg)
        near = shapely.dwithin(tehsil_m, shapely.points(exy), radius_m)
        existing = existing[near]
    if candidates is None:
        candidates = candidates_from_demand(demand)
    else:
        cxy = projected_xy(candidates, epsg)
        candidates = candidates[shapely.contains_xy(tehsil_m, cxy[:, 0], cxy[:, 1])]
        if candidates.empty:
            raise SiteFileError(f"no candidate site lies inside tehsil {ref.label}")
    candidates = candidates.assign(existing=False, tehsil_code=ref.code, district_code=ref.district_code)
    facilities = gpd.GeoDataFrame(pd.concat([existing, candidates], ignore_index=True),
                                  geometry="geometry", crs=WGS84)
    facilities = facilities[[c for c in facilities.columns if c != "geometry"] + ["geometry"]]
    matrix = CoverageMatrix.from_points(projected_xy(demand, epsg), projected_xy(facilities, epsg),
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


def plan_from(instance: TehsilInstance, selected: BoolArray, summary: dict[str, Any]) -> SitePlan:
    """The :class:`SitePlan` of the sites ``selected`` in ``instance``: each site's demand, each
    demand cell's nearest site, and the summary (``summary`` adds the model's own fields)."""
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
        "min_calls": MIN_PLAN_CALLS,
        "warnings": plan_warnings(f"{ref.name} ({ref.code})", int(instance.calls), int(matrix.n_clients)),
    }
    return SitePlan(gpd.GeoDataFrame(sites, geometry="geometry", crs=WGS84), demand, {**head, **summary})


MIN_PLAN_CALLS = 30
"""Fewer calls of demand than this in a tehsil is too little to plan on: each call moves the
covered share by more than 3 points, so "0 → 100 %" can mean one call next to one camera.
The plan is still made (it is not wrong), with a warning saying so."""
MIN_DEMAND_CELLS = 5
"""Demand in fewer H3 cells than this is a handful of places, not a pattern to site for."""


def plan_warnings(tehsil: str, calls: int, cells: int) -> list[str]:
    """Why a plan's numbers should not be read as findings (empty when demand suffices)."""
    found: list[str] = []
    if calls < MIN_PLAN_CALLS:
        found.append(f"too little demand to plan: {calls} call{'s' * (calls != 1)} in {tehsil} "
                     f"(minimum {MIN_PLAN_CALLS}); each call moves the covered share by "
                     f"{100 / max(calls, 1):.0f} points, so the shares are not a basis for siting")
    if cells < MIN_DEMAND_CELLS:
        found.append(f"demand lies in only {cells} cell{'s' * (cells != 1)} (minimum {MIN_DEMAND_CELLS}): "
                     "a handful of places, not a pattern")
    return found


def _check_request(model: str, new_sites: int | None, target: float | None) -> None:
    if model not in ("mclp", "lscp"):
        raise CoverageInputError(f"unknown model {model!r}; choose mclp or lscp")
    if model == "mclp" and new_sites is None:
        raise CoverageInputError("the MCLP needs a number of new sites")
    if model == "mclp" and target is not None:
        raise CoverageInputError("a target share goes with the LSCP (model='lscp')")


def solve_plan(instance: TehsilInstance, *, model: ModelName = "mclp", new_sites: int | None = None,
               target: float | None = None, solver: Solver = "highs",
               time_limit: float | None = DEFAULT_TIME_LIMIT_S,
               gap_rel: float = DEFAULT_GAP_REL) -> SitePlan:
    """The plan of an instance by the MCLP (a budget) or the LSCP (a target share).

    ``model="mclp"`` needs ``new_sites``: the plan covers the most demand with that many
    new sites. ``model="lscp"`` finds the fewest new sites covering ``target`` (default 1.0,
    all demand); ``new_sites``, if given, caps that number. Either way the summary compares
    with the greedy baseline on the same instance.

    Raises :class:`InfeasiblePlanError` when the request cannot be met,
    :class:`CoverageInputError` for bad options, :class:`SolverError` when the solver fails.
    """
    _check_request(model, new_sites, target)
    matrix = instance.matrix
    solved: MaximalCoverage | SetCoverage
    if model == "mclp":
        assert new_sites is not None
        solved = MaximalCoverage(matrix, new_sites).solve(solver, time_limit=time_limit, gap_rel=gap_rel)
        greedy = greedy_coverage(matrix, new_sites)
        share = None
    else:
        share = 1.0 if target is None else float(target)
        solved = SetCoverage(matrix, share, new_sites).solve(solver, time_limit=time_limit,
                                                             gap_rel=gap_rel)
        greedy = greedy_coverage(matrix, target=share)
    extra: dict[str, Any] = {"model": model, "target": share, "sites_requested": new_sites,
                             "greedy_covered_share": greedy.covered_share,
                             "greedy_new_sites": int(greedy.order.size)}
    assert solved.report is not None
    return plan_from(instance, solved.selected, {**extra, **solved.report.to_dict()})


def plan_sites(calls: pd.DataFrame, tehsil: str | TehsilRef, *, existing: gpd.GeoDataFrame,
               categories: pd.DataFrame, new_sites: int | None = None,
               radius_m: float = DEFAULT_RADIUS_M, model: ModelName = "mclp",
               target: float | None = None, res: int = DEFAULT_RES,
               candidates: gpd.GeoDataFrame | None = None, boundaries: BoundarySet | None = None,
               solver: Solver = "highs", time_limit: float | None = DEFAULT_TIME_LIMIT_S,
               gap_rel: float = DEFAULT_GAP_REL) -> SitePlan:
    """Plan a tehsil's new camera sites: :func:`tehsil_instance`, then :func:`solve_plan`.

    Raises :class:`NoDemandError` for a tehsil without calls, :class:`InfeasiblePlanError`
    when the request cannot be met, :class:`CoverageInputError` for bad options.
    """
    _check_request(model, new_sites, target)  # before the instance is built: it takes seconds
    instance = tehsil_instance(calls, tehsil, existing=existing, categories=categories,
                               radius_m=radius_m, res=res, candidates=candidates, boundaries=boundaries)
    return solve_plan(instance, model=model, new_sites=new_sites, target=target, solver=solver,
                      time_limit=time_limit, gap_rel=gap_rel)


@dataclass(frozen=True)
class TehsilCurve:
    """A tehsil's coverage curve and what it was computed on.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`geo.coverage.curves.coverage_curve`'s rows: ``sites, covered_share,
        covered_demand, greedy_share, gap, status, solve_seconds``.
    tehsil : TehsilRef
        The tehsil.
    radius_m : float
        Coverage radius.
    existing_sites, candidate_sites : int
        Existing sites near the tehsil (in every plan) and candidates for new ones.
    existing_sites_source : str
        Where the existing sites come from (the stand-in layer says so).
    solver : str
        Solver name and version.
    """

    table: pd.DataFrame
    tehsil: TehsilRef
    radius_m: float
    existing_sites: int
    existing_sites_source: str
    candidate_sites: int
    solver: str


def plan_curve(calls: pd.DataFrame, tehsil: str | TehsilRef, *, max_sites: int,
               existing: gpd.GeoDataFrame, categories: pd.DataFrame,
               radius_m: float = DEFAULT_RADIUS_M, res: int = DEFAULT_RES,
               candidates: gpd.GeoDataFrame | None = None, boundaries: BoundarySet | None = None,
               solver: Solver = "highs", time_limit: float | None = DEFAULT_TIME_LIMIT_S,
               gap_rel: float = DEFAULT_GAP_REL) -> TehsilCurve:
    """A tehsil's coverage curve (:func:`geo.coverage.curves.coverage_curve`) for 0..``max_sites``
    new sites, on the instance :func:`tehsil_instance` builds."""
    instance = tehsil_instance(calls, tehsil, existing=existing, categories=categories,
                               radius_m=radius_m, res=res, candidates=candidates, boundaries=boundaries)
    table = coverage_curve(instance.matrix, max_sites, solver=solver, time_limit=time_limit,
                           gap_rel=gap_rel)
    return TehsilCurve(table, instance.tehsil, float(radius_m), int(instance.matrix.predefined.sum()),
                       instance.existing_source, instance.matrix.free_sites, solver_label(solver))
