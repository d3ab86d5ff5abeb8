"""Hot-spot benchmark: our Gi* against esda + libpysal on the whole province, one run.

    python bench/hotspots.py [--res 8] [--seed 7] [--repeat 3] [--json FILE]

Study area: every H3 cell of Punjab at ``--res`` (centre inside the province; ≈ 258 k cells
at res 8), with synthetic seeded counts (Poisson background following a smooth surface,
plus planted clusters). Timed in the same process on the same cells and counts:

- ours: k-ring weights (bulk ``grid_disk`` → CSR) and Gi* (sparse product, normal p,
  FDR bins);
- esda: ``libpysal.graph.Graph.build_h3(ids, order=1, weight="binary")`` and
  ``esda.G_Local(y, graph, transform="B", star=True, permutations=0)`` — the same
  statistic (``max |Δz|`` is printed and must be ≤ 1e-9).

Also timed for information (ours only): the study area's cells, and an emerging
hot-spot analysis of a cube of the same cells × ``--steps`` months.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import esda
import numpy as np
import numpy.typing as npt
import pandas as pd
from libpysal.graph import Graph

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import console, print_table, timed, write_json
from geo import h3cells
from geo.aggregate import SpaceTimeCube, area_geometry, study_area_cells
from geo.emerging import EmergingHotSpots
from geo.hotspots import GiStar, kring_weights
from jurisdictions.catalog import punjab_boundary_set


def synthetic_counts(cells: npt.NDArray[np.uint64], seed: int,
                     steps: int = 1) -> npt.NDArray[np.int64]:
    """Seeded calls per cell (and step): Poisson around a smooth surface with city-like
    peaks, plus 40 planted clusters (a cell and its ring at 6× the local rate)."""
    rng = np.random.default_rng(seed)
    lat, lon = h3cells.cells_to_latlng(cells)
    rate = np.full(len(cells), 0.3)
    for _ in range(12):  # city-like peaks
        clat, clon = rng.uniform(lat.min(), lat.max()), rng.uniform(lon.min(), lon.max())
        rate += rng.uniform(2, 8) * np.exp(-((lat - clat) ** 2 + (lon - clon) ** 2) / (2 * 0.08**2))
    centres = cells[rng.choice(len(cells), 40, replace=False)]
    _, members = h3cells.grid_disk_pairs(centres, 1)
    pos, found = h3cells.lookup(cells, members)
    rate[pos[found]] *= 6
    return rng.poisson(rate[:, None], (len(cells), steps)).astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=8)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for our timings")
    parser.add_argument("--steps", type=int, default=12, help="months in the emerging cube")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    geometry = area_geometry("province", punjab_boundary_set())
    t_area, cells = timed(lambda: study_area_cells(geometry, args.res))
    y = synthetic_counts(cells, args.seed)[:, 0].astype(np.float64)
    console.print(f"province at res {args.res}: {len(cells):,} cells, {int(y.sum()):,} synthetic calls")

    t_w, weights = timed(lambda: kring_weights(cells, args.k), args.repeat)
    t_gi, ours = timed(lambda: GiStar(y, weights, fdr=True), args.repeat)
    t_total, _ = timed(lambda: GiStar(y, kring_weights(cells, args.k), fdr=True), args.repeat)

    console.print("esda: building the libpysal H3 graph …")
    ids = pd.Index(h3cells.hex_strings(cells))
    t_graph, graph = timed(lambda: Graph.build_h3(ids, order=args.k, weight="binary"))
    console.print("esda: G_Local …")
    t_esda, theirs = timed(lambda: esda.G_Local(y, graph, transform="B", star=True, permutations=0))
    max_dz = float(np.max(np.abs(np.asarray(theirs.Zs) - ours.z)))

    cube_counts = synthetic_counts(cells, args.seed + 1, args.steps)
    starts = pd.DatetimeIndex(pd.date_range("2024-01-01", periods=args.steps, freq="MS"))
    cube = SpaceTimeCube(cells, starts, cube_counts, "month")
    t_emerging, emerging = timed(lambda: EmergingHotSpots(cube, k=args.k))

    def ratio(theirs_s: float, ours_s: float) -> str:
        return f"{theirs_s / ours_s:,.1f}×"

    rows = [
        ["weights (k-ring, binary)", f"{t_w:.3f}", f"{t_graph:.3f}", ratio(t_graph, t_w)],
        ["Gi* statistic (+ p, bins)", f"{t_gi:.3f}", f"{t_esda:.3f}", ratio(t_esda, t_gi)],
        ["total, weights included", f"{t_total:.3f}", f"{t_graph + t_esda:.3f}",
         ratio(t_graph + t_esda, t_total)],
    ]
    print_table(f"Gi*, Punjab at res {args.res}, {len(cells):,} cells, k={args.k} "
                f"(max |Δz| = {max_dz:.1e})", ["step", "ours s", "esda+libpysal s", "esda / ours"], rows)
    print_table("ours only", ["step", "seconds"], [
        ["study-area cells (polygon_to_cells)", f"{t_area:.3f}"],
        [f"emerging hot spots, {len(cells):,} cells × {args.steps} months", f"{t_emerging:.3f}"],
    ])
    classes = pd.Series(emerging.category).value_counts()
    console.print("emerging classes on the synthetic cube: "
                  + ", ".join(f"{name} {n:,}" for name, n in classes.items()))
    if max_dz > 1e-9:
        console.print(f"[red]z differs from esda by {max_dz:.2e}[/red]")
        raise SystemExit(1)
    write_json(args.json, {
        "res": args.res, "k": args.k, "cells": len(cells), "seed": args.seed, "calls": int(y.sum()),
        "ours": {"weights_s": t_w, "gi_star_s": t_gi, "total_s": t_total, "study_area_s": t_area,
                 "emerging_s": t_emerging, "emerging_steps": args.steps},
        "esda": {"graph_build_h3_s": t_graph, "g_local_s": t_esda, "total_s": t_graph + t_esda},
        "ratio_total": (t_graph + t_esda) / t_total,
        "max_abs_z_difference": max_dz,
        "hot_bins_fdr": {str(b): int((ours.bin == b).sum()) for b in range(-3, 4)},
    })


if __name__ == "__main__":
    main()
