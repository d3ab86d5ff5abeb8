"""Map page building without a browser: legend classes, minimums, resolution, payload, size.

The classes are checked with hypothesis on arbitrary counts; the pages are built from
hand-made analytics results over the real Punjab boundary set and basemap.
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from api.domain.analytics.schemas import AreaInfo, CellQuery, CellResult, ResultMeta
from api.domain.maps import page as map_page_module
from api.domain.maps.services import (
    AUTO_FINEST,
    MAP_MAX_CELLS,
    TOO_FEW,
    count_classes,
    count_label,
    display_res,
    map_page,
    ramp_colors,
    ring_totals,
)
from geo import h3cells
from geo.aggregate import study_area_cells

pytestmark = pytest.mark.unit

DATA = re.compile(r'<script type="application/json" id="map-data">(.*?)</script>', re.S)


# ------------------------------------------------------------------ classes


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10_000), max_size=400), st.integers(1, 7))
def test_count_classes_are_distinct_contiguous_integer_ranges(counts: list[int], most: int) -> None:
    ranges, cls = count_classes(counts, most)
    values = np.asarray(counts, dtype=np.int64)
    positive = values[values > 0]
    assert len(ranges) <= most
    if positive.size == 0:
        assert ranges == []
        assert np.all(cls == -1)
        return
    # contiguous from 1 to the largest count, each range a real interval
    assert ranges[0][0] == 1
    assert ranges[-1][1] == positive.max()
    for (_, hi), (next_lo, _) in itertools.pairwise(ranges):
        assert next_lo == hi + 1
    assert all(lo <= hi for lo, hi in ranges)
    # every count is in the class its colour comes from, and every class holds a count
    assert np.all(cls[values <= 0] == -1)
    for value, k in zip(values[values > 0], cls[values > 0], strict=True):
        lo, hi = ranges[k]
        assert lo <= value <= hi
    assert set(cls[values > 0].tolist()) == set(range(len(ranges)))
    # labels read "3" or "4–9", never "3–3", and no two alike
    labels = [count_label(lo, hi) for lo, hi in ranges]
    assert len(set(labels)) == len(labels)
    assert not any(re.fullmatch(r"(\d+)–\1", label) for label in labels)


def test_count_classes_of_the_issue() -> None:
    """Counts of 1 and 2 were drawn "≥ 3" under a legend saying "1–2"; classes read "1–1"."""
    ranges, cls = count_classes([0, 1, 1, 2, 2, 2, 1])
    assert [count_label(lo, hi) for lo, hi in ranges] == ["1", "2"]
    assert cls.tolist() == [-1, 0, 0, 1, 1, 1, 0]


def test_ramp_colours_keep_the_darkest_for_the_top_class() -> None:
    assert ramp_colors(0) == []
    assert len(ramp_colors(3)) == 3
    assert ramp_colors(1)[0] == ramp_colors(5)[-1]
    assert ramp_colors(2)[0] != ramp_colors(2)[1]


def test_ring_totals_sum_each_cell_and_its_neighbours() -> None:
    centre = h3cells.latlng_to_cells([31.52], [74.35], 8)
    _, disk = h3cells.grid_disk_pairs(centre, 2)
    cells = np.sort(disk)
    counts = np.zeros(len(cells))
    counts[np.searchsorted(cells, centre[0])] = 7
    hexes = h3cells.hex_strings(cells)[::-1]  # any order
    totals = ring_totals(hexes, counts[::-1], 1)
    assert int((totals == 7).sum()) == 7  # the centre and its six neighbours see the 7 calls
    assert int((totals == 0).sum()) == len(cells) - 7


# ------------------------------------------------------------------ resolution


def test_province_asked_at_res_7_is_drawn_coarser(punjab_set: Any) -> None:
    province = shapely.union_all(punjab_set.province.geometry.values)
    assert display_res(province, 7) == 6
    assert display_res(province, 5) == 5
    assert display_res(province, 6, chosen=False) == 6


def test_without_res_a_station_gets_fine_cells(punjab_set: Any) -> None:
    station = punjab_set.layer("station").geometry.iloc[0]
    assert display_res(station, 7, chosen=False) == AUTO_FINEST
    assert display_res(station, 7) == 7  # a chosen res is kept when it fits


# ------------------------------------------------------------------ pages


def result_of(kind: str, frame: pd.DataFrame, area: AreaInfo, res: int) -> CellResult:
    meta = ResultMeta(kind=kind, area=area, res=res, since=datetime(2024, 1, 1, tzinfo=UTC), until=None,
                      categories=["theft"], serious=None, fdr=False, boundary_set="test",
                      cells=len(frame), calls=len(frame), outside=0)
    return CellResult(meta, frame)


SHEIKHUPURA = AreaInfo("district", "PK633", "Sheikhupura")


def embedded(page: str) -> dict[str, Any]:
    match = DATA.search(page)
    assert match, "no embedded map data"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


@pytest.fixture(scope="module")
def district(punjab_set: Any) -> tuple[Any, np.ndarray]:
    layer = punjab_set.layer("district")
    area = layer.loc[layer["code"] == "PK633"].geometry.iloc[0]
    return area, h3cells.hex_strings(study_area_cells(area, 8))


def test_hotspot_page_hides_z_and_p_below_the_minimum(punjab_set: Any,
                                                      district: tuple[Any, np.ndarray]) -> None:
    area, hexes = district
    rng = np.random.default_rng(3)
    counts = np.where(rng.random(len(hexes)) < 0.05, rng.integers(1, 9, len(hexes)), 0)
    z = rng.normal(0, 2, len(hexes))
    frame = pd.DataFrame({"h3": hexes, "count": counts, "z": z, "p": np.full(len(hexes), 0.01),
                          "bin": np.clip(np.round(z), -3, 3).astype(int)})
    query = CellQuery(level="district", code="PK633", res=8, min_count=5, k=1)
    page = map_page(result_of("hotspots", frame, SHEIKHUPURA, 8), query, punjab_set, area)
    data = embedded(page)
    cells = data["cells"]
    too_few = [i for i, k in enumerate(cells["cls"]) if data["classes"][k]["label"].startswith("too few")]
    assert too_few, "a sparse result has cells under the minimum"
    assert all(cells["values"]["z"][i] is None and cells["values"]["p"][i] is None for i in too_few)
    assert all(cells["values"]["ring"][i] < 5 for i in too_few)
    shown = [i for i in range(len(cells["cls"])) if i not in set(too_few)]
    assert all(cells["values"]["z"][i] is not None for i in shown)
    assert all(cells["values"]["ring"][i] >= 5 for i in shown)
    assert data["classes"][cells["cls"][too_few[0]]]["color"] == list(TOO_FEW)
    assert "Minimum: 5 calls in a cell and its 1-ring" in page
    assert "gets no z or p" in page


def test_page_names_places_and_credits_and_links_nothing_remote(punjab_set: Any,
                                                               district: tuple[Any, np.ndarray]) -> None:
    area, hexes = district
    counts = np.arange(len(hexes)) % 4
    frame = pd.DataFrame({"h3": hexes, "count": counts})
    query = CellQuery(level="district", code="PK633", res=8)
    page = map_page(result_of("calls", frame, SHEIKHUPURA, 8), query, punjab_set, area)
    data = embedded(page)
    cells = data["cells"]
    assert len(cells["h3"]) == len(cells["cls"]) == len(cells["at"]) == len(hexes)
    assert sum(a >= 0 for a in cells["at"]) > 0.95 * len(hexes)  # centres inside a station area
    stations = data["places"]["station"]
    first = cells["at"][0]
    tehsil = stations["up"][first]
    assert data["places"]["tehsil"]["name"][tehsil]
    assert data["places"]["district"]["name"][data["places"]["tehsil"]["up"][tehsil]] == "Sheikhupura"
    # legend classes follow the counts; the classes' colours are the cells' colours
    assert [c["label"] for c in data["classes"]] == ["no calls", "1", "2", "3"]
    assert all(data["classes"][k]["label"] == ("no calls" if c == 0 else str(c))
               for k, c in zip(cells["cls"], counts, strict=True))
    # lines and labels of the frame, the basemap under them, the credits on the page
    assert {"district", "tehsil", "station", "focus"} <= set(data["lines"])
    names = {item[2] for group in data["labels"] for item in group["items"]}
    assert {"Lahore", "Nankana Sahib"} <= names
    assert "Sheikhupura" not in {item[2] for g in data["labels"] if g["level"] == "district"
                                 for item in g["items"]}  # the page's own area: named by the legend
    assert any(t[2] == "Lahore" for t in data["basemap"]["towns"])
    assert data["basemap"]["roads"]
    assert data["basemap"]["urban"]
    for credit in ("GeoNames (geonames.org), CC BY 4.0", "Made with Natural Earth", "COD-AB",
                   "© OpenStreetMap contributors"):
        assert credit in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert "Content-Security-Policy" in page
    assert "Map of calls per cell, Sheikhupura (district)" in page


def test_province_page_stays_small(punjab_set: Any) -> None:
    import gzip

    province = shapely.union_all(punjab_set.province.geometry.values)
    hexes = h3cells.hex_strings(study_area_cells(province, 6))
    assert len(hexes) < MAP_MAX_CELLS
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"h3": hexes, "count": rng.poisson(3, len(hexes))})
    page = map_page(result_of("calls", frame, AreaInfo("province", None, "Punjab"), 6), CellQuery(res=6),
                    punjab_set, province, asked_res=7)
    assert len(page.encode()) < 1_500_000
    assert len(gzip.compress(page.encode())) < 400_000
    assert "Drawn at res 6: res 7 would be more than 12,000 cells" in page


def test_script_json_cannot_close_its_script_element() -> None:
    text = map_page_module.script_json({"name": "</script><script>alert(1)</script>"})
    assert "<" not in text
    assert json.loads(text)["name"].startswith("</script>")


def test_paths_and_polygons_keep_every_part_and_ring() -> None:
    square = shapely.box(0, 0, 1, 1)
    holed = shapely.Polygon([(2, 0), (5, 0), (5, 3), (2, 3)], [[(3, 1), (4, 1), (4, 2), (3, 2)]])
    rings = map_page_module.polygons([shapely.MultiPolygon([square]), holed])
    assert [len(p) for p in rings] == [1, 2]
    assert rings[1][1][0] == [3.0, 1.0]
    lines = map_page_module.paths([square, holed])
    assert len(lines) == 3  # the square's ring, the outer ring and the hole
    assert lines[0][0] == lines[0][-1]
    points = map_page_module.label_points([holed])
    assert shapely.contains(holed, shapely.Point(points[0]))
