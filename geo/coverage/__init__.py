"""Safe City camera siting per tehsil: demand, sites, MCLP and LSCP, greedy baseline, curves.

The question a planner asks of a tehsil is *how many camera sites, where, and what share of
serious-crime demand do they cover*. The package answers it in steps, one module each:

1. :mod:`~geo.coverage.demand`: the tehsil's calls, each weighted by its category's
   ``seriousness_weight``, summed per H3 cell (resolution 9, about 0.1 km²); a demand
   point is the cell centre.
2. :mod:`~geo.coverage.sites` and :mod:`~geo.coverage.standin`: candidate new sites (the
   demand cell centres, or a planner's file) and existing sites, fixed in every plan: the
   real layer from a file, or until then a **stand-in** over the urban cores of the
   district headquarters towns, which every output that uses it names as such.
3. :mod:`~geo.coverage.matrix`: which site covers which demand point, within the coverage
   radius in metres of the tehsil's UTM zone (:func:`geo.crs.utm_epsg`).
4. :mod:`~geo.coverage.models` (MCLP, LSCP) after the exact
   :mod:`~geo.coverage.reduction`, solved by :mod:`~geo.coverage.solvers` (HiGHS or CBC
   through pulp); :mod:`~geo.coverage.greedy`, the baseline every plan reports and every
   solve starts from; :mod:`~geo.coverage.curves`, covered share for 0..N new sites.
5. :mod:`~geo.coverage.plan`: one tehsil's instance, plan and summary, end to end.

Nothing here reads a file on its own: the boundary set, the calls, the category table and
the existing sites are arguments (the application loads the shipped ones). The names
below are the package's public interface; each module's docstring says why it is built
the way it is.
"""

from geo.coverage.curves import coverage_curve
from geo.coverage.demand import (
    DEFAULT_RES,
    TehsilRef,
    aggregate_demand,
    call_serious,
    call_weights,
    calls_in_tehsil,
    demand_cells,
    tehsil_ref,
)
from geo.coverage.errors import (
    CoverageError,
    CoverageInputError,
    InfeasiblePlanError,
    NoDemandError,
    SiteFileError,
    SolverError,
    UnknownTehsilError,
)
from geo.coverage.greedy import GreedyResult, greedy_coverage
from geo.coverage.matrix import DEFAULT_RADIUS_M, CoverageMatrix
from geo.coverage.models import MaximalCoverage, ModelName, SetCoverage
from geo.coverage.plan import (
    MIN_DEMAND_CELLS,
    MIN_PLAN_CALLS,
    SitePlan,
    TehsilCurve,
    TehsilInstance,
    plan_curve,
    plan_from,
    plan_sites,
    plan_warnings,
    solve_plan,
    tehsil_instance,
)
from geo.coverage.reduction import Reduction
from geo.coverage.sites import SITE_COLUMNS, candidates_from_demand, read_sites, site_frame
from geo.coverage.solvers import (
    DEFAULT_GAP_REL,
    DEFAULT_TIME_LIMIT_S,
    SOLVERS,
    Solver,
    SolveReport,
    solver_label,
)
from geo.coverage.standin import (
    STAND_IN_SOURCE,
    ExistingSiteParameters,
    district_headquarters,
    stand_in_existing_sites,
    stand_in_sites_file,
)

__all__ = [
    "DEFAULT_GAP_REL",
    "DEFAULT_RADIUS_M",
    "DEFAULT_RES",
    "DEFAULT_TIME_LIMIT_S",
    "MIN_DEMAND_CELLS",
    "MIN_PLAN_CALLS",
    "SITE_COLUMNS",
    "SOLVERS",
    "STAND_IN_SOURCE",
    "CoverageError",
    "CoverageInputError",
    "CoverageMatrix",
    "ExistingSiteParameters",
    "GreedyResult",
    "InfeasiblePlanError",
    "MaximalCoverage",
    "ModelName",
    "NoDemandError",
    "Reduction",
    "SetCoverage",
    "SiteFileError",
    "SitePlan",
    "SolveReport",
    "Solver",
    "SolverError",
    "TehsilCurve",
    "TehsilInstance",
    "TehsilRef",
    "UnknownTehsilError",
    "aggregate_demand",
    "call_serious",
    "call_weights",
    "calls_in_tehsil",
    "candidates_from_demand",
    "coverage_curve",
    "demand_cells",
    "district_headquarters",
    "greedy_coverage",
    "plan_curve",
    "plan_from",
    "plan_sites",
    "plan_warnings",
    "read_sites",
    "site_frame",
    "solve_plan",
    "solver_label",
    "stand_in_existing_sites",
    "stand_in_sites_file",
    "tehsil_instance",
    "tehsil_ref",
]
