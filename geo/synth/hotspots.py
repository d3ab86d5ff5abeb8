"""Planted hotspots: extra calls in chosen H3 cells on a known monthly schedule.

Cells are chosen where people live but the background is ordinary (between the 50th
and 90th percentile of a pilot sample's non-empty cells) and far from city cores (the
top 1 % of cells) and from each other, so a detector's recall is measured on signals
that are really planted, not on cities that are hot anyway. Every cell of a chosen
cell's 1-ring must be covered by a station, so the whole hotspot lies inside Punjab.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import h3
import numpy as np
import numpy.typing as npt

from geo import h3cells
from geo.synth.config import HotspotPlan
from geo.synth.places import scatter

CLASSES = ("persistent", "new", "intensifying", "diminishing")
CORE_QUANTILE = 0.99
CANDIDATE_QUANTILES = (0.5, 0.9)
CANDIDATES_PER_HOTSPOT = 50
"""Candidates examined per wanted hotspot (in random order; most pass every test)."""
INNER_RADIUS_SHARE = 0.8
"""Planted points fall within this share of the hexagon's inner radius of its centre."""


@dataclass(frozen=True)
class PlantedHotspot:
    """One planted hotspot: where, which class, and its expected extra calls per month."""

    id: str
    klass: str
    cell: int
    lat: float
    lon: float
    expected: tuple[float, ...]


def schedule(klass: str, months: int, plan: HotspotPlan, scale: float) -> tuple[float, ...]:
    """Expected extra calls per month for a class (0 where it is not planted)."""
    if klass == "persistent":
        raw = np.full(months, plan.persistent_calls)
    elif klass == "new":
        raw = np.zeros(months)
        raw[-1] = plan.new_calls
    elif klass == "intensifying":
        raw = np.linspace(plan.trend_low_calls, plan.trend_high_calls, months)
    elif klass == "diminishing":
        raw = np.linspace(plan.trend_high_calls, plan.trend_low_calls, months)
    else:
        raise ValueError(f"unknown hotspot class {klass!r}")
    # one factor for the whole schedule, so a trend keeps its shape when the floor applies
    factor = max(scale, plan.floor_calls / float(raw[raw > 0].min()))
    return tuple(float(x) for x in raw * factor)


def classes_for(months: int) -> tuple[str, ...]:
    """Classes that are meaningful for a period of ``months`` monthly steps."""
    if months >= 3:
        return CLASSES
    if months == 2:
        return ("persistent", "new")
    return ("persistent",)


CoveredFn = Callable[[npt.NDArray[np.float64], npt.NDArray[np.float64]], npt.NDArray[np.bool_]]


def choose_cells(pilot_lat: npt.NDArray[np.float64], pilot_lon: npt.NDArray[np.float64], *,
                 count: int, plan: HotspotPlan, rng: np.random.Generator,
                 covered: CoveredFn) -> npt.NDArray[np.uint64]:
    """``count`` hotspot cells from a pilot sample of call locations.

    ``covered(lat, lon)`` tells which points some station covers.
    """
    cells = h3cells.latlng_to_cells(pilot_lat, pilot_lon, plan.res)
    uniq, counts = np.unique(cells, return_counts=True)
    lo, hi = np.quantile(counts, CANDIDATE_QUANTILES)
    core = uniq[counts >= np.quantile(counts, CORE_QUANTILE)]
    _, near_core = h3cells.grid_disk_pairs(core, plan.separation_k)
    excluded = set(near_core.tolist())
    cand = uniq[(counts >= lo) & (counts <= hi)]
    cand = cand[rng.permutation(cand.size)][: CANDIDATES_PER_HOTSPOT * count]
    origin, ring = h3cells.grid_disk_pairs(cand, 1)
    ring_lat, ring_lon = h3cells.cells_to_latlng(ring)
    ok_ring = np.asarray(covered(ring_lat, ring_lon), dtype=bool)
    all_ok = np.bincount(origin, weights=~ok_ring, minlength=cand.size) == 0
    chosen: list[int] = []
    for cell in cand[all_ok].tolist():
        if cell in excluded:
            continue
        chosen.append(cell)
        if len(chosen) == count:
            break
        _, disk = h3cells.grid_disk_pairs(np.array([cell], dtype=np.uint64), plan.separation_k)
        excluded.update(disk.tolist())
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} of {count} hotspot cells could be placed")
    return np.array(chosen, dtype=np.uint64)


def points_in_cells(cells: npt.NDArray[np.uint64], res: int, rng: np.random.Generator
                    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One random point inside each given cell (repeat cells for several points)."""
    lat0, lon0 = h3cells.cells_to_latlng(cells)
    inner = h3.average_hexagon_edge_length(res, unit="m") * np.sqrt(3) / 2
    radius = INNER_RADIUS_SHARE * inner * np.sqrt(rng.random(cells.size))
    lat, lon = scatter(lat0, lon0, radius, rng)
    stray = h3cells.latlng_to_cells(lat, lon, res) != cells
    lat[stray], lon[stray] = lat0[stray], lon0[stray]
    return lat, lon
