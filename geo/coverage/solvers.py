"""The MILP plumbing: HiGHS (highspy) or CBC through pulp, and what a solve reports.

The models of :mod:`geo.coverage.models` are pulp problems; this module solves them and
reads back status, objective and best bound, so every plan states its solver, status,
optimality gap and times (:class:`SolveReport`). Two things pulp does not do are added
here: handing HiGHS a MIP start (the greedy plan, so a time-limited solve is never worse
than greedy), and a valid bound when CBC stops early (its LP relaxation).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pulp

from geo.coverage.errors import CoverageInputError, InfeasiblePlanError, SolverError

DEFAULT_GAP_REL = 1e-4
"""Relative optimality gap at which the MILP solver may stop (HiGHS's own default)."""

DEFAULT_TIME_LIMIT_S = 120.0
"""Default wall-clock limit of one MILP solve, in seconds."""

HIGHS_PRESOLVE = "off"
"""HiGHS's presolve, off: on these models it spent most of the time (12.8 s of 13.3 s for one
new site in Lahore City) while :class:`geo.coverage.reduction.Reduction` already does the
useful part; measured with it off, every instance tried solved faster or ended with a
smaller gap at the limit."""

Solver = Literal["highs", "cbc"]
SOLVERS: tuple[Solver, ...] = ("highs", "cbc")


@dataclass(frozen=True)
class SolveReport:
    """How a MILP was solved.

    ``gap`` is the relative optimality gap ``|bound − objective| / max(|objective|, 1e-9)``
    of the returned plan: 0 means proven optimal (within the solver's tolerance).
    """

    solver: str
    status: str
    objective: float
    bound: float
    gap: float
    build_seconds: float
    solve_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return {"solver": self.solver, "status": self.status, "objective": self.objective,
                "bound": self.bound, "gap": self.gap, "build_seconds": self.build_seconds,
                "solve_seconds": self.solve_seconds}


@cache
def _highs_version() -> str:
    """HiGHS's version, read from a first ``Highs`` object made with stdout silenced.

    HiGHS prints a banner to the process's stdout when its first object is made, even with
    ``output_flag`` off; commands that write results to stdout must not carry it.
    """
    import highspy  # noqa: PLC0415

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with Path(os.devnull).open("w") as devnull:
            os.dup2(devnull.fileno(), 1)
            version = str(highspy.Highs().version())
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return version


def solver_label(solver: Solver) -> str:
    """Human name and version of a solver choice, e.g. ``HiGHS 1.16.0 (highspy) via pulp 3.3.2``."""
    if solver == "highs":
        return f"HiGHS {_highs_version()} (highspy) via pulp {pulp.__version__}"
    if solver == "cbc":
        return f"CBC (bundled with pulp {pulp.__version__})"
    raise CoverageInputError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


class _HiGHS(pulp.HiGHS):  # type: ignore[misc]
    """pulp's highspy interface, handing HiGHS the variables' initial values as a MIP start.

    pulp passes ``warmStart`` to CBC but not to highspy; a start matters here because the
    greedy plan then bounds the MILP's answer from below even when a time limit stops it.
    """

    def __init__(self, *, warm_start: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.warm_start = warm_start

    def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 (pulp's method name)
        if self.warm_start:
            import highspy  # noqa: PLC0415

            variables = lp.variables()
            values = np.zeros(len(variables))
            for var in variables:
                values[var.index] = var.varValue if var.varValue is not None else 0.0
            start = highspy.HighsSolution()
            start.col_value = values.tolist()
            start.value_valid = True
            lp.solverModel.setSolution(start)
        super().callSolver(lp)


def _pulp_solver(solver: Solver, *, time_limit: float | None, gap_rel: float,
                 threads: int | None, warm_start: bool) -> pulp.LpSolver:
    if solver == "highs":
        _highs_version()
        return _HiGHS(warm_start=warm_start, msg=False, timeLimit=time_limit, gapRel=gap_rel,
                      threads=threads, presolve=HIGHS_PRESOLVE)
    if solver == "cbc":
        with warnings.catch_warnings():  # pulp 3.3 deprecates its bundled CBC (gone in pulp 4)
            warnings.filterwarnings("ignore", "PULP_CBC_CMD is deprecated", DeprecationWarning)
            return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=gap_rel, threads=threads,
                                     warmStart=warm_start)
    raise CoverageInputError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")


def relative_gap(objective: float, bound: float, maximise: bool) -> float:
    """How far the best bound lies beyond the objective, relative to the objective
    (``(bound − objective) / |objective|`` for a maximisation); 0 within rounding."""
    diff = (bound - objective) if maximise else (objective - bound)
    if diff <= 1e-9 * max(1.0, abs(objective)):  # floating-point noise of the solver's bound
        return 0.0
    return diff / max(abs(objective), 1e-9)


@dataclass(frozen=True)
class MilpOutcome:
    """What one solve gave: the plan's objective, the best bound, status and seconds."""

    objective: float
    bound: float
    status: str
    seconds: float


def run_milp(problem: pulp.LpProblem, solver: Solver, *, time_limit: float | None, gap_rel: float,
             threads: int | None, warm_start: bool, what: str) -> MilpOutcome:
    """Solve ``problem`` and read status, objective and best bound, or raise."""
    started = time.perf_counter()
    try:
        problem.solve(_pulp_solver(solver, time_limit=time_limit, gap_rel=gap_rel, threads=threads,
                                   warm_start=warm_start))
    except pulp.PulpSolverError as exc:
        raise SolverError(f"{solver_label(solver)} failed on the {what}: {exc}") from exc
    seconds = time.perf_counter() - started
    if problem.status == pulp.LpStatusInfeasible:
        raise InfeasiblePlanError(f"the {what} has no feasible plan")
    if problem.status != pulp.LpStatusOptimal or problem.sol_status not in (
            pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        raise SolverError(f"{solver_label(solver)} found no plan for the {what} "
                          f"(status {pulp.LpStatus[problem.status]}"
                          + (f" within the {time_limit:g} s limit" if time_limit else "") + ")")
    objective = float(pulp.value(problem.objective) or 0.0)
    maximise = problem.sense == pulp.LpMaximize
    status = "optimal" if problem.sol_status == pulp.LpSolutionOptimal else "feasible (stopped early)"
    if solver == "highs":
        # HiGHS minimises the negated objective and never sees pulp's objective constant
        dual = float(problem.solverModel.getInfo().mip_dual_bound)
        offset = float(problem.objective.constant)
        bound = (-dual if maximise else dual) + offset
        if not np.isfinite(bound) or status == "optimal":
            bound = objective if not np.isfinite(bound) else bound
    elif status == "optimal":
        bound = objective  # CBC proved optimality within gap_rel; pulp reports no bound
    else:
        bound = _lp_bound(problem, maximise)
    return MilpOutcome(objective, bound, status, seconds)


def _lp_bound(problem: pulp.LpProblem, maximise: bool) -> float:
    """Objective of the LP relaxation: a valid bound when CBC stops without proving optimality."""
    relaxed = problem.deepcopy()
    for var in relaxed.variables():
        var.cat = pulp.LpContinuous
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "PULP_CBC_CMD is deprecated", DeprecationWarning)
        relaxed.solve(pulp.PULP_CBC_CMD(msg=False, mip=False))
    value = float(pulp.value(relaxed.objective) or 0.0)
    return value if relaxed.status == pulp.LpStatusOptimal else (np.inf if maximise else -np.inf)
