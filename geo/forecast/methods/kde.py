"""Time-decayed kernel density estimation on the grid."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geo.forecast.events import Events
from geo.forecast.grid import Grid
from geo.forecast.methods.base import Forecaster, Risk, age_days, scaled_to, spread


class TimeDecayedKDE(Forecaster):
    r"""Gaussian kernel density of recent events, older events weighing less.

    .. math::

        r_c \propto \sum_{i:\,a_i < L} e^{-a_i/\tau}\,
              \exp\!\Big(-\frac{\lVert s_c - s_i\rVert^2}{2h^2}\Big)

    over events *i* of age :math:`a_i` days (younger than the lookback *L*), at
    distance :math:`\lVert s_c - s_i\rVert` metres from cell centre :math:`s_c`
    (UTM), bandwidth *h* and decay :math:`\tau`; the kernel is cut at ``cutoff``·h.
    The risk is scaled to the mean count per period over the lookback, so it reads as
    expected events. Kernel-density hot-spot mapping is Chainey, Tompson & Uhlig (2008);
    weighting events by age is the spatio-temporal KDE of Hu, Wang, Guin & Zhu (2018),
    *A spatio-temporal kernel density estimation framework for predictive crime hotspot
    mapping and evaluation*, Applied Geography 99, 89–97.
    """

    name = "kde"
    citation = ("Hu, Wang, Guin & Zhu (2018), A spatio-temporal kernel density estimation framework "
                "for predictive crime hotspot mapping and evaluation, Applied Geography 99, 89–97")

    def __init__(self, bandwidth_m: float = 250.0, decay_days: float = 14.0,
                 lookback_days: float = 56.0, cutoff: float = 3.0) -> None:
        self.bandwidth_m = bandwidth_m
        self.decay_days = decay_days
        self.lookback_days = lookback_days
        self.cutoff = cutoff

    def kernel(self, dist_m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Gaussian kernel of distance (unnormalised: only the ranking and total matter)."""
        return np.exp(-0.5 * (dist_m / self.bandwidth_m) ** 2)

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        lookback = np.timedelta64(int(self.lookback_days * 86_400), "s")
        recent = events.between(origin - lookback, origin)
        weights = np.exp(-age_days(recent, origin) / self.decay_days)
        score = spread(recent, grid, weights, self.cutoff * self.bandwidth_m, self.kernel)
        inside = int((recent.cell >= 0).sum()) if recent.cell is not None else 0
        return scaled_to(score, inside * float(length / lookback))
