"""The context drawn under the police data: roads, railways, rivers, lakes, urban areas, towns.

A map of hot spots is only readable when a person can see where they are: which city,
which road, which river. The offline basemap layers (Natural Earth 1:10m lines and
polygons, GeoNames towns; see the data folder's ``basemap/README.md``) are read here
from the folder the caller passes, trimmed to what drawing needs, ordered for drawing,
and the towns ranked for labelling:

- **Draw order** (bottom to top): urban areas, lakes, rivers, railways, roads; town
  labels above everything (:data:`DRAW_ORDER`).
- **Label priority**: Natural Earth's ``scalerank`` first (its cartographers' judgement
  of importance: Lahore 2, Multan 3 … Sialkot 8), then GeoNames population. A town in
  both files is one town (joined on ``geonameid``, or the nearest GeoNames point within
  :data:`SAME_TOWN_M` when Natural Earth has no id) and keeps the GeoNames spelling
  ("Sialkot", not NE's "Sialkote").
- **Credits** the sources' terms ask for (:data:`ATTRIBUTION_LINES`): GeoNames is
  CC BY 4.0 and must be credited wherever its places are shown; Natural Earth is public
  domain with "Made with Natural Earth" customary; the boundary lines (COD-AB, OSM) are
  the ones the maps already carried.

Nothing here reads a file the caller did not name, and nothing touches the web or a
database (the api layer checks the files' checksums and serves the result).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo.crs import utm_epsg

LAYER_FILES: dict[str, str] = {
    "urban": "urban_areas_ne10m.geojson",
    "lakes": "lakes_ne10m.geojson",
    "rivers": "rivers_ne10m.geojson",
    "railways": "railways_ne10m.geojson",
    "roads": "roads_ne10m.geojson",
}
"""Line and polygon layers by name, each a GeoJSON file of the basemap folder."""

NE_PLACES_FILE = "places_ne10m.geojson"
GEONAMES_FILE = "places_geonames.geojson"
FILES: tuple[str, ...] = (*LAYER_FILES.values(), NE_PLACES_FILE, GEONAMES_FILE)
"""Every file :func:`read_basemap` opens (for the caller's checksum check)."""

DRAW_ORDER: tuple[str, ...] = ("urban", "lakes", "rivers", "railways", "roads")
"""Bottom to top; labels (towns, areas) go above the last."""

KEPT_COLUMNS: dict[str, tuple[str, ...]] = {
    "urban": ("scalerank",),
    "lakes": ("name",),
    "rivers": ("name", "scalerank"),
    "railways": (),
    "roads": ("kind", "scalerank"),
}
"""What each layer keeps besides its geometry (what its style and label need)."""

ROAD_KINDS: dict[str, str] = {"Major Highway": "highway", "Road": "road", "Unknown": "road"}
"""Natural Earth road ``type`` → the two styles drawn (motorways and national highways
apart from the rest; NE's "Unknown" roads here are national highways without a class)."""

SAME_TOWN_M = 5_000.0
"""A Natural Earth place without a GeoNames id is the GeoNames town nearest to it when
that town is closer than this (NE's tile-decoded points sit within ~20 m of the source,
two towns of one name are further apart)."""

LABEL_ZOOMS: tuple[tuple[int, float], ...] = ((12, 0.0), (40, 7.0), (120, 8.0))
"""``(first n towns by priority, zoom from which they are labelled)``; the rest from
:data:`LAST_LABEL_ZOOM`. At the province's zoom (about 6) the dozen largest cities are
named, a district (about 8–9) names its towns, a station's map names villages."""
LAST_LABEL_ZOOM = 9.0

ATTRIBUTION_LINES: tuple[str, ...] = (
    "Administrative boundaries: OCHA / WFP / ITOS, Pakistan COD-AB (2022), via HDX, CC BY-IGO",
    "Districts and regions © OpenStreetMap contributors (ODbL)",
    "Roads, railways, rivers, lakes, urban areas: Made with Natural Earth (public domain)",
    "Places: GeoNames (geonames.org), CC BY 4.0",
)
"""The credits every map shows, one line per source."""


class BasemapError(ValueError):
    """A basemap file is missing or lacks a column the drawing needs."""


@dataclass(frozen=True)
class Basemap:
    """The basemap layers in EPSG:4326, each with only the columns drawing needs.

    Attributes
    ----------
    urban, lakes : GeoDataFrame
        Polygons (``scalerank``; ``name``).
    rivers, railways, roads : GeoDataFrame
        Lines (``name, scalerank``; none; ``kind, scalerank`` — ``kind`` is ``highway``
        or ``road``, a lower ``scalerank`` is a more important road).
    towns : GeoDataFrame
        Points ``name, population, scalerank, country, priority, min_zoom``, sorted by
        ``priority`` (0 = label first). ``scalerank`` is NaN for towns Natural Earth
        does not list.
    """

    urban: gpd.GeoDataFrame
    lakes: gpd.GeoDataFrame
    rivers: gpd.GeoDataFrame
    railways: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    towns: gpd.GeoDataFrame

    def layers(self) -> list[tuple[str, gpd.GeoDataFrame]]:
        """The line and polygon layers in drawing order (bottom first)."""
        return [(name, getattr(self, name)) for name in DRAW_ORDER]

    def clip(self, bounds: tuple[float, float, float, float]) -> Basemap:
        """Only the features that reach into ``(west, south, east, north)``; geometries are
        kept whole (a road leaving the frame is still drawn to its end off-screen)."""
        box = shapely.box(*bounds)

        def keep(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
            hit = shapely.intersects(frame.geometry.values, box)
            return frame[hit].reset_index(drop=True)

        return replace(self, **{name: keep(frame) for name, frame in
                                [*self.layers(), ("towns", self.towns)]})


def read_basemap(directory: Path | str) -> Basemap:
    """The basemap layers of ``directory`` (the data folder's ``basemap/``)."""
    folder = Path(directory)
    layers = {name: _read(folder / file) for name, file in LAYER_FILES.items()}
    roads = layers["roads"]
    layers["roads"] = roads.assign(kind=roads["type"].map(ROAD_KINDS).fillna("road"))
    kept = {name: _columns(frame, KEPT_COLUMNS[name], folder / LAYER_FILES[name])
            for name, frame in layers.items()}
    towns = rank_towns(_read(folder / NE_PLACES_FILE), _read(folder / GEONAMES_FILE))
    return Basemap(**kept, towns=towns)


def rank_towns(natural_earth: gpd.GeoDataFrame, geonames: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """One row per town, ranked for labelling: NE ``scalerank``, then population.

    ``natural_earth`` needs ``name, scalerank, pop_max, geonameid`` (``-1`` or NaN when it
    has none); ``geonames`` needs ``name, population, country, geonameid``. A town in
    both keeps the GeoNames name, position and population; an NE place with no GeoNames
    town within :data:`SAME_TOWN_M` is kept on its own (its ``pop_max`` as population).
    """
    _columns(natural_earth, ("name", "scalerank", "pop_max", "geonameid"), Path(NE_PLACES_FILE))
    _columns(geonames, ("name", "population", "country", "geonameid"), Path(GEONAMES_FILE))
    towns = gpd.GeoDataFrame({
        "name": geonames["name"].astype(str).to_numpy(),
        "population": geonames["population"].fillna(0).astype(np.int64).to_numpy(),
        "scalerank": np.full(len(geonames), np.nan),
        "country": geonames["country"].astype(str).to_numpy(),
    }, geometry=geonames.geometry.to_numpy(), crs="EPSG:4326")
    match = _same_towns(natural_earth, geonames)
    matched = match >= 0
    # a GeoNames town two NE places claim keeps the more important rank
    ranks = natural_earth["scalerank"].to_numpy(dtype=float)
    for ne_row in np.argsort(-ranks[matched], kind="stable"):
        towns.loc[int(match[matched][ne_row]), "scalerank"] = ranks[matched][ne_row]
    alone = natural_earth[~matched]
    extra = gpd.GeoDataFrame({
        "name": alone["name"].astype(str).to_numpy(),
        "population": alone["pop_max"].fillna(0).astype(np.int64).to_numpy(),
        "scalerank": alone["scalerank"].to_numpy(dtype=float),
        "country": np.full(len(alone), ""),
    }, geometry=alone.geometry.to_numpy(), crs="EPSG:4326")
    towns = pd.concat([towns, extra], ignore_index=True)
    order = np.lexsort((towns["name"].to_numpy(), -towns["population"].to_numpy(),
                        towns["scalerank"].fillna(np.inf).to_numpy()))
    towns = towns.iloc[order].reset_index(drop=True)
    towns["priority"] = np.arange(len(towns), dtype=np.int64)
    towns["min_zoom"] = label_min_zoom(towns["priority"].to_numpy())
    return gpd.GeoDataFrame(towns, geometry="geometry", crs="EPSG:4326")


def label_min_zoom(priority: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """The zoom from which a town of each ``priority`` rank is labelled (:data:`LABEL_ZOOMS`).

    >>> label_min_zoom([0, 11, 12, 39, 40, 119, 120]).tolist()
    [0.0, 0.0, 7.0, 7.0, 8.0, 8.0, 9.0]
    """
    ranks = np.asarray(priority, dtype=np.int64)
    limits = np.array([n for n, _ in LABEL_ZOOMS])
    zooms = np.array([z for _, z in LABEL_ZOOMS] + [LAST_LABEL_ZOOM])
    return zooms[np.searchsorted(limits, ranks, side="right")]


def _same_towns(natural_earth: gpd.GeoDataFrame, geonames: gpd.GeoDataFrame) -> npt.NDArray[np.int64]:
    """Row of ``geonames`` each NE place is (by id, else nearest within :data:`SAME_TOWN_M`); -1 if none."""
    ids = pd.Series(np.arange(len(geonames)), index=geonames["geonameid"].astype(np.int64).to_numpy())
    ne_ids = natural_earth["geonameid"].fillna(-1).astype(np.int64).to_numpy()
    match = np.asarray(ids.reindex(ne_ids).fillna(-1).to_numpy(), dtype=np.int64)
    missing = np.flatnonzero(match < 0)
    if missing.size and len(geonames):
        lost = natural_earth.geometry.iloc[missing]
        crs = utm_epsg(float(lost.x.mean()))
        tree = shapely.STRtree(geonames.geometry.to_crs(crs).to_numpy())
        place, town = tree.query_nearest(lost.to_crs(crs).to_numpy(), max_distance=SAME_TOWN_M,
                                         all_matches=False)
        match[missing[place]] = town
    return match


def _read(path: Path) -> gpd.GeoDataFrame:
    if not path.is_file():
        raise BasemapError(f"basemap file {path} is missing")
    frame = gpd.read_file(path, engine="pyogrio")
    return frame.to_crs("EPSG:4326") if frame.crs is not None else frame.set_crs("EPSG:4326")


def _columns(frame: gpd.GeoDataFrame, columns: tuple[str, ...], path: Path) -> gpd.GeoDataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BasemapError(f"{path.name} lacks column(s) {', '.join(missing)}")
    return gpd.GeoDataFrame(frame[[*columns, frame.geometry.name]].reset_index(drop=True),
                            geometry=frame.geometry.name, crs=frame.crs)
