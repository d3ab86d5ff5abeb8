"""A self-exciting point process (Mohler et al. 2011), fitted by expectation–maximisation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.spatial import cKDTree

from geo.forecast.events import Events
from geo.forecast.grid import Grid
from geo.forecast.methods.base import NS_PER_DAY, Forecaster, Risk, age_days, cell_counts

FloatArray = npt.NDArray[np.float64]

HEXAGON_VARIANCE = 5.0 / 24.0
"""Per-axis variance of a point uniform in a regular hexagon, in units of its circumradius²:
added to σ² when the triggering kernel is integrated over a cell by its centre value."""


@dataclass(frozen=True)
class SeppFit:
    """What one EM fit found (the planted-parameter test reads these).

    ``branching_ratio`` θ is the expected number of events each event triggers,
    ``decay_days`` 1/ω the mean delay of a triggered event, ``sigma_m`` the standard
    deviation (per axis, metres) of its displacement. ``at_cutoff`` flags a fit whose
    kernel reaches the pair search limits (``max_distance_m``, ``max_lag_days``), where
    the estimates are biased low.
    """

    branching_ratio: float
    decay_days: float
    sigma_m: float
    background_share: float
    events: int
    pairs: int
    iterations: int
    converged: bool
    at_cutoff: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class _Pairs:
    """Candidate (parent, child) pairs: close enough in space and time to be triggered."""

    parent: npt.NDArray[np.int64]
    child: npt.NDArray[np.int64]
    lag_days: FloatArray
    dist2_m2: FloatArray


class SelfExcitingPointProcess(Forecaster):
    r"""Background plus near-repeat triggering, after Mohler et al. (2011).

    The conditional intensity at place *s* and time *t* (events per m² per day) is

    .. math::

        \lambda(s, t) = \mu(s) + \sum_{t_i < t} \theta\,\omega e^{-\omega (t - t_i)}\;
            \frac{1}{2\pi\sigma^2} e^{-\lVert s - s_i\rVert^2 / 2\sigma^2}

    with a stationary background :math:`\mu` and a triggering kernel: each event
    triggers on average θ more, after exponentially distributed delays of mean
    1/ω days, displaced by a Gaussian of σ metres. Fitted by expectation–maximisation
    on the events of the last ``window_days`` (Veen & Schoenberg 2008; Mohler et al.
    2011): the E-step gives each event the probability :math:`p_{jj}` of being
    background and :math:`p_{ij}` of being triggered by earlier event *i*; the M-step
    sets :math:`\theta = \sum p_{ij} / n`, :math:`1/\omega = \sum p_{ij}\,\Delta t_{ij} /
    \sum p_{ij}`, :math:`\sigma^2 = \sum p_{ij}\,d_{ij}^2 / 2\sum p_{ij}`, and the
    background to the :math:`p_{jj}`-weighted events counted per cell and smoothed by a
    Gaussian of ``background_bandwidth_m`` over neighbouring cells (Mohler et al. use a
    kernel estimate; this is its binned form). Only pairs within ``max_distance_m`` and
    ``max_lag_days`` are candidates, found with one k-d tree query over (x, y, scaled
    time), so memory grows with the number of close pairs, never with events².

    The forecast for ``[origin, origin + L)`` per cell *c* is
    :math:`\mu_c L + \sum_i \theta (e^{-\omega a_i} - e^{-\omega (a_i + L)})\,
    A_c\,\phi_{\sigma'}(d_{ci})` over past events of age :math:`a_i`, with
    :math:`\sigma'^2 = \sigma^2 + \tfrac{5}{24}R^2` (the kernel integrated over a hexagon
    of circumradius *R* by its centre value); events triggered in turn inside the
    forecast period are left out.

    Mohler, G. O., Short, M. B., Brantingham, P. J., Schoenberg, F. P. and Tita, G. E.
    (2011). Self-exciting point process modeling of crime. *Journal of the American
    Statistical Association* 106(493), 100–108. Veen, A. and Schoenberg, F. P. (2008).
    Estimation of space–time branching process models in seismology using an EM-type
    algorithm. *JASA* 103(482), 614–624.
    """

    name = "sepp"
    citation = ("Mohler, Short, Brantingham, Schoenberg & Tita (2011), Self-exciting point process "
                "modeling of crime, JASA 106(493), 100–108")

    def __init__(self, *, window_days: float = 84.0, max_distance_m: float = 750.0,
                 max_lag_days: float = 30.0, background_bandwidth_m: float = 500.0,
                 max_iterations: int = 200, tolerance: float = 1e-5,
                 initial: tuple[float, float, float] = (0.1, 5.0, 200.0)) -> None:
        self.window_days = window_days
        self.max_distance_m = max_distance_m
        self.max_lag_days = max_lag_days
        self.background_bandwidth_m = background_bandwidth_m
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self.initial = initial
        self.fitted: SeppFit | None = None
        """The last fit's parameters (set by every :meth:`fit`)."""

    # ------------------------------------------------------------------ pieces

    def _pairs(self, x: FloatArray, y: FloatArray, t_days: FloatArray) -> _Pairs:
        scale = self.max_distance_m / self.max_lag_days
        tree = cKDTree(np.column_stack([x, y, t_days * scale]))
        pairs = tree.query_pairs(self.max_distance_m, p=np.inf, output_type="ndarray")
        a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
        parent, child = np.minimum(a, b), np.maximum(a, b)  # events are in time order
        lag = t_days[child] - t_days[parent]
        dist2 = (x[child] - x[parent]) ** 2 + (y[child] - y[parent]) ** 2
        keep = (lag > 0) & (dist2 <= self.max_distance_m**2)
        return _Pairs(parent[keep], child[keep], lag[keep], dist2[keep])

    def _smoother(self, grid: Grid) -> sp.csr_array:
        """Row-stochastic cell → cell Gaussian weights (each cell's mass spread nearby)."""
        bandwidth = self.background_bandwidth_m

        def build() -> sp.csr_array:
            radius = 3.0 * bandwidth
            indptr, rows = grid.disks(grid.rings_for(radius))
            src = np.repeat(np.arange(len(grid)), np.diff(indptr))
            d2 = (grid.x[rows] - grid.x[src]) ** 2 + (grid.y[rows] - grid.y[src]) ** 2
            w = np.exp(-0.5 * d2 / bandwidth**2)
            w[d2 > radius**2] = 0.0
            w /= np.bincount(src, weights=w, minlength=len(grid))[src]
            # (spread)[dst] = Σ_src w[src, dst] · mass[src]: the transpose as a matrix
            return sp.csr_array((w, (rows, src)), shape=(len(grid), len(grid)))

        return grid.memo(("sepp_smoother", bandwidth), build)

    def estimate(self, events: Events, grid: Grid, until: np.datetime64) -> tuple[SeppFit, FloatArray]:
        """EM on the located events of ``[until − window, until)``: the fit and the
        background rate per cell (events per day)."""
        window = np.timedelta64(int(self.window_days * 86_400), "s")
        first = max(events.start, until - window)
        train = events.between(first, until).inside()
        assert train.cell is not None
        assert train.x is not None
        assert train.y is not None
        span = float((until - first) / np.timedelta64(1, "D"))
        n = len(train)
        smoother = self._smoother(grid)
        theta, decay, sigma = self.initial
        if n < 2:
            background = smoother @ cell_counts(train, len(grid)) / max(span, 1.0)
            return SeppFit(0.0, decay, sigma, 1.0, n, 0, 0, True, False), background
        t_days = (train.time - first).astype(np.int64) / NS_PER_DAY
        pairs = self._pairs(train.x, train.y, t_days)
        cell = train.cell
        background = smoother @ np.bincount(cell, minlength=len(grid)) / span  # events/day/cell
        p_pairs = np.zeros(pairs.parent.size)
        p_background = np.ones(n)
        self_weight = smoother.diagonal()
        converged, iterations = False, 0
        for iterations in range(1, self.max_iterations + 1):  # noqa: B007 -- read after the loop
            omega = 1.0 / decay
            g = (theta * omega * np.exp(-omega * pairs.lag_days)
                 * np.exp(-0.5 * pairs.dist2_m2 / sigma**2) / (2 * math.pi * sigma**2))
            # leave-one-out: an event's own background mass does not explain itself
            own = self_weight[cell] * p_background / span
            mu = np.maximum(background[cell] - own, 1e-15) / grid.area_m2[cell]
            total = mu + np.bincount(pairs.child, weights=g, minlength=n)
            p_pairs = g / total[pairs.child]
            p_background = mu / total
            triggered = float(p_pairs.sum())
            # offspring of late events may fall after the window (right-censored): the
            # expected share seen enters θ, the unseen delays 1/ω (the compensator's terms)
            left = span - t_days
            unseen = np.exp(-omega * left)
            new_theta = triggered / max(float((1.0 - unseen).sum()), 1e-12)
            if triggered > 1e-9:
                censored = new_theta * float((left * unseen).sum())
                new_decay = (float((p_pairs * pairs.lag_days).sum()) + censored) / triggered
                new_sigma = math.sqrt(float((p_pairs * pairs.dist2_m2).sum()) / (2.0 * triggered))
            else:
                new_decay, new_sigma = decay, sigma
            background = smoother @ np.bincount(cell, weights=p_background, minlength=len(grid)) / span
            change = max(abs(new_theta - theta), abs(new_decay - decay) / decay,
                         abs(new_sigma - sigma) / sigma)
            theta, decay, sigma = new_theta, max(new_decay, 1e-3), max(new_sigma, 1.0)
            if change < self.tolerance:
                converged = True
                break
        at_cutoff = (sigma * 3.5 > self.max_distance_m) or (decay * 5.0 > self.max_lag_days)
        fit = SeppFit(theta, decay, sigma, float(p_background.sum() / n) if n else 1.0, n,
                      int(pairs.parent.size), iterations, converged, at_cutoff)
        return fit, background

    # ------------------------------------------------------------------ forecast

    def risk(self, events: Events, grid: Grid, origin: np.datetime64, length: np.timedelta64) -> Risk:
        fit, background = self.estimate(events, grid, origin)
        self.fitted = fit
        days = float(length / np.timedelta64(1, "D"))
        expected = background * days
        if fit.branching_ratio <= 0:
            return expected
        omega = 1.0 / fit.decay_days
        horizon = np.timedelta64(int(min(self.max_lag_days, 12.0 * fit.decay_days) * 86_400), "s")
        recent = events.between(origin - horizon, origin).inside()
        ages = age_days(recent, origin)
        weights = fit.branching_ratio * (np.exp(-omega * ages) - np.exp(-omega * (ages + days)))
        sigma2 = fit.sigma_m**2 + HEXAGON_VARIANCE * grid.edge_m**2
        assert recent.cell is not None
        assert recent.x is not None
        assert recent.y is not None
        point, row, dist = grid.near_pairs(recent.x, recent.y, recent.cell,
                                           4.0 * math.sqrt(sigma2))
        density = np.exp(-0.5 * dist**2 / sigma2) / (2 * math.pi * sigma2)
        triggered = np.bincount(row, weights=weights[point] * density * grid.area_m2[row],
                                minlength=len(grid))
        return np.asarray(expected + triggered, dtype=np.float64)
