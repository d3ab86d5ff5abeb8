"""Safe City siting benchmark: the largest tehsil by demand, MILP against greedy, one run.

    python bench/coverage.py [--calls FILE] [--radius-m 500 1000] [--sites 25] [--json FILE]

The history is ``--calls`` or, by default, a deterministic synthetic one (``geo.synth``,
12 months at 5 % of full volume, seed 11). The tehsil with the most seriousness-weighted
demand is planned with the stand-in existing sites, at each radius, by

- the greedy baseline (the reference every ratio is taken against),
- the MCLP on HiGHS (highspy via pulp) and on CBC (as pulp ships it), each with a time
  limit, reporting build and solve time, covered share and optimality gap,
- the share-constrained LSCP for the share the MCLP reached (fewest sites for it, against
  greedy's count), and
- spopt's own dense ``MCLP`` on a sub-instance (the ``--spopt-cells`` demand cells nearest
  the heaviest one, same candidates and existing sites), against this module's model on
  the same matrix: equal objectives, and how the dense build time grows.

Every figure comes from this run on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pulp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.shipped import load_categories, stand_in_sites
from bench._common import console, print_table, timed, write_json
from geo.coverage import (
    MaximalCoverage,
    SetCoverage,
    call_weights,
    greedy_coverage,
    solver_label,
    tehsil_instance,
)
from jurisdictions.catalog import punjab_boundary_set


def load_calls(path: Path | None, months: int, scale: float, seed: int) -> tuple[pd.DataFrame, str]:
    if path is not None:
        from geo.aggregate import read_calls  # noqa: PLC0415 (only with --calls)

        return read_calls(path, columns=("lat", "lon", "category")), f"file: {path}"
    from api.shipped import generate_calls  # noqa: PLC0415 (only without --calls)

    calls, _ = generate_calls(months, seed, scale)
    return calls, f"synthetic: generate_calls(months={months}, seed={seed}, scale={scale})"


def largest_tehsil(calls: pd.DataFrame) -> str:
    weights = pd.Series(call_weights(calls, load_categories()), index=calls.index)
    return str(weights.groupby(calls["tehsil_code"].astype(str).to_numpy()).sum().idxmax())


def nearest_cells(weights: np.ndarray, demand_xy: np.ndarray, cells: int) -> np.ndarray:
    """Rows of the ``cells`` demand points nearest the heaviest one (a compact sub-area)."""
    heaviest = int(np.argmax(weights))
    return np.argsort(np.hypot(*(demand_xy - demand_xy[heaviest]).T), kind="stable")[:cells]


def run_radius(instance: Any, *, radius: float, sites: int, time_limit: float, spopt_cells: int,
               solvers: list[str]) -> dict[str, Any]:
    matrix = instance.matrix
    before = matrix.covered_share(matrix.predefined)
    greedy_s, greedy = timed(lambda: greedy_coverage(matrix, sites))
    out: dict[str, Any] = {
        "radius_m": radius, "new_sites": sites, "demand_cells": matrix.n_clients,
        "candidates": matrix.free_sites, "existing_sites": int(matrix.predefined.sum()),
        "covering_pairs": int(matrix.rows.size), "covered_share_before": before,
        "greedy": {"seconds": greedy_s, "covered_share": greedy.covered_share},
    }
    for solver in solvers:
        console.print(f"radius {radius:g} m: MCLP on {solver} ...")
        model = MaximalCoverage(matrix, sites)
        model.solve(solver, time_limit=time_limit)  # type: ignore[arg-type]
        assert model.report is not None
        out[f"mclp_{solver}"] = {
            "solver": model.report.solver, "status": model.report.status,
            "build_seconds": model.build_seconds, "solve_seconds": model.report.solve_seconds,
            "covered_share": model.covered_share, "gap": model.report.gap,
            "groups": model.reduction.n_groups, "kept_candidates": int(model.reduction.kept.sum()),
        }
    reached = out[f"mclp_{solvers[0]}"]["covered_share"]
    console.print(f"radius {radius:g} m: LSCP for {reached:.3f} ...")
    lscp = SetCoverage(matrix, reached).solve(solvers[0], time_limit=time_limit)  # type: ignore[arg-type]
    assert lscp.report is not None
    greedy_to = greedy_coverage(matrix, target=reached)
    out["lscp"] = {"target": reached, "new_sites": lscp.new_sites, "status": lscp.report.status,
                   "gap": lscp.report.gap, "solve_seconds": lscp.report.solve_seconds,
                   "greedy_new_sites": int(greedy_to.order.size)}
    if spopt_cells:
        out["spopt"] = spopt_comparison(instance, spopt_cells, sites, time_limit)
    return out


def spopt_comparison(instance: Any, cells: int, sites: int, time_limit: float) -> dict[str, Any]:
    """spopt's dense MCLP against ours on the same sub-matrix (HiGHS for both)."""
    from spopt.locate import MCLP  # noqa: PLC0415 (a slow import, only for this comparison)

    matrix = instance.matrix
    demand_m = instance.demand.geometry.to_crs(instance.epsg)
    facility_m = instance.facilities.geometry.to_crs(instance.epsg)
    demand_xy = np.column_stack([demand_m.x, demand_m.y])
    facility_xy = np.column_stack([facility_m.x, facility_m.y])
    rows = nearest_cells(matrix.weights, demand_xy, cells)
    # sites of the sub-instance: every existing site, then the candidates at its cells
    # (candidate j of the tehsil sits at demand cell j - n_existing)
    existing = np.flatnonzero(matrix.predefined)
    columns = np.r_[existing, existing.size + rows]
    weights = matrix.weights[rows]
    cost = np.hypot(demand_xy[rows, None, 0] - facility_xy[None, columns, 0],
                    demand_xy[rows, None, 1] - facility_xy[None, columns, 1])
    predefined = np.r_[np.ones(existing.size, dtype=int), np.zeros(rows.size, dtype=int)]
    radius = matrix.service_radius
    console.print(f"spopt dense MCLP on {cost.shape[0]} × {cost.shape[1]} ...")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        started = time.perf_counter()
        reference = MCLP.from_cost_matrix(cost, weights, radius, p_facilities=int(predefined.sum()) + sites,
                                          predefined_facilities_arr=predefined)
        spopt_build = time.perf_counter() - started
        started = time.perf_counter()
        reference.solve(pulp.HiGHS(msg=False, timeLimit=time_limit), results=False)
        spopt_solve = time.perf_counter() - started
    started = time.perf_counter()
    ours = MaximalCoverage.from_cost_matrix(cost, weights, radius, new_sites=sites,
                                            predefined_facilities_arr=predefined)
    ours_build = time.perf_counter() - started
    ours.solve("highs", time_limit=time_limit)
    assert ours.report is not None
    return {
        "clients": int(cost.shape[0]), "sites": int(cost.shape[1]),
        "spopt_build_seconds": spopt_build, "spopt_solve_seconds": spopt_solve,
        "spopt_objective": float(pulp.value(reference.problem.objective)),
        "ours_build_seconds": ours_build, "ours_solve_seconds": ours.report.solve_seconds,
        "ours_objective": ours.objective, "ours_gap": ours.report.gap,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=Path, default=None, help="call history (default: synthetic)")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--radius-m", type=float, nargs="+", default=[500.0, 1000.0])
    parser.add_argument("--sites", type=int, default=25, help="new sites (MCLP budget)")
    parser.add_argument("--time-limit", type=float, default=120.0, help="per MILP solve (s)")
    parser.add_argument("--solvers", nargs="+", default=["highs", "cbc"], choices=["highs", "cbc"])
    parser.add_argument("--spopt-cells", type=int, default=1000,
                        help="demand cells of the spopt sub-instance (0: skip)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args()

    console.print("loading calls ...")
    calls, source = load_calls(args.calls, args.months, args.scale, args.seed)
    boundaries = punjab_boundary_set()
    existing = stand_in_sites(boundaries)
    tehsil = largest_tehsil(calls)
    results = []
    for radius in args.radius_m:
        instance = tehsil_instance(calls, tehsil, radius_m=radius, boundaries=boundaries, existing=existing,
                                   categories=load_categories())
        results.append(run_radius(instance, radius=radius, sites=args.sites, time_limit=args.time_limit,
                                  spopt_cells=args.spopt_cells, solvers=args.solvers))
    name = f"{instance.tehsil.name} ({tehsil})"

    rows = []
    for r in results:
        g = r["greedy"]
        gain_g = g["covered_share"] - r["covered_share_before"]
        rows.append([f"greedy, {r['radius_m']:g} m", "-", f"{g['seconds']:.3f}", f"{g['covered_share']:.4f}",
                     "1.000", "1.000", "-", "-"])
        for solver in args.solvers:
            m = r[f"mclp_{solver}"]
            gain = m["covered_share"] - r["covered_share_before"]
            rows.append([f"MCLP {solver}, {r['radius_m']:g} m", f"{m['build_seconds']:.2f}",
                         f"{m['solve_seconds']:.2f}", f"{m['covered_share']:.4f}",
                         f"{m['covered_share'] / g['covered_share']:.4f}",
                         f"{gain / gain_g:.4f}" if gain_g > 0 else "-", f"{m['gap']:.1e}",
                         m["status"].split(" ")[0]])
    print_table(f"{name}: {args.sites} new sites, {results[0]['demand_cells']:,} demand cells "
                f"({source})",
                ["method", "build s", "solve s", "share", "÷ greedy", "gain ÷ greedy", "gap", "status"],
                rows)
    print_table("LSCP: fewest new sites for the share the MCLP reached",
                ["radius", "target share", "LSCP sites", "greedy sites", "ratio", "gap", "solve s"],
                [[f"{r['radius_m']:g} m", f"{r['lscp']['target']:.4f}", str(r["lscp"]["new_sites"]),
                  str(r["lscp"]["greedy_new_sites"]),
                  f"{r['lscp']['new_sites'] / max(r['lscp']['greedy_new_sites'], 1):.3f}",
                  f"{r['lscp']['gap']:.2e}", f"{r['lscp']['solve_seconds']:.2f}"] for r in results])
    if args.spopt_cells:
        print_table("spopt's dense MCLP vs this model on the same sub-matrix (HiGHS)",
                    ["radius", "matrix", "spopt build s", "ours build s", "build ratio",
                     "spopt solve s", "ours solve s", "objective spopt", "objective ours"],
                    [[f"{r['radius_m']:g} m", f"{r['spopt']['clients']} × {r['spopt']['sites']}",
                      f"{r['spopt']['spopt_build_seconds']:.2f}", f"{r['spopt']['ours_build_seconds']:.3f}",
                      f"{r['spopt']['spopt_build_seconds'] / r['spopt']['ours_build_seconds']:.0f}×",
                      f"{r['spopt']['spopt_solve_seconds']:.2f}", f"{r['spopt']['ours_solve_seconds']:.2f}",
                      f"{r['spopt']['spopt_objective']:.1f}", f"{r['spopt']['ours_objective']:.1f}"]
                     for r in results])
    write_json(args.json, {"tehsil": tehsil, "tehsil_name": instance.tehsil.name, "calls": source,
                           "n_calls": len(calls), "solvers": {s: solver_label(s) for s in args.solvers},
                           "time_limit_s": args.time_limit, "results": results})


if __name__ == "__main__":
    main()
