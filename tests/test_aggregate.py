"""H3 aggregation of calls: study areas with zero cells, filters, cubes, response times, Dask."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from geo import h3cells
from geo.aggregate import (
    AreaRef,
    CallDataError,
    CallFilter,
    ResponseSpec,
    StudyAreaError,
    area_geometry,
    cell_counts,
    cube_counts,
    local_times,
    read_calls,
    response_heatmap,
    step_index,
    step_starts,
    study_area_cells,
)

LAHORE_BOX = shapely.box(74.25, 31.45, 74.40, 31.60)


def _calls_at(cells: np.ndarray, times: list[str] | pd.Series, **extra: object) -> pd.DataFrame:
    lat, lon = h3cells.cells_to_latlng(np.asarray(cells, dtype=np.uint64))
    return pd.DataFrame({"lat": lat, "lon": lon, "received_at": times, **extra})


@pytest.mark.unit
def test_area_ref_parsing() -> None:
    assert AreaRef.parse("District:PK605") == AreaRef("district", "PK605")
    assert AreaRef.parse("province") == AreaRef("province", None)
    assert str(AreaRef.parse("tehsil:PK60501")) == "tehsil:PK60501"
    with pytest.raises(StudyAreaError, match="unknown area level"):
        AreaRef.parse("county:X")
    with pytest.raises(StudyAreaError, match="needs a code"):
        AreaRef.parse("district")


@pytest.mark.unit
def test_study_area_cells_are_h3_polygon_to_cells() -> None:
    cells = study_area_cells(LAHORE_BOX, 8)
    poly = h3.LatLngPoly([(lat, lon) for lon, lat in LAHORE_BOX.exterior.coords[:-1]])
    expected = np.sort(np.array([h3.str_to_int(c) for c in h3.polygon_to_cells(poly, 8)], dtype=np.uint64))
    assert np.array_equal(cells, expected)
    lat, lon = h3cells.cells_to_latlng(cells)
    assert shapely.contains_xy(LAHORE_BOX, lon, lat).all()
    with pytest.raises(ValueError, match="outside 5"):
        study_area_cells(LAHORE_BOX, 11)


def _one_district_set(polygon: shapely.Geometry):  # type: ignore[no-untyped-def]
    """A hand-made boundary set: one region, district, tehsil and station, all ``polygon``."""
    import geopandas as gpd

    from jurisdictions.boundaries import BoundarySet

    def layer(code: str, **parent: str) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"code": [code], "name": [code], **{k: [v] for k, v in parent.items()}},
                                geometry=[shapely.MultiPolygon([polygon])], crs=4326)

    return BoundarySet(regions=layer("R1"), districts=layer("D1", region_code="R1"),
                       tehsils=layer("T1", district_code="D1"), stations=layer("S1", tehsil_code="T1"),
                       province=layer("P"), version="hand-made-1")


@pytest.mark.unit
def test_a_named_area_is_looked_up_in_the_boundary_set_the_caller_gives() -> None:
    """No hidden default set: the library answers from the set it is handed, or says it needs one."""
    boundaries = _one_district_set(LAHORE_BOX)
    assert area_geometry("district:D1", boundaries).equals(shapely.MultiPolygon([LAHORE_BOX]))
    assert area_geometry(AreaRef("province"), boundaries).equals(LAHORE_BOX)
    assert np.array_equal(study_area_cells("district:D1", 8, boundaries), study_area_cells(LAHORE_BOX, 8))
    with pytest.raises(StudyAreaError, match="give the boundary set"):
        study_area_cells("district:D1", 8)
    with pytest.raises(StudyAreaError, match="hand-made-1"):
        area_geometry("district:D2", boundaries)
    with pytest.raises(TypeError):
        area_geometry("district:D1")  # type: ignore[call-arg]


@pytest.mark.unit
def test_study_area_of_a_district_from_the_boundary_set(punjab_set) -> None:  # type: ignore[no-untyped-def]
    district = punjab_set.districts.iloc[0]
    cells = study_area_cells(f"district:{district['code']}", 7, punjab_set)
    lat, lon = h3cells.cells_to_latlng(cells)
    assert shapely.contains_xy(district.geometry, lon, lat).all()
    # the cells tile the district: their total area is the district's within 2 %
    import h3ronpy
    import pyarrow as pa

    from geo.crs import utm_epsg

    metric = punjab_set.districts.iloc[[0]].to_crs(utm_epsg(district.geometry.centroid.x))
    district_km2 = metric.area.iloc[0] / 1e6
    cells_km2 = float(np.sum(np.asarray(h3ronpy.cells_area_km2(pa.array(cells)))))
    assert abs(cells_km2 / district_km2 - 1) < 0.02
    with pytest.raises(StudyAreaError, match="no district"):
        study_area_cells("district:NOPE", 7, punjab_set)


@pytest.mark.unit
def test_zero_cells_are_kept_and_outside_calls_counted() -> None:
    cells = study_area_cells(LAHORE_BOX, 8)
    busy = cells[[3, 3, 3, 10, 200]]
    outside = h3cells.latlng_to_cells([30.0], [71.0], 8)
    calls = _calls_at(np.concatenate([busy, outside]), ["2024-03-01T10:00"] * 6)
    calls.loc[len(calls)] = pd.Series({"lat": np.nan, "lon": 74.3, "received_at": "2024-03-01T10:00"})
    calls.loc[len(calls)] = pd.Series({"lat": 31.5, "lon": 74.3, "received_at": None})  # no time
    result = cell_counts(calls, cells)
    counts = result.frame
    assert len(counts) == len(cells)
    assert np.array_equal(counts["cell"].to_numpy(), cells)
    assert counts["count"].sum() == 5
    assert (counts["count"] == 0).sum() == len(cells) - 3
    assert counts.loc[3, "count"] == 3
    assert result.outside == 3  # outside the box, no position, no time
    assert counts.loc[3, "h3"] == h3.int_to_str(int(cells[3]))


@pytest.mark.unit
def test_filter_by_category_window_hour_weekday_in_local_time() -> None:
    cells = study_area_cells(LAHORE_BOX, 8)
    # 2024-03-04 is a Monday. 20:30 UTC is 01:30 PKT on Tuesday.
    times = pd.Series(pd.to_datetime(["2024-03-04T09:00Z", "2024-03-04T20:30Z",
                                      "2024-03-05T12:00Z", "2024-04-01T12:00Z"]))
    calls = _calls_at(cells[[0, 1, 2, 3]], times, category=["theft", "theft", "fight", "theft"])
    local = local_times(calls["received_at"])
    assert local.iloc[1] == pd.Timestamp("2024-03-05T01:30")

    def counted(where: CallFilter) -> list[int]:
        frame = cell_counts(calls, cells, where=where).frame
        return frame.index[frame["count"] > 0].tolist()

    assert counted(CallFilter(categories=("theft",))) == [0, 1, 3]
    assert counted(CallFilter(start=pd.Timestamp("2024-03-05"), until=pd.Timestamp("2024-04-01"))) == [1, 2]
    assert counted(CallFilter(hours=(1,))) == [1]
    assert counted(CallFilter(weekdays=(1,))) == [1, 2]  # Tuesday, local
    assert counted(CallFilter(start=pd.Timestamp("2024-03-04T20:00Z"))) == [1, 2, 3]  # aware bounds too
    with pytest.raises(ValueError, match="hours"):
        CallFilter(hours=(24,))


@pytest.mark.unit
def test_steps_round_trip_weeks_start_on_monday() -> None:
    local = pd.Series(pd.to_datetime(["2024-03-04", "2024-03-10T23:59", "2024-03-11", "2023-12-31"],
                                     format="ISO8601"))
    weeks = step_index(local, "week")
    assert weeks[0] == weeks[1] != weeks[2]
    assert step_starts(weeks, "week")[0] == pd.Timestamp("2024-03-04")
    months = step_index(local, "month")
    expected = [pd.Timestamp("2024-03-01")] * 3 + [pd.Timestamp("2023-12-01")]
    assert list(step_starts(months, "month")) == expected


@pytest.mark.unit
def test_cube_keeps_empty_steps_and_window() -> None:
    cells = study_area_cells(LAHORE_BOX, 8)
    calls = _calls_at(cells[[5, 5, 7]], ["2024-01-15T10:00", "2024-03-02T10:00", "2024-03-20T10:00"])
    calls.loc[len(calls)] = pd.Series({"lat": calls["lat"][0], "lon": calls["lon"][0], "received_at": None})
    cube = cube_counts(calls, cells, "month")
    assert cube.shape == (len(cells), 3)
    assert list(cube.starts) == list(pd.date_range("2024-01-01", periods=3, freq="MS"))
    assert cube.counts[5].tolist() == [1, 0, 1]
    assert cube.counts[7].tolist() == [0, 0, 1]
    assert cube.counts.sum() == 3
    wide = cube_counts(calls, cells, "month",
                       where=CallFilter(start=pd.Timestamp("2023-12-01"), until=pd.Timestamp("2024-06-01")))
    assert wide.shape[1] == 6
    assert wide.counts[5].tolist() == [0, 1, 0, 1, 0, 0]


def _response_calls(cells: np.ndarray, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per_cell = np.array([0, 2, 4, 5, 12, 40])
    where = np.repeat(cells[: len(per_cell)], per_cell)
    offsets = rng.integers(0, 86400 * 20, len(where))
    received = pd.Timestamp("2024-05-01T08:00") + pd.to_timedelta(offsets, "s")
    minutes = rng.lognormal(np.log(12), 0.6, len(where))
    on_scene = received + pd.to_timedelta(np.round(minutes * 60), "s")
    calls = _calls_at(where, pd.Series(received), on_scene_at=on_scene,
                      category=rng.choice(["theft", "fight"], len(where)))
    # data faults: a missing on-scene time and one before reception, in the big cell
    big = np.nonzero(where == cells[5])[0]
    calls.loc[big[0], "on_scene_at"] = pd.NaT
    calls.loc[big[1], "on_scene_at"] = calls.loc[big[1], "received_at"] - pd.Timedelta(minutes=3)
    return calls


@pytest.mark.unit
def test_response_heatmap_quantiles_too_few_and_faults() -> None:
    cells = study_area_cells(LAHORE_BOX, 8)
    calls = _response_calls(cells)
    heat = response_heatmap(calls, cells, ResponseSpec(sla_minutes=15), min_count=5)
    assert len(heat) == len(cells)
    row = dict(zip(heat["cell"].to_numpy().tolist(), heat.index, strict=True))
    minutes = ((calls["on_scene_at"] - calls["received_at"]).dt.total_seconds() / 60).to_numpy()
    cell_of = h3cells.latlng_to_cells(calls["lat"], calls["lon"], 8)
    for i, expected_n in enumerate([0, 2, 4, 5, 12, 38]):
        r = heat.loc[row[int(cells[i])]]
        assert r["calls"] == expected_n
        if expected_n < 5:
            assert r["too_few"]
            assert np.isnan(r["median_min"])
            assert np.isnan(r["p90_min"])
            assert np.isnan(r["share_over_sla"])
            continue
        assert not r["too_few"]
        values = minutes[(cell_of == cells[i]) & np.isfinite(minutes) & (minutes >= 0)]
        assert r["median_min"] == pytest.approx(np.quantile(values, 0.5), abs=1e-9)
        assert r["p90_min"] == pytest.approx(np.quantile(values, 0.9), abs=1e-9)
        assert r["share_over_sla"] == pytest.approx(np.mean(values > 15), abs=1e-12)
    assert heat.loc[row[int(cells[5])], "invalid"] == 2
    empty = heat[~heat["cell"].isin(cells[:6])]
    assert empty["too_few"].all()
    assert (empty["calls"] == 0).all()


@pytest.mark.unit
def test_response_sla_per_category_with_default() -> None:
    cells = study_area_cells(LAHORE_BOX, 8)
    calls = _response_calls(cells)
    calls.loc[calls.index[-3:], "category"] = "traffic"  # no SLA of its own
    spec = ResponseSpec(sla_minutes={"theft": 10, "fight": 20})
    heat = response_heatmap(calls, cells, spec, min_count=5)
    big = calls[h3cells.latlng_to_cells(calls["lat"], calls["lon"], 8) == cells[5]].copy()
    minutes = (big["on_scene_at"] - big["received_at"]).dt.total_seconds() / 60
    ok = minutes.notna() & (minutes >= 0) & big["category"].isin(["theft", "fight"])
    limit = big["category"].map({"theft": 10, "fight": 20})
    expected = float(((minutes > limit) & ok).sum() / ok.sum())
    assert heat.loc[heat["cell"] == cells[5], "share_over_sla"].iloc[0] == pytest.approx(expected)
    with_default = response_heatmap(calls, cells, ResponseSpec({"theft": 10, "fight": 20}, 5), min_count=5)
    assert with_default.loc[with_default["cell"] == cells[5], "share_over_sla"].iloc[0] >= expected


@pytest.mark.unit
def test_read_calls_errors_name_the_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "calls.csv"
    bad.write_text("lat,lon\n31.5,74.3\n")
    with pytest.raises(CallDataError, match="received_at"):
        read_calls(bad)
    with pytest.raises(CallDataError, match="no such file"):
        read_calls(tmp_path / "missing.csv")
    junk = tmp_path / "calls.parquet"
    junk.write_bytes(b"not parquet at all")
    with pytest.raises(CallDataError, match="cannot read"):
        read_calls(junk)
    weird = tmp_path / "calls.xlsx"
    weird.write_text("x")
    with pytest.raises(CallDataError, match="expected"):
        read_calls(weird)
    good = tmp_path / "ok.csv"
    good.write_text("lat,lon,received_at\n31.5,74.3,2024-01-01T10:00:00+05:00\n")
    assert len(read_calls(good)) == 1
    with pytest.raises(CallDataError, match="cannot read times"):
        cell_counts(pd.DataFrame({"lat": [31.5], "lon": [74.3], "received_at": ["yesterday"]}),
                    study_area_cells(LAHORE_BOX, 8))


@pytest.mark.unit
def test_geoparquet_points_stand_in_for_lat_lon(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import geopandas as gpd

    cells = study_area_cells(LAHORE_BOX, 8)
    plain = _calls_at(cells[[1, 1, 9]], ["2024-01-01T10:00"] * 3)
    geo = gpd.GeoDataFrame({"received_at": plain["received_at"]},
                           geometry=gpd.points_from_xy(plain["lon"], plain["lat"]), crs=4326)
    path = tmp_path / "calls.parquet"
    geo.to_crs(32643).to_parquet(path)  # a metric CRS is converted back
    frame = read_calls(path)
    assert np.array_equal(cell_counts(frame, cells).frame["count"], cell_counts(plain, cells).frame["count"])


@pytest.mark.slow
def test_dask_local_cluster_gets_the_pandas_answer() -> None:
    import dask.dataframe as dd
    import dask_geopandas
    import geopandas as gpd
    from distributed import Client, LocalCluster

    from geo.hotspots import GiStar, kring_weights

    cells = study_area_cells(LAHORE_BOX, 8)
    rng = np.random.default_rng(11)
    n = 4000
    pick = cells[rng.integers(0, len(cells), n)]
    received = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 120, n), "s")
    calls = _calls_at(pick, pd.Series(received),
                      on_scene_at=received + pd.to_timedelta(rng.integers(60, 3600, n), "s"),
                      category=rng.choice(["theft", "fight", "traffic"], n))
    where = CallFilter(categories=("theft", "fight"), hours=tuple(range(6, 22)))
    spec = ResponseSpec(sla_minutes={"theft": 20, "fight": 15})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        ddf = dd.from_pandas(calls, npartitions=4)
        counts_d = cell_counts(ddf, cells, where=where)
        cube_d = cube_counts(ddf, cells, "month", where=where)
        heat_d = response_heatmap(ddf, cells, spec, min_count=3)
        gdf = gpd.GeoDataFrame(calls.drop(columns=["lat", "lon"]),
                               geometry=gpd.points_from_xy(calls["lon"], calls["lat"]), crs=4326)
        counts_g = cell_counts(dask_geopandas.from_geopandas(gdf, npartitions=3), cells, where=where)
    counts_p = cell_counts(calls, cells, where=where)
    pd.testing.assert_frame_equal(counts_d.frame, counts_p.frame)
    pd.testing.assert_frame_equal(counts_g.frame, counts_p.frame)
    assert counts_d.outside == counts_g.outside == counts_p.outside
    cube_p = cube_counts(calls, cells, "month", where=where)
    assert np.array_equal(cube_d.counts, cube_p.counts)
    assert list(cube_d.starts) == list(cube_p.starts)
    pd.testing.assert_frame_equal(heat_d, response_heatmap(calls, cells, spec, min_count=3))
    w = kring_weights(cells, 1)
    gi_d, gi_p = GiStar(counts_d.frame["count"], w), GiStar(counts_p.frame["count"], w)
    assert np.array_equal(gi_d.z, gi_p.z)
