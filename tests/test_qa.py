"""Boundary-set QA: exact findings on tiny hand-built sets, properties, the shipped set.

Geometries are boxes on a lon/lat grid near Lahore so that shared edges are exactly
shared; expected areas come from pyproj's ellipsoidal area, independent of the UTM
measure under test (they agree to about 0.1 %).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod
from typer.testing import CliRunner, Result

from jurisdictions.boundaries import BoundarySet
from jurisdictions.qa import QAReport, check_boundary_set, kinds

LON0, LAT0 = 74.0, 31.0
UNIT = 0.01
"""Grid unit in degrees (about 950 m east-west, 1,110 m north-south here)."""

GEOD = Geod(ellps="WGS84")

Row = tuple[str, str | None, shapely.Geometry | None]


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Geometry:
    """A box in grid units."""
    return shapely.box(LON0 + x0 * UNIT, LAT0 + y0 * UNIT, LON0 + x1 * UNIT, LAT0 + y1 * UNIT)


def geod_area(x0: float, y0: float, x1: float, y1: float) -> float:
    area, _ = GEOD.geometry_area_perimeter(box(x0, y0, x1, y1))
    return abs(area)


def frame(rows: Sequence[Row], parent: str | None = None) -> gpd.GeoDataFrame:
    data: dict[str, list[object]] = {"code": [r[0] for r in rows], "name": [r[0] for r in rows]}
    if parent:
        data[parent] = [r[1] for r in rows]
    return gpd.GeoDataFrame(data, geometry=[r[2] for r in rows], crs=4326)


WHOLE = (0, 0, 4, 2)
TEHSILS: list[Row] = [("T1", "D1", box(0, 0, 2, 2)), ("T2", "D1", box(2, 0, 4, 2))]
STATIONS: list[Row] = [("S1", "T1", box(0, 0, 1, 2)), ("S2", "T1", box(1, 0, 2, 2)),
                       ("S3", "T2", box(2, 0, 4, 2))]


def make_set(stations: Sequence[Row] = STATIONS, tehsils: Sequence[Row] = TEHSILS,
             regions: Sequence[Row] | None = None) -> BoundarySet:
    """Province P > region R1 > district D1 > tehsils > stations."""
    whole = box(*WHOLE)
    return BoundarySet(
        province=frame([("P", None, whole)]),
        regions=frame(regions or [("R1", None, whole)]),
        districts=frame([("D1", "R1", whole)], "region_code"),
        tehsils=frame(tehsils, "district_code"),
        stations=frame(stations, "tehsil_code"),
        version="test",
    )


def replace(rows: Sequence[Row], code: str, row: Row) -> list[Row]:
    return [row if r[0] == code else r for r in rows]


def only(report: QAReport) -> dict[tuple[str, str, str], int]:
    return dict(kinds(report))


pytestmark = pytest.mark.unit


# ------------------------------------------------------------------ exact findings
def test_a_clean_set_has_no_findings() -> None:
    report = check_boundary_set(make_set())
    assert report.ok
    assert report.findings == ()
    assert report.features == {"province": 1, "region": 1, "district": 1, "tehsil": 2, "station": 3}


def test_gap_at_or_above_threshold_is_an_error_naming_parent_and_neighbours() -> None:
    stations = replace(STATIONS, "S2", ("S2", "T1", box(1, 0, 2, 1.9)))
    report = check_boundary_set(make_set(stations))
    assert not report.ok
    assert only(report) == {("error", "station", "gap"): 1}
    gap = report.errors[0]
    assert gap.codes == ("T1", "S1", "S2")
    assert gap.area_m2 == pytest.approx(geod_area(1, 1.9, 2, 2), rel=2e-3)
    assert gap.share == pytest.approx(geod_area(1, 1.9, 2, 2) / geod_area(0, 0, 2, 2), rel=2e-3)
    assert gap.resolution is None
    assert "gap of" in gap.message
    assert "tehsil T1" in gap.message
    lon, lat = gap.location  # type: ignore[misc]
    assert shapely.covers(box(1, 1.9, 2, 2), shapely.Point(lon, lat))


def test_gap_sliver_goes_to_the_sibling_with_the_longest_shared_border() -> None:
    # 0.0001 unit high: about 950 m x 0.11 m, ~105 m²; S2 borders it along 950 m, S1 along 0.11 m.
    stations = replace(STATIONS, "S2", ("S2", "T1", box(1, 0, 2, 1.9999)))
    report = check_boundary_set(make_set(stations))
    assert report.ok
    assert only(report) == {("warning", "station", "gap"): 1}
    sliver = report.warnings[0]
    assert sliver.area_m2 == pytest.approx(geod_area(1, 1.9999, 2, 2), rel=2e-3)
    assert sliver.resolution == "goes to S2 (longest shared border)"
    assert sliver.codes == ("T1", "S1", "S2")


def test_gap_sliver_touching_no_sibling_goes_to_the_nearest() -> None:
    # T1 owns an island inside T2 (about 9.5 m x 11 m) that none of T1's stations covers.
    island = box(3, 1, 3.01, 1.01)
    t1 = shapely.union_all([box(0, 0, 2, 2), island])
    t2 = shapely.difference(box(2, 0, 4, 2), island)
    tehsils: list[Row] = [("T1", "D1", t1), ("T2", "D1", t2)]
    stations = replace(STATIONS, "S3", ("S3", "T2", t2))
    report = check_boundary_set(make_set(stations, tehsils))
    assert report.ok
    assert only(report) == {("warning", "station", "gap"): 1}
    sliver = report.warnings[0]
    assert sliver.codes == ("T1",)
    assert sliver.area_m2 == pytest.approx(geod_area(3, 1, 3.01, 1.01), rel=2e-3)
    assert sliver.resolution == "goes to S2 (nearest station, no shared border)"


def test_threshold_decides_between_error_and_sliver() -> None:
    stations = replace(STATIONS, "S2", ("S2", "T1", box(1, 0, 2, 1.9)))
    area = geod_area(1, 1.9, 2, 2)
    assert not check_boundary_set(make_set(stations), area_threshold_m2=area * 0.99).ok
    relaxed = check_boundary_set(make_set(stations), area_threshold_m2=area * 1.01)
    assert relaxed.ok
    assert only(relaxed) == {("warning", "station", "gap"): 1}
    with pytest.raises(ValueError, match="non-negative"):
        check_boundary_set(make_set(), area_threshold_m2=-1)


def test_overlap_error_and_overlap_sliver_rule() -> None:
    big = check_boundary_set(make_set(replace(STATIONS, "S1", ("S1", "T1", box(0, 0, 1.1, 2)))))
    assert only(big) == {("error", "station", "overlap"): 1}
    overlap = big.errors[0]
    assert overlap.codes == ("S1", "S2")
    assert overlap.area_m2 == pytest.approx(geod_area(1, 0, 1.1, 2), rel=2e-3)
    assert overlap.share == pytest.approx(0.1, rel=2e-3)  # of the smaller station, S2

    small = check_boundary_set(make_set(replace(STATIONS, "S2", ("S2", "T1", box(0.99999, 0, 2, 2)))))
    assert small.ok
    assert only(small) == {("warning", "station", "overlap"): 1}
    sliver = small.warnings[0]
    assert sliver.area_m2 == pytest.approx(geod_area(0.99999, 0, 1, 2), rel=2e-3)
    assert sliver.resolution == "stays with S1 (smaller code), cut from S2"


def test_child_outside_its_parent_reports_area_and_share() -> None:
    stations = replace(STATIONS, "S3", ("S3", "T2", box(1.5, 0, 4, 2)))
    report = check_boundary_set(make_set(stations))
    assert only(report) == {("error", "station", "not_nested"): 1, ("error", "station", "overlap"): 1}
    nested = next(f for f in report.errors if f.kind == "not_nested")
    assert nested.codes == ("S3", "T2")
    assert nested.area_m2 == pytest.approx(geod_area(1.5, 0, 2, 2), rel=2e-3)
    assert nested.share == pytest.approx(0.2, rel=2e-3)
    overlap = next(f for f in report.errors if f.kind == "overlap")
    assert overlap.codes == ("S2", "S3")
    assert "different parents" in overlap.message


def test_child_with_the_wrong_parent_code() -> None:
    stations = replace(STATIONS, "S3", ("S3", "T1", box(2, 0, 4, 2)))
    report = check_boundary_set(make_set(stations))
    assert only(report) == {("error", "station", "not_nested"): 1, ("error", "station", "gap"): 1}
    nested = next(f for f in report.errors if f.kind == "not_nested")
    assert nested.share == pytest.approx(1.0)
    assert "lies mostly in tehsil T2" in nested.message
    gap = next(f for f in report.errors if f.kind == "gap")
    assert gap.codes == ("T2",)
    assert "not covered by any of its stations" in gap.message
    assert gap.share == pytest.approx(1.0)


def test_province_not_covered_by_regions() -> None:
    report = check_boundary_set(make_set(regions=[("R1", None, box(0, 0, 3, 2))]))
    gaps = [f for f in report.errors if f.kind == "gap"]
    assert [(f.level, f.codes) for f in gaps] == [("region", ("P", "R1"))]
    assert gaps[0].area_m2 == pytest.approx(geod_area(3, 0, 4, 2), rel=2e-3)
    # D1 now also lies partly outside its region
    assert ("error", "district", "not_nested") in kinds(report)


def test_invalid_geometry_names_the_reason() -> None:
    bowtie = shapely.Polygon([(LON0, LAT0), (LON0 + UNIT, LAT0 + 2 * UNIT),
                              (LON0 + UNIT, LAT0), (LON0, LAT0 + 2 * UNIT)])
    report = check_boundary_set(make_set(replace(STATIONS, "S1", ("S1", "T1", bowtie))))
    invalid = [f for f in report.errors if f.kind == "invalid_geometry"]
    assert len(invalid) == 1
    assert invalid[0].codes == ("S1",)
    assert "Self-intersection" in invalid[0].message
    assert invalid[0].location is not None


def test_codes_and_parents() -> None:
    stations: list[Row] = [
        ("S1", "T1", box(0, 0, 1, 2)),
        ("S1", "T1", box(1, 0, 2, 2)),  # duplicate code
        ("", "T2", box(2, 0, 3, 2)),  # empty code
        ("S4", "T9", box(3, 0, 3.5, 2)),  # unknown parent
        ("S5", None, box(3.5, 0, 4, 2)),  # missing parent
    ]
    report = check_boundary_set(make_set(stations))
    got = {(f.kind, f.codes) for f in report.errors}
    assert ("duplicate_code", ("S1",)) in got
    assert ("empty_code", ("row 3",)) in got
    assert ("unknown_parent", ("S4", "T9")) in got
    assert ("missing_parent", ("S5",)) in got
    dup = next(f for f in report.errors if f.kind == "duplicate_code")
    assert "rows 1, 2" in dup.message
    # S4 and S5 have no usable parent, so T2 is only partly covered: one gap, no nesting finding.
    assert [f.codes[0] for f in report.errors if f.kind == "gap"] == ["T2"]
    assert not [f for f in report.findings if f.kind == "not_nested"]


def test_empty_and_non_polygonal_geometries() -> None:
    stations: list[Row] = [
        ("S1", "T1", box(0, 0, 1, 2)),
        ("S2", "T1", shapely.Polygon()),
        ("S3", "T2", shapely.LineString([(LON0, LAT0), (LON0 + UNIT, LAT0)])),
    ]
    report = check_boundary_set(make_set(stations))
    got = {(f.kind, f.codes) for f in report.errors}
    assert ("empty_geometry", ("S2",)) in got
    assert ("not_polygonal", ("S3",)) in got
    assert "station S3 is a LineString, not a polygon" in [f.message for f in report.errors]
    assert {f.codes[0] for f in report.errors if f.kind == "gap"} == {"T1", "T2"}


def test_an_empty_level_is_one_warning() -> None:
    report = check_boundary_set(make_set(stations=[]))
    assert report.ok
    assert only(report) == {("warning", "station", "empty_level"): 1}


def test_other_crs_is_reprojected() -> None:
    base = make_set()
    moved = base.with_layer("station", base.stations.to_crs(32643), "moved")
    report = check_boundary_set(moved)
    assert report.ok
    assert all((f.area_m2 or 0) < 1.0 for f in report.findings)


def test_report_serialises_and_renders() -> None:
    from rich.console import Console

    stations = replace(STATIONS, "S2", ("S2", "T1", box(1, 0, 2, 1.9)))
    stations.append(("S4", "T2", box(3.9999, 0, 4, 2)))  # a sliver overlap with S3
    report = check_boundary_set(make_set(stations))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False
    assert data["errors"] == 1
    assert data["warnings"] == 1
    assert data["findings"][0]["codes"] == ["T1", "S1", "S2"]
    assert {row["kind"] for row in data["summary"]} == {"gap", "overlap"}
    console = Console(record=True, width=200)
    console.print(report)
    text = console.export_text()
    assert "FAILED" in text
    assert "T1, S1, S2" in text
    assert "stays with S3" in text


def test_overlay_falls_back_to_snap_rounding_when_geos_fails() -> None:
    import numpy as np

    from jurisdictions.qa import ROBUST_GRID_DEG, _overlay

    calls: list[float | None] = []

    def flaky(a: Any, b: Any, grid_size: float | None = None) -> Any:
        calls.append(grid_size)
        if grid_size is None:
            raise shapely.errors.GEOSException("TopologyException: side location conflict")
        return shapely.intersection(a, b, grid_size=grid_size)

    a = np.array([box(0, 0, 2, 2), box(0, 0, 1, 1)], dtype=object)
    b = np.array([box(1, 1, 3, 3), box(2, 2, 3, 3)], dtype=object)
    got = _overlay(flaky, a, b)
    assert shapely.equals(got[0], box(1, 1, 2, 2))
    assert shapely.is_empty(got[1])
    assert calls == [None, None, ROBUST_GRID_DEG, None, ROBUST_GRID_DEG]


# ------------------------------------------------------------------ properties
@st.composite
def cuts(draw: st.DrawFn, size: int = 32, most: int = 5) -> list[int]:
    inner = draw(st.lists(st.integers(1, size - 1), max_size=most, unique=True))
    return [0, *sorted(inner), size]


@settings(max_examples=25, deadline=None)
@given(xs=cuts(), ys=cuts())
def test_any_grid_of_boxes_tiling_the_tehsils_has_no_findings(xs: list[int], ys: list[int]) -> None:
    scale = 4 / 32
    stations: list[Row] = []
    for i in range(len(xs) - 1):
        for j in range(len(ys) - 1):
            x0, x1 = xs[i] * scale, xs[i + 1] * scale
            y0, y1 = ys[j] * scale / 2, ys[j + 1] * scale / 2
            # split each grid cell at the tehsil border x = 2 so stations nest
            for a, b, tehsil in ((x0, min(x1, 2), "T1"), (max(x0, 2), x1, "T2")):
                if a < b:
                    stations.append((f"S{i:02d}{j:02d}{tehsil}", tehsil, box(a, y0, b, y1)))
    report = check_boundary_set(make_set(stations))
    assert report.findings == ()


@settings(max_examples=25, deadline=None)
@given(widths=st.lists(st.integers(1, 8), min_size=3, max_size=6),
       k=st.integers(1, 4), fraction=st.floats(1e-4, 0.9))
def test_shifting_one_box_makes_an_overlap_and_a_gap_of_the_expected_area(
        widths: list[int], k: int, fraction: float) -> None:
    k = min(k, len(widths) - 2)
    edges = [0.0]
    for w in widths:
        edges.append(edges[-1] + w * 4 / sum(widths))
    # less than the widths of the shifted box and of the next one
    d = fraction * min(edges[k + 1] - edges[k], edges[k + 2] - edges[k + 1])
    stations: list[Row] = []
    for i in range(len(widths)):
        x0, x1 = edges[i], edges[i + 1]
        if i == k:
            x0, x1 = x0 + d, x1 + d
        stations.append((f"S{i}", "T", box(x0, 0, x1, 2)))
    tehsils: list[Row] = [("T", "D1", box(*WHOLE))]
    threshold = 1000.0
    report = check_boundary_set(make_set(stations, tehsils), area_threshold_m2=threshold)
    expected = geod_area(edges[k + 1], 0, edges[k + 1] + d, 2)
    station_findings = [f for f in report.findings if f.level == "station"]
    assert sorted((f.kind, f.codes) for f in station_findings) == [
        ("gap", ("T", f"S{k - 1}", f"S{k}")),
        ("overlap", (f"S{k}", f"S{k + 1}")),
    ]
    for f in station_findings:
        assert f.area_m2 == pytest.approx(expected, rel=3e-3)
        if abs(expected - threshold) > 0.01 * threshold:
            assert f.severity == ("error" if expected >= threshold else "warning")


# ------------------------------------------------------------------ the CLI
def run_check(monkeypatch: pytest.MonkeyPatch, boundaries: BoundarySet, *args: str) -> Result:
    import api.cli.jurisdictions as module
    from api.cli import app

    monkeypatch.setattr(module, "current_boundary_set", lambda: (boundaries, "test set"))
    return CliRunner().invoke(app, ["jurisdictions", "check", *args])


def test_cli_check_exit_codes_and_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean = run_check(monkeypatch, make_set())
    assert clean.exit_code == 0
    assert "OK" in clean.output
    broken = make_set(replace(STATIONS, "S2", ("S2", "T1", box(1, 0, 2, 1.9))))
    path = tmp_path / "qa.json"
    failed = run_check(monkeypatch, broken, "--json", str(path))
    assert failed.exit_code == 1
    assert "FAILED" in failed.output
    assert json.loads(path.read_text())["findings"][0]["kind"] == "gap"
    relaxed = run_check(monkeypatch, broken, "--threshold-m2", "1e9")
    assert relaxed.exit_code == 0


# ------------------------------------------------------------------ the shipped set
@pytest.mark.slow
def test_cli_check_on_the_shipped_set(tmp_path: Path) -> None:
    from api.cli import app

    path = tmp_path / "qa.json"
    result = CliRunner().invoke(app, ["jurisdictions", "check", "--json", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(path.read_text())
    assert report["ok"] is True
    assert report["errors"] == 0


@pytest.mark.slow
def test_the_shipped_set_passes(punjab_set) -> None:  # type: ignore[no-untyped-def]
    report = check_boundary_set(punjab_set)
    assert report.ok, [f.message for f in report.errors]
    assert report.features == {"province": 1, "region": 9, "district": 36, "tehsil": 139,
                               "station": len(punjab_set.stations)}
    # the COD-AB layers tile exactly: no gap or overlap of any size above the tehsils
    coarse = {(f.level, f.kind) for f in report.findings if f.level in ("region", "district")}
    assert coarse == set()
    assert report.seconds < 60
