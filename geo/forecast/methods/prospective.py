"""Prospective hot-spotting (Bowers, Johnson & Pease 2004)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geo.forecast.events import Events
from geo.forecast.grid import Grid
from geo.forecast.methods.base import Forecaster, Risk, age_days, scaled_to, spread


class ProspectiveHotSpots(Forecaster):
    r"""Risk from recent nearby events, weighted inversely by distance and by age.

    .. math::

        r_c = \sum_{i:\; d_{ci} \le D,\; w_i < W} \frac{1}{1 + d_{ci}/u}\cdot\frac{1}{1 + w_i}

    with :math:`d_{ci}` the distance from cell centre *c* to event *i*, *u* the unit of
    distance (the grid's centre spacing: "cells" as in the paper), :math:`w_i` the event's
    age in whole weeks, the bandwidth *D* (400 m) and the window *W* (8 weeks ≈ the
    paper's two months). Scaled to the mean count per period over the window. Bowers,
    K. J., Johnson, S. D. and Pease, K. (2004). Prospective hot-spotting: the future of
    crime mapping? *British Journal of Criminology* 44(5), 641–658.
    """

    name = "prospective"
    citation = ("Bowers, Johnson & Pease (2004), Prospective hot-spotting: the future of crime "
                "mapping?, British Journal of Criminology 44(5), 641–658")

    def __init__(self, bandwidth_m: float = 400.0, weeks: int = 8) -> None:
        self.bandwidth_m = bandwidth_m
        self.weeks = weeks

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        window = np.timedelta64(7 * self.weeks, "D")
        recent = events.between(origin - window, origin)
        weeks_old = np.floor(age_days(recent, origin) / 7.0)
        unit = grid.spacing_m

        def by_distance(dist_m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            return 1.0 / (1.0 + dist_m / unit)

        score = spread(recent, grid, 1.0 / (1.0 + weeks_old), self.bandwidth_m, by_distance)
        inside = int((recent.cell >= 0).sum()) if recent.cell is not None else 0
        return scaled_to(score, inside * float(length / window.astype("m8[ns]")))
