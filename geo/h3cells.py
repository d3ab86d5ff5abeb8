"""Vectorised H3 helpers on ``uint64`` cell arrays (no per-cell Python).

Cells are handled as unsigned 64-bit integers throughout; :func:`to_hex` turns them
into the hex strings that maps and files show. Bit-level operations follow the H3
index layout: resolution in bits 52–55, then one 3-bit digit per resolution, with
unused digits set to 7.
"""

from __future__ import annotations

import h3
import h3ronpy
import h3ronpy.vector as h3v
import numpy as np
import numpy.typing as npt
import pyarrow as pa

Cells = npt.NDArray[np.uint64]

_RES_SHIFT = np.uint64(52)
_RES_MASK = np.uint64(0xF) << _RES_SHIFT
MAX_RES = 15


def _digit_mask(first: int, last: int) -> np.uint64:
    """Bit mask of digits ``first..last`` (1-based resolutions)."""
    if last < first:
        return np.uint64(0)
    width = (last - first + 1) * 3
    return np.uint64(((1 << width) - 1) << ((MAX_RES - last) * 3))


def _digit_fill(first: int, last: int, digit: int) -> np.uint64:
    """All digits ``first..last`` set to ``digit``."""
    value = 0
    for res in range(first, last + 1):
        value |= digit << ((MAX_RES - res) * 3)
    return np.uint64(value)


def latlng_to_cells(lat: npt.ArrayLike, lon: npt.ArrayLike, res: int) -> Cells:
    """H3 cells of points at one resolution (vectorised, Rust)."""
    lat_a = np.ascontiguousarray(lat, dtype=np.float64)
    lon_a = np.ascontiguousarray(lon, dtype=np.float64)
    if lat_a.size == 0:
        return np.empty(0, dtype=np.uint64)
    return np.asarray(h3v.coordinates_to_cells(lat_a, lon_a, res), dtype=np.uint64)


def cells_to_latlng(cells: Cells) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Centres ``(lat, lon)`` of cells."""
    if len(cells) == 0:
        return np.empty(0), np.empty(0)
    batch = h3v.cells_to_coordinates(pa.array(np.asarray(cells, dtype=np.uint64)))
    table = pa.record_batch(batch)
    return (np.asarray(table.column("lat"), dtype=np.float64),
            np.asarray(table.column("lng"), dtype=np.float64))


def resolution_of(cells: Cells) -> npt.NDArray[np.int64]:
    """Resolution of each cell."""
    return ((np.asarray(cells, dtype=np.uint64) & _RES_MASK) >> _RES_SHIFT).astype(np.int64)


def cell_to_parent(cells: Cells, res: int) -> Cells:
    """Parent of each cell at ``res`` (cells must be at ``res`` or finer)."""
    c = np.asarray(cells, dtype=np.uint64)
    out = (c & ~_RES_MASK) | (np.uint64(res) << _RES_SHIFT)
    return out | _digit_fill(res + 1, MAX_RES, 7)


def descendant_range(cells: Cells, fine_res: int) -> tuple[Cells, Cells]:
    """First and last descendant index at ``fine_res`` of each cell.

    Every descendant of a cell at ``fine_res`` lies in ``[first, last]`` as an
    integer, and no other ``fine_res`` cell does: a compacted set of cells becomes a
    set of disjoint integer ranges that one ``searchsorted`` can probe.
    """
    c = np.asarray(cells, dtype=np.uint64)
    res = resolution_of(c)
    if res.size and int(res.max()) > fine_res:
        raise ValueError(f"cells finer than resolution {fine_res}")
    first = (c & ~_RES_MASK) | (np.uint64(fine_res) << _RES_SHIFT)
    last = first.copy()
    for r in np.unique(res):
        sel = res == r
        first[sel] &= ~_digit_mask(int(r) + 1, fine_res)
        last[sel] = first[sel] | _digit_fill(int(r) + 1, fine_res, 6)
    return first, last


def children(cells: Cells, res: int) -> tuple[npt.NDArray[np.int64], Cells]:
    """Children at ``res`` of each cell: ``(index of the parent, child)`` pairs."""
    return _list_pairs(h3ronpy.change_resolution_list(pa.array(np.asarray(cells, np.uint64)), res))


def grid_disk_pairs(cells: Cells, k: int) -> tuple[npt.NDArray[np.int64], Cells]:
    """Cells within ``k`` steps of each cell: ``(index of the origin, cell)`` pairs."""
    return _list_pairs(h3ronpy.grid_disk(pa.array(np.asarray(cells, np.uint64)), k, flatten=False))


def _list_pairs(lists: object) -> tuple[npt.NDArray[np.int64], Cells]:
    arr = pa.array(lists)
    offsets = np.asarray(arr.offsets, dtype=np.int64)
    values = np.asarray(arr.flatten(), dtype=np.uint64)
    origin = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    return origin, values


def to_hex(cells: Cells) -> npt.NDArray[np.str_]:
    """Hex strings of cells (``'8b3d06b6aa1cfff'``)."""
    return np.char.mod("%x", np.asarray(cells, dtype=np.uint64))


def from_hex(values: npt.ArrayLike) -> Cells:
    """Cells from hex strings (parsed in bulk by h3ronpy; invalid strings raise)."""
    strings = np.asarray(values, dtype=str)
    if strings.size == 0:
        return np.empty(0, dtype=np.uint64)
    return np.asarray(h3ronpy.cells_parse(pa.array(strings.tolist())), dtype=np.uint64)


def latlng_to_cell(lat: float, lon: float, res: int) -> int:
    """One point's cell as an int (the single-call path; ~1 µs)."""
    return int(h3.api.basic_int.latlng_to_cell(lat, lon, res))


def polygon_to_cells(geometry: object, res: int) -> Cells:
    """Cells at ``res`` whose centre lies in a (Multi)Polygon, sorted and unique.

    ``geometry`` is anything with ``__geo_interface__`` (a shapely geometry) in
    longitude/latitude; the containment rule is H3's ``polygon_to_cells`` (cell centre
    inside), evaluated in Rust for the whole geometry at once.
    """
    cells = np.asarray(h3v.geometry_to_cells(geometry, res, h3ronpy.ContainmentMode.ContainsCentroid),
                       dtype=np.uint64)
    return np.unique(cells)


def hex_strings(cells: Cells) -> npt.NDArray[np.object_]:
    """Hex strings of cells as a Python-object array (what pandas stores), in bulk.

    Same strings as :func:`to_hex`, several times faster on large arrays because the
    formatting runs in Rust; use it when filling a frame column.
    """
    c = np.asarray(cells, dtype=np.uint64)
    if c.size == 0:
        return np.empty(0, dtype=object)
    strings = pa.array(h3ronpy.cells_to_string(pa.array(c)))
    return np.asarray(strings.to_numpy(zero_copy_only=False), dtype=object)


def lookup(sorted_cells: Cells, cells: Cells) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Position of each of ``cells`` in the ascending array ``sorted_cells`` and whether
    it is there at all (one ``searchsorted``; positions of missing cells are meaningless)."""
    keys = np.asarray(cells, dtype=np.uint64)
    pos = np.searchsorted(sorted_cells, keys).astype(np.int64)
    found = pos < len(sorted_cells)
    found[found] = sorted_cells[pos[found]] == keys[found]
    return pos, found
