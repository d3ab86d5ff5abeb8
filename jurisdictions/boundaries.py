"""The Punjab boundary set: province > region > district > tehsil (> station).

Districts and tehsils are the real OCHA COD-AB polygons with their P-codes as codes;
regions are dissolved from districts by ``data/police_regions.csv``; census 2023
population is joined by ``data/census_2023_tehsils.csv`` (see ``data/SOURCES.md`` for
every rule). Stations are added by :mod:`jurisdictions.stations` or by import.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo.crs import WGS84
from jurisdictions import limits
from jurisdictions.errors import DataFileError
from jurisdictions.sources import PROJECT_DATA, fingerprint, verified_source

LEVELS = ("region", "district", "tehsil", "station")
"""Levels below the province, coarse to fine."""

PARENT_COLUMN = {"district": "region_code", "tehsil": "district_code", "station": "tehsil_code"}
"""Column naming each level's parent code."""

PROVINCE_CODE = limits.PROVINCE_CODE
PROVINCE_NAME = "Punjab"

TEHSILS_FILE = "punjab_tehsils.geojson"
DISTRICTS_FILE = "punjab_districts_codab.geojson"
PROVINCE_FILE = "punjab_province_codab.geojson"
TEHSIL_CENSUS_FILE = "punjab_tehsil_population_2023.csv"
DISTRICT_CENSUS_FILE = "punjab_district_population_2023.csv"
TEHSIL_2017_FILE = "punjab_population_2017_tehsils.csv"
DISTRICT_2017_FILE = "punjab_population_2017_districts.csv"
SOURCE_FILES = (
    TEHSILS_FILE,
    DISTRICTS_FILE,
    PROVINCE_FILE,
    TEHSIL_CENSUS_FILE,
    DISTRICT_CENSUS_FILE,
    TEHSIL_2017_FILE,
    DISTRICT_2017_FILE,
)


def as_multipolygons(geoms: gpd.GeoSeries) -> gpd.GeoSeries:
    """Promote polygons to MultiPolygons so every level has one PostGIS geometry type."""
    values = geoms.values
    single = shapely.get_type_id(values) == shapely.GeometryType.POLYGON
    out = np.array(values, dtype=object)
    out[single] = shapely.multipolygons(np.asarray(values[single]).reshape(-1, 1))
    return gpd.GeoSeries(out, index=geoms.index, crs=geoms.crs)


@dataclass(frozen=True)
class BoundarySet:
    """One consistent set of jurisdiction layers, keyed by level.

    Every frame has ``code`` (unique), ``name``, its parent's code column and
    ``geometry`` (MultiPolygon, EPSG:4326). ``version`` identifies the set; derived
    caches (the routing index) are keyed by it.
    """

    regions: gpd.GeoDataFrame
    districts: gpd.GeoDataFrame
    tehsils: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    province: gpd.GeoDataFrame
    version: str
    notes: dict[str, str] = field(default_factory=dict)

    def layer(self, level: str) -> gpd.GeoDataFrame:
        """The frame of one level (``region``, ``district``, ``tehsil``, ``station``)."""
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
        frame: gpd.GeoDataFrame = getattr(self, f"{level}s")
        return frame

    def with_layer(self, level: str, frame: gpd.GeoDataFrame, version: str) -> BoundarySet:
        """A copy with one level replaced (an import) and a new version."""
        return replace(self, **{f"{level}s": frame}, version=version)

    def station_hierarchy(self) -> pd.DataFrame:
        """Per station: its code and name with tehsil, district and region codes and names."""
        stations = pd.DataFrame(self.stations.drop(columns="geometry"))
        tehsils = pd.DataFrame(self.tehsils[["code", "name", "district_code"]]).rename(
            columns={"code": "tehsil_code", "name": "tehsil"}
        )
        districts = pd.DataFrame(self.districts[["code", "name", "region_code"]]).rename(
            columns={"code": "district_code", "name": "district"}
        )
        regions = pd.DataFrame(self.regions[["code", "name"]]).rename(
            columns={"code": "region_code", "name": "region"}
        )
        merged = (
            stations[["code", "name", "tehsil_code", "stand_in"]]
            .rename(columns={"code": "station_code", "name": "station"})
            .merge(tehsils, on="tehsil_code", how="left")
            .merge(districts, on="district_code", how="left")
            .merge(regions, on="region_code", how="left")
        )
        return merged.sort_values("station_code").reset_index(drop=True)


def _read_layer(name: str, directory: Path | None) -> gpd.GeoDataFrame:
    frame = gpd.read_file(verified_source(name, directory))
    if frame.crs is None or frame.crs.to_epsg() != 4326:
        raise DataFileError(f"{name}: expected EPSG:4326 geometry, found {frame.crs}")
    return frame


def _census_2023_by_tehsil(tehsils: pd.DataFrame, directory: Path | None) -> pd.DataFrame:
    """Population 2023 (total, rural, urban) per tehsil P-code, by the documented rules."""
    census = pd.read_csv(verified_source(TEHSIL_CENSUS_FILE, directory))
    matching = pd.read_csv(PROJECT_DATA / "census_2023_tehsils.csv")
    joined = census.merge(
        matching,
        left_on=["district", "tehsil", "admin_unit"],
        right_on=["census_district", "census_tehsil", "census_admin_unit"],
        how="left",
        validate="one_to_one",
    )
    unmatched = joined[joined["tehsil_code"].isna()]
    if len(unmatched):
        rows = ", ".join(f"{r.district}/{r.tehsil}" for r in unmatched.itertuples())
        raise DataFileError(f"census 2023 rows with no tehsil in census_2023_tehsils.csv: {rows}")
    per_code = joined.groupby("tehsil_code")[["population_2023", "rural_2023", "urban_2023"]].sum()
    pop = tehsils[["code", "district_code"]].merge(
        per_code, left_on="code", right_index=True, how="left"
    )
    missing = pop["population_2023"].isna()
    if missing.any():
        # Tehsils the 2023 tables count inside neighbours: grow their 2017 count by the
        # district's rate, then scale the district's other tehsils to keep its census total.
        p2017 = pd.read_csv(verified_source(TEHSIL_2017_FILE, directory)).set_index("code")
        d2017 = pd.read_csv(verified_source(DISTRICT_2017_FILE, directory)).set_index("code")
        district_total = pop.groupby("district_code")["population_2023"].sum()
        growth = pop["district_code"].map(district_total / d2017["pop_total_2017"])
        grown = p2017.reindex(pop["code"])[["pop_total_2017", "pop_rural_2017", "pop_urban_2017"]]
        estimate = grown.to_numpy() * growth.to_numpy()[:, None]
        pop.loc[missing, ["population_2023", "rural_2023", "urban_2023"]] = estimate[missing.to_numpy()]
        for district in pop.loc[missing, "district_code"].unique():
            in_district = pop["district_code"] == district
            estimated = pop.loc[in_district & missing, "population_2023"].sum()
            counted = pop.loc[in_district & ~missing, "population_2023"].sum()
            factor = (counted - estimated) / counted
            pop.loc[in_district & ~missing, ["population_2023", "rural_2023", "urban_2023"]] *= factor
    cols = ["population_2023", "rural_2023", "urban_2023"]
    pop[cols] = pop[cols].round().astype("int64")
    return pop.set_index("code")[cols]


def load_punjab(directory: Path | None = None) -> BoundarySet:
    """Read, verify and join the shared Punjab files into a :class:`BoundarySet`.

    The station layer is empty here; :func:`jurisdictions.stations.build_stand_in_stations`
    derives the stand-in one.
    """
    raw_tehsils = _read_layer(TEHSILS_FILE, directory)
    raw_districts = _read_layer(DISTRICTS_FILE, directory)
    raw_province = _read_layer(PROVINCE_FILE, directory)
    regions_table = pd.read_csv(PROJECT_DATA / "police_regions.csv")

    districts = gpd.GeoDataFrame(
        {
            "code": raw_districts["code"].astype(str),
            "name": raw_districts["ADM2_EN"].astype(str),
        },
        geometry=as_multipolygons(raw_districts.geometry),
        crs=WGS84,
    ).merge(regions_table[["district_code", "region_code"]], left_on="code",
            right_on="district_code", how="left").drop(columns="district_code")
    if districts["region_code"].isna().any():
        missing = ", ".join(districts.loc[districts["region_code"].isna(), "code"])
        raise DataFileError(f"districts with no region in police_regions.csv: {missing}")
    district_pop = pd.read_csv(verified_source(DISTRICT_CENSUS_FILE, directory))

    tehsils = gpd.GeoDataFrame(
        {
            "code": raw_tehsils["code"].astype(str),
            "name": raw_tehsils["ADM3_EN"].astype(str),
            "district_code": raw_tehsils["ADM2_PCODE"].astype(str),
        },
        geometry=as_multipolygons(raw_tehsils.geometry),
        crs=WGS84,
    )
    population = _census_2023_by_tehsil(tehsils, directory)
    tehsils = tehsils.join(population, on="code")
    tehsil_totals = tehsils.groupby("district_code")["population_2023"].sum()
    districts["population_2023"] = districts["code"].map(tehsil_totals).astype("int64")
    districts = districts[["code", "name", "region_code", "population_2023", "geometry"]]

    region_names = regions_table.drop_duplicates("region_code").set_index("region_code")["region"]
    dissolved = districts[["region_code", "population_2023", "geometry"]].dissolve(
        by="region_code", aggfunc="sum"
    )
    regions = gpd.GeoDataFrame(
        {
            "code": dissolved.index.astype(str),
            "name": dissolved.index.map(region_names).astype(str),
            "population_2023": dissolved["population_2023"].to_numpy(),
        },
        geometry=as_multipolygons(dissolved.geometry).to_numpy(),
        crs=WGS84,
    )
    province = gpd.GeoDataFrame(
        {"code": [PROVINCE_CODE], "name": [PROVINCE_NAME]},
        geometry=as_multipolygons(raw_province.geometry).to_numpy(),
        crs=WGS84,
    )
    stations = gpd.GeoDataFrame(
        {"code": pd.Series(dtype=str), "name": pd.Series(dtype=str),
         "tehsil_code": pd.Series(dtype=str), "stand_in": pd.Series(dtype=bool)},
        geometry=gpd.GeoSeries([], crs=WGS84),
        crs=WGS84,
    )
    notes = {
        "district_population_source": DISTRICT_CENSUS_FILE,
        "district_population_census_total": str(int(district_pop["population_2023"].sum())),
    }
    return BoundarySet(
        regions=regions.sort_values("code").reset_index(drop=True),
        districts=districts.sort_values("code").reset_index(drop=True),
        tehsils=tehsils.sort_values("code").reset_index(drop=True),
        stations=stations,
        province=province,
        version="punjab-" + fingerprint(*SOURCE_FILES),
        notes=notes,
    )
