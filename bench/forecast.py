"""Forecast benchmark: a full-scale year for one region, every method backtested at once.

    python bench/forecast.py [--region LHR] [--res 9] [--origins 26] [--scale 1.0]
                             [--baseline-origins 26] [--json FILE]

History: robbery and burglary/theft calls (``dacoity_robbery``, ``other_crime``, the
near-repeat categories) of one police region over the twelve months of 2024, made by
the project's generator with near repeats (the default :class:`NearRepeatPlan`) month
by month at ``--scale`` (1.0 = full PUCAR-15 volume;
one month of the whole province at a time keeps memory near 2 GB), cached outside git
in the cache directory. Study area: the region's polygon at H3 ``--res``.

Measured in the same run:

- the backtest of all six methods (:func:`geo.forecast.backtest.run_backtest`) with
  weekly origins over the last ``--origins`` weeks: wall time per method and in all;
  then, in a separate pass over the last three origins with ``tracemalloc`` on, each
  method's peak traced allocations (tracing slows Python code, so it never runs during
  the timed pass), and the process's peak RSS;
- a straightforward pandas/scipy implementation of the same backtest for naive and
  KDE over ``--baseline-origins`` of those origins: per origin a boolean mask on the
  frame and a ``groupby`` of the cells (naive); a k-d tree of the window's events, one
  ball query per cell centre and a Python loop over the cells summing the weighted
  kernel (KDE). Its risks must equal ours (the bench fails otherwise); speed is
  compared per origin.

Targets (the issue): the whole backtest ≤ 120 s on this 2-core machine; the vectorised
KDE and naive ≥ 10× the straightforward version.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.shipped import generate_calls
from bench._common import console, print_table, write_json
from geo.aggregate import area_geometry
from geo.forecast.backtest import rolling_origins, run_backtest
from geo.forecast.events import Events, events_from_frame
from geo.forecast.grid import Grid
from geo.forecast.methods import Naive, TimeDecayedKDE, default_methods
from geo.forecast.select import select_method
from geo.synth.near_repeat import NearRepeatPlan
from jurisdictions.catalog import punjab_boundary_set
from jurisdictions.sources import cache_dir

CATEGORIES = ("dacoity_robbery", "other_crime")
YEAR = 2024
TARGET_TOTAL_S = 120.0
TARGET_RATIO = 10.0
MEMORY_ORIGINS = 3
"""Origins of the separate, traced pass that measures each method's peak memory."""


def history(region: str, scale: float, seed: int) -> pd.DataFrame:
    """The region's robbery/burglary calls of 2024 (generated once, then read from the cache)."""
    plan = NearRepeatPlan()
    path = cache_dir() / (f"bench-forecast-{region}-{YEAR}-s{scale:g}-seed{seed}"
                          f"-nr{plan.branching_ratio:g}-{plan.sigma_m:g}-{plan.decay_days:g}.parquet")
    if path.exists():
        return pd.read_parquet(path)
    parts = []
    for month in range(1, 13):
        began = time.perf_counter()
        calls, _ = generate_calls(1, seed + month, scale, start=f"{YEAR}-{month:02d}", near_repeat=plan)
        keep = calls["category"].isin(CATEGORIES) & (calls["region_code"] == region)
        parts.append(pd.DataFrame({"lat": calls.loc[keep, "lat"], "lon": calls.loc[keep, "lon"],
                                   "received_at": calls.loc[keep, "received_at"],
                                   "category": calls.loc[keep, "category"].astype(str)}))
        console.print(f"generated {YEAR}-{month:02d}: {len(calls):,} calls, {int(keep.sum()):,} kept "
                      f"({time.perf_counter() - began:.1f} s)")
        del calls
    frame = pd.concat(parts, ignore_index=True)
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return frame


def peak_traced(fn: Callable[[], Any]) -> int:
    """Peak bytes of Python and numpy allocations while ``fn`` runs (``tracemalloc``;
    LightGBM's native buffers are not traced, its input matrices are)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def max_rss_mb() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def straightforward_naive(frame: pd.DataFrame, grid: Grid, origins: list[np.datetime64]) -> list[np.ndarray]:
    """Per origin: a mask on the frame, ``groupby`` of the cells, reindex on the grid."""
    out = []
    index = pd.Index(grid.cells)
    for origin in origins:
        window = frame[(frame["t"] >= origin - np.timedelta64(7, "D")) & (frame["t"] < origin)]
        counts = window.groupby("cell").size()
        out.append(counts.reindex(index, fill_value=0).to_numpy(dtype=np.float64))
    return out


def straightforward_kde(frame: pd.DataFrame, grid: Grid, origins: list[np.datetime64],
                        kde: TimeDecayedKDE) -> list[np.ndarray]:
    """Per origin: the window's events in a k-d tree, one ball query per cell centre and a
    loop over the cells summing ``decay weight × Gaussian kernel``; scaled like ours."""
    out = []
    radius = kde.cutoff * kde.bandwidth_m
    centres = np.column_stack([grid.x, grid.y])
    lookback = np.timedelta64(int(kde.lookback_days * 86_400), "s")
    for origin in origins:
        window = frame[(frame["t"] >= origin - lookback) & (frame["t"] < origin) & frame["inside"]]
        xy = window[["x", "y"]].to_numpy()
        age = (origin - window["t"].to_numpy()).astype(np.int64) / 86_400e9
        weight = np.exp(-age / kde.decay_days)
        tree = cKDTree(xy)
        risk = np.zeros(len(grid))
        for i, near in enumerate(tree.query_ball_point(centres, radius)):
            if near:
                d = np.hypot(xy[near, 0] - centres[i, 0], xy[near, 1] - centres[i, 1])
                risk[i] = float((weight[near] * np.exp(-0.5 * (d / kde.bandwidth_m) ** 2)).sum())
        total = len(window) * 7 / kde.lookback_days
        out.append(risk * (total / risk.sum()) if risk.sum() > 0 else risk)
    return out


def ours(method: Naive | TimeDecayedKDE, events: Events, grid: Grid, origins: list[np.datetime64]
         ) -> list[np.ndarray]:
    return [method.fit(events.before(o), grid, o, "week") for o in origins]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="LHR")
    parser.add_argument("--res", type=int, default=9)
    parser.add_argument("--origins", type=int, default=26)
    parser.add_argument("--baseline-origins", type=int, default=26)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    t_hist, frame = time_it(lambda: history(args.region, args.scale, args.seed))
    boundaries = punjab_boundary_set()
    t_grid, grid = time_it(lambda: Grid.from_polygon(area_geometry(f"region:{args.region}", boundaries),
                                                     args.res))
    events = events_from_frame(frame, category="category").on(grid)
    inside = int((events.cell >= 0).sum())  # type: ignore[operator]
    console.print(f"region {args.region}: {len(events):,} events ({inside:,} in the grid), "
                  f"{len(grid):,} cells at res {args.res}; history {t_hist:.1f} s, grid {t_grid:.1f} s")
    origins = rolling_origins(events, "week", args.origins)

    methods = default_methods()
    timings: dict[str, dict[str, float]] = {}
    rss_before = max_rss_mb()
    t_all, full = time_it(lambda: run_backtest(events, grid, methods, period="week", origins=origins))
    rss_after = max_rss_mb()
    for name, method in methods.items():
        timings[name] = {"seconds": full.methods[name].seconds}
        traced = peak_traced(lambda method=method: run_backtest(
            events, grid, [method], period="week", origins=origins[-MEMORY_ORIGINS:]))
        timings[name]["peak_traced_mb"] = traced / 2**20
        console.print(f"{name}: {timings[name]['seconds']:.1f} s, peak traced {traced / 2**20:.0f} MB")

    # the straightforward pandas/scipy version of naive and KDE on the same origins
    base_origins = origins[-args.baseline_origins:]
    assert events.cell is not None
    table = pd.DataFrame({"t": events.time, "cell": grid.cells[np.maximum(events.cell, 0)],
                          "inside": events.cell >= 0, "x": events.x, "y": events.y})
    table = table[table["inside"]]
    kde = methods["kde"]
    assert isinstance(kde, TimeDecayedKDE)
    t_naive_slow, slow_naive = time_it(lambda: straightforward_naive(table, grid, base_origins))
    t_naive_fast, fast_naive = time_it(lambda: ours(Naive(), events, grid, base_origins))
    t_kde_slow, slow_kde = time_it(lambda: straightforward_kde(table, grid, base_origins, kde))
    t_kde_fast, fast_kde = time_it(lambda: ours(kde, events, grid, base_origins))
    naive_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(slow_naive, fast_naive, strict=True))
    kde_diff = max(float(np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-12)))
                   for a, b in zip(slow_kde, fast_kde, strict=True))

    rows = []
    for name, m in full.methods.items():
        j = full.coverages.index(0.05)
        spent = timings[name]["seconds"]
        rows.append([name, f"{spent:.1f}", f"{spent / len(origins):.2f}",
                     f"{timings[name]['peak_traced_mb']:.0f}", f"{m.mean('hit_rate')[j]:.3f}",
                     f"{m.mean('pai')[j]:.2f} ± {m.sd('pai')[j]:.2f}", f"{m.mean('pei')[j]:.2f}",
                     _p(m, "naive", j), _p(m, "historical_average", j)])
    print_table(f"Backtest, region {args.region} at res {args.res}: {len(grid):,} cells, {inside:,} events, "
                f"{len(origins)} weekly origins (coverage 5 %)",
                ["method", "s", "s/origin", "peak traced MB", "hit rate", "PAI ± sd", "PEI", "p vs naive",
                 "p vs hist. avg"], rows)
    n = len(base_origins)
    ratio_naive = t_naive_slow / t_naive_fast
    ratio_kde = t_kde_slow / t_kde_fast
    print_table(f"Vectorised vs straightforward (pandas/scipy), {n} origins", [
        "method", "ours s/origin", "straightforward s/origin", "ratio", "max difference"], [
        ["naive (groupby per origin)", f"{t_naive_fast / n:.4f}", f"{t_naive_slow / n:.4f}",
         f"{ratio_naive:,.1f}×", f"{naive_diff:.1e}"],
        ["KDE (k-d tree + loop over cells)", f"{t_kde_fast / n:.4f}", f"{t_kde_slow / n:.4f}",
         f"{ratio_kde:,.1f}×", f"{kde_diff:.1e} (relative)"],
    ])
    print_table("Targets", ["figure", "measured", "target"], [
        ["process peak RSS (history, grid, backtest)", f"{rss_after:,.0f} MB",
         f"(before the backtest {rss_before:,.0f} MB)"],
        ["whole backtest, all six methods", f"{t_all:.1f} s", f"≤ {TARGET_TOTAL_S:.0f} s "
         + ("✔" if t_all <= TARGET_TOTAL_S else "✘")],
        ["naive ÷ straightforward", f"{ratio_naive:,.1f}×", f"≥ {TARGET_RATIO:.0f}× "
         + ("✔" if ratio_naive >= TARGET_RATIO else "✘")],
        ["KDE ÷ straightforward", f"{ratio_kde:,.1f}×", f"≥ {TARGET_RATIO:.0f}× "
         + ("✔" if ratio_kde >= TARGET_RATIO else "✘")],
    ])
    choice = select_method(full)
    console.print(f"selection: {choice.reason}")
    if naive_diff > 0 or kde_diff > 1e-9:
        console.print(f"[red]the straightforward version disagrees: naive {naive_diff}, KDE {kde_diff}[/red]")
        raise SystemExit(1)
    write_json(args.json, {
        "region": args.region, "res": args.res, "cells": len(grid), "events": inside,
        "origins": len(origins), "scale": args.scale, "seed": args.seed,
        "total_s": t_all, "target_total_s": TARGET_TOTAL_S, "max_rss_mb": rss_after,
        "memory_origins": MEMORY_ORIGINS,
        "methods": {name: {**timings[name], "seconds_per_origin": timings[name]["seconds"] / len(origins)}
                    for name in methods},
        "straightforward": {"origins": n, "naive_s": t_naive_slow, "kde_s": t_kde_slow,
                            "ours_naive_s": t_naive_fast, "ours_kde_s": t_kde_fast,
                            "max_abs_naive_difference": naive_diff, "max_rel_kde_difference": kde_diff},
        "ratio_naive": ratio_naive, "ratio_kde": ratio_kde, "target_ratio": TARGET_RATIO,
        "backtest": full.to_dict(), "selection": choice.to_dict(),
    })


def _p(result: Any, baseline: str, j: int) -> str:
    p = result.p_vs.get(baseline)
    return "—" if p is None else f"{p[j]:.3g}"


def time_it(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


if __name__ == "__main__":
    main()
