"""The data safecity ships, loaded for the CLI, the service, notebooks and benchmarks.

``geo`` and ``jurisdictions`` are libraries: they take tables, boundary sets, routers,
towns and cache paths as arguments and read nothing on their own. This module is where the
application says which files those are: the category table and the planning weights in
``data/``, the Punjab boundary set with its stand-in stations and its router
(:mod:`jurisdictions.catalog`), the GeoNames towns, and the artefacts derived from them
and cached under ``SAFECITY_CACHE_DIR`` (the stand-in camera sites, the generator's
world). The heavy imports happen inside the functions that need them, so importing this
module for the category table stays as cheap as importing pandas.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from geo.categories import read_categories
from geo.progress import Progress, no_progress
from jurisdictions.sources import PROJECT_DATA, cache_dir

if TYPE_CHECKING:
    from datetime import datetime

    import geopandas as gpd

    from geo.synth import SynthConfig, World
    from geo.synth.near_repeat import NearRepeatPlan
    from jurisdictions.boundaries import BoundarySet
    from jurisdictions.router import Router

CATEGORIES_FILE = PROJECT_DATA / "categories.csv"
"""The call-category table (``data/CATEGORIES.md`` explains it)."""

PLANNING_WEIGHTS_FILE = PROJECT_DATA / "planning_weights.csv"
"""The need-score component weights of Safe City planning (``data/PLANNING.md``)."""


def load_categories() -> pd.DataFrame:
    """The shipped category table, validated (:func:`geo.categories.read_categories`)."""
    return read_categories(CATEGORIES_FILE)


def load_planning_weights(path: Path | None = None) -> pd.DataFrame:
    """The planning weights of ``path``, or the shipped ones (:func:`geo.planning.read_planning_weights`)."""
    from geo.planning import read_planning_weights  # noqa: PLC0415 -- pulls in the siting stack

    return read_planning_weights(path or PLANNING_WEIGHTS_FILE)


@cache
def _towns() -> pd.DataFrame:
    from jurisdictions.stations import town_points  # noqa: PLC0415 -- reads the 30 MB GeoNames table

    return town_points()


def load_towns() -> pd.DataFrame:
    """GeoNames towns of Punjab (``name, lon, lat, population``), read once per process."""
    return _towns().copy()


def stand_in_sites(boundaries: BoundarySet) -> gpd.GeoDataFrame:
    """The stand-in existing Safe City sites of a boundary set
    (:func:`geo.coverage.stand_in_existing_sites`), built once per set version and cached."""
    import geopandas as gpd  # noqa: PLC0415 -- only for the cached layer

    from geo.coverage import stand_in_existing_sites, stand_in_sites_file  # noqa: PLC0415

    path = stand_in_sites_file(cache_dir(), boundaries.version)
    if path.exists():
        return gpd.read_parquet(path)
    frame = stand_in_existing_sites(boundaries, load_towns())
    tmp = path.with_name(path.name + ".tmp")
    frame.to_parquet(tmp)
    tmp.replace(path)
    return frame


@cache
def _synth_router() -> Router:
    from jurisdictions.catalog import punjab_router  # noqa: PLC0415 -- loads the routing index

    router = punjab_router()
    # one thread: the router's thread pool has aborted the interpreter at exit
    # ("unaligned tcache chunk") in this environment, and on 2 cores it gains nothing
    router.threads = 1
    return router


_WORLDS: dict[tuple[object, ...], World] = {}


def synth_world(config: SynthConfig) -> World:
    """The generator's world on the shipped Punjab set and its router, for ``config``.

    Kept in memory per process and saved beside the routing index, so a later run loads it
    in about a second instead of rebuilding towns, villages and the pilot sample.
    """
    from geo.synth import build_world, load_world, save_world, world_file, world_key  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    router = _synth_router()
    key = (router.index.version, *world_key(config))
    world = _WORLDS.get(key)
    if world is None:
        path = world_file(cache_dir(), router.index.version, config)
        world = load_world(path, router, config) if path.exists() else None
        if world is None:
            world = build_world(config, router=router, boundaries=punjab_boundary_set(),
                                towns=load_towns())
            save_world(world, path)
        _WORLDS[key] = world
    return world


def generate_calls(months: int, seed: int, scale: float = 1.0, start: str | None = None,
                   config: SynthConfig | None = None, *, progress: Progress = no_progress,
                   near_repeat: NearRepeatPlan | None = None, end: datetime | None = None
                   ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """A generated Punjab call history (:func:`geo.synth.generate_calls` on :func:`synth_world`
    and the shipped category table; ``start`` defaults to ``geo.synth.DEFAULT_START``): the
    same arguments give the same calls and truth."""
    from geo import synth  # noqa: PLC0415 -- the generator and its numpy stack

    config = config or synth.SynthConfig()
    progress("loading router and settlements", 0.02)
    return synth.generate_calls(months, seed, scale, start or synth.DEFAULT_START, config,
                                world=synth_world(config), categories=load_categories(),
                                progress=progress, near_repeat=near_repeat, end=end)
