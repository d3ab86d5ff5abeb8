"""Bit-level H3 helpers agree with the h3 library."""

from __future__ import annotations

import h3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo import h3cells

pytestmark = pytest.mark.unit

lat_s = st.floats(27.7, 34.0)
lon_s = st.floats(69.3, 75.4)


@settings(max_examples=50, deadline=None)
@given(lat_s, lon_s, st.integers(5, 10))
def test_descendant_range_bounds_every_child(lat: float, lon: float, res: int) -> None:
    cell = h3.latlng_to_cell(lat, lon, res)
    fine = min(res + 3, 12)
    lo, hi = h3cells.descendant_range(np.array([h3.str_to_int(cell)], dtype=np.uint64), fine)
    kids = np.array([h3.str_to_int(c) for c in h3.cell_to_children(cell, fine)], dtype=np.uint64)
    assert kids.min() == lo[0]
    assert kids.max() == hi[0]
    # a neighbour's children fall outside the range
    for other in h3.grid_ring(cell, 1):
        okids = np.array([h3.str_to_int(c) for c in h3.cell_to_children(other, fine)], np.uint64)
        assert not np.any((okids >= lo[0]) & (okids <= hi[0]))


@settings(max_examples=50, deadline=None)
@given(lat_s, lon_s, st.integers(1, 11))
def test_parent_and_cells_match_h3(lat: float, lon: float, res: int) -> None:
    fine = h3cells.latlng_to_cells([lat], [lon], 11)
    assert int(fine[0]) == h3.str_to_int(h3.latlng_to_cell(lat, lon, 11))
    parent = h3cells.cell_to_parent(fine, res)
    assert h3.int_to_str(int(parent[0])) == h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 11), res)
    assert h3cells.latlng_to_cell(lat, lon, 11) == int(fine[0])


def test_hex_round_trip_and_disk() -> None:
    cells = h3cells.latlng_to_cells([31.5, 30.2], [74.3, 71.5], 9)
    assert np.array_equal(h3cells.from_hex(h3cells.to_hex(cells)), cells)
    origin, ring = h3cells.grid_disk_pairs(cells, 1)
    assert origin.tolist() == [0] * 7 + [1] * 7
    assert set(h3cells.to_hex(ring[:7])) == set(h3.grid_disk(h3cells.to_hex(cells)[0], 1))
