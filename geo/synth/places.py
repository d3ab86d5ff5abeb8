"""Where calls come from: a settlement model of towns and villages per tehsil.

Calls follow census-2023 population per tehsil, split into urban and rural residents.
Urban calls concentrate around the tehsil's towns (the caller's table; the application
passes GeoNames', ``api.shipped.load_towns``), shared out by town population, with a
distance-decay scatter: radius ~ Gamma(2, s), whose 2-D density falls off as
``exp(-r/s)``, with ``s`` growing with the square root of the town's residents (a
city's area grows with its population). Rural calls come from villages spread evenly
over the tehsil (one per ``persons_per_village`` residents, log-normal sizes) with a
short scatter. The model is seeded by a fixed constant, not by the call seed: the
geography stays the same and only the history changes between seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo.crs import WGS84

GEOGRAPHY_SEED = 20_230_301
"""Seed of the settlement layout (census 2023 reference date, 1 March 2023)."""

M_PER_DEG_LAT = 110_574.0
M_PER_DEG_LON_EQ = 111_320.0
VILLAGE_SIZE_SIGMA = 0.8


@dataclass(frozen=True)
class Location:
    """Sampled call locations with the settlement each came from."""

    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    anchor_lat: npt.NDArray[np.float64]
    anchor_lon: npt.NDArray[np.float64]
    urban: npt.NDArray[np.bool_]
    """True for calls from a town (urban settlement), False for villages."""


@dataclass(frozen=True)
class SettlementModel:
    """Towns and villages with their weights, grouped by tehsil (row order of ``tehsils``).

    ``*_cum`` arrays hold ``tehsil index + cumulative share within the tehsil``, so one
    ``searchsorted`` on ``t + u`` picks a settlement of tehsil ``t`` for many calls.
    """

    tehsil_codes: npt.NDArray[np.str_]
    urban_pop: npt.NDArray[np.float64]
    rural_pop: npt.NDArray[np.float64]
    town_lat: npt.NDArray[np.float64]
    town_lon: npt.NDArray[np.float64]
    town_scale_m: npt.NDArray[np.float64]
    town_cum: npt.NDArray[np.float64]
    village_lat: npt.NDArray[np.float64]
    village_lon: npt.NDArray[np.float64]
    village_cum: npt.NDArray[np.float64]
    village_scale_m: float

    @property
    def n_tehsils(self) -> int:
        return len(self.tehsil_codes)

    def sample(self, n: int, rng: np.random.Generator, urban_weight: float) -> Location:
        """``n`` call locations; urban residents weigh ``urban_weight`` times rural ones."""
        t_count = self.n_tehsils
        weights = np.concatenate([self.urban_pop * urban_weight, self.rural_pop])
        unit = rng.choice(2 * t_count, size=n, p=weights / weights.sum())
        urban = unit < t_count
        tehsil = np.where(urban, unit, unit - t_count).astype(np.float64)
        u = rng.random(n)
        town = np.minimum(np.searchsorted(self.town_cum, tehsil + u, side="right"),
                          len(self.town_cum) - 1)
        village = np.minimum(np.searchsorted(self.village_cum, tehsil + u, side="right"),
                             len(self.village_cum) - 1)
        anchor_lat = np.where(urban, self.town_lat[town], self.village_lat[village])
        anchor_lon = np.where(urban, self.town_lon[town], self.village_lon[village])
        scale = np.where(urban, self.town_scale_m[town], self.village_scale_m)
        lat, lon = scatter(anchor_lat, anchor_lon, rng.gamma(2.0, scale), rng)
        return Location(lat, lon, anchor_lat, anchor_lon, urban)


def scatter(lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64],
            radius_m: npt.NDArray[np.float64], rng: np.random.Generator
            ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Points at ``radius_m`` from ``(lat, lon)`` in uniformly random directions."""
    theta = rng.uniform(0.0, 2 * np.pi, size=lat.size)
    dlat = radius_m * np.cos(theta) / M_PER_DEG_LAT
    dlon = radius_m * np.sin(theta) / (M_PER_DEG_LON_EQ * np.cos(np.radians(lat)))
    return lat + dlat, lon + dlon


def _grouped_cumulative(group: npt.NDArray[np.int64], weight: npt.NDArray[np.float64]
                        ) -> npt.NDArray[np.float64]:
    """``group + cumulative share within the group`` for rows sorted by group."""
    totals = np.bincount(group, weights=weight)
    share = weight / totals[group]
    cum = np.cumsum(share)
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    offset = np.repeat(cum[starts] - share[starts], np.diff(np.r_[starts, group.size]))
    within = np.minimum(cum - offset, 1.0)
    within[np.r_[starts[1:] - 1, group.size - 1]] = 1.0  # close each group exactly
    return np.asarray(group + within, dtype=np.float64)


def build_settlements(tehsils: gpd.GeoDataFrame, towns: pd.DataFrame, *,
                      town_scale_m_per_sqrt_person: float, town_scale_min_m: float,
                      town_scale_max_m: float, persons_per_village: float,
                      village_scale_m: float) -> SettlementModel:
    """The settlement model of ``tehsils`` (``code, urban_2023, rural_2023, geometry``).

    ``towns`` has ``name, lon, lat, population`` (GeoNames). A tehsil with urban
    residents but no town gets one at its representative interior point.
    """
    rng = np.random.default_rng(GEOGRAPHY_SEED)
    tehsils = tehsils.sort_values("code").reset_index(drop=True)
    polygons = np.asarray(tehsils.to_crs(WGS84).geometry.values, dtype=object)
    shapely.prepare(polygons)
    urban_pop = tehsils["urban_2023"].to_numpy(dtype=np.float64)
    rural_pop = tehsils["rural_2023"].to_numpy(dtype=np.float64)

    # towns: each GeoNames point in the tehsil that contains it
    hit = shapely.STRtree(polygons).query(
        shapely.points(towns["lon"].to_numpy(), towns["lat"].to_numpy()), predicate="within")
    town_t = hit[1].astype(np.int64)
    t_lat = towns["lat"].to_numpy(dtype=np.float64)[hit[0]]
    t_lon = towns["lon"].to_numpy(dtype=np.float64)[hit[0]]
    t_pop = np.maximum(towns["population"].to_numpy(dtype=np.float64)[hit[0]], 1.0)
    lonely = np.setdiff1d(np.flatnonzero(urban_pop > 0), town_t)
    if lonely.size:
        inner = shapely.get_coordinates(shapely.point_on_surface(polygons[lonely]))
        town_t = np.r_[town_t, lonely]
        t_lon, t_lat = np.r_[t_lon, inner[:, 0]], np.r_[t_lat, inner[:, 1]]
        t_pop = np.r_[t_pop, urban_pop[lonely]]
    keep = urban_pop[town_t] > 0
    order = np.lexsort((np.arange(town_t.size)[keep], town_t[keep]))
    town_t, t_lat, t_lon, t_pop = (a[keep][order] for a in (town_t, t_lat, t_lon, t_pop))
    town_cum = _grouped_cumulative(town_t, t_pop)
    residents = urban_pop[town_t] * t_pop / np.bincount(town_t, weights=t_pop)[town_t]
    town_scale = np.clip(town_scale_m_per_sqrt_person * np.sqrt(residents),
                         town_scale_min_m, town_scale_max_m)

    # villages: spread evenly over each tehsil (rejection sampling in its bounding box)
    v_lat: list[npt.NDArray[np.float64]] = []
    v_lon: list[npt.NDArray[np.float64]] = []
    v_t: list[npt.NDArray[np.int64]] = []
    for t, polygon in enumerate(polygons):
        count = max(3, round(rural_pop[t] / persons_per_village))
        minx, miny, maxx, maxy = shapely.bounds(polygon)
        found = np.empty((0, 2))
        while len(found) < count:
            cand = rng.uniform((minx, miny), (maxx, maxy), size=(count * 3, 2))
            found = np.vstack([found, cand[shapely.contains_xy(polygon, cand[:, 0], cand[:, 1])]])
        v_lon.append(found[:count, 0])
        v_lat.append(found[:count, 1])
        v_t.append(np.full(count, t, dtype=np.int64))
    village_t = np.concatenate(v_t)
    village_w = rng.lognormal(0.0, VILLAGE_SIZE_SIGMA, size=village_t.size)
    return SettlementModel(
        tehsil_codes=tehsils["code"].to_numpy(dtype=str),
        urban_pop=urban_pop, rural_pop=rural_pop,
        town_lat=t_lat, town_lon=t_lon, town_scale_m=town_scale, town_cum=town_cum,
        village_lat=np.concatenate(v_lat), village_lon=np.concatenate(v_lon),
        village_cum=_grouped_cumulative(village_t, village_w), village_scale_m=village_scale_m,
    )
