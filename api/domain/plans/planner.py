"""One tehsil's camera-site plan in stages, shared by ``safecity plan sites`` and the API.

No HTTP and no database here: the caller brings the calls (a file, a generated history,
or the database) and the existing sites, and gets a :class:`geo.coverage.SitePlan`. The
work is split into the stages the API reports as progress:

1. ``loading demand`` (the caller's: reading calls and existing sites),
2. ``building coverage`` (:func:`build_instance`: demand cells, candidates, the matrix),
3. ``solving`` (:func:`solve_instance`: MCLP or LSCP on HiGHS or CBC, and the greedy
   baseline on the same instance),
4. ``writing results`` (the caller's: GeoJSON, files or rows).

:func:`solve_instance` makes the same plan as :func:`geo.coverage.plan_sites` (a test
compares them), with the instance built once so the stages can be timed apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, get_args

from geo.coverage import (
    DEFAULT_GAP_REL,
    DEFAULT_RADIUS_M,
    DEFAULT_RES,
    DEFAULT_TIME_LIMIT_S,
    SOLVERS,
    CoverageInputError,
    ModelName,
    SitePlan,
    Solver,
    TehsilInstance,
    TehsilRef,
    solve_plan,
    tehsil_instance,
)

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

    from jurisdictions.boundaries import BoundarySet

MODELS: tuple[ModelName, ...] = get_args(ModelName)

STAGES: dict[str, float] = {
    "loading demand": 0.0,
    "building coverage": 0.25,
    "solving": 0.4,
    "writing results": 0.9,
}
"""Each stage and the share of the job done when it starts (the solve is most of the rest)."""

Progress = Callable[[str, float], None]
"""``progress(stage, fraction)``: called as each stage starts."""


class PlanOptionError(CoverageInputError):
    """Options that do not fit together; ``option`` names the one to change."""

    def __init__(self, message: str, option: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class SiteOptions:
    """What to plan: ``plan sites``'s options, the API's request body, one checked shape.

    ``new_sites`` is the MCLP's budget (required) or the LSCP's cap (optional);
    ``target`` the LSCP's share of demand to cover (default 1.0, all of it).
    """

    new_sites: int | None = None
    radius_m: float = DEFAULT_RADIUS_M
    model: ModelName = "mclp"
    target: float | None = None
    res: int = DEFAULT_RES
    solver: Solver = "highs"
    time_limit: float = DEFAULT_TIME_LIMIT_S
    gap_rel: float = DEFAULT_GAP_REL

    def check(self) -> SiteOptions:
        """These options, or :class:`PlanOptionError` naming the first one that is wrong."""
        if self.model not in MODELS:
            raise PlanOptionError(f"unknown model {self.model!r}; choose {' or '.join(MODELS)}", "model")
        if self.solver not in SOLVERS:
            raise PlanOptionError(f"unknown solver {self.solver!r}; choose {' or '.join(SOLVERS)}",
                                  "solver")
        if self.model == "mclp" and self.new_sites is None:
            raise PlanOptionError("the MCLP needs a number of new sites", "sites")
        if self.model == "mclp" and self.target is not None:
            raise PlanOptionError("a target share goes with the LSCP (model lscp)", "target")
        if self.new_sites is not None and self.new_sites < 0:
            raise PlanOptionError(f"the number of new sites must be ≥ 0, got {self.new_sites}", "sites")
        if self.target is not None and not 0.0 < self.target <= 1.0:
            raise PlanOptionError(f"the target share must lie in (0, 1], got {self.target}", "target")
        if not (math.isfinite(self.radius_m) and self.radius_m > 0):
            raise PlanOptionError(f"the coverage radius must be > 0 m, got {self.radius_m}", "radius_m")
        if not self.time_limit > 0:
            raise PlanOptionError(f"the time limit must be > 0 s, got {self.time_limit}", "time_limit")
        if self.model == "lscp" and self.target is None:
            return replace(self, target=1.0)
        return self


def build_instance(calls: pd.DataFrame, tehsil: str | TehsilRef, options: SiteOptions, *,
                   existing: gpd.GeoDataFrame, categories: pd.DataFrame,
                   candidates: gpd.GeoDataFrame | None = None,
                   boundaries: BoundarySet | None = None) -> TehsilInstance:
    """Stage 2: the tehsil's demand cells, existing and candidate sites, coverage matrix.

    Raises :class:`geo.coverage.NoDemandError` when the tehsil has no weighted calls.
    """
    return tehsil_instance(calls, tehsil, existing=existing, categories=categories,
                           radius_m=options.radius_m, res=options.res, candidates=candidates,
                           boundaries=boundaries)


def solve_instance(instance: TehsilInstance, options: SiteOptions) -> SitePlan:
    """Stage 3: the plan by the chosen model, with the greedy baseline in its summary
    (:func:`geo.coverage.solve_plan`).

    Raises :class:`geo.coverage.InfeasiblePlanError` when the request cannot be met and
    :class:`geo.coverage.SolverError` when the solver fails.
    """
    options = options.check()
    return solve_plan(instance, model=options.model, new_sites=options.new_sites,
                      target=options.target, solver=options.solver, time_limit=options.time_limit,
                      gap_rel=options.gap_rel)


def plan_tehsil(calls: pd.DataFrame, tehsil: str | TehsilRef, options: SiteOptions, *,
                existing: gpd.GeoDataFrame, categories: pd.DataFrame,
                candidates: gpd.GeoDataFrame | None = None,
                boundaries: BoundarySet | None = None,
                progress: Progress | None = None) -> SitePlan:
    """Stages 2 and 3 in one call (the command line's path), reporting each stage."""
    update = progress or (lambda _stage, _fraction: None)
    options = options.check()
    update("building coverage", STAGES["building coverage"])
    instance = build_instance(calls, tehsil, options, existing=existing, categories=categories,
                              candidates=candidates, boundaries=boundaries)
    update("solving", STAGES["solving"])
    return solve_instance(instance, options)


def summary_title(summary: dict[str, Any]) -> str:
    """``"Lahore City (PK61702), Lahore: MCLP"``."""
    return (f"{summary['tehsil']} ({summary['tehsil_code']}), {summary['district']}: "
            f"{str(summary['model']).upper()}")


def summary_rows(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary lines ``plan sites`` prints (label → value), in order."""
    return {
        "new sites": summary["new_sites"], "existing sites": summary["existing_sites"],
        "covered share before": summary["covered_share_before"],
        "covered share after": summary["covered_share_after"],
        "greedy baseline": f"{summary['greedy_covered_share']:.4g} with "
                           f"{summary['greedy_new_sites']} new sites",
        "solver": summary["solver"], "status": summary["status"], "optimality gap": summary["gap"],
        "solve time (s)": summary["solve_seconds"], "demand cells": summary["demand_cells"],
    }
