"""The call-history generator: a PUCAR-15-like history with ground truth beside it.

:func:`generate_calls` draws when calls happen (:mod:`geo.synth.timing`), what they
are (the category table), where they come from (:mod:`geo.synth.places`), plants
hotspots (:mod:`geo.synth.hotspots`), routes every call with the router in one
vectorised call, picks slow stations and draws the lifecycle
(:mod:`geo.synth.response`). Everything is numpy over whole arrays; Python loops run
over categories, hotspots and months, never over calls. The truth (planted hotspots,
slow stations, faulty records) is returned separately and never as a column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import shapely

from geo import h3cells
from geo.crs import WGS84
from geo.progress import Progress, no_progress
from geo.synth.config import LOCAL_UTC_OFFSET_HOURS, SynthConfig
from geo.synth.hotspots import PlantedHotspot, choose_cells, classes_for, points_in_cells, schedule
from geo.synth.near_repeat import NearRepeatPlan, plant_near_repeats
from geo.synth.places import GEOGRAPHY_SEED, SettlementModel, build_settlements, scatter
from geo.synth.response import draw_lifecycle
from geo.synth.timing import SECONDS_PER_HOUR, Period, draw_times, draw_times_in, hourly_intensity

if TYPE_CHECKING:  # types only: the caller brings the boundary set and the router
    from jurisdictions.boundaries import BoundarySet
    from jurisdictions.router import Router


DEFAULT_START = "2024-01"
PILOT_CALLS = 400_000
"""Size of the fixed pilot sample used to classify stations and pick hotspot cells."""
PHONE_PREFIX = "039"
"""Synthetic caller numbers are ``039`` + 8 digits: a Pakistani mobile-like shape in a
block no operator uses (030x-034x are the operators' prefixes), never to be dialled."""
PHONE_SPACE = 10**8
FOLLOW_UP_SIGMA = 0.6
FOLLOW_UP_SCATTER_M = 20.0
HOAX_SCATTER_M = 15.0
HOAX_RANK_OFFSET = 5.0
MAX_PULLS = 10
BUSY_QUANTILE = 0.75
COLUMNS = ("call_id", "received_at", "lat", "lon", "category", "serious", "caller_phone",
           "station_code", "tehsil_code", "district_code", "region_code", "urban",
           "acknowledged_at", "dispatched_at", "on_scene_at", "closed_at", "out_of_coverage",
           "geometry")
"""Columns of the generated frame, in order. No truth column is among them."""



@dataclass(frozen=True)
class World:
    """What every generation run shares: router, settlements, station classes, pilot.

    Build it with :func:`build_world` (seconds: towns, villages, a routed pilot sample),
    or read a saved one back with :func:`load_world` (about a second); both depend only on
    the router's stations and the settlement settings of a :class:`SynthConfig`
    (:func:`world_key`), so one world serves every seed, scale and period.
    """

    router: Router
    settlements: SettlementModel
    station_urban: npt.NDArray[np.bool_]
    """Per router station row: most of its expected calls come from towns."""
    pilot_lat: npt.NDArray[np.float64]
    pilot_lon: npt.NDArray[np.float64]
    key: tuple[object, ...]
    """:func:`world_key` of the config it was built for."""

    def hierarchy(self) -> dict[str, npt.NDArray[np.str_]]:
        """Per router station row: its station, tehsil, district and region codes."""
        stations = self.router.index.stations
        return {"station_code": np.asarray(self.router.codes, dtype=str),
                **{c: stations[c].to_numpy(dtype=str)
                   for c in ("tehsil_code", "district_code", "region_code")}}

    def covered(self, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
                ) -> npt.NDArray[np.bool_]:
        """Which points some station covers (no nearest-station fallback)."""
        rows, _ = self.router.station_rows(lat, lon)
        return rows >= 0


WORLD_FORMAT = 1
"""Bumped whenever the settlement model or the pilot changes, so disk caches rebuild."""


def world_key(config: SynthConfig) -> tuple[object, ...]:
    """What a world depends on besides the router: the settlement settings of ``config``."""
    return (WORLD_FORMAT, GEOGRAPHY_SEED, PILOT_CALLS, config.urban_call_rate_ratio,
            config.town_scale_m_per_sqrt_person, config.town_scale_min_m,
            config.town_scale_max_m, config.persons_per_village, config.village_scale_m)


def world_file(cache_dir: Path, router_version: str, config: SynthConfig) -> Path:
    """Where the world of a routing-index version and ``config`` is saved in ``cache_dir``."""
    digest = hashlib.sha256(json.dumps([router_version, *world_key(config)]).encode()).hexdigest()
    return Path(cache_dir) / f"synth-world-{digest[:16]}.npz"


def save_world(world: World, path: Path) -> Path:
    """Write a world's arrays (not its router) to ``path`` (atomically)."""
    arrays: dict[str, Any] = {f"s_{k}": np.asarray(v) for k, v in asdict(world.settlements).items()}
    arrays |= {"station_urban": world.station_urban, "pilot_lat": world.pilot_lat,
               "pilot_lon": world.pilot_lon}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def load_world(path: Path, router: Router, config: SynthConfig) -> World | None:
    """The world saved at ``path`` for ``router`` and ``config``, or ``None`` when the file
    holds another station count (a world of another layer)."""
    with np.load(path) as data:
        if data["station_urban"].size != len(router.codes):
            return None
        fields = {f.name: data[f"s_{f.name}"] for f in dataclass_fields(SettlementModel)}
        fields["village_scale_m"] = float(fields["village_scale_m"])
        return World(router, SettlementModel(**fields), data["station_urban"].astype(bool),
                     data["pilot_lat"], data["pilot_lon"], world_key(config))


def build_world(config: SynthConfig, *, router: Router, boundaries: BoundarySet,
                towns: pd.DataFrame) -> World:
    """The world of ``router``'s stations: settlements from the tehsils of ``boundaries``
    (census population) and ``towns`` (``name, lon, lat, population``, e.g. GeoNames'),
    and each station's urban or rural class from a routed pilot sample.
    """
    settlements = build_settlements(
        boundaries.tehsils, towns,
        town_scale_m_per_sqrt_person=config.town_scale_m_per_sqrt_person,
        town_scale_min_m=config.town_scale_min_m, town_scale_max_m=config.town_scale_max_m,
        persons_per_village=config.persons_per_village, village_scale_m=config.village_scale_m)
    pilot = settlements.sample(PILOT_CALLS, np.random.default_rng(GEOGRAPHY_SEED + 1),
                               config.urban_call_rate_ratio)
    rows, _ = router.station_rows(pilot.lat, pilot.lon)
    ok = rows >= 0
    n_st = len(router.codes)
    calls = np.bincount(rows[ok], minlength=n_st)
    urban_calls = np.bincount(rows[ok], weights=pilot.urban[ok], minlength=n_st)
    station_urban = urban_calls > 0.5 * np.maximum(calls, 1)
    return World(router, settlements, station_urban, pilot.lat, pilot.lon, world_key(config))


def _phones(ids: npt.NDArray[np.int64]) -> pd.Series:
    """``039`` + 8 digits for each caller id, built as one Arrow string buffer."""
    n = ids.size
    chars = np.empty((n, 11), dtype=np.uint8)
    chars[:, :3] = np.frombuffer(PHONE_PREFIX.encode(), dtype=np.uint8)
    rest = ids.astype(np.uint32)
    for position in range(10, 2, -1):
        rest, digit = np.divmod(rest, np.uint32(10))
        chars[:, position] = digit.astype(np.uint8) + ord("0")
    offsets = np.arange(0, 11 * n + 1, 11, dtype=np.int32)
    strings = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))
    return pd.Series(strings, dtype=pd.StringDtype("pyarrow", na_value=np.nan))


def _route(lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64],
           alat: npt.NDArray[np.float64], alon: npt.NDArray[np.float64], *,
           world: World, cap: float, rng: np.random.Generator
           ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Route every call; keep at most ``cap`` of them out of coverage.

    One vectorised ``resolve_many`` over all calls; calls beyond the cap (and any the
    router rejects) are pulled halfway toward their settlement until a station covers
    them, then routed again. Returns station rows and the out-of-coverage flags; moves
    ``lat``/``lon`` in place.
    """
    routed = world.router.resolve_many(lat, lon)
    rows = _station_rows(routed["station_code"], world)
    ooc = np.array(routed["out_of_coverage"], dtype=bool)  # a writable copy
    rejected = rows < 0
    allowed = int(cap * lat.size)
    stray = np.flatnonzero(ooc)
    kept = rng.choice(stray, size=min(allowed, stray.size), replace=False)
    fix = np.union1d(np.setdiff1d(stray, kept), np.flatnonzero(rejected))
    moved = fix.copy()
    for _ in range(MAX_PULLS):
        if not fix.size:
            break
        lat[fix] = (lat[fix] + alat[fix]) / 2
        lon[fix] = (lon[fix] + alon[fix]) / 2
        fix = fix[~world.covered(lat[fix], lon[fix])]
    lat[fix], lon[fix] = alat[fix], alon[fix]
    if moved.size:
        again = world.router.resolve_many(lat[moved], lon[moved])
        rows[moved] = _station_rows(again["station_code"], world)
        ooc[moved] = again["out_of_coverage"].to_numpy(dtype=bool)
    if (rows < 0).any():
        raise RuntimeError(f"{int((rows < 0).sum())} calls could not be routed")
    return rows, ooc


def _station_rows(codes: pd.Series, world: World) -> npt.NDArray[np.int64]:
    """Router station rows of station codes (-1 for empty codes: rejected calls).

    Factorised first: a few hundred distinct codes are looked up, not every call's.
    """
    per_call, distinct = pd.factorize(codes)
    rows = pd.Index(world.router.codes).get_indexer(np.asarray(distinct, dtype=str))
    return np.asarray(rows, dtype=np.int64)[per_call]


def _pick_slow(rows: npt.NDArray[np.int64], dispatched: npt.NDArray[np.bool_],
               station_urban: npt.NDArray[np.bool_], count: int,
               rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Slow stations: half urban, half rural, among the busiest quarter of their kind.

    Busy stations carry enough calls for a response-time review to see the slowness.
    """
    load = np.bincount(rows[dispatched], minlength=station_urban.size).astype(np.float64)
    busy = np.zeros(station_urban.size, dtype=bool)
    for kind in (True, False):
        of_kind = (station_urban == kind) & (load > 0)
        if of_kind.any():
            busy |= of_kind & (load >= np.quantile(load[of_kind], BUSY_QUANTILE))
    picks: list[int] = []
    for want_urban, n in ((True, count // 2), (False, count - count // 2)):
        pool = np.flatnonzero(busy & (station_urban == want_urban))
        picks.extend(rng.permutation(pool)[:n].tolist())
    if len(picks) < count:  # one class too small: fill from the other busy stations
        rest = np.setdiff1d(np.flatnonzero(busy), picks)
        picks.extend(rng.permutation(rest)[: count - len(picks)].tolist())
    return np.array(sorted(picks), dtype=np.int64)


def _timestamps(start_us: int, seconds: npt.NDArray[np.float64]) -> pd.Series:
    """UTC timestamps (µs) from seconds after the period start; NaN becomes NaT."""
    us = np.full(seconds.size, np.iinfo(np.int64).min, dtype=np.int64)
    ok = np.isfinite(seconds)
    us[ok] = start_us + np.round(seconds[ok] * 1e6).astype(np.int64)
    return pd.Series(pd.DatetimeIndex(us.view("M8[us]")).tz_localize("UTC"))


def generate_calls(months: int, seed: int, scale: float = 1.0, start: str = DEFAULT_START,
                   config: SynthConfig | None = None, *, world: World, categories: pd.DataFrame,
                   progress: Progress = no_progress, near_repeat: NearRepeatPlan | None = None,
                   end: dt.datetime | None = None) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """A deterministic call history of ``months`` months from ``start`` (``YYYY-MM``, local).

    ``scale`` multiplies the full-scale volume (PUCAR-15, April 2020: 1,879,001 calls in
    30 days); the same ``(months, seed, scale, start, config)`` on the same ``world``
    (:func:`build_world` for ``config``) and ``categories`` (the category table) gives the
    same frame. Returns the calls (columns :data:`COLUMNS`, EPSG:4326 points, sorted by
    ``received_at``) and the ground truth (planted hotspots, slow stations, faulty
    records, surges, counts and the config used) as a JSON-ready dict. ``near_repeat``
    plants near-repeat offspring (:class:`NearRepeatPlan`; ``None``, the default,
    plants none, so existing seeds give the histories they gave before); the plan and
    the offspring's call ids go into the truth as ``near_repeat``.

    ``end`` (an aware time; it replaces ``start``) makes a history that stops there, as a
    live system's would: the ``months`` local months up to and including ``end``'s month
    are drawn as usual, then calls received at or after ``end`` are dropped and lifecycle
    times after it are left empty (those calls are still open at ``end``). The truth
    keeps only the ids of calls kept and records ``end_utc``; the same ``end`` gives the
    same frame.
    """
    if end is not None:
        start = history_start(end, months)
    config = config or SynthConfig()
    if not 0 < scale <= 10:
        raise ValueError(f"scale must lie in (0, 10], got {scale}")
    if world.key != world_key(config):
        raise ValueError("the world was built for other settlement settings than this config; "
                         "build it with the same SynthConfig")
    codes = categories["code"].tolist()
    config.validate(codes)
    near_plan = near_repeat or NearRepeatPlan(branching_ratio=0.0)
    near_plan.validate(codes)
    period = Period.parse(start, months)
    rng_time, rng_place, rng_hoax, rng_follow, rng_hot, rng_resp, rng_phone, rng_slow, rng_near = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(9))
    klass = categories["call_class"].to_numpy(dtype=str)
    basis = categories["basis_calls"].to_numpy(dtype=np.float64)

    # when and what
    progress("drawing times", 0.15)
    lam = hourly_intensity(categories, period, config, scale)
    lam[klass == "case"] /= 1.0 + config.follow_up_share  # follow-ups are added back below
    lam[np.isin(codes, near_plan.categories)] *= near_plan.background_factor  # near repeats too
    cat, seconds = draw_times(lam, rng_time)
    n = cat.size

    # where: genuine and dropped calls from settlements, hoax calls from callers' homes
    progress("placing calls", 0.3)
    lat, lon = np.empty(n), np.empty(n)
    alat, alon = np.empty(n), np.empty(n)
    caller = rng_phone.integers(0, PHONE_SPACE, size=n)
    order = np.argsort(cat, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(cat, minlength=len(codes)))]
    for c, code in enumerate(codes):
        rows = order[bounds[c]:bounds[c + 1]]
        if not rows.size:
            continue
        weight = config.urban_call_rate_ratio * config.affinity(code)
        if klass[c] == "hoax":
            pool = max(50, round(rows.size / config.hoax_calls_per_caller))
            homes = world.settlements.sample(pool, rng_hoax, weight)
            activity = (np.arange(pool) + HOAX_RANK_OFFSET) ** -config.hoax_zipf_exponent
            who = rng_hoax.choice(pool, size=rows.size, p=activity / activity.sum())
            lat[rows], lon[rows] = scatter(homes.lat[who], homes.lon[who],
                                           rng_hoax.gamma(2.0, HOAX_SCATTER_M, rows.size), rng_hoax)
            alat[rows], alon[rows] = homes.anchor_lat[who], homes.anchor_lon[who]
            caller[rows] = rng_hoax.integers(0, PHONE_SPACE, size=pool)[who]
        else:
            loc = world.settlements.sample(rows.size, rng_place, weight)
            lat[rows], lon[rows], alat[rows], alon[rows] = (loc.lat, loc.lon, loc.anchor_lat,
                                                            loc.anchor_lon)

    # near repeats: offspring of robbery/burglary calls, nearby, days later, new callers
    near = plant_near_repeats(seconds, lat, lon, np.isin(cat, [codes.index(c) for c in near_plan.categories]),
                              plan=near_plan, rng=rng_near, end_seconds=period.days * 86_400.0)
    near_first, n = n, n + len(near)
    cat, alat, alon = near.inherit(cat), near.inherit(alat), near.inherit(alon)
    seconds, lat, lon = np.r_[seconds, near.seconds], np.r_[lat, near.lat], np.r_[lon, near.lon]
    caller = np.r_[caller, rng_near.integers(0, PHONE_SPACE, size=len(near))]

    # follow-up calls: same caller, same place, minutes later, same category
    parents = np.flatnonzero((klass[cat] == "case") & (rng_follow.random(n) < config.follow_up_share))
    delay = config.follow_up_median_s * np.exp(FOLLOW_UP_SIGMA * rng_follow.standard_normal(parents.size))
    f_lat, f_lon = scatter(lat[parents], lon[parents],
                           rng_follow.gamma(2.0, FOLLOW_UP_SCATTER_M, parents.size), rng_follow)
    inside = seconds[parents] + delay < period.days * 86_400.0
    parents, delay, f_lat, f_lon = parents[inside], delay[inside], f_lat[inside], f_lon[inside]

    # planted hotspots
    progress("planting hotspots", 0.4)
    plan = config.hotspots
    hot_classes = classes_for(months)
    cells = choose_cells(world.pilot_lat, world.pilot_lon, count=plan.per_class * len(hot_classes),
                         plan=plan, rng=rng_hot, covered=world.covered)
    c_lat, c_lon = h3cells.cells_to_latlng(cells)
    planted: list[PlantedHotspot] = [
        PlantedHotspot(f"H{i + 1:02d}", hot_classes[i // plan.per_class], int(cell),
                       float(c_lat[i]), float(c_lon[i]),
                       schedule(hot_classes[i // plan.per_class], months, plan, scale))
        for i, cell in enumerate(cells.tolist())]
    hot_cats = [codes.index(c) for c in plan.categories]
    hot_p = basis[hot_cats] / basis[hot_cats].sum()
    month_hours = [(period.month_start(k) - period.start).days * 24 for k in range(months + 1)]
    h_cat: list[npt.NDArray[np.int64]] = []
    h_sec: list[npt.NDArray[np.float64]] = []
    h_id: list[npt.NDArray[np.int64]] = []
    for i, spot in enumerate(planted):
        for k, expected in enumerate(spot.expected):
            count = round(expected)  # exactly as planned: the truth is not noisy
            which = rng_hot.choice(len(hot_cats), size=count, p=hot_p)
            for j, c in enumerate(hot_cats):
                m = int((which == j).sum())
                h_sec.append(draw_times_in(lam[c], month_hours[k], month_hours[k + 1], m, rng_hot))
                h_cat.append(np.full(m, c, dtype=np.int64))
                h_id.append(np.full(m, i, dtype=np.int64))
    hcat, hsec, hid = np.concatenate(h_cat), np.concatenate(h_sec), np.concatenate(h_id)
    h_lat, h_lon = points_in_cells(cells[hid], plan.res, rng_hot)

    # all calls together
    cat = np.concatenate([cat, cat[parents], hcat])
    seconds = np.concatenate([seconds, seconds[parents] + delay, hsec])
    lat = np.concatenate([lat, f_lat, h_lat])
    lon = np.concatenate([lon, f_lon, h_lon])
    alat = np.concatenate([alat, alat[parents], h_lat])
    alon = np.concatenate([alon, alon[parents], h_lon])
    caller = np.concatenate([caller, caller[parents], rng_hot.integers(0, PHONE_SPACE, hcat.size)])
    hotspot_of = np.concatenate([np.full(n + parents.size, -1, dtype=np.int64), hid])
    n = cat.size

    # route: one vectorised call, strays beyond the cap pulled in and routed again
    progress("routing calls", 0.5)
    station_row, out_of_coverage = _route(lat, lon, alat, alon, world=world,
                                          cap=config.max_out_of_coverage_share, rng=rng_place)
    urban = world.station_urban[station_row]

    # response
    progress("drawing response times", 0.7)
    call_class = klass[cat]
    slow_rows = _pick_slow(station_row, call_class == "case", world.station_urban,
                           config.slow_stations, rng_slow)
    is_slow = np.zeros(len(world.router.codes), dtype=bool)
    is_slow[slow_rows] = True
    local_hour = (np.floor(seconds / SECONDS_PER_HOUR).astype(np.int64)) % 24
    serious_by_cat = categories["serious"].to_numpy(dtype=bool)
    life = draw_lifecycle(call_class=call_class, urban=urban, serious=serious_by_cat[cat],
                          local_hour=local_hour, slow=is_slow[station_row], config=config,
                          rng=rng_resp)

    # assemble, in time order
    progress("assembling", 0.85)
    order = np.argsort(seconds, kind="stable")
    start_us = int(period.start_utc.value // 1000)
    rec = seconds[order]
    frame = pd.DataFrame({
        "call_id": np.arange(1, n + 1, dtype=np.int64),
        "received_at": _timestamps(start_us, rec),
        "lat": lat[order], "lon": lon[order],
        "category": pd.Categorical.from_codes(cat[order], categories=pd.Index(codes)),
        "serious": serious_by_cat[cat[order]],
        "caller_phone": _phones(caller[order]),
    })
    for column, values in world.hierarchy().items():
        labels, per_station = np.unique(values, return_inverse=True)
        frame[column] = pd.Categorical.from_codes(per_station[station_row[order]],
                                                  categories=pd.Index(labels))
    frame["urban"] = urban[order]
    frame["acknowledged_at"] = _timestamps(start_us, rec + life.acknowledged[order])
    frame["dispatched_at"] = _timestamps(start_us, rec + life.dispatched[order])
    frame["on_scene_at"] = _timestamps(start_us, rec + life.on_scene[order])
    frame["closed_at"] = _timestamps(start_us, rec + life.closed[order])
    frame["out_of_coverage"] = out_of_coverage[order]
    calls = gpd.GeoDataFrame(frame, geometry=shapely.points(lon[order], lat[order]), crs=WGS84)

    progress("writing truth", 0.95)
    call_id_of = np.empty(n, dtype=np.int64)
    call_id_of[order] = calls["call_id"].to_numpy()
    truth = _truth(
        seed=seed, scale=scale, period=period, config=config, calls=calls, codes=codes,
        planted=planted, hotspot_of=hotspot_of, call_id_of=call_id_of,
        slow_rows=slow_rows, world=world, station_row=station_row, call_class=call_class,
        missing=life.missing_on_scene, early=life.on_scene_before_dispatched)
    truth["near_repeat"] = near.truth(near_plan, call_id_of, near_first)
    if end is not None:
        calls, truth = cut_at(calls, truth, pd.Timestamp(end).tz_convert("UTC"))
    progress("done", 1.0)
    return calls, truth


def history_start(end: dt.datetime, months: int) -> str:
    """``YYYY-MM`` of the first of ``months`` local months ending with ``end``'s month."""
    if end.tzinfo is None:
        raise ValueError("end must be an aware time (UTC or with an offset)")
    local = pd.Timestamp(end).tz_convert("UTC").tz_localize(None) + pd.Timedelta(
        hours=LOCAL_UTC_OFFSET_HOURS)
    first = local.year * 12 + local.month - 1 - (months - 1)
    return f"{first // 12:04d}-{first % 12 + 1:02d}"


LIFECYCLE_COLUMNS = ("acknowledged_at", "dispatched_at", "on_scene_at", "closed_at")


def cut_at(calls: gpd.GeoDataFrame, truth: dict[str, Any], end: pd.Timestamp
           ) -> tuple[gpd.GeoDataFrame, dict[str, Any]]:
    """The history as it stands at ``end``: later calls dropped, later lifecycle times
    empty, the truth's call ids and counts restricted to the calls kept."""
    kept = calls.loc[calls["received_at"] < end].copy()
    for column in LIFECYCLE_COLUMNS:
        kept[column] = kept[column].where(kept[column] < end)
    last_id = int(kept["call_id"].max()) if len(kept) else 0  # ids follow received_at

    def ids(values: list[int]) -> list[int]:
        return [i for i in values if i <= last_id]

    local = (kept["received_at"].dt.tz_convert(None)
             + pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)).dt.strftime("%Y-%m").to_numpy()
    month_of = dict(zip(kept["call_id"].tolist(), local.tolist(), strict=True))
    for spot in truth["hotspots"]:
        spot["call_ids"] = ids(spot["call_ids"])
        planted = dict.fromkeys(spot["planted_calls"], 0)
        for label in map(month_of.__getitem__, spot["call_ids"]):
            planted[label] += 1
        spot["planted_calls"] = planted
    for fault in truth["faults"].values():
        fault["call_ids"] = ids(fault["call_ids"])
    near = truth["near_repeat"]
    if "call_ids" in near:
        pairs = [(c, p) for c, p in zip(near["call_ids"], near["parent_call_ids"], strict=True)
                 if c <= last_id]
        near["call_ids"] = [c for c, _ in pairs]
        near["parent_call_ids"] = [p for _, p in pairs]
        near["offspring_calls"] = len(pairs)
    codes = list(truth["counts"]["by_category"])
    by_category = kept["category"].astype(str).value_counts().reindex(codes).fillna(0).astype(int)
    open_calls = int(kept["closed_at"].isna().sum())
    truth["counts"].update(calls=len(kept), out_of_coverage=int(kept["out_of_coverage"].sum()),
                           by_category={k: int(v) for k, v in by_category.items()},
                           open_at_end=open_calls)
    truth["end_utc"] = end.isoformat()
    truth["period_utc"] = [truth["period_utc"][0], end.isoformat()]
    return kept, truth


def _truth(*, seed: int, scale: float, period: Period, config: SynthConfig,
           calls: gpd.GeoDataFrame, codes: list[str], planted: list[PlantedHotspot],
           hotspot_of: npt.NDArray[np.int64], call_id_of: npt.NDArray[np.int64],
           slow_rows: npt.NDArray[np.int64], world: World,
           station_row: npt.NDArray[np.int64], call_class: npt.NDArray[np.str_],
           missing: npt.NDArray[np.bool_], early: npt.NDArray[np.bool_]) -> dict[str, Any]:
    """The ground truth as a JSON-ready dict (see :func:`generate_calls`)."""
    labels = period.labels()
    # calls are in call_id order (1..n), so row = call_id - 1
    month_by_call = np.searchsorted(
        np.array([(period.month_start(k) - period.start).days * 86_400 for k in range(1, period.months)]),
        (calls["received_at"] - period.start_utc).dt.total_seconds().to_numpy(), side="right")
    hotspots = []
    for i, spot in enumerate(planted):
        rows = np.flatnonzero(hotspot_of == i)
        ids = np.sort(call_id_of[rows])
        per_month = np.bincount(month_by_call[ids - 1], minlength=period.months)
        first = rows[0] if rows.size else None
        where = world.router.index.stations.iloc[station_row[first]] if first is not None else None
        hotspots.append({
            "id": spot.id, "class": spot.klass,
            "h3": str(h3cells.to_hex(np.array([spot.cell], np.uint64))[0]),
            "res": config.hotspots.res, "lat": spot.lat, "lon": spot.lon,
            "station_code": None if where is None else str(where["code"]),
            "tehsil_code": None if where is None else str(where["tehsil_code"]),
            "district_code": None if where is None else str(where["district_code"]),
            "active_months": [m for m, e in zip(labels, spot.expected, strict=True) if e > 0],
            "expected_extra_calls": dict(zip(labels, spot.expected, strict=True)),
            "planted_calls": dict(zip(labels, per_month.tolist(), strict=True)),
            "categories": list(config.hotspots.categories),
            "call_ids": ids.tolist(),
        })
    case = call_class == "case"
    slow = [{"station_code": str(world.router.codes[r]), "urban": bool(world.station_urban[r]),
             "factor": config.slow_factor,
             "dispatched_calls": int(((station_row == r) & case).sum())} for r in slow_rows]
    surges = [{"name": s.name, "day": s.day.isoformat(), "factor": s.factor,
               "categories": list(s.categories), "before_days": s.before_days,
               "after_days": s.after_days}
              for s in config.surges
              if period.start <= s.day < period.end]
    by_category = calls["category"].value_counts().reindex(codes).fillna(0).astype(int)
    return {
        "generator": "geo.synth",
        "seed": seed, "scale": scale, "start": labels[0], "months": period.months,
        "period_utc": [period.start_utc.isoformat(), period.end_utc.isoformat()],
        "local_utc_offset_hours": LOCAL_UTC_OFFSET_HOURS,
        "hotspot_step": "month",
        "hotspots": hotspots,
        "slow_stations": slow,
        "faults": {
            "missing_on_scene": {"rate": config.missing_on_scene_rate,
                                 "call_ids": np.sort(call_id_of[missing]).tolist()},
            "on_scene_before_dispatched": {"rate": config.on_scene_before_dispatch_rate,
                                           "call_ids": np.sort(call_id_of[early]).tolist()},
        },
        "surges": surges,
        "counts": {
            "calls": len(calls),
            "by_category": {k: int(v) for k, v in by_category.items()},
            "out_of_coverage": int(calls["out_of_coverage"].sum()),
            "urban_stations": int(world.station_urban.sum()),
            "stations": len(world.station_urban),
        },
        "config": config.to_dict(),
    }


def save_calls(calls: gpd.GeoDataFrame, path: Path) -> Path:
    """Write the calls as GeoParquet (atomically: a temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    calls.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def save_truth(truth: dict[str, Any], path: Path) -> Path:
    """Write the truth as JSON, beside the calls but never inside them."""
    path = Path(path)
    path.write_text(json.dumps(truth, indent=1, sort_keys=False), encoding="utf-8")
    return path


def idempotency_key(call_id: int, received_at: pd.Timestamp, lat: float, lon: float,
                    category: str) -> str:
    """A stable ``Idempotency-Key`` for a generated call (same call, same key; another
    seed's call with the same id gets another key)."""
    digest = hashlib.sha256(f"{call_id}|{received_at.isoformat()}|{lat:.7f}|{lon:.7f}|{category}"
                            .encode()).hexdigest()[:16]
    return f"synth-{call_id}-{digest}"
