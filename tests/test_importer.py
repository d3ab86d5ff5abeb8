"""Reading one boundary level from the files a police GIS cell holds.

Round trips through GeoJSON, GeoPackage, Shapefile and GeoParquet written to tmp_path;
every bad-file case checks that the message names the feature (row and code).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from typer.testing import Result

from jurisdictions.boundaries import BoundarySet
from jurisdictions.errors import InvalidBoundaryError, JurisdictionsError
from jurisdictions.importer import imported_version, read_boundary_file

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


def test_imported_version_follows_the_content() -> None:
    frame = stations_frame()
    first = imported_version("punjab-1", "station", frame)
    assert first.startswith("punjab-1+stations-")
    assert imported_version("punjab-1", "station", frame.copy()) == first
    moved = frame.copy()
    moved.loc[0, "geometry"] = square(9)
    assert imported_version("punjab-1", "station", moved) != first
    renamed = frame.assign(name=["a", "b", "c", "d"])
    assert imported_version("punjab-1", "station", renamed) != first


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


# ------------------------------------------------------------------ the CLI
def tiny_set() -> BoundarySet:
    """Province > R1 > D1 > T1, T2 > S0, S1 (T1), S2, S3 (T2): the squares above."""
    def layer(rows: list[tuple[str, str | None, shapely.Geometry]],
              parent: str | None = None) -> gpd.GeoDataFrame:
        data: dict[str, list[object]] = {"code": [r[0] for r in rows],
                                         "name": [r[0] for r in rows]}
        if parent:
            data[parent] = [r[1] for r in rows]
        return gpd.GeoDataFrame(data, geometry=[r[2] for r in rows], crs=4326)

    whole = shapely.box(LON0, LAT0, LON0 + 4 * D, LAT0 + D)
    half = [shapely.box(LON0, LAT0, LON0 + 2 * D, LAT0 + D),
            shapely.box(LON0 + 2 * D, LAT0, LON0 + 4 * D, LAT0 + D)]
    stations = stations_frame()
    stations["tehsil_code"] = ["T1", "T1", "T2", "T2"]
    stations["stand_in"] = True
    return BoundarySet(
        province=layer([("P", None, whole)]),
        regions=layer([("R1", None, whole)]),
        districts=layer([("D1", "R1", whole)], "region_code"),
        tehsils=layer([("T1", "D1", half[0]), ("T2", "D1", half[1])], "district_code"),
        stations=stations,
        version="tiny",
    )


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke ``safecity jurisdictions …`` in-process on :func:`tiny_set`."""
    from typer.testing import CliRunner

    import api.cli.jurisdictions as module
    from api.cli import app

    monkeypatch.setattr(module, "current_boundary_set", lambda: (tiny_set(), "test set"))

    def run(*args: str) -> Result:
        return CliRunner().invoke(app, ["jurisdictions", *map(str, args)])

    return run


def said(result: Result) -> str:
    """The command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def official() -> gpd.GeoDataFrame:
    """The tiny set's stations as a police GIS cell might name the columns."""
    frame = stations_frame().rename(columns={"code": "PS_ID", "name": "PS_NAME",
                                             "tehsil_code": "TEHSIL"})
    frame["TEHSIL"] = ["T1", "T1", "T2", "T2"]
    return frame


IMPORT_OPTIONS = ("--level", "station", "--code-column", "PS_ID", "--name-column", "PS_NAME",
                  "--parent-column", "TEHSIL")


def test_cli_import_dry_run_passes_qa(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    path = write(official(), tmp_path / "official.gpkg")
    report = tmp_path / "qa.json"
    result = run_cli("import", path, *IMPORT_OPTIONS, "--dry-run", "--json", report)
    assert result.exit_code == 0, said(result)
    assert "read 4 stations from official.gpkg" in said(result)
    assert "passes QA" in said(result)
    data = json.loads(report.read_text())
    assert data["ok"] is True
    assert data["version"].startswith("tiny+stations-")


def test_cli_import_refuses_a_layer_with_a_gap(tmp_path: Path,
                                               run_cli: Callable[..., Result]) -> None:
    frame = official()
    frame.loc[3, "geometry"] = shapely.box(LON0 + 3 * D, LAT0, LON0 + 3.9 * D, LAT0 + D)
    result = run_cli("import", write(frame, tmp_path / "gap.geojson"), *IMPORT_OPTIONS)
    assert result.exit_code == 1
    assert "FAILED" in said(result)
    assert "gap" in said(result)
    assert "refused" in said(result)
    assert "nothing was written" in said(result)


def test_cli_import_refuses_a_bad_file(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    frame = official()
    frame.loc[2, "TEHSIL"] = "T7"
    result = run_cli("import", write(frame, tmp_path / "bad.parquet"), *IMPORT_OPTIONS)
    assert result.exit_code == 1
    assert "row 3 (code 'S2'): tehsil 'T7' does not exist" in said(result)
    missing = run_cli("import", tmp_path / "none.gpkg", "--level", "station")
    assert missing.exit_code == 1
    assert "no such file" in said(missing)
    wrong_level = run_cli("import", tmp_path / "bad.parquet", "--level", "thana")
    assert wrong_level.exit_code == 2


def test_cli_import_without_the_database_layer_writes_nothing(
        tmp_path: Path, run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    import api.cli.jurisdictions as module

    monkeypatch.setattr(module, "_boundary_store", lambda: None)
    result = run_cli("import", write(official(), tmp_path / "ok.shp"),
                     "--level", "station", "--code-column", "PS_ID",
                     "--name-column", "PS_NAME", "--parent-column", "TEHSIL")
    assert result.exit_code == 1
    assert "passes" not in said(result)
    assert "not installed; nothing was written" in said(result)


# ------------------------------------------------------------------ into PostGIS
@pytest.fixture
def own_postgis(postgis_url: str) -> Iterator[str]:
    """A database of its own beside the session one (imports change the current set)."""
    import uuid

    import psycopg

    name = f"{postgis_url.rsplit('/', 1)[1]}_import_{uuid.uuid4().hex[:6]}"
    admin_url = postgis_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgis_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from api.db.engine import dispose_engines

        dispose_engines()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.integration
@pytest.mark.slow
def test_cli_import_into_postgis(own_postgis: str, punjab_set, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from api.db.boundary_store import read_boundary_set, write_boundary_set
    from api.db.engine import create_sync_engine
    from api.db.migrate import upgrade
    from api.settings import DatabaseSettings

    engine = create_sync_engine(DatabaseSettings(url=own_postgis))
    try:
        upgrade(engine)
        base = write_boundary_set(engine, punjab_set)
        # "Official" stations: the stand-in areas under a police GIS cell's column names.
        official = gpd.GeoDataFrame(
            {"PS_ID": punjab_set.stations["code"],
             "PS_NAME": "PS " + punjab_set.stations["code"],
             "TEHSIL": punjab_set.stations["tehsil_code"]},
            geometry=punjab_set.stations.geometry.to_numpy(), crs=4326)
        broken = official.copy()
        broken.loc[1, "geometry"] = broken.geometry.iloc[0]  # a copy of its neighbour
        options = ["--level", "station", "--code-column", "PS_ID", "--name-column", "PS_NAME",
                   "--parent-column", "TEHSIL"]
        env = {**os.environ, "DATABASE_URL": own_postgis}

        def run(path: Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "import",
                                   str(path), *options], env=env, capture_output=True,
                                  text=True, check=False)

        refused = run(write(broken, tmp_path / "broken.gpkg"))
        assert refused.returncode == 1, refused.stderr
        assert "nothing was written" in " ".join(refused.stderr.split())
        stored = read_boundary_set(engine)
        assert stored is not None
        assert stored.version == base

        done = run(write(official, tmp_path / "official.gpkg"))
        assert done.returncode == 0, done.stdout + done.stderr
        stored = read_boundary_set(engine)
        assert stored is not None
        expected = read_boundary_file(tmp_path / "official.gpkg", "station", code_column="PS_ID",
                                      name_column="PS_NAME", parent_column="TEHSIL")
        assert stored.version == imported_version(base, "station", expected)
        assert stored.version in " ".join(done.stderr.split())
        assert stored.stations["code"].tolist() == expected["code"].tolist()
        assert stored.stations["name"].str.startswith("PS ").all()
        assert not stored.stations["stand_in"].any()
        assert stored.tehsils["code"].tolist() == punjab_set.tehsils["code"].tolist()
    finally:
        engine.dispose()
