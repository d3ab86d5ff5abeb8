r"""The two siting models, MCLP and LSCP, built the way spopt builds them but sparse.

:class:`MaximalCoverage` (Church & ReVelle 1974) covers the most demand with a budget of
new sites; :class:`SetCoverage` (Toregas et al. 1971) finds the fewest sites covering all
demand, or a target share of it. The formulations are spopt's (``spopt.locate.MCLP`` /
``LSCP``), existing sites fixed exactly as spopt fixes a ``predefined_facility_col`` (its
own ``FacilityModelBuilder.add_predefined_facility_constraint``). What differs is how the
model is built: spopt writes a Python term per demand × site pair (29 s for 1,500 × 1,500
on this machine, growing with the square); here only the covering pairs of the
:class:`~geo.coverage.matrix.CoverageMatrix` are written, after the exact
:class:`~geo.coverage.reduction.Reduction`, and each solve starts from the greedy plan.

References
----------
Church, R. and ReVelle, C. (1974). The maximal covering location problem. *Papers of the
Regional Science Association* 32(1), 101–118.

Toregas, C., Swain, R., ReVelle, C. and Bergman, L. (1971). The location of emergency
service facilities. *Operations Research* 19(6), 1363–1373.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
import pulp

from geo.coverage.errors import CoverageError, CoverageInputError, InfeasiblePlanError
from geo.coverage.greedy import greedy_coverage
from geo.coverage.matrix import BoolArray, CoverageMatrix
from geo.coverage.reduction import Reduction
from geo.coverage.solvers import (
    DEFAULT_GAP_REL,
    DEFAULT_TIME_LIMIT_S,
    MilpOutcome,
    Solver,
    SolveReport,
    relative_gap,
    run_milp,
    solver_label,
)

if TYPE_CHECKING:
    import geopandas as gpd


ModelName = Literal["mclp", "lscp"]
"""The two siting models: ``mclp`` (a budget of new sites) and ``lscp`` (a share to cover)."""


def _selected(fac_vars: list[pulp.LpVariable]) -> BoolArray:
    return np.array([(v.varValue or 0.0) > 0.5 for v in fac_vars], dtype=bool)


class _Model:
    """Shared parts of the two models: site variables, fixed sites, start, results."""

    name = "model"

    def __init__(self, matrix: CoverageMatrix) -> None:
        # spopt's model builder fixes predefined sites; importing spopt takes seconds, so it
        # happens here, outside the timed build, and only when a model is made
        from spopt.locate.base import FacilityModelBuilder  # noqa: PLC0415

        self._builder = FacilityModelBuilder
        self._started = time.perf_counter()  # build time counts the reductions too
        self.matrix = matrix
        self.problem: pulp.LpProblem
        self.fac_vars: list[pulp.LpVariable] = []
        self.cli_vars: list[pulp.LpVariable] = []
        self.selected: BoolArray = matrix.predefined.copy()
        """Sites in the plan (existing and new), after :meth:`solve`."""
        self.report: SolveReport | None = None
        """How the last solve went, after :meth:`solve`."""
        self.build_seconds = 0.0
        self.reduction = Reduction.of(matrix)
        """The exact reductions applied (:class:`Reduction`)."""

    def _add_facilities(self) -> None:
        with warnings.catch_warnings():  # spopt builds LpVariable directly, which pulp 3.3 deprecates
            warnings.filterwarnings("ignore", "Constructing LpVariable", DeprecationWarning)
            self._builder.add_facility_integer_variable(self, range(self.matrix.n_facilities), "x[{i}]")
        if self.matrix.predefined.any():
            # spopt's own fixing of predefined_facility_col: x_j fixed to 1
            self._builder.add_predefined_facility_constraint(
                self, self.matrix.predefined.astype(np.int64))
        for j in np.flatnonzero(~self.matrix.predefined & ~self.reduction.kept):
            self.fac_vars[j].upBound = 0  # dominated, or covers nothing left (Reduction)

    def _add_groups(self) -> None:
        """``y_g ≤ Σ_{j ∈ N_g} x_j`` for every demand group, ``0 ≤ y_g ≤ 1``."""
        fac = self.fac_vars
        self.cli_vars = [self.problem.add_variable(f"y[{g}]", lowBound=0, upBound=1)
                         for g in range(self.reduction.n_groups)]
        for g, sites in enumerate(self.reduction.group_sites):
            expr = pulp.LpAffineExpression([(fac[j], 1.0) for j in sites] + [(self.cli_vars[g], -1.0)])
            self.problem.addConstraint(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"cover_{g}", 0.0))

    def _start_from(self, selected: BoolArray) -> None:
        """Give the solver ``selected`` (a feasible plan) as its starting incumbent."""
        for var, value in zip(self.fac_vars, selected, strict=True):
            var.setInitialValue(1.0 if value else 0.0)
        if self.cli_vars:  # the share-constrained LSCP and the MCLP; Toregas's LSCP has none
            for var, sites in zip(self.cli_vars, self.reduction.group_sites, strict=True):
                var.setInitialValue(1.0 if selected[sites].any() else 0.0)

    def _greedy_start(self, new_sites: int | None, target: float | None) -> BoolArray:
        return greedy_coverage(self.matrix, new_sites, target=target,
                               allowed=self.reduction.kept | self.matrix.predefined).selected

    @property
    def new_selected(self) -> BoolArray:
        """New sites in the plan (selected and not predefined)."""
        return self.selected & ~self.matrix.predefined

    @property
    def covered(self) -> BoolArray:
        """Clients covered by the plan."""
        return self.matrix.covered(self.selected)

    @property
    def covered_share(self) -> float:
        """Share of demand covered by the plan (existing and new sites)."""
        return self.matrix.covered_share(self.selected)

    @property
    def covered_share_before(self) -> float:
        """Share of demand covered by the existing (predefined) sites alone."""
        return self.matrix.covered_share(self.matrix.predefined)

    def _finish(self, solver: Solver, outcome: MilpOutcome, *, maximise: bool) -> None:
        self.selected = _selected(self.fac_vars) | self.matrix.predefined
        # the plan's true value, read from the sites (y may sit below its bound in a solution)
        objective = self.matrix.covered_weight(self.selected) if maximise else float(self.selected.sum())
        self.report = SolveReport(solver_label(solver), outcome.status, objective, outcome.bound,
                                  relative_gap(objective, outcome.bound, maximise),
                                  self.build_seconds, outcome.seconds)


class MaximalCoverage(_Model):
    r"""Maximal covering location problem (MCLP; Church & ReVelle 1974), existing sites fixed.

    .. math::

        \max \sum_i w_i y_i \quad\text{s.t.}\quad
        y_i \le \sum_{j \in N_i} x_j\ \forall i,\qquad
        \sum_j x_j \le p_0 + p,\qquad
        x_j = 1\ (j \text{ existing}),\qquad x_j \in \{0,1\},\ 0 \le y_i \le 1

    with ``N_i = {j : d_ij <= r}``, ``p_0`` existing sites and a budget of ``p`` new ones.
    This is spopt's ``MCLP`` with ``predefined_facility_col`` (spopt's budget counts the
    existing sites too: ``p_facilities = p_0 + p``, as an equality; more sites never cover
    less, so ``≤`` has the same optimum and lets a plan stop once nothing more can be
    covered). ``y_i`` may be continuous because at any integral ``x`` the best ``y_i`` is
    0 or 1. The model is built after the exact :class:`Reduction` and started from the
    greedy plan, so the answer is never worse than greedy even when a time limit stops
    the solver.

    Build with :meth:`from_geodataframe` (or :meth:`from_cost_matrix`), then :meth:`solve`.

    Attributes
    ----------
    selected : numpy.ndarray
        Sites in the plan (existing and new).
    objective : float
        Covered demand ``Σ w_i`` of the plan.
    covered_share, covered_share_before : float
        Share of demand covered with and without the new sites.
    report : SolveReport
        Solver, status, bound, gap and times.

    References
    ----------
    Church, R. and ReVelle, C. (1974). The maximal covering location problem. *Papers of
    the Regional Science Association* 32(1), 101–118.

    Examples
    --------
    Three demand points on a line 1 km apart, sites at each, a 600 m radius, one new
    site: the heaviest point wins.

    >>> m = MaximalCoverage.from_cost_matrix(
    ...     [[0, 1000, 2000], [1000, 0, 1000], [2000, 1000, 0]], [1.0, 5.0, 2.0],
    ...     service_radius=600, new_sites=1).solve()
    >>> m.selected.tolist(), m.objective
    ([False, True, False], 5.0)
    """

    name = "mclp"

    def __init__(self, matrix: CoverageMatrix, new_sites: int) -> None:
        super().__init__(matrix)
        self.problem = pulp.LpProblem(self.name, pulp.LpMaximize)
        self._add_facilities()
        self._add_groups()
        red = self.reduction
        self.problem += pulp.LpAffineExpression(
            [(y, float(w)) for y, w in zip(self.cli_vars, red.group_weights, strict=True)],
            constant=red.base_weight)
        self._budget = pulp.LpConstraint(pulp.LpAffineExpression([(x, 1.0) for x in self.fac_vars]),
                                         pulp.LpConstraintLE, "budget", 0.0)
        self.problem.addConstraint(self._budget)
        self.new_sites = 0
        self.set_budget(new_sites)
        self.build_seconds = time.perf_counter() - self._started

    def set_budget(self, new_sites: int) -> MaximalCoverage:
        """Change the number of new sites (the model is kept; only the budget changes)."""
        new_sites = int(new_sites)
        if new_sites < 0:
            raise CoverageInputError(f"the number of new sites must be ≥ 0, got {new_sites}")
        if new_sites > self.matrix.free_sites:
            raise InfeasiblePlanError(f"{new_sites} new sites asked for but only "
                                      f"{self.matrix.free_sites} candidate sites exist")
        self._budget.constant = -float(int(self.matrix.predefined.sum()) + new_sites)
        self.new_sites = new_sites
        self.report = None
        return self

    @classmethod
    def from_cost_matrix(cls, cost_matrix: npt.ArrayLike, weights: npt.ArrayLike,
                         service_radius: float, *, new_sites: int,
                         predefined_facilities_arr: npt.ArrayLike | None = None) -> MaximalCoverage:
        """From a dense cost matrix (clients × sites), as ``spopt.locate.MCLP.from_cost_matrix``."""
        return cls(CoverageMatrix.from_cost_matrix(cost_matrix, weights, service_radius,
                                                   predefined_facilities_arr), new_sites)

    @classmethod
    def from_geodataframe(cls, gdf_demand: gpd.GeoDataFrame, gdf_fac: gpd.GeoDataFrame,
                          weights_cols: str, service_radius: float, *, new_sites: int,
                          predefined_facility_col: str | None = None,
                          epsg: int | None = None) -> MaximalCoverage:
        """From demand and site points (see :meth:`CoverageMatrix.from_geodataframe`)."""
        return cls(CoverageMatrix.from_geodataframe(
            gdf_demand, gdf_fac, weights_cols, service_radius,
            predefined_facility_col=predefined_facility_col, epsg=epsg), new_sites)

    def solve(self, solver: Solver = "highs", *, time_limit: float | None = DEFAULT_TIME_LIMIT_S,
              gap_rel: float = DEFAULT_GAP_REL, threads: int | None = None,
              start: npt.ArrayLike | None = None) -> MaximalCoverage:
        """Solve with HiGHS or CBC; fills :attr:`selected` and :attr:`report`. Returns self.

        ``start`` (a feasible plan, e.g. the previous budget's) replaces the greedy start.
        """
        if start is None:
            initial = self._greedy_start(self.new_sites, None)
        else:
            initial = np.asarray(start, dtype=bool) & (self.reduction.kept | self.matrix.predefined)
            if int((initial & ~self.matrix.predefined).sum()) > self.new_sites:
                initial = self._greedy_start(self.new_sites, None)
        self._start_from(initial)
        outcome = run_milp(self.problem, solver, time_limit=time_limit, gap_rel=gap_rel,
                           threads=threads, warm_start=True, what=f"MCLP with {self.new_sites} new sites")
        self._finish(solver, outcome, maximise=True)
        if self.matrix.covered_weight(initial) > self.matrix.covered_weight(self.selected):
            # a solver stopped early below its own start: keep the better, known plan
            self.selected = initial
            self._finish_known(solver, outcome)
        return self

    def _finish_known(self, solver: Solver, outcome: MilpOutcome) -> None:
        objective = self.matrix.covered_weight(self.selected)
        self.report = SolveReport(solver_label(solver), outcome.status, objective, outcome.bound,
                                  relative_gap(objective, outcome.bound, True),
                                  self.build_seconds, outcome.seconds)

    @property
    def objective(self) -> float:
        """Covered demand of the plan (after :meth:`solve`)."""
        if self.report is None:
            raise CoverageError("solve the model first")
        return self.report.objective


class SetCoverage(_Model):
    r"""Location set covering (LSCP; Toregas et al. 1971), optionally for a target share.

    With ``target = 1`` this is Toregas's model as spopt's ``LSCP`` builds it:

    .. math::

        \min \sum_j x_j \quad\text{s.t.}\quad \sum_{j \in N_i} x_j \ge 1\ \forall i,\qquad
        x_j = 1\ (j \text{ existing})

    which covers *all* demand. A planner usually asks for the fewest sites covering a
    share ``τ`` of it; spopt has no such model (its ``LSCP`` always covers every client,
    and ``LSCPB`` maximises backup coverage), so for ``τ < 1`` the covering constraints
    become the share-constrained (partial covering) form

    .. math::

        y_i \le \sum_{j \in N_i} x_j\ \forall i,\qquad \sum_i w_i y_i \ge τ \sum_i w_i,
        \qquad 0 \le y_i \le 1

    whose optimum is the smallest budget at which the MCLP covers at least ``τ`` (the
    tests check that equivalence). The number of new sites is ``Σ x_j − p_0``;
    ``max_new_sites`` optionally caps it. Built after the exact :class:`Reduction`,
    started from the greedy plan.

    Attributes
    ----------
    selected : numpy.ndarray
        Sites in the plan (existing and new).
    new_sites : int
        New sites needed (after :meth:`solve`).
    report : SolveReport
        Solver, status, bound, gap and times (objective: total sites).

    References
    ----------
    Toregas, C., Swain, R., ReVelle, C. and Bergman, L. (1971). The location of emergency
    service facilities. *Operations Research* 19(6), 1363–1373.

    Examples
    --------
    The greedy trap: a site covering four of six points tempts greedy, two others cover all.

    >>> cost = [[0, 9, 0], [0, 9, 0], [0, 9, 9], [9, 0, 0], [9, 0, 0], [9, 0, 9]]
    >>> SetCoverage.from_cost_matrix(cost, [1.0] * 6, 1.0).solve().selected.tolist()
    [True, True, False]
    >>> SetCoverage.from_cost_matrix(cost, [1.0] * 6, 1.0, target=0.6).solve().new_sites
    1
    """

    name = "lscp"

    def __init__(self, matrix: CoverageMatrix, target: float = 1.0,
                 max_new_sites: int | None = None) -> None:
        super().__init__(matrix)
        if not 0.0 < target <= 1.0:
            raise CoverageInputError(f"the target share must lie in (0, 1], got {target}")
        self.target = float(target)
        coverable = matrix.weights[matrix.coverable].sum() / matrix.total_weight
        if coverable < target - 1e-12:
            raise InfeasiblePlanError(
                f"at most {coverable:.1%} of the demand lies within {matrix.service_radius:g} m of a "
                f"site, so no plan covers {target:.1%}; lower the target or add candidate sites")
        red = self.reduction
        self.problem = pulp.LpProblem(self.name, pulp.LpMinimize)
        self._add_facilities()
        self.problem += pulp.LpAffineExpression([(x, 1.0) for x in self.fac_vars])
        fac = self.fac_vars
        need = target * matrix.total_weight * (1 - 1e-12) - red.base_weight
        if target >= 1.0:
            for g, sites in enumerate(red.group_sites):
                self.problem.addConstraint(pulp.LpConstraint(
                    pulp.LpAffineExpression([(fac[j], 1.0) for j in sites]), pulp.LpConstraintGE,
                    f"cover_{g}", 1.0))
        elif need > 0:
            self._add_groups()
            self.problem.addConstraint(pulp.LpConstraint(
                pulp.LpAffineExpression([(y, float(w)) for y, w in
                                         zip(self.cli_vars, red.group_weights, strict=True)]),
                pulp.LpConstraintGE, "target_share", need))
        self.max_new_sites = max_new_sites
        if max_new_sites is not None:
            self.problem.addConstraint(pulp.LpConstraint(
                pulp.LpAffineExpression([(x, 1.0) for x, pre in zip(fac, matrix.predefined, strict=True)
                                         if not pre]),
                pulp.LpConstraintLE, "max_new_sites", float(max_new_sites)))
        self.build_seconds = time.perf_counter() - self._started

    @classmethod
    def from_cost_matrix(cls, cost_matrix: npt.ArrayLike, weights: npt.ArrayLike,
                         service_radius: float, *, target: float = 1.0,
                         predefined_facilities_arr: npt.ArrayLike | None = None,
                         max_new_sites: int | None = None) -> SetCoverage:
        """From a dense cost matrix (clients × sites), as ``spopt.locate.LSCP.from_cost_matrix``."""
        return cls(CoverageMatrix.from_cost_matrix(cost_matrix, weights, service_radius,
                                                   predefined_facilities_arr), target, max_new_sites)

    @classmethod
    def from_geodataframe(cls, gdf_demand: gpd.GeoDataFrame, gdf_fac: gpd.GeoDataFrame,
                          weights_cols: str, service_radius: float, *, target: float = 1.0,
                          predefined_facility_col: str | None = None, epsg: int | None = None,
                          max_new_sites: int | None = None) -> SetCoverage:
        """From demand and site points (see :meth:`CoverageMatrix.from_geodataframe`)."""
        return cls(CoverageMatrix.from_geodataframe(
            gdf_demand, gdf_fac, weights_cols, service_radius,
            predefined_facility_col=predefined_facility_col, epsg=epsg), target, max_new_sites)

    def solve(self, solver: Solver = "highs", *, time_limit: float | None = DEFAULT_TIME_LIMIT_S,
              gap_rel: float = DEFAULT_GAP_REL, threads: int | None = None) -> SetCoverage:
        """Solve with HiGHS or CBC; fills :attr:`selected`, :attr:`new_sites`, :attr:`report`."""
        initial = self._greedy_start(None, self.target)
        extra = int((initial & ~self.matrix.predefined).sum())
        fits = self.max_new_sites is None or extra <= self.max_new_sites
        if fits:
            self._start_from(initial)
        what = f"LSCP for {self.target:.1%} of the demand"
        try:
            outcome = run_milp(self.problem, solver, time_limit=time_limit, gap_rel=gap_rel,
                               threads=threads, warm_start=fits, what=what)
        except InfeasiblePlanError as exc:
            if self.max_new_sites is None:
                raise
            raise InfeasiblePlanError(f"covering {self.target:.1%} of the demand needs more than "
                                      f"{self.max_new_sites} new sites") from exc
        self._finish(solver, outcome, maximise=False)
        return self

    @property
    def new_sites(self) -> int:
        """Number of new sites in the plan."""
        return int(self.new_selected.sum())
