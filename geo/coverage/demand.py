"""Where serious-crime demand is in a tehsil: calls weighted by seriousness, per H3 cell.

Each call weighs its category's ``seriousness_weight`` (the category table,
:func:`geo.categories.read_categories`: murder and terrorism 10, information calls 0), and
the weights are summed per H3 cell (resolution :data:`DEFAULT_RES`, about 0.1 km²). A
demand point is the cell centre. The calls of a tehsil are those routed to it
(``tehsil_code``), or those inside its polygon when the history carries no routing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo import h3cells
from geo.aggregate import call_coordinates
from geo.coverage.errors import CoverageInputError, NoDemandError, UnknownTehsilError
from geo.coverage.matrix import BoolArray, FloatArray
from geo.crs import WGS84, utm_epsg

if TYPE_CHECKING:
    from jurisdictions.boundaries import BoundarySet


DEFAULT_RES = 9
"""H3 resolution of demand cells (res 9: about 0.105 km², edge about 174 m)."""


@dataclass(frozen=True)
class TehsilRef:
    """One tehsil with what planning needs: names, polygon (EPSG:4326) and its UTM zone."""

    code: str
    name: str
    district_code: str
    district: str
    population_2023: int
    geometry: shapely.Geometry = field(repr=False)

    @property
    def epsg(self) -> int:
        """EPSG code of the UTM zone of the tehsil's centre (:func:`geo.crs.utm_epsg`)."""
        return utm_epsg(float(shapely.centroid(self.geometry).x))

    @property
    def label(self) -> str:
        """``"Name (CODE)"`` for messages."""
        return f"{self.name} ({self.code})"


def tehsil_ref(tehsil: str, boundaries: BoundarySet) -> TehsilRef:
    """The tehsil of ``boundaries`` with P-code ``tehsil`` (or, failing that, the one tehsil
    of that name).

    Raises :class:`UnknownTehsilError` naming close matches when there is none.
    """
    tehsils = boundaries.tehsils
    key = str(tehsil).strip()
    rows = tehsils[tehsils["code"].astype(str).str.upper() == key.upper()]
    if rows.empty:
        rows = tehsils[tehsils["name"].astype(str).str.lower() == key.lower()]
    if len(rows) != 1:
        hint = tehsils[tehsils["name"].astype(str).str.lower().str.contains(
            re.escape(key.lower()[:4]), regex=True)]
        near = ", ".join(f"{r.code} {r.name}" for r in hint.head(5).itertuples())
        what = "several tehsils are" if len(rows) > 1 else "no tehsil is"
        raise UnknownTehsilError(f"{what} named {key!r}" + (f"; did you mean {near}?" if near else
                                 "; tehsil codes look like PK61701"))
    row = rows.iloc[0]
    districts = boundaries.districts.set_index("code")["name"]
    return TehsilRef(code=str(row["code"]), name=str(row["name"]),
                     district_code=str(row["district_code"]),
                     district=str(districts.get(row["district_code"], row["district_code"])),
                     population_2023=int(row["population_2023"]), geometry=row.geometry)


def call_weights(calls: pd.DataFrame, categories: pd.DataFrame) -> FloatArray:
    """Seriousness weight of each call, from its ``category`` and the category table
    (:func:`geo.categories.read_categories`).

    Raises :class:`CoverageInputError` when the column is missing or a category is unknown.
    """
    if "category" not in calls.columns:
        raise CoverageInputError("calls need a 'category' column to be weighted by seriousness")
    lookup = dict(zip(categories["code"].astype(str), categories["seriousness_weight"].astype(float),
                      strict=True))
    codes = calls["category"].astype(str)
    weights = codes.map(lookup)
    if weights.isna().any():
        unknown = sorted(set(codes[weights.isna()]))
        raise CoverageInputError(f"calls of unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                                 f"{', '.join(unknown[:10])}; known: {', '.join(lookup)}")
    return np.asarray(weights.to_numpy(dtype=np.float64), dtype=np.float64)


def call_serious(calls: pd.DataFrame, categories: pd.DataFrame) -> BoolArray:
    """Whether each call is a serious crime: its ``serious`` column, else the category table."""
    if "serious" in calls.columns:
        return calls["serious"].fillna(False).to_numpy(dtype=bool)
    lookup = dict(zip(categories["code"].astype(str), categories["serious"].astype(bool), strict=True))
    return calls["category"].astype(str).map(lookup).fillna(False).to_numpy(dtype=bool)


def aggregate_demand(lat: npt.ArrayLike, lon: npt.ArrayLike, weight: npt.ArrayLike,
                     serious: npt.ArrayLike, *, res: int = DEFAULT_RES,
                     group: npt.ArrayLike | None = None) -> pd.DataFrame:
    """Weighted calls summed per H3 cell (and per ``group``, e.g. tehsil code).

    Calls with a weight of zero or without a valid position are left out. Returns
    ``[group,] cell (uint64), calls, serious_calls, demand``, sorted by group and cell.

    >>> frame = aggregate_demand([31.5, 31.5, 31.6], [74.3, 74.3, 74.3], [2.0, 10.0, 0.0],
    ...                          [False, True, False])
    >>> frame[["calls", "serious_calls", "demand"]].to_dict("records")
    [{'calls': 2, 'serious_calls': 1, 'demand': 12.0}]
    """
    lat_a = np.asarray(lat, dtype=np.float64)
    lon_a = np.asarray(lon, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    keep = np.isfinite(lat_a) & np.isfinite(lon_a) & (w > 0)
    frame = pd.DataFrame({
        "cell": h3cells.latlng_to_cells(lat_a[keep], lon_a[keep], res),
        "calls": np.ones(int(keep.sum()), dtype=np.int64),
        "serious_calls": np.asarray(serious, dtype=bool)[keep].astype(np.int64),
        "demand": w[keep],
    })
    keys = ["cell"]
    if group is not None:
        frame.insert(0, "group", np.asarray(group)[keep])
        keys = ["group", "cell"]
    return frame.groupby(keys, sort=True, observed=True).sum().reset_index()


def calls_in_tehsil(calls: pd.DataFrame, tehsil: TehsilRef) -> pd.DataFrame:
    """The calls of one tehsil: by the routed ``tehsil_code`` when present, else by position."""
    if "tehsil_code" in calls.columns:
        own: pd.DataFrame = calls[calls["tehsil_code"].astype(str).to_numpy() == tehsil.code]
        return own
    lat, lon = call_coordinates(calls)
    inside = shapely.contains_xy(tehsil.geometry, lon, lat)
    return calls[inside]


def demand_cells(calls: pd.DataFrame, tehsil: TehsilRef, *, categories: pd.DataFrame,
                 res: int = DEFAULT_RES) -> gpd.GeoDataFrame:
    """Seriousness-weighted demand of one tehsil per H3 cell, as cell-centre points.

    Parameters
    ----------
    calls : pandas.DataFrame
        Any call history with ``lat, lon`` (or a point geometry) and ``category``; a
        ``tehsil_code`` column, when present, decides which calls are the tehsil's.
    tehsil : TehsilRef
        The tehsil (:func:`tehsil_ref`).
    categories : pandas.DataFrame
        The category table, for each call's seriousness weight.
    res : int
        H3 resolution of the demand cells.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell`` (hex), ``lat, lon`` (cell centre), ``calls``, ``serious_calls``,
        ``demand`` (sum of weights), point geometry in EPSG:4326; only cells with demand.

    Raises
    ------
    NoDemandError
        The tehsil has no calls, or none with a seriousness weight above zero.
    """
    if not 0 <= res <= h3cells.MAX_RES:
        raise CoverageInputError(f"H3 resolution must lie in 0..{h3cells.MAX_RES}, got {res}")
    mine = calls_in_tehsil(calls, tehsil)
    if mine.empty:
        raise NoDemandError(f"tehsil {tehsil.label} has no calls in this history "
                            f"({len(calls):,} calls in all): there is no demand to plan camera "
                            "sites for; give a longer or wider history with --calls")
    lat, lon = call_coordinates(mine)
    table = aggregate_demand(lat, lon, call_weights(mine, categories), call_serious(mine, categories),
                             res=res)
    if table.empty:
        raise NoDemandError(f"tehsil {tehsil.label} has {len(mine):,} calls but none of a category "
                            "with a seriousness weight above zero (see data/categories.csv)")
    cells = table["cell"].to_numpy(dtype=np.uint64)
    clat, clon = h3cells.cells_to_latlng(cells)
    return gpd.GeoDataFrame({
        "cell": h3cells.hex_strings(cells),
        "lat": clat, "lon": clon,
        "calls": table["calls"].to_numpy(), "serious_calls": table["serious_calls"].to_numpy(),
        "demand": table["demand"].to_numpy(dtype=np.float64),
    }, geometry=gpd.points_from_xy(clon, clat), crs=WGS84)
