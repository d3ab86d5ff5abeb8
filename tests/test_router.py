"""The router against brute-force ``covers`` on small hand-built station layers."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from jurisdictions.errors import (
    JurisdictionsError,
    NegativeRadiusError,
    NoStationNearbyError,
    OutsidePunjabError,
)
from jurisdictions.index import RoutingIndex, compile_index
from jurisdictions.router import Rejection, Router

pytestmark = pytest.mark.unit

# Four stations tiling a 0.2° square near Sargodha, plus a thin one beside them.
X0, Y0, STEP = 72.5, 32.0, 0.1


def _layer() -> gpd.GeoDataFrame:
    boxes = {
        "S-A": shapely.box(X0, Y0, X0 + STEP, Y0 + STEP),
        "S-B": shapely.box(X0 + STEP, Y0, X0 + 2 * STEP, Y0 + STEP),
        "S-C": shapely.box(X0, Y0 + STEP, X0 + STEP, Y0 + 2 * STEP),
        "S-D": shapely.box(X0 + STEP, Y0 + STEP, X0 + 2 * STEP, Y0 + 2 * STEP),
        # a sliver 20 m wide: thinner than a fine H3 cell
        "S-E": shapely.box(X0 + 2 * STEP, Y0, X0 + 2 * STEP + 0.0002, Y0 + 2 * STEP),
    }
    return gpd.GeoDataFrame(
        {"code": list(boxes), "tehsil_code": "T1", "district_code": "D1", "region_code": "R1"},
        geometry=[shapely.MultiPolygon([g]) for g in boxes.values()],
        crs="EPSG:4326",
    )


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(compile_index(_layer(), "test-v1"))


def _brute_force(layer: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Smallest code among stations that cover each point ('' for none)."""
    codes = layer["code"].to_numpy()
    order = np.argsort(codes)
    out = np.full(len(lon), "", dtype=object)
    for i in order[::-1]:  # the smallest code written last wins
        covered = shapely.intersects_xy(layer.geometry.values[i], lon, lat)
        out[covered] = codes[i]
    return out


def test_interior_and_hierarchy(router: Router) -> None:
    answer = router.resolve(Y0 + 0.05, X0 + 0.05)
    assert answer.station_code == "S-A"
    assert (answer.tehsil_code, answer.district_code, answer.region_code) == ("T1", "D1", "R1")
    assert answer.method == "interior"
    assert not answer.out_of_coverage


def test_shared_edge_and_vertex_go_to_smallest_code(router: Router) -> None:
    # exactly on the A|B edge (x = X0 + STEP is a vertex coordinate of both boxes)
    assert router.resolve(Y0 + 0.05, X0 + STEP).station_code == "S-A"
    # the vertex shared by all four boxes
    assert router.resolve(Y0 + STEP, X0 + STEP).station_code == "S-A"
    # on the B|D edge: B < D
    assert router.resolve(Y0 + STEP, X0 + 0.15).station_code == "S-B"
    # on the outer edge of the sliver E (only E covers it)
    assert router.resolve(Y0 + 0.1, X0 + 2 * STEP + 0.0002).station_code == "S-E"


def test_sliver_thinner_than_a_cell_is_found(router: Router) -> None:
    answer = router.resolve(Y0 + 0.137, X0 + 2 * STEP + 0.0001)
    assert answer.station_code == "S-E"
    assert answer.method == "boundary"


def test_nearest_within_limit_is_flagged(router: Router) -> None:
    # 0.01° west of the layer at 32.05° N is about 943 m
    answer = router.resolve(Y0 + 0.05, X0 - 0.01)
    assert answer.station_code == "S-A"
    assert answer.method == "nearest"
    assert answer.out_of_coverage
    assert answer.distance_m == pytest.approx(943, rel=0.01)


def test_beyond_limit_and_outside_extent_are_clear_errors(router: Router) -> None:
    # the extent is the layer's box grown by the limit: its corners lie farther than
    # the limit from every station (about 580 m here for a 500 m limit)
    tight = Router(router.index, nearest_limit_m=500)
    with pytest.raises(NoStationNearbyError, match="500 m"):
        tight.resolve(Y0 - 0.004, X0 - 0.004)
    with pytest.raises(OutsidePunjabError, match="outside"):
        router.resolve(24.86, 67.0)  # Karachi
    with pytest.raises(OutsidePunjabError, match="valid"):
        router.resolve(float("nan"), X0)


def test_negative_radius_is_the_packages_error_and_a_value_error(router: Router) -> None:
    with pytest.raises(NegativeRadiusError, match="must not be negative") as caught:
        router.resolve(Y0 + 0.05, X0 + 0.05, radius_m=-5.0)
    assert isinstance(caught.value, JurisdictionsError)
    assert isinstance(caught.value, ValueError)  # generic callers keep catching it
    out = router.resolve_many([Y0 + 0.05], [X0 + 0.05], [-5.0])
    assert out["method"].tolist() == ["rejected"]
    assert out["reason"].tolist() == [str(caught.value)]


def test_rejection_codes_name_the_batch_reasons(router: Router) -> None:
    """The ``reason`` words are the batch answer's contract; the codes only name them."""
    assert [r.text(500) for r in Rejection] == [
        "", "not a valid latitude/longitude", "outside Punjab's extent",
        "radius_m must not be negative", "no station within 500 m"]
    out = router.resolve_many([np.nan, 24.86, Y0 + 0.05], [X0, 67.0, X0 + 0.05], [0.0, 0.0, -1.0])
    expected = [Rejection.INVALID_COORDINATE, Rejection.OUTSIDE_EXTENT, Rejection.NEGATIVE_RADIUS]
    assert out["reason"].tolist() == [r.text(router.nearest_limit_m) for r in expected]


def test_the_private_fast_path_symbols_still_exist_and_agree() -> None:
    """The one-point path imports h3's and shapely's compiled functions directly (see the
    comment above those imports in jurisdictions/router.py, and the pins in pyproject.toml).
    If an upgrade moves them, this test names the symbol instead of failing at import."""
    import importlib

    import h3.api.basic_int as h3_int

    h3_cy = importlib.import_module("h3._cy")
    shapely_lib = importlib.import_module("shapely.lib")
    for module, name in ((h3_cy, "latlng_to_cell"), (shapely_lib, "points"),
                         (shapely_lib, "intersects_xy"), (shapely_lib, "dwithin")):
        assert hasattr(module, name), f"{module.__name__}.{name} is gone: see jurisdictions/router.py"
    lat, lon = 31.5204, 74.3587
    assert h3_cy.latlng_to_cell(lat, lon, 11) == h3_int.latlng_to_cell(lat, lon, 11)
    square = np.array([shapely.box(74.0, 31.0, 75.0, 32.0)], dtype=object)
    point = shapely_lib.points(np.array([lon, lat]), np.intc(0))
    assert point.equals(shapely.Point(lon, lat))
    assert shapely_lib.intersects_xy(square, lon, lat).tolist() == [True]
    assert shapely_lib.dwithin(shapely.boundary(square), point, 1.0).tolist() == [True]
    assert shapely_lib.dwithin(shapely.boundary(square), point, 1e-9).tolist() == [False]


def test_uncertainty_circle_goes_to_greatest_overlap(router: Router) -> None:
    # centre 330 m west of the layer, 220 m north of the A|C edge: C holds more of it
    lat, lon = Y0 + STEP + 0.002, X0 - 0.0035
    answer = router.resolve(lat, lon, radius_m=1500)
    assert answer.station_code == "S-C"
    assert answer.method == "overlap"
    assert not answer.out_of_coverage
    # centre 220 m north of the edge but a circle reaching 3 km into the layer: still C
    assert router.resolve(lat, X0 + 0.01, radius_m=3000).station_code == "S-C"
    # centre 220 m south of it: A
    assert router.resolve(Y0 + STEP - 0.002, X0 + 0.01, radius_m=3000).station_code == "S-A"


def test_batch_answers_every_row_and_explains_rejections(router: Router) -> None:
    lat = np.array([Y0 + 0.05, np.nan, 24.86, Y0 + 0.05, Y0 + 0.05])
    lat[4] = Y0 + STEP + 0.002
    lon = np.array([X0 + 0.05, X0, 67.0, X0 - 0.01, X0 - 0.0035])
    radius = np.array([0, 0, 0, 0, 1500.0])
    out = router.resolve_many(lat, lon, radius)
    assert out["station_code"].tolist() == ["S-A", "", "", "S-A", "S-C"]
    assert out["method"].tolist() == ["interior", "rejected", "rejected", "nearest", "overlap"]
    assert out["reason"].tolist()[1:3] == ["not a valid latitude/longitude", "outside Punjab's extent"]
    assert out["out_of_coverage"].tolist() == [False, False, False, True, False]


def test_batch_rejects_points_far_from_every_station(router: Router) -> None:
    tight = Router(router.index, nearest_limit_m=500)
    out = tight.resolve_many(np.array([Y0 - 0.004, Y0 + 0.05]), np.array([X0 - 0.004, X0 + 0.05]))
    assert out["method"].tolist() == ["rejected", "interior"]
    assert out["reason"].tolist() == ["no station within 500 m", ""]
    assert out["station_code"].tolist() == ["", "S-A"]


coordinate = st.floats(min_value=-0.02, max_value=2 * STEP + 0.02, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coordinate, coordinate), min_size=1, max_size=200))
def test_batch_equals_brute_force_covers(router: Router, offsets: list[tuple[float, float]]) -> None:
    dx, dy = np.array(offsets).T
    lon, lat = X0 + dx, Y0 + dy
    expected = _brute_force(_layer(), lon, lat)
    rows, _ = router.station_rows(lat, lon)
    got = np.where(rows >= 0, router.codes[np.maximum(rows, 0)], "")
    assert got.tolist() == expected.tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 2000)), min_size=1, max_size=50))
def test_grid_points_on_edges_and_vertices_single_equals_batch(
    router: Router, ticks: list[tuple[int, int]]
) -> None:
    # 1e-4° ticks put many points exactly on box edges and shared vertices
    lon = X0 + np.array([t[0] for t in ticks]) * 1e-4
    lat = Y0 + np.array([t[1] for t in ticks]) * 1e-4
    batch = router.resolve_many(lat, lon)
    expected = _brute_force(_layer(), lon, lat)
    assert batch["station_code"].where(batch["method"] != "nearest", "").tolist() == expected.tolist()
    for i in range(len(lon)):
        assert router.resolve(lat[i], lon[i]).station_code == batch["station_code"][i]


def test_saved_index_answers_the_same(router: Router, tmp_path: Path) -> None:
    path = router.index.save(tmp_path / "index.npz")
    loaded = Router(RoutingIndex.load(path))
    rng = np.random.default_rng(7)
    lat = Y0 + rng.uniform(0, 2 * STEP, 5000)
    lon = X0 + rng.uniform(0, 2 * STEP, 5000)
    assert loaded.resolve_many(lat, lon).equals(router.resolve_many(lat, lon))
    assert loaded.index.version == "test-v1"


def test_ranges_are_sorted_and_disjoint(router: Router) -> None:
    index = router.index
    assert np.all(index.lo <= index.hi)
    assert np.all(index.lo[1:] > index.hi[:-1])
    assert index.n_boundary_cells > 0
