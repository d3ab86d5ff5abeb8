"""The stand-in station layer: deterministic, tiles every tehsil, allotted by population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from jurisdictions.stations import allot, build_stand_in_stations

pytestmark = pytest.mark.unit


@given(st.lists(st.floats(0, 1e7), min_size=1, max_size=50), st.integers(0, 2000))
def test_allot_sums_and_respects_minimum(weights: list[float], extra: int) -> None:
    total = len(weights) + extra
    parts = allot(weights, total)
    assert parts.sum() == total
    assert parts.min() >= 1


def test_allot_is_proportional() -> None:
    assert allot([1, 2, 3, 4], 104, minimum=1).tolist() == [11, 21, 31, 41]


def test_shipped_layer_counts_and_flags(punjab_set) -> None:  # type: ignore[no-untyped-def]
    stations = punjab_set.stations
    assert len(stations) == 720
    assert stations["stand_in"].all()
    assert stations["code"].str.fullmatch(r"PK6\d{4}-\d{3}").all()
    per_tehsil = stations.groupby("tehsil_code").size()
    assert per_tehsil.min() >= 1
    # cities get far more stations per person than rural tehsils
    tehsils = punjab_set.tehsils.set_index("code")
    per_million = per_tehsil / (tehsils["population_2023"] / 1e6)
    urban_share = tehsils["urban_2023"] / tehsils["population_2023"]
    assert per_million[urban_share > 0.8].median() > 1.5 * per_million[urban_share < 0.2].median()


@pytest.mark.slow
def test_stations_tile_each_tehsil_exactly(punjab_set) -> None:  # type: ignore[no-untyped-def]
    # Compared in degrees², where the polygons' edges are straight (PostGIS geometry
    # semantics): projecting a sliver's few vertices to UTM bends nothing and would
    # turn a 1e-10° sliver along a 6 km edge into hundreds of m² of artefact.
    stations, tehsils = punjab_set.stations, punjab_set.tehsils.set_index("code")
    tehsil_area = shapely.area(tehsils.geometry.values)
    area_sum = pd.Series(shapely.area(stations.geometry.values)).groupby(
        stations["tehsil_code"].to_numpy()).sum().reindex(tehsils.index)
    unions = stations.dissolve("tehsil_code").geometry.reindex(tehsils.index)
    assert np.allclose(area_sum, tehsil_area, rtol=1e-9, atol=0)  # no gap, no overlap
    assert np.allclose(shapely.area(unions.values), tehsil_area, rtol=1e-9, atol=0)
    # every station lies in its own tehsil
    inside = shapely.covered_by(stations.geometry.values,
                                shapely.buffer(tehsils.geometry.reindex(stations["tehsil_code"]).values,
                                               1e-9))
    assert inside.all()


def test_build_is_deterministic_on_a_small_tehsil(punjab_set) -> None:  # type: ignore[no-untyped-def]
    tehsil = punjab_set.tehsils[punjab_set.tehsils["code"] == "PK60503"]  # Kallar Kahar
    a = build_stand_in_stations(tehsil, _no_towns())
    b = build_stand_in_stations(tehsil, _no_towns())
    assert a["code"].tolist() == b["code"].tolist()
    assert all(shapely.equals_exact(a.geometry.values, b.geometry.values, 0))


def _no_towns() -> pd.DataFrame:
    return pd.DataFrame({"name": [], "lon": [], "lat": [], "population": []})
