"""Reading one boundary level from the files a police GIS cell holds.

Round trips through GeoJSON, GeoPackage, Shapefile and GeoParquet written to tmp_path;
every bad-file case checks that the message names the feature (row and code).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from jurisdictions.errors import InvalidBoundaryError, JurisdictionsError
from jurisdictions.importer import read_boundary_file

pytestmark = pytest.mark.unit

LON0, LAT0 = 74.30, 31.50  # Lahore
D = 0.01


def square(i: int, j: int = 0) -> shapely.Geometry:
    return shapely.box(LON0 + i * D, LAT0 + j * D, LON0 + (i + 1) * D, LAT0 + (j + 1) * D)


def stations_frame(n: int = 4) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [f"S{i}" for i in range(n)], "name": [f"Station {i}" for i in range(n)],
         "tehsil_code": ["PK61701"] * n},
        geometry=[square(i) for i in range(n)], crs=4326,
    )


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """Write ``frame`` in the format named by the suffix (shapefiles truncate long names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the shapefile driver warns about truncated names
        if path.suffix == ".parquet":
            frame.to_parquet(path)
        else:
            frame.to_file(path, engine="pyogrio")
    return path


def fails(path: Path, *args: str, **kwargs: object) -> str:
    with pytest.raises(InvalidBoundaryError) as info:
        read_boundary_file(path, *args, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, JurisdictionsError)
    assert isinstance(info.value, ValueError)
    return str(info.value)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize(("suffix", "parent_column"), [
    (".geojson", None), (".gpkg", None), (".shp", "tehsil_cod"), (".parquet", None),
])
def test_round_trip(tmp_path: Path, suffix: str, parent_column: str | None) -> None:
    source = stations_frame()
    path = write(source.iloc[::-1], tmp_path / f"stations{suffix}")
    got = read_boundary_file(path, "station", parent_column=parent_column,
                             parents=["PK61701", "PK61702"])
    assert list(got.columns) == ["code", "name", "tehsil_code", "stand_in", "geometry"]
    assert got.crs.to_epsg() == 4326
    assert got["code"].tolist() == ["S0", "S1", "S2", "S3"]  # sorted by code
    assert got["name"].tolist() == source["name"].tolist()
    assert (got["tehsil_code"] == "PK61701").all()
    assert not got["stand_in"].any()
    assert (got.geom_type == "MultiPolygon").all()
    for a, b in zip(got.geometry, source.geometry, strict=True):
        assert shapely.equals(a, b)


def test_column_mapping_and_reprojection(tmp_path: Path) -> None:
    source = stations_frame().rename(columns={"code": "PS_ID", "name": "PS_Name",
                                              "tehsil_code": "TEHSIL"})
    path = write(source.to_crs(32643), tmp_path / "official.gpkg")
    got = read_boundary_file(path, "station", code_column="PS_ID", name_column="ps_name",
                             parent_column="TEHSIL")
    assert got["code"].tolist() == ["S0", "S1", "S2", "S3"]
    assert got["name"].tolist() == ["Station 0", "Station 1", "Station 2", "Station 3"]
    for a, b in zip(got.geometry, source.geometry, strict=True):
        assert shapely.equals_exact(shapely.normalize(shapely.get_geometry(a, 0)),
                                    shapely.normalize(b), tolerance=1e-9)


def test_region_has_no_parent_and_numeric_codes_read_as_text(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame({"code": [101.0, 102.0], "name": ["North", "South"]},
                             geometry=[square(0), square(1)], crs=4326)
    got = read_boundary_file(write(frame, tmp_path / "regions.geojson"), "region")
    assert got["code"].tolist() == ["101", "102"]
    assert list(got.columns) == ["code", "name", "geometry"]
    with pytest.raises(ValueError, match="regions have no parent column"):
        read_boundary_file(tmp_path / "regions.geojson", "region", parent_column="x")
    with pytest.raises(ValueError, match="unknown level"):
        read_boundary_file(tmp_path / "regions.geojson", "thana")


def test_layer_of_a_geopackage(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    stations_frame().to_file(path, layer="stations", engine="pyogrio")
    stations_frame(2).to_file(path, layer="old", engine="pyogrio")
    assert len(read_boundary_file(path, "station", layer="old")) == 2
    assert "2 layers (stations, old); choose one with --layer" in fails(path, "station")
    assert "no layer 'nope' (layers: stations, old)" in fails(path, "station", layer="nope")


# ------------------------------------------------------------------ bad files
def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    assert "no such file" in fails(tmp_path / "nowhere.geojson", "station")
    junk = tmp_path / "junk.geojson"
    junk.write_text("this is not GeoJSON")
    assert "junk.geojson: cannot read" in fails(junk, "station")
    bad_parquet = tmp_path / "junk.parquet"
    pd.DataFrame({"code": ["a"]}).to_parquet(bad_parquet)
    assert "cannot read as GeoParquet" in fails(bad_parquet, "station")
    empty = write(stations_frame().iloc[:0], tmp_path / "empty.gpkg")
    assert "has no features" in fails(empty, "station")


def test_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = write(stations_frame().rename(columns={"name": "label"}), tmp_path / "s.geojson")
    message = fails(path, "station")
    assert "no name column 'name' (columns: code, label, tehsil_code)" in message
    assert "--name-column" in message
    message = fails(path, "station", name_column="label", parent_column="thana")
    assert "no parent (station → tehsil) code column 'thana'" in message


def test_no_crs(tmp_path: Path) -> None:
    source = stations_frame()
    frame = gpd.GeoDataFrame(source.drop(columns="geometry"), geometry=list(source.geometry))
    path = write(frame, tmp_path / "nocrs.shp")
    assert "has no coordinate reference system" in fails(path, "station", parent_column="tehsil_cod")


def test_null_and_duplicate_codes_and_empty_names(tmp_path: Path) -> None:
    frame = stations_frame(5)
    frame.loc[1, "code"] = None
    frame.loc[2, "code"] = "  "
    frame.loc[3, "code"] = "S0"
    frame.loc[4, "name"] = None
    message = fails(write(frame, tmp_path / "s.gpkg"), "station")
    assert "4 problem(s), nothing imported" in message
    assert "row 2 (no code): the code (code) is empty" in message
    assert "row 3 (no code): the code (code) is empty" in message
    assert "rows 1, 4: code 'S0' is used 2 times" in message
    assert "row 5 (code 'S4'): the name (name) is empty" in message


def test_empty_and_non_polygon_geometries(tmp_path: Path) -> None:
    frame = stations_frame()
    frame.loc[1, "geometry"] = None
    frame.loc[2, "geometry"] = shapely.Point(LON0, LAT0)
    frame.loc[3, "geometry"] = shapely.LineString([(LON0, LAT0), (LON0 + D, LAT0)])
    message = fails(write(frame, tmp_path / "s.parquet"), "station")
    assert "row 2 (code 'S1'): the geometry is empty" in message
    assert "row 3 (code 'S2'): the geometry is a Point, not a polygon" in message
    assert "row 4 (code 'S3'): the geometry is a LineString, not a polygon" in message


def test_invalid_geometry_gives_the_reason(tmp_path: Path) -> None:
    frame = stations_frame()
    frame.loc[2, "geometry"] = shapely.Polygon(
        [(LON0, LAT0), (LON0 + D, LAT0 + D), (LON0 + D, LAT0), (LON0, LAT0 + D)])
    message = fails(write(frame, tmp_path / "s.geojson"), "station")
    assert "row 3 (code 'S2'): invalid geometry: Self-intersection[74.305 31.505]" in message


def test_swapped_coordinates_and_wrong_crs(tmp_path: Path) -> None:
    frame = stations_frame()
    frame.loc[1, "geometry"] = shapely.box(LAT0, LON0, LAT0 + D, LON0 + D)
    frame.loc[2, "geometry"] = shapely.box(400_000, 3_480_000, 401_000, 3_481_000)
    message = fails(write(frame, tmp_path / "s.geojson"), "station")
    assert "row 2 (code 'S1'): coordinates outside Punjab" in message
    assert "lat and lon look swapped" in message
    assert "row 3 (code 'S2'): coordinates outside Punjab" in message
    assert "is the file's CRS right?" in message


def test_unknown_parent_codes(tmp_path: Path) -> None:
    frame = stations_frame()
    frame.loc[2, "tehsil_code"] = "PK69999"
    frame.loc[3, "tehsil_code"] = None
    tehsils = gpd.GeoDataFrame({"code": ["PK61701"]}, geometry=[square(0)], crs=4326)
    message = fails(write(frame, tmp_path / "s.gpkg"), "station", parents=tehsils)
    assert "row 3 (code 'S2'): tehsil 'PK69999' does not exist" in message
    assert "row 4 (code 'S3'): the parent code (tehsil_code) is empty" in message


def test_long_problem_lists_are_cut(tmp_path: Path) -> None:
    frame = stations_frame(30)
    frame["name"] = None
    message = fails(write(frame, tmp_path / "s.parquet"), "station")
    assert "30 problem(s)" in message
    assert "… and 10 more" in message
