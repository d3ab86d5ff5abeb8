"""Emerging hot spots on the generated call history, scored against its planted truth.

The generator plants persistent, new, intensifying and diminishing hot spots in known
resolution-8 cells (written to the truth file, never to the calls). The detector runs on
the calls alone over the whole province; recall and false discoveries per class are
printed. The issue's bar: recall ≥ 0.9 for persistent and new hot spots.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from geo import h3cells
from geo.aggregate import AreaRef, area_geometry, cube_counts, study_area_cells
from geo.emerging import EmergingHotSpots

CLASS_NAMES = {"persistent": "persistent hot spot", "new": "new hot spot",
               "intensifying": "intensifying hot spot", "diminishing": "diminishing hot spot"}


@pytest.fixture(scope="module")
def province_cells(punjab_set: Any) -> np.ndarray:
    return study_area_cells(area_geometry(AreaRef("province", None), punjab_set), 8)


@pytest.mark.parametrize("seed", [3, 11])
def test_planted_hot_spots_are_recovered_from_the_generated_history(
        seed: int, province_cells: np.ndarray, capsys: pytest.CaptureFixture[str]) -> None:
    from api.shipped import generate_calls

    calls, truth = generate_calls(6, seed, 0.02, "2024-01")
    planted = truth["hotspots"]
    categories = sorted({c for h in planted for c in h["categories"]})
    cases = calls[calls["category"].isin(categories)]
    analysis = EmergingHotSpots(cube_counts(cases, province_cells, truth["hotspot_step"]))
    frame = analysis.frame()
    found = dict(zip(frame["h3"], frame["category"], strict=True))
    planted_cells = np.array([h3cells.from_hex([h["h3"]])[0] for h in planted], dtype=np.uint64)
    _, near_planted = h3cells.grid_disk_pairs(planted_cells, 1)
    near = set(h3cells.hex_strings(np.unique(near_planted)))
    lines, recall = [], {}
    for klass, name in CLASS_NAMES.items():
        cells = [h["h3"] for h in planted if h["class"] == klass]
        hits = sum(found[c] == name for c in cells)
        recall[klass] = hits / len(cells)
        false = int(((frame["category"] == name) & ~frame["h3"].isin(near)).sum())
        lines.append(f"{klass}: recall {recall[klass]:.2f} ({hits}/{len(cells)}), "
                     f"{false} '{name}' cells away from any planted one "
                     f"(of {len(frame):,} cells)")
    with capsys.disabled():
        print(f"\nseed {seed}, {len(calls):,} calls, 6 months, res 8, province:\n  "
              + "\n  ".join(lines))
    assert recall["persistent"] >= 0.9, lines[0]
    assert recall["new"] >= 0.9, lines[1]
