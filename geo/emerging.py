"""Emerging hot spots: space-time Gi*, a Mann–Kendall trend per cell and the 17 classes.

The method is ArcGIS's Emerging Hot Spot Analysis (Esri, *How Emerging Hot Spot Analysis
works*, Space Time Pattern Mining toolbox, ArcGIS Pro documentation,
https://pro.arcgis.com/en/pro-app/latest/tool-reference/space-time-pattern-mining/learnmoreemerging.htm)
as re-implemented in R by sfdep (Parry, ``emerging_hotspot_analysis()`` and
``classify_hotspot()`` in ``R/emerging-hostpot-classifications.R``,
https://github.com/JosiahParry/sfdep):

1. Calls are counted in a space-time cube: H3 cells of the study area × weeks or months
   (:func:`geo.aggregate.cube_counts`).
2. Every bin (cell *i*, step *t*) gets a Gi* z-score (:func:`space_time_gi_star`).
3. Each cell's series of z-scores gets a Mann–Kendall trend test (:func:`mann_kendall`).
4. The significance pattern of the series and the trend give one of 17 classes
   (:func:`classify_emerging`).

Everything is vectorised over cells: the spatial lag is one sparse × dense product for
all steps, the time window a cumulative sum, the trend test a loop over the ``T − 1``
lags with numpy over all cells, the classes boolean algebra.

References
----------
Mann, H. B. (1945). Nonparametric tests against trend. *Econometrica* 13(3), 245–259.

Kendall, M. G. (1975). *Rank Correlation Methods*, 4th ed. London: Griffin.

Ord, J. K. and Getis, A. (1995). Local spatial autocorrelation statistics: distributional
issues and an application. *Geographical Analysis* 27(4), 286–306.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo import h3cells
from geo.aggregate import SpaceTimeCube
from geo.hotspots import (
    FloatArray,
    KRingWeights,
    confidence_bins,
    gi_star_z,
    kring_weights,
    two_sided_p,
)
from geo.hotspots import significant as is_significant

Window = Literal["cube", "step"]

EMERGING_CLASSES: tuple[str, ...] = (
    "no pattern detected",
    "new hot spot", "consecutive hot spot", "intensifying hot spot", "persistent hot spot",
    "diminishing hot spot", "sporadic hot spot", "oscillating hot spot", "historical hot spot",
    "new cold spot", "consecutive cold spot", "intensifying cold spot", "persistent cold spot",
    "diminishing cold spot", "sporadic cold spot", "oscillating cold spot", "historical cold spot",
)
"""The 17 classes; a class's code is its position here (0 = no pattern)."""

ALERT_CLASSES: tuple[str, ...] = ("new hot spot", "intensifying hot spot")
"""Classes that raise alert 3 (emerging hot spot) in the alert framework."""

MOSTLY = 0.9
"""Share of steps that makes a cell "mostly" hot or cold (ArcGIS: ninety percent)."""


# --------------------------------------------------------------------------- space-time Gi*


def space_time_gi_star(counts: npt.ArrayLike, weights: KRingWeights, *, time_k: int = 1,
                       window: Window = "cube") -> FloatArray:
    r"""Gi* z-score of every bin of a space-time cube (cells × steps).

    The neighbourhood of bin :math:`(i, t)` is the spatial k-ring of cell *i* (self
    included) at steps :math:`t - \tau, …, t` with :math:`\tau` = ``time_k``: the current
    step and the ``time_k`` steps before it, as ArcGIS's *Neighborhood Time Step* (a
    step never looks into the future; the first steps have shorter windows). All
    weights are 1, so the space-time weight matrix is :math:`L \otimes W` with
    :math:`L` the banded lower-triangular step matrix; it is never built: the lag is
    ``W @ counts`` followed by a moving sum over steps.

    ``window`` is the *global window* the local sums are compared with:

    ``"cube"`` (default, ArcGIS's *Entire cube*)
        :math:`\bar x`, :math:`s` and :math:`n` are those of all bins of the cube, so
        the statistic is exactly Ord & Getis's Gi* on the cube with the space-time
        weights (the tests compare it with esda on :math:`L \otimes W`).
    ``"step"`` (ArcGIS's *Individual time step*, and sfdep's ``local_g_spt``)
        :math:`\bar x`, :math:`s` come from step *t* alone and :math:`n` is the number
        of cells: each step is judged against itself, which removes a province-wide
        rise or fall from the local picture.

    Returns
    -------
    numpy.ndarray
        ``z`` with the shape of ``counts``.
    """
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != weights.n:
        raise ValueError(f"counts must be (cells={weights.n}, steps), got {x.shape}")
    if not weights.self_included:
        raise ValueError("space-time Gi* needs the self-weight")
    if time_k < 0:
        raise ValueError("time_k must be ≥ 0")
    n_cells, n_steps = x.shape
    spatial_lag = np.asarray(weights.matrix @ x, dtype=np.float64)
    w_space = weights.cardinalities.astype(np.float64)[:, None]
    cum = np.cumsum(spatial_lag, axis=1)
    lag = cum.copy()
    if time_k + 1 < n_steps:
        lag[:, time_k + 1:] -= cum[:, : n_steps - time_k - 1]
    steps_in_window = np.minimum(np.arange(n_steps) + 1, time_k + 1).astype(np.float64)[None, :]
    w_sum = w_space * steps_in_window  # binary: Σ w² = Σ w
    if window == "cube":
        return gi_star_z(lag, w_sum, w_sum, mean=x.mean(), std=x.std(), n=x.size)
    if window == "step":
        return gi_star_z(lag, w_sum, w_sum, mean=x.mean(axis=0)[None, :], std=x.std(axis=0)[None, :],
                         n=n_cells)
    raise ValueError(f"window must be 'cube' or 'step', got {window!r}")


# --------------------------------------------------------------------------- Mann-Kendall


@dataclass(frozen=True)
class MannKendall:
    r"""Mann–Kendall trend test per row of a (cells × steps) array.

    Attributes
    ----------
    s : array of float
        :math:`S = \sum_{i<j} \operatorname{sign}(x_j - x_i)`.
    var_s : array of float
        Variance of *S* under no trend, corrected for ties.
    tau : array of float
        Kendall's :math:`\tau_b` between time and the series.
    z : array of float
        Standard normal score of *S*.
    p : array of float
        Two-sided p-value.
    """

    s: FloatArray
    var_s: FloatArray
    tau: FloatArray
    z: FloatArray
    p: FloatArray


def mann_kendall(series: npt.ArrayLike, *, continuity: bool = False) -> MannKendall:
    r"""Mann (1945) / Kendall (1975) trend test on every row at once.

    .. math::

        S = \sum_{i<j} \operatorname{sign}(x_j - x_i),\qquad
        \operatorname{Var}(S) = \frac{n(n-1)(2n+5) - \sum_g t_g(t_g-1)(2t_g+5)}{18},

        \tau_b = \frac{S}{\sqrt{n_0 (n_0 - n_1)}},\quad n_0 = \tfrac{n(n-1)}{2},\;
        n_1 = \sum_g \tfrac{t_g(t_g-1)}{2},\qquad
        z = \frac{S}{\sqrt{\operatorname{Var}(S)}},\quad p = 2\,\Phi(-|z|)

    where :math:`t_g` are the sizes of groups of tied values. ``tau`` is Kendall's
    :math:`\tau_b` of the series against time (what ``scipy.stats.kendalltau(t, x)``
    and R's ``Kendall::MannKendall`` report). The p-value is the normal approximation
    without continuity correction, as ``scipy.stats.kendalltau(..., method="asymptotic")``;
    ``continuity=True`` uses :math:`(|S| - 1)` instead of :math:`|S|` (Kendall 1975).
    A constant row has ``tau = 0`` and ``p = 1``.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    n_rows, n = x.shape
    if n < 2:
        raise ValueError("a trend needs at least two time steps")
    s = np.zeros(n_rows, dtype=np.float64)
    for lag in range(1, n):
        s += np.sign(x[:, lag:] - x[:, :-lag]).sum(axis=1)

    ordered = np.sort(x, axis=1)
    tied = np.zeros((n_rows, n + 1), dtype=bool)
    tied[:, 1:n] = ordered[:, 1:] == ordered[:, :-1]  # tied[:, j] : value j-1 equals value j
    flat = tied.ravel()
    starts = np.nonzero(flat[1:] & ~flat[:-1])[0] + 1
    ends = np.nonzero(flat[:-1] & ~flat[1:])[0]
    group = (ends - starts + 2).astype(np.float64)  # run of m equalities = m + 1 tied values
    row = starts // (n + 1)
    ties_var = np.bincount(row, weights=group * (group - 1) * (2 * group + 5), minlength=n_rows)
    ties_pairs = np.bincount(row, weights=group * (group - 1) / 2, minlength=n_rows)

    var_s = (n * (n - 1) * (2 * n + 5) - ties_var) / 18.0
    n0 = n * (n - 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(n0 - ties_pairs > 0, s / np.sqrt(n0 * (n0 - ties_pairs)), 0.0)
        numerator = np.sign(s) * np.maximum(np.abs(s) - 1.0, 0.0) if continuity else s
        z = np.where(var_s > 0, numerator / np.sqrt(var_s), 0.0)
    return MannKendall(s, var_s, tau, z, two_sided_p(z))


# --------------------------------------------------------------------------- classes


def _trailing_run(flags: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Length of the run of ``True`` that ends each row."""
    reverse = flags[:, ::-1]
    first_false = np.argmin(reverse, axis=1)
    return np.asarray(np.where(reverse.all(axis=1), flags.shape[1], first_false), dtype=np.int64)


def classify_emerging(z: npt.ArrayLike, significant: npt.ArrayLike, tau: npt.ArrayLike,
                      trend_p: npt.ArrayLike, *, trend_alpha: float = 0.05) -> npt.NDArray[np.int8]:
    """Emerging hot/cold spot class code per row (index into :data:`EMERGING_CLASSES`).

    Inputs are per cell and step: the Gi* ``z`` and whether the bin is ``significant``;
    and per cell: the Mann–Kendall ``tau`` and ``trend_p`` of its z series. A bin is
    *hot* when significant with z > 0, *cold* when significant with z < 0; ``n`` is
    the number of steps and "mostly hot" means hot in at least 90 % of them. The rules,
    in the words of the ArcGIS documentation, with the exact test used here:

    ======================  ===================================================================
    new hot spot            hot in the final step and never significant before
                            (final hot, exactly one significant bin)
    consecutive hot spot    a single uninterrupted run of ≥ 2 hot bins in the final steps,
                            never significant before the run, < 90 % of bins hot
                            (trailing hot run r ≥ 2 and r = number of significant bins)
    intensifying hot spot   hot in ≥ 90 % of steps including the final one, and the
                            clustering intensity rises significantly
                            (mostly hot, final hot, tau > 0, trend p < α)
    persistent hot spot     hot in ≥ 90 % of steps with no significant trend
                            (mostly hot, final hot, trend p ≥ α)
    diminishing hot spot    hot in ≥ 90 % of steps including the final one, intensity
                            falling significantly (mostly hot, final hot, tau < 0, p < α)
    sporadic hot spot       on-again, off-again hot spot: < 90 % hot, never cold
                            (some hot bins, no cold bin, none of the classes above)
    oscillating hot spot    hot in the final step with a history of being cold, < 90 % hot
                            (final hot, at least one cold bin, not mostly hot)
    historical hot spot     the most recent step is not hot, but ≥ 90 % of steps were
                            (mostly hot, final not hot)
    *cold mirrors*          the same eight with hot and cold swapped and the trend
                            reversed (intensifying cold: tau < 0; diminishing cold: tau > 0)
    no pattern detected     none of the above
    ======================  ===================================================================

    Where ArcGIS's prose and sfdep's code differ the prose wins and the classes stay
    mutually exclusive: sfdep's ``intensifying_hotspot`` counts significant cold bins
    towards the 90 % (here only hot ones), its ``historical_hotspot`` needs a negative
    final z (here: final step not a significant hot spot, ArcGIS's "not hot"), and its
    ``persistent_hotspot`` does not look at the final step (here a mostly-hot cell
    whose final step is not hot is historical). New and consecutive follow sfdep
    (no significant bin of either sign before), and a sporadic hot spot need not be
    hot in the final step (sfdep; newer ArcGIS pages add that condition).

    The only overlap between a hot and a cold rule is a cell that was mostly cold and
    is hot in the final step (historical cold spot by one rule, oscillating hot spot by
    the other) or the mirror case: as in sfdep's order, oscillating wins — the final
    step's significant state is the current one.
    """
    z_a = np.asarray(z, dtype=np.float64)
    sig = np.asarray(significant, dtype=bool)
    if z_a.ndim == 1:
        z_a, sig = z_a[None, :], sig[None, :]
    tau_a = np.asarray(tau, dtype=np.float64).ravel()
    tp = np.asarray(trend_p, dtype=np.float64).ravel()
    n = z_a.shape[1]
    hot = sig & (z_a > 0)
    cold = sig & (z_a < 0)
    n_hot, n_cold, n_sig = hot.sum(axis=1), cold.sum(axis=1), sig.sum(axis=1)
    up = (tp < trend_alpha) & (tau_a > 0)
    down = (tp < trend_alpha) & (tau_a < 0)
    code = np.zeros(len(z_a), dtype=np.int8)

    def mirror(this: npt.NDArray[np.bool_], n_this: npt.NDArray[np.int64], n_other: npt.NDArray[np.int64],
               *, rising: npt.NDArray[np.bool_], falling: npt.NDArray[np.bool_], kind: str) -> None:
        mostly = n_this >= MOSTLY * n - 1e-9
        final = this[:, -1]
        run = _trailing_run(this)
        rules = [
            (mostly & final & rising, "intensifying"),
            (mostly & final & falling, "diminishing"),
            (mostly & final, "persistent"),
            (~mostly & final & (n_sig == 1), "new"),
            (~mostly & final & (run >= 2) & (run == n_sig), "consecutive"),
            (~mostly & final & (n_other >= 1), "oscillating"),
            (~mostly & (n_this >= 1) & (n_other == 0), "sporadic"),
        ]
        for rule, name in rules:
            take = rule & (code == 0)
            code[take] = EMERGING_CLASSES.index(f"{name} {kind} spot")
        historical.append((mostly & ~final, f"historical {kind} spot"))

    historical: list[tuple[npt.NDArray[np.bool_], str]] = []
    mirror(hot, n_hot, n_cold, rising=up, falling=down, kind="hot")
    mirror(cold, n_cold, n_hot, rising=down, falling=up, kind="cold")
    for rule, name in historical:  # last: an oscillating final step wins over history
        code[rule & (code == 0)] = EMERGING_CLASSES.index(name)
    return code


# --------------------------------------------------------------------------- the analysis


class EmergingHotSpots:
    """Emerging Hot Spot Analysis of a space-time cube of calls.

    Parameters
    ----------
    cube : SpaceTimeCube
        Calls per cell and step (:func:`geo.aggregate.cube_counts`); needs ≥ 2 steps,
        and ArcGIS advises ≥ 10 for a meaningful trend.
    k : int
        Spatial k-ring of the neighbourhood (self included).
    time_k : int
        Previous steps in the neighbourhood (ArcGIS *Neighborhood Time Step*, default 1).
    window : {"cube", "step"}
        Global window of the Gi* (see :func:`space_time_gi_star`).
    alpha : float
        Significance level of a hot/cold bin.
    fdr : bool
        Judge bins with the Benjamini–Hochberg correction over all classified bins of
        the cube (as ArcGIS's Emerging Hot Spot Analysis does), else ``p < alpha``.
    trend_alpha : float
        Significance level of the Mann–Kendall trend, 0.01 by default (sfdep's
        threshold): the time window makes neighbouring steps share bins, so a cell's
        z series is positively autocorrelated and the test, which assumes independent
        steps, finds spurious trends at 0.05 — a stable hot spot would too often be
        called intensifying or diminishing.

    Notes
    -----
    The first ``time_k`` steps have truncated time windows: for the same intensity
    their |z| is smaller (z grows like √W), which would fake a rising trend in every
    persistent hot spot. Their z-scores are reported, but the trend test and the
    classes use steps ``time_k …`` only (``classified_steps``), so at least
    ``time_k + 2`` steps are needed; ArcGIS advises ten or more for a trend.

    Attributes
    ----------
    z, p : arrays (cells × steps)
        Gi* z-score and two-sided p-value of every bin.
    classified_steps : slice
        The steps with full time windows, on which trend and classes are computed.
    significant : bool array (cells × classified steps)
        Whether each of those bins is a significant hot or cold spot.
    trend : MannKendall
        Trend test of every cell's z series (``trend.tau``, ``trend.p``).
    code : int8 array
        Class code per cell; ``category`` gives the names (:data:`EMERGING_CLASSES`).
    """

    def __init__(self, cube: SpaceTimeCube, *, k: int = 1, time_k: int = 1, window: Window = "cube",
                 alpha: float = 0.05, fdr: bool = True, trend_alpha: float = 0.01) -> None:
        if cube.counts.shape[1] < time_k + 2:
            raise ValueError(f"emerging hot spots with time_k={time_k} need at least {time_k + 2} "
                             f"time steps, the cube has {cube.counts.shape[1]}")
        self.cube = cube
        self.weights = kring_weights(cube.cells, k)
        self.alpha = alpha
        self.fdr = fdr
        self.trend_alpha = trend_alpha
        self.z = space_time_gi_star(cube.counts, self.weights, time_k=time_k, window=window)
        self.p = two_sided_p(self.z)
        self.classified_steps = slice(time_k, None)
        z_full = self.z[:, self.classified_steps]
        p_full = self.p[:, self.classified_steps]
        self.significant = is_significant(p_full, alpha, fdr=fdr).reshape(z_full.shape)
        self.trend = mann_kendall(z_full)
        self.code = classify_emerging(z_full, self.significant, self.trend.tau, self.trend.p,
                                      trend_alpha=self.trend_alpha)

    @property
    def category(self) -> npt.NDArray[np.object_]:
        """Class name per cell."""
        return np.asarray(EMERGING_CLASSES, dtype=object)[self.code]

    def final_bins(self) -> npt.NDArray[np.int8]:
        """Gi_Bin (−3 … 3) of the final step, with FDR over that step if ``fdr``."""
        return confidence_bins(self.z[:, -1], self.p[:, -1], fdr=self.fdr)

    def frame(self) -> pd.DataFrame:
        """Per cell: ``h3, count`` (calls over all steps), ``z, p, bin`` (Gi* of the final
        step), ``category`` (class name), ``trend_tau, trend_p`` (Mann–Kendall)."""
        return pd.DataFrame({
            "h3": h3cells.hex_strings(self.cube.cells),
            "count": self.cube.counts.sum(axis=1),
            "z": self.z[:, -1], "p": self.p[:, -1], "bin": self.final_bins(),
            "category": pd.Categorical(self.category, categories=list(EMERGING_CLASSES)),
            "trend_tau": self.trend.tau, "trend_p": self.trend.p,
        })

    def alerts(self) -> pd.DataFrame:
        """Cells that are new or intensifying hot spots (alert 3), with their numbers."""
        frame = self.frame()
        return frame[frame["category"].isin(ALERT_CLASSES)].reset_index(drop=True)
