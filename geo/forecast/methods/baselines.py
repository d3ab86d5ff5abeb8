"""The two baselines every other method has to beat.

Both are what a crime analyst would do without a model, and both are standard in the
evaluation literature (e.g. Mohler et al. 2015, *JASA* 110(512), 1399–1411, compare
against last period's hot spots; Chainey, Tompson & Uhlig 2008 against historical
mapping).
"""

from __future__ import annotations

import numpy as np

from geo.forecast.events import Events
from geo.forecast.grid import Grid
from geo.forecast.methods.base import Forecaster, Risk, cell_counts


class Naive(Forecaster):
    """Last period's counts: the next day (week) looks like the last one.

    The persistence forecast of forecasting practice; in crime mapping, "last month's
    hot spots" (Chainey, S., Tompson, L. and Uhlig, S. 2008. The utility of hotspot
    mapping for predicting spatial patterns of crime. *Security Journal* 21, 4–28).
    """

    name = "naive"
    citation = ("Chainey, Tompson & Uhlig (2008), The utility of hotspot mapping for predicting "
                "spatial patterns of crime, Security Journal 21, 4–28")

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        return cell_counts(events.between(origin - length, origin), len(grid))


class HistoricalAverage(Forecaster):
    """Mean count per period over the whole history (or the last ``lookback_days``).

    Long-run hot-spot mapping (Chainey, Tompson & Uhlig 2008): cells with many events
    over the past are expected to have many next period. The divisor is the number of
    periods since observation began (:attr:`Events.start`), so quiet early periods
    count as zeros rather than being skipped.
    """

    name = "historical_average"
    citation = ("Chainey, Tompson & Uhlig (2008), The utility of hotspot mapping for predicting "
                "spatial patterns of crime, Security Journal 21, 4–28")

    def __init__(self, lookback_days: float | None = None) -> None:
        self.lookback_days = lookback_days

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        first = events.start
        if self.lookback_days is not None:
            first = max(first, origin - np.timedelta64(int(self.lookback_days * 86_400), "s"))
        periods = max((origin - first) / length, 1.0)
        return cell_counts(events.between(first, origin), len(grid)) / periods
