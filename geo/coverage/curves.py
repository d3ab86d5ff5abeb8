"""Coverage curves: the covered share for 0, 1, …, N new sites, the planner's first chart.

One MCLP is built per tehsil and only its budget changes between solves; each solve
starts from the previous plan plus the best single added site, so every point of the curve
is a concrete plan and the curve never falls, even when a time limit cuts a solve short.
The greedy baseline's share is given beside it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from geo.coverage.errors import CoverageInputError
from geo.coverage.greedy import greedy_coverage
from geo.coverage.matrix import CoverageMatrix
from geo.coverage.models import MaximalCoverage
from geo.coverage.solvers import DEFAULT_GAP_REL, DEFAULT_TIME_LIMIT_S, Solver


def coverage_curve(matrix: CoverageMatrix, max_sites: int, *, solver: Solver = "highs",
                   time_limit: float | None = DEFAULT_TIME_LIMIT_S, gap_rel: float = DEFAULT_GAP_REL,
                   threads: int | None = None) -> pd.DataFrame:
    """Covered share for 0..``max_sites`` new sites (the MCLP at each budget), non-decreasing.

    One model is built and only its budget changes between solves. The solve for ``k``
    sites starts from the plan for ``k − 1`` plus the best single added site, and keeps that
    start if the solver stops early below it, so every row is the share of a concrete plan
    and the curve never falls even when a time limit cuts a solve short. Once all
    coverable demand is covered, further rows repeat the share (``status = "saturated"``).

    Returns ``sites, covered_share, covered_demand, greedy_share, gap, status,
    solve_seconds``; rows stop at the number of candidate sites.
    """
    if max_sites < 0:
        raise CoverageInputError(f"max_sites must be ≥ 0, got {max_sites}")
    top = min(int(max_sites), matrix.free_sites)
    greedy = greedy_coverage(matrix, top)
    ceiling = float(matrix.weights[matrix.coverable].sum())
    model = MaximalCoverage(matrix, 0)
    allowed = model.reduction.kept | matrix.predefined
    rows: list[dict[str, Any]] = []
    previous = matrix.predefined.copy()
    for k in range(top + 1):
        if k and matrix.covered_weight(previous) >= ceiling * (1 - 1e-12):
            rows.append({**rows[-1], "sites": k, "greedy_share": greedy.share_at(k), "gap": 0.0,
                         "status": "saturated", "solve_seconds": 0.0})
            continue
        start = previous if k == 0 else greedy_coverage(replace(matrix, predefined=previous), 1,
                                                        allowed=allowed).selected
        model.set_budget(k).solve(solver, time_limit=time_limit, gap_rel=gap_rel, threads=threads,
                                  start=start)
        assert model.report is not None
        previous = model.selected
        share = matrix.covered_share(previous)
        rows.append({"sites": k, "covered_share": share, "covered_demand": share * matrix.total_weight,
                     "greedy_share": greedy.share_at(k), "gap": model.report.gap,
                     "status": model.report.status, "solve_seconds": model.report.solve_seconds})
    return pd.DataFrame(rows, columns=["sites", "covered_share", "covered_demand", "greedy_share",
                                       "gap", "status", "solve_seconds"])
