"""The shipped boundary set: sources verified, hierarchy complete, population joined."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jurisdictions.boundaries import SOURCE_FILES, load_punjab
from jurisdictions.errors import ChecksumMismatchError, MissingDataError
from jurisdictions.sources import data_dir, verified_source

pytestmark = pytest.mark.unit


def test_levels_codes_and_parents(punjab_set) -> None:  # type: ignore[no-untyped-def]
    assert (len(punjab_set.regions), len(punjab_set.districts), len(punjab_set.tehsils)) == (9, 36, 139)
    assert punjab_set.districts["code"].str.fullmatch(r"PK6\d\d").all()
    assert punjab_set.tehsils["code"].str.fullmatch(r"PK6\d{4}").all()
    assert set(punjab_set.districts["region_code"]) == set(punjab_set.regions["code"])
    assert set(punjab_set.tehsils["district_code"]) == set(punjab_set.districts["code"])
    for level in ("region", "district", "tehsil", "station"):
        frame = punjab_set.layer(level)
        assert frame["code"].is_unique
        assert (frame.geom_type == "MultiPolygon").all()
        assert frame.crs.to_epsg() == 4326


def test_population_joined_for_every_tehsil(punjab_set) -> None:  # type: ignore[no-untyped-def]
    tehsils = punjab_set.tehsils
    assert (tehsils["population_2023"] > 0).all()
    assert (tehsils["rural_2023"] + tehsils["urban_2023"] - tehsils["population_2023"]).abs().max() <= 2
    # Table 11's universe (126.15 M) is what the tehsils sum to; the rules move people
    # between polygons but never add or drop any.
    assert tehsils["population_2023"].sum() == pytest.approx(126_150_816, abs=200)
    lahore = tehsils[tehsils["district_code"] == "PK617"].set_index("name")["population_2023"]
    assert lahore.sum() == pytest.approx(12_978_661, abs=5)
    # districts are the sums of their tehsils
    per_district = tehsils.groupby("district_code")["population_2023"].sum()
    districts = punjab_set.districts.set_index("code")["population_2023"]
    assert (per_district.reindex(districts.index) == districts).all()


def test_a_changed_source_file_is_refused(tmp_path: Path) -> None:
    for name in SOURCE_FILES:
        shutil.copy(data_dir() / name, tmp_path / name)
    with (tmp_path / "punjab_tehsils.geojson").open("ab") as handle:
        handle.write(b"\n")
    with pytest.raises(ChecksumMismatchError, match=r"punjab_tehsils\.geojson"):
        load_punjab(tmp_path)
    with pytest.raises(MissingDataError, match="SAFECITY_DATA_DIR"):
        verified_source("punjab_tehsils.geojson", tmp_path / "nowhere")
