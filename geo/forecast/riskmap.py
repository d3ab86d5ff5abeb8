"""The product: a next-day or next-week risk map with its method's record beside it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geo import h3cells
from geo.forecast.events import Events, as_time
from geo.forecast.grid import Grid
from geo.forecast.methods import Forecaster, Period, Risk, period_length
from geo.forecast.metrics import COVERAGES, coverage_key
from geo.forecast.select import Selection


@dataclass(frozen=True)
class RiskMap:
    """Risk per cell for ``[origin, origin + period)`` by the selected method.

    ``selection`` carries the method's backtest score and the baseline's, so whoever
    shows the map shows both (the issue's rule).
    """

    grid: Grid
    origin: np.datetime64
    period: Period
    risk: Risk
    selection: Selection

    def frame(self, coverages: Sequence[float] = COVERAGES) -> pd.DataFrame:
        """Per cell: ``h3``, ``risk``, ``rank`` (1 = highest) and ``top_<coverage>``
        flags (the cells a patrol plan covering that share of the area would take)."""
        order = np.lexsort((np.arange(len(self.grid)), -self.risk / self.grid.area_m2))
        rank = np.empty(len(self.grid), dtype=np.int64)
        rank[order] = np.arange(1, len(self.grid) + 1)
        data: dict[str, object] = {"h3": h3cells.hex_strings(self.grid.cells), "risk": self.risk,
                                   "rank": rank}
        for c in coverages:
            data[f"top_{coverage_key(c)}"] = self.grid.top_cells(self.risk, c)
        return pd.DataFrame(data)

    def to_dict(self) -> dict[str, object]:
        """Summary for JSON (the cells themselves go out as a frame or GeoJSON)."""
        return {"origin": str(pd.Timestamp(self.origin)),
                "until": str(pd.Timestamp(self.origin + period_length(self.period))),
                "period": self.period, "res": self.grid.res, "cells": len(self.grid),
                "expected_events": float(self.risk.sum()), "method": self.selection.method,
                "selection": self.selection.to_dict()}


def risk_map(events: Events, grid: Grid, origin: object, period: Period, *, selection: Selection,
             methods: Mapping[str, Forecaster]) -> RiskMap:
    """Forecast ``[origin, origin + period)`` with the method ``selection`` chose, from the
    events before ``origin`` only."""
    at = as_time(origin)
    method = methods[selection.method]
    return RiskMap(grid, at, period, method.fit(events.before(at), grid, at, period), selection)
