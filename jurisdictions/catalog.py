"""Ready-to-use boundary sets and routers, with their derived artefacts cached on disk.

Derived artefacts (the stand-in station layer, compiled routing indexes) are rebuilt
by a command and cached under :func:`jurisdictions.sources.cache_dir`, keyed by the
version of what they derive from; nothing derived lives in git.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import geopandas as gpd

from geo.progress import Progress, no_progress
from jurisdictions.boundaries import SOURCE_FILES, BoundarySet, load_punjab
from jurisdictions.errors import DataFileError
from jurisdictions.index import FINE_RES, RoutingIndex, compile_index
from jurisdictions.limits import DEFAULT_NEAREST_LIMIT_M
from jurisdictions.provinces import Neighbours
from jurisdictions.router import Router
from jurisdictions.sources import cache_dir, fingerprint, verified_source
from jurisdictions.stations import StandInParameters, build_stand_in_stations, town_points


def stand_in_version(base_version: str, params: StandInParameters) -> str:
    """Version of a boundary set whose stations are the stand-in built with ``params``."""
    digest = hashlib.sha256(json.dumps(params.__dict__, sort_keys=True).encode()).hexdigest()
    return f"{base_version}-standin-{digest[:8]}"


def punjab_boundary_set(params: StandInParameters | None = None, *, refresh: bool = False,
                        progress: Progress = no_progress) -> BoundarySet:
    """The shipped Punjab set with the stand-in station layer (built once, then cached)."""
    params = params or StandInParameters()
    base = load_punjab()
    version = stand_in_version(base.version, params)
    assert version == punjab_version(params)
    path = cache_dir() / f"stations-{version}.parquet"
    if path.exists() and not refresh:
        stations = gpd.read_parquet(path)
    else:
        progress("building stand-in stations", 0.0)
        stations = build_stand_in_stations(base.tehsils, town_points(), params)
        tmp = path.with_suffix(".tmp")
        stations.to_parquet(tmp)
        tmp.replace(path)
        progress("building stand-in stations", 1.0)
    return base.with_layer("station", stations, version)


def index_path(version: str, fine_res: int = FINE_RES) -> Path:
    """Where the compiled index of a boundary-set version is cached."""
    return cache_dir() / f"routing-{version}-r{fine_res}.npz"


def routing_stations(boundaries: BoundarySet) -> gpd.GeoDataFrame:
    """Station polygons with the codes of every level above them (what the index keeps)."""
    hierarchy = boundaries.station_hierarchy()
    frame = boundaries.stations[["code", "geometry"]].merge(
        hierarchy.rename(columns={"station_code": "code"}), on="code", how="left"
    )
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=boundaries.stations.crs)


def load_index(boundaries: BoundarySet, *, refresh: bool = False,
               progress: Progress = no_progress) -> RoutingIndex:
    """The routing index of a boundary set: from the cache, or compiled and cached."""
    path = index_path(boundaries.version)
    if path.exists() and not refresh:
        return RoutingIndex.load(path)
    index = compile_index(routing_stations(boundaries), boundaries.version, progress=progress)
    index.save(path)
    return index


def punjab_version(params: StandInParameters | None = None) -> str:
    """Version of the shipped set with stand-in stations, known without reading it."""
    base = "punjab-" + fingerprint(*SOURCE_FILES)
    return stand_in_version(base, params or StandInParameters())


def punjab_router(nearest_limit_m: float = DEFAULT_NEAREST_LIMIT_M, *,
                  progress: Progress = no_progress) -> Router:
    """A router over the shipped Punjab set (stand-in stations), from files alone.

    A cached index is loaded straight away (after checking the source checksums);
    otherwise the set is built and compiled first.
    """
    path = index_path(punjab_version())
    if path.exists():
        for name in SOURCE_FILES:
            verified_source(name)
        return Router(RoutingIndex.load(path), nearest_limit_m, neighbours=neighbouring_provinces())
    boundaries = punjab_boundary_set(progress=progress)
    return Router(load_index(boundaries, progress=progress), nearest_limit_m,
                  neighbours=neighbouring_provinces())


PROVINCES_FILE = "pakistan_provinces_codab.geojson"
"""Pakistan's 7 first-level units (COD-AB 2022, the tehsils' package; see data/SOURCES.md)."""


@cache
def neighbouring_provinces(directory: Path | None = None) -> Neighbours:
    """The provinces and territories around Punjab, read once per process (checksum
    verified): a call outside Punjab is named by the one it lies in."""
    frame = gpd.read_file(verified_source(PROVINCES_FILE, directory))
    if frame.crs is None or frame.crs.to_epsg() != 4326:
        raise DataFileError(f"{PROVINCES_FILE}: expected EPSG:4326 geometry, found {frame.crs}")
    return Neighbours(frame)
