"""geo.basemap on the real basemap files (checked against data/SOURCES.md) and tiny hand-built towns."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from geo.basemap import (
    ATTRIBUTION_LINES,
    DRAW_ORDER,
    FILES,
    KEPT_COLUMNS,
    SAME_TOWN_M,
    Basemap,
    BasemapError,
    label_min_zoom,
    rank_towns,
    read_basemap,
)

pytestmark = pytest.mark.unit

# the README's clip extent: Punjab plus 20 km
WEST, SOUTH, EAST, NORTH = 69.12, 27.53, 75.59, 34.20


@pytest.fixture(scope="module")
def folder() -> Path:
    from jurisdictions.sources import data_dir, verified_source

    for name in FILES:  # the files this test reads are the documented ones
        verified_source(f"basemap/{name}")
    return data_dir() / "basemap"


@pytest.fixture(scope="module")
def basemap(folder: Path) -> Basemap:
    return read_basemap(folder)


def test_layers_come_in_drawing_order_with_only_the_columns_drawing_needs(basemap: Basemap) -> None:
    assert [name for name, _ in basemap.layers()] == list(DRAW_ORDER)
    assert DRAW_ORDER[0] == "urban"
    assert DRAW_ORDER[-1] == "roads"
    for name, frame in basemap.layers():
        assert len(frame) > 0, name
        assert list(frame.columns) == [*KEPT_COLUMNS[name], "geometry"], name
        assert frame.crs.to_epsg() == 4326
        west, south, east, north = frame.total_bounds
        assert west >= WEST - 0.01
        assert east <= EAST + 0.01
        assert south >= SOUTH - 0.01
        assert north <= NORTH + 0.01


def test_geometry_types_and_road_kinds(basemap: Basemap) -> None:
    assert set(basemap.urban.geom_type) <= {"Polygon", "MultiPolygon"}
    assert set(basemap.lakes.geom_type) <= {"Polygon", "MultiPolygon"}
    for lines in (basemap.rivers, basemap.railways, basemap.roads):
        assert set(lines.geom_type) <= {"LineString", "MultiLineString"}
    assert set(basemap.roads["kind"]) == {"highway", "road"}
    assert set(basemap.rivers["name"]) == {"Indus", "Chenab", "Jhelum", "Ravi", "Sutlej"}
    # the M-2 motorway runs past Pindi Bhattian (73.27 E, 31.90 N): a highway within 2 km
    highways = basemap.roads[basemap.roads["kind"] == "highway"].to_crs(32643)
    pindi = gpd.GeoSeries([shapely.Point(73.2725, 31.8983)], crs=4326).to_crs(32643).iloc[0]
    assert float(highways.distance(pindi).min()) < 2_000


def test_towns_are_ranked_by_scalerank_then_population(basemap: Basemap) -> None:
    towns = basemap.towns
    assert towns["priority"].tolist() == list(range(len(towns)))
    assert towns["name"].iloc[0] == "Lahore"
    ranks = towns["scalerank"].fillna(99).to_numpy()
    assert np.all(np.diff(ranks) >= 0)
    same_rank = towns.groupby(towns["scalerank"].fillna(99))["population"]
    assert all(np.all(np.diff(g.to_numpy()) <= 0) for _, g in same_rank)
    assert np.all(np.diff(towns["min_zoom"].to_numpy()) >= 0)
    # the twelve first are named on the province map, the rest as one zooms in
    assert (towns["min_zoom"] == 0).sum() == 12


def test_each_natural_earth_place_is_one_town_with_the_geonames_spelling(basemap: Basemap,
                                                                         folder: Path) -> None:
    towns = basemap.towns
    natural_earth = gpd.read_file(folder / "places_ne10m.geojson")
    geonames = gpd.read_file(folder / "places_geonames.geojson")
    assert len(towns) == len(geonames) + int((towns["scalerank"].notna()
                                              & (towns["country"] == "")).sum())
    assert int(towns["scalerank"].notna().sum()) == len(natural_earth)
    names = set(towns["name"])
    assert {"Sialkot", "Rahim Yar Khan", "Islamabad"} <= names
    assert "Sialkote" not in names  # NE's spelling gave way to GeoNames'
    assert (towns["name"] == "Rahim Yar Khan").sum() == 1  # NE has no id for it: matched by distance


def test_rank_towns_joins_by_id_then_by_distance() -> None:
    geonames = gpd.GeoDataFrame({"name": ["Alpha", "Beta", "Gamma"], "population": [10, 500, 50],
                                 "country": ["PK", "PK", "IN"], "geonameid": [1, 2, 3]},
                                geometry=[shapely.Point(73.0, 31.0), shapely.Point(74.0, 31.0),
                                          shapely.Point(74.5, 32.0)], crs=4326)
    near = 0.5 * SAME_TOWN_M / 111_000  # degrees of latitude: half the join distance
    natural_earth = gpd.GeoDataFrame(
        {"name": ["Alpha NE", "Gamma NE", "Delta"], "scalerank": [3, 5, 4],
         "pop_max": [7, 8, 9], "geonameid": [1.0, -1.0, np.nan]},
        geometry=[shapely.Point(73.0, 31.0), shapely.Point(74.5, 32.0 + near),
                  shapely.Point(70.0, 29.0)], crs=4326)
    towns = rank_towns(natural_earth, geonames)
    assert towns["name"].tolist() == ["Alpha", "Delta", "Gamma", "Beta"]
    assert towns["scalerank"].tolist()[:3] == [3.0, 4.0, 5.0]
    assert np.isnan(towns["scalerank"].iloc[3])
    assert towns["population"].tolist() == [10, 9, 50, 500]
    assert towns["country"].tolist() == ["PK", "", "IN", "PK"]


def test_clip_keeps_what_reaches_into_the_box(basemap: Basemap) -> None:
    lahore = (74.1, 31.3, 74.6, 31.7)
    clipped = basemap.clip(lahore)
    box = shapely.box(*lahore)
    assert "Lahore" in set(clipped.towns["name"])
    assert "Multan" not in set(clipped.towns["name"])
    for (name, whole), (_, part) in zip(basemap.layers(), clipped.layers(), strict=True):
        assert len(part) == int(shapely.intersects(whole.geometry.values, box).sum()), name
    assert len(clipped.roads) < len(basemap.roads)
    assert "Ravi" in set(clipped.rivers["name"])


def test_label_zooms_grow_with_rank() -> None:
    zooms = label_min_zoom(np.arange(400))
    assert zooms[0] == 0.0
    assert np.all(np.diff(zooms) >= 0)
    assert zooms[-1] == 9.0


def test_credits_name_every_source() -> None:
    text = " ".join(ATTRIBUTION_LINES)
    for needed in ("GeoNames", "CC BY 4.0", "Made with Natural Earth", "COD-AB",
                   "© OpenStreetMap contributors"):
        assert needed in text


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BasemapError, match=r"urban_areas_ne10m\.geojson"):
        read_basemap(tmp_path)
