"""Point events with times: what every forecaster and the backtest take.

Events are any points with a time (helpline-15 calls, a GeoParquet, a CSV with named
columns): :func:`events_from_frame` checks a frame once and returns :class:`Events`,
arrays sorted by time. Times are local wall-clock times (Pakistan time for the calls
store: time-zone-aware values are converted to ``Asia/Karachi``, naive values are taken
as local already), so days start at local midnight and weeks on Monday.

Slicing never copies: :meth:`Events.before` is a ``searchsorted`` on the sorted times,
which is how the backtest hands a method only what happened before its origin.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.aggregate import CallDataError, local_times

if TYPE_CHECKING:
    from geo.forecast.grid import Grid

Times = npt.NDArray[np.datetime64]
G = TypeVar("G", bound=np.generic)


class ForecastError(Exception):
    """Base class of the errors raised by :mod:`geo.forecast`."""


class EventDataError(ForecastError, ValueError):
    """The events cannot be used as given (the message names the column and the rows)."""


class FutureEventsError(ForecastError, ValueError):
    """A method was handed an event at or after its forecast origin."""


def as_time(value: object) -> np.datetime64:
    """A time as naive local ``datetime64[ns]`` (aware values converted to Pakistan time)."""
    ts = pd.Timestamp(value)  # type: ignore[arg-type]
    if ts.tzinfo is not None:
        ts = local_times(pd.Series([ts])).iloc[0]
    return np.datetime64(ts.as_unit("ns").to_datetime64())


@dataclass(frozen=True, eq=False)
class Events:
    """Points sorted by time, with an optional category, located on at most one grid.

    Attributes
    ----------
    time : datetime64[ns] array
        Local wall-clock times, ascending.
    lat, lon : float arrays
        WGS84 degrees.
    category : object array or None
        Category per event, if the source had one.
    start : datetime64[ns]
        When observation began (local midnight of the first event's day unless given):
        a method that averages over history divides by the time since then.
    grid : Grid or None
        The grid ``cell``, ``x`` and ``y`` refer to (set by :meth:`on`).
    cell : int64 array or None
        Position of each event's cell in ``grid.cells`` (−1 outside the grid).
    x, y : float arrays or None
        Metres in the grid's UTM zone.
    """

    time: Times
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    category: npt.NDArray[np.object_] | None
    start: np.datetime64
    grid: Grid | None = None
    cell: npt.NDArray[np.int64] | None = None
    x: npt.NDArray[np.float64] | None = None
    y: npt.NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return int(self.time.size)

    @property
    def end(self) -> np.datetime64 | None:
        """Time of the last event (``None`` when there is none)."""
        return self.time[-1] if self.time.size else None

    def _rows(self, rows: slice | npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> Events:
        def cut(a: npt.NDArray[G] | None) -> npt.NDArray[G] | None:
            return None if a is None else a[rows]
        return replace(self, time=self.time[rows], lat=self.lat[rows], lon=self.lon[rows],
                       category=cut(self.category), cell=cut(self.cell), x=cut(self.x), y=cut(self.y))

    def before(self, origin: object) -> Events:
        """Events strictly before ``origin`` (a view: no copy)."""
        stop = int(np.searchsorted(self.time, as_time(origin), side="left"))
        return self._rows(slice(0, stop))

    def between(self, first: object, until: object) -> Events:
        """Events in ``[first, until)`` (a view)."""
        lo = int(np.searchsorted(self.time, as_time(first), side="left"))
        hi = int(np.searchsorted(self.time, as_time(until), side="left"))
        return self._rows(slice(lo, max(lo, hi)))

    def of_categories(self, categories: Iterable[str]) -> Events:
        """Events of the given categories (a copy)."""
        if self.category is None:
            raise EventDataError("these events have no category column")
        return self._rows(np.isin(self.category, list(categories)))

    def on(self, grid: Grid) -> Events:
        """The events located on ``grid``: cell positions and UTM metres, computed once
        (slices keep them). Already located on this grid: returned as is."""
        if self.grid is grid:
            return self
        x, y = grid.project(self.lat, self.lon)
        return replace(self, grid=grid, cell=grid.locate(self.lat, self.lon), x=x, y=y)

    def inside(self) -> Events:
        """Only the events inside their grid (``on`` must have been called)."""
        if self.cell is None:
            raise ForecastError("locate the events on a grid first (Events.on)")
        return self._rows(self.cell >= 0)


def events_from_frame(frame: pd.DataFrame, *, lat: str = "lat", lon: str = "lon",
                      time: str = "received_at", category: str | None = None,
                      start: object | None = None, drop_invalid: bool = False) -> Events:
    """Check a frame of point events once and return them as :class:`Events`.

    Parameters
    ----------
    frame : DataFrame
        One row per event.
    lat, lon, time, category : str
        Column names (``category`` optional). Times may be datetimes or ISO 8601 strings.
    start : time, optional
        When observation began; default: local midnight of the first event's day.
    drop_invalid : bool
        Drop rows without a usable position or time instead of raising.

    Raises
    ------
    EventDataError
        A named column is missing, or rows have no usable position or time (the
        message gives how many and the first row labels) and ``drop_invalid`` is off.
    """
    wanted = {"lat": lat, "lon": lon, "time": time} | ({"category": category} if category else {})
    missing = [f"{role}={name!r}" for role, name in wanted.items() if name not in frame.columns]
    if missing:
        raise EventDataError(f"no column {', '.join(missing)}; the frame has {list(frame.columns)}")
    try:
        local = local_times(frame[time])
    except CallDataError as exc:
        raise EventDataError(str(exc)) from exc
    lat_a = pd.to_numeric(frame[lat], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    lon_a = pd.to_numeric(frame[lon], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    problems = {
        f"{lat!r} not a latitude in [-90, 90]": ~(np.abs(lat_a) <= 90),
        f"{lon!r} not a longitude in [-180, 180]": ~(np.abs(lon_a) <= 180),
        f"{time!r} missing": local.isna().to_numpy(),
    }
    bad = np.zeros(len(frame), dtype=bool)
    for what, rows in problems.items():
        bad |= rows
        if rows.any() and not drop_invalid:
            labels = frame.index[rows][:5].tolist()
            raise EventDataError(f"{int(rows.sum())} row(s) with {what} (first: {labels}); "
                                 "fix them or pass drop_invalid=True")
    keep = ~bad
    times = local.to_numpy(dtype="datetime64[ns]")[keep]
    order = np.argsort(times, kind="stable")
    cats = (frame[category].astype(object).to_numpy()[keep][order] if category else None)
    times = times[order]
    if start is not None:
        first = as_time(start)
        if times.size and times[0] < first:
            raise EventDataError(f"start {start} is after the first event ({times[0]})")
    elif times.size:
        first = times[0].astype("datetime64[D]").astype("datetime64[ns]")
    else:
        raise EventDataError("no events")
    return Events(time=times, lat=lat_a[keep][order], lon=lon_a[keep][order], category=cats,
                  start=first)
