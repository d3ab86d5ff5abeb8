"""The one interface every forecaster implements, and what it guarantees.

``fit(events, grid, origin, period)`` returns the risk of every grid cell for
``[origin, origin + period)``. :class:`Forecaster.fit` is final: it refuses any event at
or after the origin (:class:`~geo.forecast.events.FutureEventsError`), locates the events
on the grid once, and checks the answer (one finite, non-negative value per cell), so a
method only writes :meth:`Forecaster.risk`, and cannot see the future even when a
caller hands it the whole history. The backtest slices before calling as well.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar, Literal, final

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.forecast.events import Events, ForecastError, FutureEventsError, as_time
from geo.forecast.grid import Grid

Period = Literal["day", "week"]
PERIODS: dict[str, np.timedelta64] = {"day": np.timedelta64(1, "D").astype("m8[ns]"),
                                      "week": np.timedelta64(7, "D").astype("m8[ns]")}
"""Forecast periods: the risk is for the next day or the next seven days."""

Risk = npt.NDArray[np.float64]
NS_PER_DAY = 86_400 * 10**9


def period_length(period: str) -> np.timedelta64:
    """Length of a forecast period (``day`` or ``week``)."""
    try:
        return PERIODS[period]
    except KeyError:
        raise ForecastError(f"period must be one of {sorted(PERIODS)}, got {period!r}") from None


def age_days(events: Events, origin: np.datetime64) -> npt.NDArray[np.float64]:
    """Days from each event to the origin (positive: the events are before it)."""
    return (origin - events.time).astype(np.int64) / NS_PER_DAY


class Forecaster(ABC):
    """A crime forecasting method: events before an origin → risk per cell after it.

    Subclasses set :attr:`name` and :attr:`citation` and implement :meth:`risk`; the
    class docstring cites the paper the method follows.
    """

    name: ClassVar[str]
    """Short identifier used in tables and JSON (``naive``, ``kde``, …)."""
    citation: ClassVar[str]
    """The paper (or standard practice) the method follows."""

    @final
    def fit(self, events: Events, grid: Grid, origin: object, period: Period) -> Risk:
        """Risk of every grid cell for ``[origin, origin + period)`` from ``events``.

        Raises :class:`FutureEventsError` if any event is at or after ``origin``: a
        forecast from the future is impossible by construction.
        """
        at = as_time(origin)
        end = events.end
        if end is not None and end >= at:
            raise FutureEventsError(f"{self.name}: an event at {pd.Timestamp(end)} is not before the "
                                    f"origin {pd.Timestamp(at)}; slice with events.before(origin)")
        located = events.on(grid)
        risk = np.asarray(self.risk(located, grid, at, period_length(period)), dtype=np.float64)
        if risk.shape != (len(grid),):
            raise ForecastError(f"{self.name} returned {risk.shape}, expected ({len(grid)},)")
        if not np.all(np.isfinite(risk)) or (risk < 0).any():
            raise ForecastError(f"{self.name} returned negative or non-finite risk")
        return risk

    @abstractmethod
    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        """The method itself: ``events`` (all before ``origin``, located on ``grid``) →
        expected events (or a score ordered like them) per cell in the next ``length``."""

    def params(self) -> dict[str, object]:
        """The method's settings, for reports (its public attributes)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def cell_counts(events: Events, n_cells: int, weights: npt.NDArray[np.float64] | None = None
                ) -> npt.NDArray[np.float64]:
    """(Weighted) events per grid row; events outside the grid are left out."""
    assert events.cell is not None
    inside = events.cell >= 0
    w = None if weights is None else weights[inside]
    return np.bincount(events.cell[inside], weights=w, minlength=n_cells).astype(np.float64)


def spread(events: Events, grid: Grid, weights: npt.NDArray[np.float64], radius_m: float,
           kernel: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float64]]) -> Risk:
    """``Σ_i weights_i · kernel(distance_m(cell centre, event i))`` for every cell.

    The exact sum over events (not over binned counts): every event meets only the
    cells of its own cell's disk (:meth:`Grid.near_pairs`), so the work is events ×
    disk size. Events outside the grid are left out.
    """
    assert events.cell is not None
    assert events.x is not None
    assert events.y is not None
    inside = events.cell >= 0
    point, row, dist = grid.near_pairs(events.x[inside], events.y[inside], events.cell[inside], radius_m)
    values = weights[inside][point] * kernel(dist)
    return np.bincount(row, weights=values, minlength=len(grid)).astype(np.float64)


def scaled_to(score: Risk, total: float) -> Risk:
    """``score`` rescaled to sum to ``total`` (left as is when it is all zeros)."""
    s = float(score.sum())
    return score * (total / s) if s > 0 else score
