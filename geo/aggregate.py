"""Calls aggregated to H3 cells of a study area: counts, space-time cubes, response times.

A *study area* is a station, tehsil, district, region or the whole province; its cells
at resolution ``res`` (5–10) are every cell whose centre lies in the area's polygon
(:func:`study_area_cells`), **including cells without a single call**. Hot-spot
statistics compare each cell with the whole area, so empty ground has to be part of it:
dropping zero cells inflates the mean and hides cold spots.

Every function here takes a pandas (or geopandas) frame of calls, or a Dask /
dask-geopandas frame for histories larger than memory. Both go through the same
per-partition function (:func:`call_keys`) and the same group-by, so the Dask answer is
the pandas answer; only the per-cell table (small: one row per cell, or per cell and
time step) is brought back to the client, and the statistics run on it.

Calls need ``lat`` and ``lon`` (WGS84) or a point geometry, and ``received_at``.
Times are read in Pakistan time (``Asia/Karachi``): time-zone-aware values are
converted, naive values are taken as local already. Hours, weekdays and time steps are
therefore local.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo import h3cells
from geo.h3cells import Cells

if TYPE_CHECKING:
    import shapely

    from jurisdictions.boundaries import BoundarySet

LOCAL_TZ = "Asia/Karachi"
"""Time zone in which hours, weekdays and time steps are counted."""

MIN_RES, MAX_RES = 5, 10
"""Resolutions supported for analysis (res 5 ≈ 250 km², res 10 ≈ 0.015 km²)."""

AREA_LEVELS = ("province", "region", "district", "tehsil", "station")
"""Study-area levels, coarse to fine."""

Step = Literal["week", "month"]
_WEEK_ORIGIN = pd.Timestamp("1970-01-05")  # a Monday: weeks run Monday to Sunday


class HotspotError(Exception):
    """Base class of the errors raised by the hot-spot analytics."""


class CallDataError(HotspotError, ValueError):
    """The calls cannot be analysed as given (missing columns, unreadable times)."""


class StudyAreaError(HotspotError, ValueError):
    """The study area is unknown or malformed."""


# --------------------------------------------------------------------------- areas


@dataclass(frozen=True)
class AreaRef:
    """A study area by level and code (``district:PK6xx``), or the whole province."""

    level: str
    code: str | None = None

    @classmethod
    def parse(cls, text: str) -> AreaRef:
        """Parse ``LEVEL:CODE`` (or ``province``).

        >>> AreaRef.parse("district:PK605")
        AreaRef(level='district', code='PK605')
        >>> AreaRef.parse("province")
        AreaRef(level='province', code=None)
        """
        level, _, raw_code = text.strip().partition(":")
        level = level.strip().lower()
        if level not in AREA_LEVELS:
            raise StudyAreaError(f"unknown area level {level!r}; expected one of {', '.join(AREA_LEVELS)}")
        code = raw_code.strip() or None
        if level != "province" and code is None:
            raise StudyAreaError(f"area {text!r} needs a code: {level}:CODE")
        return cls(level, code)

    def __str__(self) -> str:
        return self.level if self.code is None else f"{self.level}:{self.code}"


def area_geometry(area: AreaRef | str, boundaries: BoundarySet) -> shapely.Geometry:
    """Polygon (EPSG:4326) of a study area in a boundary set.

    The caller passes the set it serves (the database's, or the shipped one in a notebook);
    this module reads no file. Raises :class:`StudyAreaError` for a code the set lacks.
    """
    import shapely  # noqa: PLC0415 -- shapely is already loaded with the boundary set

    ref = AreaRef.parse(area) if isinstance(area, str) else area
    layer = boundaries.province if ref.level == "province" else boundaries.layer(ref.level)
    if ref.code is None:
        return shapely.union_all(layer.geometry.values)
    rows = layer[layer["code"] == ref.code]
    if rows.empty:
        raise StudyAreaError(f"no {ref.level} with code {ref.code!r} in boundary set {boundaries.version}")
    geometry: shapely.Geometry = rows.geometry.iloc[0]
    return geometry


def check_resolution(res: int) -> int:
    """``res`` if it is an analysis resolution (5–10), else :class:`ValueError`."""
    if not MIN_RES <= int(res) <= MAX_RES:
        raise ValueError(f"resolution {res} outside {MIN_RES}–{MAX_RES}")
    return int(res)


def study_area_cells(area: AreaRef | str | shapely.Geometry, res: int,
                     boundaries: BoundarySet | None = None) -> Cells:
    """Every H3 cell at ``res`` whose centre lies in the area (sorted ``uint64``).

    ``area`` is a (Multi)Polygon in longitude/latitude, or an :class:`AreaRef` or
    ``LEVEL:CODE`` string of an area in ``boundaries`` (then required). Cells are found by
    H3's centre-containment rule for the whole polygon at once (no per-cell Python); a cell
    without calls is still a cell.
    """
    check_resolution(res)
    if isinstance(area, AreaRef | str):
        if boundaries is None:
            raise StudyAreaError(f"the study area {area} is named by level and code: "
                                 "give the boundary set it belongs to")
        geometry = area_geometry(area, boundaries)
    else:
        geometry = area
    cells = h3cells.polygon_to_cells(geometry, res)
    if cells.size == 0:
        raise StudyAreaError(f"the area holds no cell centre at resolution {res}; use a finer one")
    return cells


def cells_resolution(cells: Cells) -> int:
    """The one resolution of a cell set (:class:`ValueError` if mixed or empty)."""
    res = np.unique(h3cells.resolution_of(cells))
    if res.size != 1:
        raise ValueError(f"cells must share one resolution, found {res.tolist()}")
    return int(res[0])


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class CallFilter:
    """Which calls to count: categories, a time window, hours of day and weekdays.

    Times are local (:data:`LOCAL_TZ`); ``start`` is inclusive and ``until`` exclusive.
    ``hours`` are 0–23 and ``weekdays`` 0–6 with Monday 0. ``None`` means no filter.
    """

    categories: tuple[str, ...] | None = None
    start: pd.Timestamp | None = None
    until: pd.Timestamp | None = None
    hours: tuple[int, ...] | None = None
    weekdays: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.hours is not None and not set(self.hours) <= set(range(24)):
            raise ValueError(f"hours must be in 0..23, got {self.hours}")
        if self.weekdays is not None and not set(self.weekdays) <= set(range(7)):
            raise ValueError(f"weekdays must be in 0..6 (Monday 0), got {self.weekdays}")
        for name in ("start", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _local_timestamp(value))

    def mask(self, frame: pd.DataFrame, local: pd.Series) -> npt.NDArray[np.bool_]:
        """Rows of ``frame`` (with local times ``local``) that pass the filter."""
        keep = np.ones(len(frame), dtype=bool)
        if self.categories is not None:
            if "category" not in frame.columns:
                raise CallDataError("a category filter needs a 'category' column")
            keep &= frame["category"].isin(self.categories).to_numpy()
        if self.start is not None:
            keep &= (local >= self.start).to_numpy(dtype=bool, na_value=False)
        if self.until is not None:
            keep &= (local < self.until).to_numpy(dtype=bool, na_value=False)
        if self.hours is not None:
            keep &= local.dt.hour.isin(self.hours).to_numpy(dtype=bool, na_value=False)
        if self.weekdays is not None:
            keep &= local.dt.day_of_week.isin(self.weekdays).to_numpy(dtype=bool, na_value=False)
        return keep


def _local_timestamp(value: object) -> pd.Timestamp:
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = ts.tz_convert(LOCAL_TZ).tz_localize(None)
    return ts


def local_times(values: pd.Series) -> pd.Series:
    """Times as naive local (Pakistan) timestamps; strings are parsed as ISO 8601."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        try:
            values = pd.to_datetime(values, format="ISO8601")
        except (ValueError, TypeError):
            try:  # mixed UTC offsets parse only as UTC
                values = pd.to_datetime(values, format="ISO8601", utc=True)
            except (ValueError, TypeError) as exc:
                raise CallDataError(f"cannot read times in {values.name!r}: {exc}") from exc
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert(LOCAL_TZ).dt.tz_localize(None)
    return values


def step_index(local: pd.Series, step: Step) -> npt.NDArray[np.int64]:
    """Integer time step of each local time: months since 1970-01, or weeks since the
    Monday 1970-01-05 (ISO weeks, Monday to Sunday). Missing times give ``-2**62``."""
    missing = local.isna().to_numpy()
    if step == "month":
        out = ((local.dt.year - 1970) * 12 + local.dt.month - 1).to_numpy(dtype=np.float64, na_value=0)
    elif step == "week":
        days = (local - _WEEK_ORIGIN).dt.days.to_numpy(dtype=np.float64, na_value=0)
        out = np.floor_divide(days, 7)
    else:
        raise ValueError(f"step must be 'week' or 'month', got {step!r}")
    result: npt.NDArray[np.int64] = out.astype(np.int64)
    result[missing] = -(2**62)
    return result


def step_starts(steps: npt.NDArray[np.int64], step: Step) -> pd.DatetimeIndex:
    """Local start time of each integer time step (inverse of :func:`step_index`)."""
    s = np.asarray(steps, dtype=np.int64)
    if step == "month":
        return pd.DatetimeIndex(pd.to_datetime({"year": 1970 + s // 12, "month": s % 12 + 1, "day": 1}))
    return pd.DatetimeIndex(_WEEK_ORIGIN + pd.to_timedelta(s * 7, unit="D"))


# --------------------------------------------------------------------------- per partition


def call_coordinates(frame: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``(lat, lon)`` of calls from ``lat``/``lon`` columns or a point geometry."""
    if {"lat", "lon"} <= set(frame.columns):
        return (pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan),
                pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan))
    geometry = getattr(frame, "geometry", None) if "geometry" in frame.columns else None
    if geometry is None:
        raise CallDataError("calls need 'lat' and 'lon' columns or a point geometry")
    if geometry.crs is not None and geometry.crs.to_epsg() != 4326:
        geometry = geometry.to_crs(4326)
    return geometry.y.to_numpy(dtype=np.float64), geometry.x.to_numpy(dtype=np.float64)


def call_keys(frame: pd.DataFrame, res: int, where: CallFilter | None = None,
              step: Step | None = None, response: ResponseSpec | None = None) -> pd.DataFrame:
    """Per call that passes ``where``: its cell, and optionally its time step and
    response time (the one function every reduction maps over). A call without a valid
    position or reception time gets cell 0, which no study area holds, so it is
    counted as ``outside``.

    Columns: ``cell`` (uint64); ``step`` (int64) with ``step``; with ``response``,
    ``seconds`` (int64 response time, −1 if missing or negative), ``valid``, ``assessed``
    (an SLA applies) and ``over`` (later than its SLA) as int64 0/1.
    """
    if "received_at" not in frame.columns:
        raise CallDataError("calls need a 'received_at' column")
    local = local_times(frame["received_at"])
    lat, lon = call_coordinates(frame)
    placed = (np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
              & local.notna().to_numpy())
    keep = where.mask(frame, local) if where is not None else np.ones(len(frame), dtype=bool)
    cell = np.zeros(int(keep.sum()), dtype=np.uint64)  # 0 is no H3 cell: never in a study area
    cell[placed[keep]] = h3cells.latlng_to_cells(lat[keep & placed], lon[keep & placed], res)
    out: dict[str, Any] = {"cell": cell}
    if step is not None:
        out["step"] = step_index(local[keep], step)
    if response is not None:
        out.update(response.keys(frame.loc[keep], local[keep]))
    return pd.DataFrame(out)


def _keys_meta(step: Step | None, response: ResponseSpec | None) -> pd.DataFrame:
    meta: dict[str, Any] = {"cell": np.empty(0, np.uint64)}
    if step is not None:
        meta["step"] = np.empty(0, np.int64)
    if response is not None:
        meta.update({name: np.empty(0, np.int64) for name in ("seconds", "valid", "assessed", "over")})
    return pd.DataFrame(meta)


def is_dask(obj: object) -> bool:
    """Whether ``obj`` is a Dask (or dask-geopandas) DataFrame."""
    dd = sys.modules.get("dask.dataframe")
    return dd is not None and isinstance(obj, dd.DataFrame)


def _keys(calls: Any, res: int, where: CallFilter | None, step: Step | None,
          response: ResponseSpec | None) -> Any:
    """Key frame of every call: pandas eagerly, Dask lazily (same function per partition)."""
    if is_dask(calls):
        return calls.map_partitions(call_keys, res, where, step, response,
                                    meta=_keys_meta(step, response))
    return call_keys(calls, res, where, step, response)


def _compute(*things: Any) -> tuple[Any, ...]:
    """Compute Dask objects together (one pass over the data); pandas passes through."""
    if any(hasattr(t, "dask") for t in things):
        from dask.base import compute  # noqa: PLC0415 -- only when Dask objects are given

        return tuple(compute(*things))
    return things


def as_study_cells(cells: Cells) -> Cells:
    """Cells as an ascending, duplicate-free ``uint64`` array (the order every result uses)."""
    c = np.asarray(cells, dtype=np.uint64)
    if c.size == 0:
        raise StudyAreaError("the study area has no cells")
    if c.size > 1 and not bool(np.all(c[1:] > c[:-1])):
        c = np.unique(c)
    return c


# --------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class CellCounts:
    """Calls per study-area cell, and the selected calls that no cell counted.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per study-area cell in ascending cell order: ``cell`` (uint64), ``h3``
        (hex string) and ``count`` (int64, 0 for empty cells).
    outside : int
        Selected calls not counted: outside the area, or without a valid position or
        reception time (reported beside a map so nobody mistakes them for zeros).
    """

    frame: pd.DataFrame
    outside: int


def cell_counts(calls: Any, cells: Cells, *, where: CallFilter | None = None) -> CellCounts:
    """Calls per cell over the whole study area, zero cells kept.

    Parameters
    ----------
    calls : pandas/geopandas or Dask/dask-geopandas DataFrame
        Calls with ``lat``, ``lon`` (or point geometry), ``received_at`` and, for a
        category filter, ``category``.
    cells : uint64 array
        The study area (:func:`study_area_cells`), one resolution.
    where : CallFilter, optional
        Which calls to count.

    Returns
    -------
    CellCounts
        The per-cell counts and the number of selected calls outside the area.
    """
    cells = as_study_cells(cells)
    res = cells_resolution(cells)
    keys = _keys(calls, res, where, None, None)
    (sizes,) = _compute(keys.groupby("cell").size())
    key_cells = sizes.index.to_numpy(dtype=np.uint64)
    key_counts = sizes.to_numpy(dtype=np.int64)
    pos, inside = h3cells.lookup(cells, key_cells)
    counts = np.bincount(pos[inside], weights=key_counts[inside], minlength=len(cells)).astype(np.int64)
    frame = pd.DataFrame({"cell": cells, "h3": h3cells.hex_strings(cells), "count": counts})
    return CellCounts(frame, int(key_counts[~inside].sum()))


@dataclass(frozen=True)
class SpaceTimeCube:
    """Calls per cell and time step: ``counts[i, t]`` for ``cells[i]`` in step ``starts[t]``.

    Every step between the first and the last is present (empty steps are zeros), as
    is every cell of the study area.
    """

    cells: Cells
    starts: pd.DatetimeIndex
    counts: npt.NDArray[np.int64]
    step: Step
    outside: int = 0

    @property
    def shape(self) -> tuple[int, int]:
        """``(cells, steps)``."""
        return (len(self.cells), len(self.starts))


def cube_counts(calls: Any, cells: Cells, step: Step, *, where: CallFilter | None = None) -> SpaceTimeCube:
    """Aggregate calls into a space-time cube of ``cells`` × ``step`` (week or month).

    The time axis runs from ``where.start`` (or the first call's step) to ``where.until``
    (or the last call's step), so quiet steps at either end are kept when the window
    is given. A window that does not start (or end) on a step boundary makes the first
    (or last) step partial — its counts cover only the days inside the window — so
    give week- or month-aligned bounds for a trend analysis. Works on pandas and Dask
    frames alike; only the (cell, step) counts are computed on the client.
    """
    cells = as_study_cells(cells)
    res = cells_resolution(cells)
    keys = _keys(calls, res, where, step, None)
    (sizes,) = _compute(keys.groupby(["cell", "step"]).size())
    key_cells = sizes.index.get_level_values("cell").to_numpy(dtype=np.uint64)
    key_steps = sizes.index.get_level_values("step").to_numpy(dtype=np.int64)
    key_counts = sizes.to_numpy(dtype=np.int64)
    pos, inside = h3cells.lookup(cells, key_cells)
    lo_candidates = [int(key_steps[inside].min())] if inside.any() else []
    hi_candidates = [int(key_steps[inside].max())] if inside.any() else []
    if where is not None and where.start is not None:
        lo_candidates = [int(step_index(pd.Series([where.start]), step)[0])]
    if where is not None and where.until is not None:
        last = where.until - pd.Timedelta(microseconds=1)
        hi_candidates = [int(step_index(pd.Series([last]), step)[0])]
    if not lo_candidates or not hi_candidates:
        raise CallDataError("no call of the selection falls in the study area; the cube would be empty")
    lo, hi = lo_candidates[0], hi_candidates[0]
    if hi < lo:
        raise CallDataError("the time window is empty")
    in_window = inside & (key_steps >= lo) & (key_steps <= hi)
    counts = np.zeros((len(cells), hi - lo + 1), dtype=np.int64)
    np.add.at(counts, (pos[in_window], key_steps[in_window] - lo), key_counts[in_window])
    return SpaceTimeCube(cells, step_starts(np.arange(lo, hi + 1), step), counts, step,
                         int(key_counts[~inside].sum()))


# --------------------------------------------------------------------------- response times


@dataclass(frozen=True)
class ResponseSpec:
    """How a call's response time is read and judged.

    The response time is ``on_scene − received`` in whole seconds (the heat map's
    resolution). Calls with a missing on-scene time or one before reception (data
    faults) are *invalid*: counted per cell, never averaged in. ``sla_minutes`` is one
    limit for all calls or a limit per ``category``; calls of a category without a limit
    use ``default_sla_minutes``, or are left out of the SLA share when that is ``None``.
    """

    sla_minutes: float | Mapping[str, float]
    default_sla_minutes: float | None = None
    received: str = "received_at"
    on_scene: str = "on_scene_at"

    def keys(self, frame: pd.DataFrame, local_received: pd.Series) -> dict[str, npt.NDArray[np.int64]]:
        """Per-call columns ``seconds, valid, assessed, over`` (see :func:`call_keys`)."""
        if self.on_scene not in frame.columns:
            raise CallDataError(f"response times need an {self.on_scene!r} column")
        on_scene = local_times(frame[self.on_scene])
        delta = (on_scene - local_received).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
        valid = np.isfinite(delta) & (delta >= 0)
        seconds = np.where(valid, np.rint(np.where(valid, delta, 0)), -1).astype(np.int64)
        if isinstance(self.sla_minutes, Mapping):
            if "category" not in frame.columns:
                raise CallDataError("an SLA per category needs a 'category' column")
            default = np.nan if self.default_sla_minutes is None else float(self.default_sla_minutes)
            limits = frame["category"].map(dict(self.sla_minutes)).astype(np.float64).fillna(default)
            limit_s = limits.to_numpy(dtype=np.float64) * 60.0
        else:
            limit_s = np.full(len(frame), float(self.sla_minutes) * 60.0)
        assessed = valid & np.isfinite(limit_s)
        over = assessed & (seconds > np.where(np.isfinite(limit_s), limit_s, np.inf))
        return {"seconds": seconds, "valid": valid.astype(np.int64),
                "assessed": assessed.astype(np.int64), "over": over.astype(np.int64)}


def response_heatmap(calls: Any, cells: Cells, spec: ResponseSpec, *, min_count: int = 5,
                     where: CallFilter | None = None,
                     quantiles: Sequence[float] = (0.5, 0.9)) -> pd.DataFrame:
    """Response time (received → on scene) per cell: median, p90 and share over SLA.

    Cells with fewer than ``min_count`` valid response times are flagged
    ``too_few`` and their statistics are missing (NaN), never zero: a blank cell on
    the map means "not enough calls to say", not "instant response".

    Quantiles are exact (numpy's default linear interpolation between order
    statistics) on response times rounded to the second: the calls are reduced to a
    per-cell histogram of seconds — with Dask on the workers — and the quantiles are
    read off its cumulative counts, so the pandas and the Dask paths agree exactly.

    Returns
    -------
    pandas.DataFrame
        Per study-area cell: ``cell, h3, calls`` (valid response times), ``invalid``
        (missing or negative), ``median_min``, ``p90_min`` (minutes; the columns are
        named ``q<percent>_min`` for other ``quantiles``), ``share_over_sla`` (of calls
        with an SLA) and ``too_few``.
    """
    if min_count < 1:
        raise ValueError("min_count must be at least 1")
    cells = as_study_cells(cells)
    res = cells_resolution(cells)
    keys = _keys(calls, res, where, None, spec)
    valid = keys[keys["valid"] == 1]
    hist_lazy = valid.groupby(["cell", "seconds"]).size()
    totals_lazy = keys.groupby("cell")[["valid", "assessed", "over"]].sum()
    sizes_lazy = keys.groupby("cell").size()
    hist, totals, sizes = _compute(hist_lazy, totals_lazy, sizes_lazy)

    n = len(cells)
    per_cell = {name: np.zeros(n, dtype=np.int64) for name in ("valid", "assessed", "over", "all")}
    pos, inside = h3cells.lookup(cells, totals.index.to_numpy(dtype=np.uint64))
    for name in ("valid", "assessed", "over"):
        per_cell[name][pos[inside]] = totals[name].to_numpy(dtype=np.int64)[inside]
    spos, sinside = h3cells.lookup(cells, sizes.index.to_numpy(dtype=np.uint64))
    per_cell["all"][spos[sinside]] = sizes.to_numpy(dtype=np.int64)[sinside]

    hist = hist.sort_index()
    h_cells = hist.index.get_level_values("cell").to_numpy(dtype=np.uint64)
    h_seconds = hist.index.get_level_values("seconds").to_numpy(dtype=np.int64)
    h_counts = hist.to_numpy(dtype=np.int64)
    hpos, hinside = h3cells.lookup(cells, h_cells)
    h_cell_idx, h_seconds, h_counts = hpos[hinside], h_seconds[hinside], h_counts[hinside]

    calls_n = per_cell["valid"]
    too_few = calls_n < min_count
    out: dict[str, Any] = {"cell": cells, "h3": h3cells.hex_strings(cells), "calls": calls_n,
                           "invalid": per_cell["all"] - calls_n}
    for q in quantiles:
        name = "median_min" if q == 0.5 else f"p{round(q * 100):d}_min"
        values = _histogram_quantile(h_cell_idx, h_seconds, h_counts, calls_n, q) / 60.0
        values[too_few] = np.nan
        out[name] = values
    with np.errstate(invalid="ignore", divide="ignore"):
        share = per_cell["over"] / per_cell["assessed"]
    share = np.where(too_few | (per_cell["assessed"] == 0), np.nan, share)
    out["share_over_sla"] = share
    out["too_few"] = too_few
    return pd.DataFrame(out)


def _histogram_quantile(cell_idx: npt.NDArray[np.int64], values: npt.NDArray[np.int64],
                        counts: npt.NDArray[np.int64], n_per_cell: npt.NDArray[np.int64],
                        q: float) -> npt.NDArray[np.float64]:
    """Quantile ``q`` per cell from ``(cell, value, count)`` rows sorted by cell then value.

    For a cell with ``n`` values ``v_(0) ≤ … ≤ v_(n−1)`` this is
    ``v_(⌊h⌋) + (h − ⌊h⌋)(v_(⌈h⌉) − v_(⌊h⌋))`` with ``h = (n − 1) q`` (numpy's
    ``linear`` method), found by ``searchsorted`` on the running counts.
    """
    out = np.full(len(n_per_cell), np.nan)
    if counts.size == 0:
        return out
    cum = np.cumsum(counts)
    base = np.zeros(len(n_per_cell), dtype=np.int64)
    base[1:] = np.cumsum(n_per_cell)[:-1]
    has = n_per_cell > 0
    h = (n_per_cell[has] - 1) * q
    lo_rank = np.floor(h).astype(np.int64)
    hi_rank = np.ceil(h).astype(np.int64)
    lo_val = values[np.searchsorted(cum, base[has] + lo_rank, side="right")]
    hi_val = values[np.searchsorted(cum, base[has] + hi_rank, side="right")]
    out[has] = lo_val + (h - lo_rank) * (hi_val - lo_val)
    return out


# --------------------------------------------------------------------------- reading


def read_calls(path: Path | str, *, columns: Sequence[str] = ("lat", "lon", "received_at")) -> pd.DataFrame:
    """Calls from a GeoParquet, Parquet or CSV file, checked for the columns analysis needs.

    ``lat``/``lon`` may be replaced by a point geometry (GeoParquet). Raises
    :class:`CallDataError` for an unreadable file or missing columns, naming them.
    """
    source = Path(path)
    if not source.is_file():
        raise CallDataError(f"{source}: no such file")
    suffix = source.suffix.lower()
    try:
        if suffix in {".parquet", ".geoparquet", ".pq"}:
            frame = _read_parquet(source)
        elif suffix in {".csv", ".txt"} or source.name.lower().endswith(".csv.gz"):
            frame = pd.read_csv(source)
        else:
            raise CallDataError(f"{source}: expected a .parquet/.geoparquet or .csv file")
    except CallDataError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise CallDataError(f"cannot read {source}: {exc}") from exc
    wanted = set(columns)
    if {"lat", "lon"} & wanted and not {"lat", "lon"} <= set(frame.columns) and "geometry" in frame.columns:
        wanted -= {"lat", "lon"}
    missing = sorted(wanted - set(frame.columns))
    if missing:
        raise CallDataError(f"{source} lacks column(s) {', '.join(missing)} "
                            f"(has {', '.join(map(str, frame.columns))})")
    return frame


def _read_parquet(source: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq  # noqa: PLC0415 -- only for parquet input

    if b"geo" in (pq.read_schema(source).metadata or {}):
        import geopandas as gpd  # noqa: PLC0415 -- only for GeoParquet input

        frame: pd.DataFrame = gpd.read_parquet(source)
        return frame
    return pd.read_parquet(source)
