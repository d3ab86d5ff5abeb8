"""The compiled H3 routing index: a cache of the station polygons that answers fast.

Compilation (see :func:`compile_index`):

1. Every station boundary is sampled densely (spacing a quarter of a fine cell's
   edge) and the fine-resolution cells of the samples, with their 1-ring, form the
   *boundary zone* ``B``: every fine cell that any boundary touches is in ``B``.
2. Any other cell contains no boundary, so it lies wholly inside one station (or
   wholly outside Punjab). Descending from a coarse resolution, each cell with no
   ``B`` descendant is *clean*: it maps straight to the station covering its centre.
   Clean cells are kept at the coarsest resolution possible (a compacted set).
3. Each cell becomes the integer range of its fine-resolution descendants
   (:func:`geo.h3cells.descendant_range`); ranges are disjoint and sorted, so one
   ``searchsorted`` finds a point's entry: a station, or a ``B`` cell with the short
   list of candidate stations (those with a boundary sample in its 1-ring) for the
   exact test.

The index is keyed by the boundary set's version and saved as one ``.npz`` file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo import h3cells
from geo.progress import Progress, no_progress
from jurisdictions.postgis_semantics import covers_xy

FINE_RES = 11
"""Resolution of boundary cells (edge ≈ 29 m): about 2 % of Punjab needs an exact test."""

COARSE_RES = 5
"""Coarsest resolution kept in the compacted interior set."""

FORMAT_VERSION = 1

@dataclass
class RoutingIndex:
    """Sorted disjoint ranges of fine-resolution H3 indexes and what each maps to.

    Attributes
    ----------
    lo, hi : uint64 arrays
        Inclusive bounds of each entry's fine-resolution descendants, sorted by ``lo``.
    owner : int32 array
        ``>= 0``: the station (row of ``stations``) wholly covering the entry;
        ``< 0``: boundary entry ``-1 - owner`` whose candidates are
        ``candidates[candidate_ptr[b]:candidate_ptr[b + 1]]`` (station rows, ascending).
    stations : GeoDataFrame
        Station polygons sorted by ``code`` (row order is the tie rule's order), with
        ``tehsil_code``, ``district_code``, ``region_code`` and names.
    """

    lo: npt.NDArray[np.uint64]
    hi: npt.NDArray[np.uint64]
    owner: npt.NDArray[np.int32]
    candidate_ptr: npt.NDArray[np.int64]
    candidates: npt.NDArray[np.int32]
    stations: gpd.GeoDataFrame
    version: str
    fine_res: int = FINE_RES
    build_seconds: float = 0.0
    _extra: dict[str, object] = field(default_factory=dict, repr=False)

    @property
    def n_boundary_cells(self) -> int:
        return len(self.candidate_ptr) - 1

    def nbytes(self) -> int:
        """Bytes held by the index arrays (the polygons are counted by the router)."""
        arrays = (self.lo, self.hi, self.owner, self.candidate_ptr, self.candidates)
        return int(sum(a.nbytes for a in arrays))

    def save(self, path: Path) -> Path:
        """Write the index to ``path`` (``.npz``, uncompressed so loading is a read)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        attrs = pd.DataFrame(self.stations.drop(columns="geometry"))
        meta = {
            "format": FORMAT_VERSION,
            "version": self.version,
            "fine_res": self.fine_res,
            "build_seconds": self.build_seconds,
            "columns": list(attrs.columns),
        }
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            lo=self.lo,
            hi=self.hi,
            owner=self.owner,
            candidate_ptr=self.candidate_ptr,
            candidates=self.candidates,
            wkb=np.array(shapely.to_wkb(self.stations.geometry.values), dtype=object),
            attrs=np.array(attrs.astype(str).to_numpy(), dtype=str),
            meta=np.array(json.dumps(meta)),
        )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> RoutingIndex:
        """Read an index written by :meth:`save`."""
        with np.load(path, allow_pickle=True) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path}: index format {meta.get('format')}, "
                                 f"expected {FORMAT_VERSION}; recompile it")
            attrs = pd.DataFrame(data["attrs"], columns=meta["columns"])
            if "stand_in" in attrs:
                attrs["stand_in"] = attrs["stand_in"] == "True"
            stations = gpd.GeoDataFrame(
                attrs, geometry=shapely.from_wkb(data["wkb"]), crs="EPSG:4326"
            )
            return cls(
                lo=data["lo"], hi=data["hi"], owner=data["owner"],
                candidate_ptr=data["candidate_ptr"], candidates=data["candidates"],
                stations=stations, version=meta["version"], fine_res=meta["fine_res"],
                build_seconds=meta["build_seconds"],
            )


A = TypeVar("A", bound=np.generic)
B = TypeVar("B", bound=np.generic)


def unique_pairs(a: npt.NDArray[A], b: npt.NDArray[B]) -> tuple[npt.NDArray[A], npt.NDArray[B]]:
    """Distinct ``(a, b)`` pairs sorted by ``a`` then ``b``."""
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    keep = np.ones(a.size, dtype=bool)
    keep[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return a[keep], b[keep]


def first_per_group(group: npt.NDArray[np.integer[Any]]) -> npt.NDArray[np.bool_]:
    """Mask of the first element of each run of equal values in a sorted array."""
    keep = np.ones(group.size, dtype=bool)
    keep[1:] = group[1:] != group[:-1]
    return keep


def covering_rows(polygons: npt.NDArray[np.object_], boundaries: npt.NDArray[np.object_],
                  tree: shapely.STRtree, x: npt.NDArray[np.float64], y: npt.NDArray[np.float64],
                  *, near_edges: bool = True) -> npt.NDArray[np.int64]:
    """For each point, the lowest polygon row that covers it (``-1`` if none).

    Coverage is PostGIS's (:func:`jurisdictions.postgis_semantics.covers_xy`);
    ``polygons`` and ``boundaries`` (their boundaries) should be prepared for speed.
    ``near_edges=False`` skips the near-edge re-decision, for points known to lie far
    from every boundary (centres of clean cells).
    """
    out = np.full(len(x), -1, dtype=np.int64)
    if len(x) == 0:
        return out
    pairs = tree.query(shapely.points(x, y))
    if near_edges:
        hit = covers_xy(polygons[pairs[1]], boundaries[pairs[1]], x[pairs[0]], y[pairs[0]])
    else:
        hit = shapely.intersects_xy(polygons[pairs[1]], x[pairs[0]], y[pairs[0]])
    point, row = pairs[0][hit], pairs[1][hit]
    order = np.lexsort((row, point))
    point, row = point[order], row[order]
    first = first_per_group(point)
    out[point[first]] = row[first]
    return out


def _boundary_samples(polygons: npt.NDArray[np.object_], spacing_deg: float
                      ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Points along every polygon boundary no further apart than ``spacing_deg``."""
    lines = shapely.segmentize(shapely.boundary(polygons), spacing_deg)
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    return coords, owner


def compile_index(stations: gpd.GeoDataFrame, version: str, *, fine_res: int = FINE_RES,
                  coarse_res: int = COARSE_RES, progress: Progress = no_progress
                  ) -> RoutingIndex:
    """Compile the routing index of a station layer (EPSG:4326, column ``code``).

    ``stations`` may carry hierarchy columns (``tehsil_code`` …); they are kept.
    """
    import time  # noqa: PLC0415

    started = time.perf_counter()
    frame = stations.sort_values("code").reset_index(drop=True)
    polygons = np.asarray(frame.geometry.values, dtype=object)
    boundaries = shapely.boundary(polygons)
    shapely.prepare(polygons)
    shapely.prepare(boundaries)
    tree = shapely.STRtree(polygons)

    # 1. boundary zone at the fine resolution
    progress("sampling boundaries", 0.0)
    edge_m = float(min(_edge_lengths_m(fine_res)))
    spacing_deg = edge_m * 0.45 / 111_320.0
    coords, sample_owner = _boundary_samples(polygons, spacing_deg)
    progress("boundary cells", 0.15)
    sample_cells = h3cells.latlng_to_cells(coords[:, 1], coords[:, 0], fine_res)
    cells, owners = unique_pairs(sample_cells, sample_owner)
    origin, ring = h3cells.grid_disk_pairs(cells, 1)
    ring_cells, ring_owners = unique_pairs(ring, owners[origin])
    boundary_cells, first = np.unique(ring_cells, return_index=True)
    cand_ptr = np.r_[first, len(ring_cells)].astype(np.int64)
    cand = ring_owners.astype(np.int32)

    # 2. descend from the coarse resolution, keeping clean cells as coarse as possible
    progress("interior cells", 0.35)
    from jurisdictions._province import province_cells  # noqa: PLC0415

    clean_cells: list[npt.NDArray[np.uint64]] = []
    level_cells = province_cells(polygons, coarse_res)
    for res in range(coarse_res, fine_res + 1):
        dirty = np.unique(h3cells.cell_to_parent(boundary_cells, res))
        is_dirty = np.isin(level_cells, dirty)
        clean_cells.append(level_cells[~is_dirty])
        if res < fine_res:
            _, level_cells = h3cells.children(np.union1d(level_cells[is_dirty], dirty), res + 1)
        progress("interior cells", 0.35 + 0.4 * (res - coarse_res + 1) / (fine_res - coarse_res + 1))
    clean = np.concatenate(clean_cells)
    lat, lon = h3cells.cells_to_latlng(clean)
    # clean cells hold no boundary: their centres are metres from every edge
    clean_owner = covering_rows(polygons, boundaries, tree, lon, lat, near_edges=False)
    keep = clean_owner >= 0
    clean, clean_owner = clean[keep], clean_owner[keep]

    # 3. one sorted array of disjoint ranges
    progress("ranges", 0.9)
    lo_c, hi_c = h3cells.descendant_range(clean, fine_res)
    lo = np.concatenate([lo_c, boundary_cells])
    hi = np.concatenate([hi_c, boundary_cells])
    owner = np.concatenate([clean_owner.astype(np.int32),
                            -1 - np.arange(len(boundary_cells), dtype=np.int32)])
    order = np.argsort(lo, kind="stable")
    lo, hi, owner = lo[order], hi[order], owner[order]
    if len(lo) > 1 and not np.all(lo[1:] > hi[:-1]):
        raise AssertionError("routing index ranges overlap: compile bug")
    progress("done", 1.0)
    return RoutingIndex(lo=lo, hi=hi, owner=owner, candidate_ptr=cand_ptr, candidates=cand,
                        stations=frame, version=version, fine_res=fine_res,
                        build_seconds=time.perf_counter() - started)


def _edge_lengths_m(res: int) -> list[float]:
    """A conservative (short) hexagon edge length at ``res`` for Punjab's latitudes."""
    import h3  # noqa: PLC0415

    # the average edge over-states the smallest hexagons by up to ~2x; use half of it
    return [h3.average_hexagon_edge_length(res, "m") * 0.9]
