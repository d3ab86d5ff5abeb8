"""Hot spots on H3 cells: Getis–Ord Gi* with FDR-aware bins, and local Moran clusters.

Neighbourhoods are H3 k-rings: cell *j* is a neighbour of cell *i* when it lies within
``k`` grid steps of *i* and inside the study area. Weights are binary and, for Gi*,
include the cell itself. The weight matrix is a ``scipy.sparse`` CSR array built from
one bulk ``grid_disk`` (Rust) and one ``searchsorted`` — no Python loop over cells — so
the whole province at resolution 8 (≈ 260 k cells) takes well under a second, weights
included (``bench/hotspots.py`` measures it against esda + libpysal).

References
----------
Getis, A. and Ord, J. K. (1992). The analysis of spatial association by use of distance
statistics. *Geographical Analysis* 24(3), 189–206.

Ord, J. K. and Getis, A. (1995). Local spatial autocorrelation statistics: distributional
issues and an application. *Geographical Analysis* 27(4), 286–306.

Anselin, L. (1995). Local indicators of spatial association — LISA. *Geographical
Analysis* 27(2), 93–115.

Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical
and powerful approach to multiple testing. *JRSS B* 57(1), 289–300.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from geo import h3cells
from geo.aggregate import (
    AreaRef,
    CallFilter,
    as_study_cells,
    cell_counts,
    study_area_cells,
)
from geo.h3cells import Cells

if TYPE_CHECKING:
    import shapely

    from jurisdictions.boundaries import BoundarySet

FloatArray = npt.NDArray[np.float64]

CONFIDENCE_LEVELS: tuple[float, ...] = (0.10, 0.05, 0.01)
"""Significance levels of bins ±1, ±2, ±3 (90, 95, 99 % confidence), as ArcGIS's Gi_Bin."""


# --------------------------------------------------------------------------- weights


@dataclass(frozen=True)
class KRingWeights:
    """Binary k-ring weights over a set of H3 cells.

    Attributes
    ----------
    cells : uint64 array
        The cells, ascending; row and column *i* of ``matrix`` is ``cells[i]``.
    matrix : scipy.sparse.csr_array
        ``w_ij = 1`` when ``cells[j]`` is within ``k`` grid steps of ``cells[i]``
        (``w_ii = 1`` when ``self_included``), else 0. Symmetric.
    k : int
        Ring size.
    self_included : bool
        Whether the diagonal is 1 (Gi*) or 0 (Gi, local Moran).
    """

    cells: Cells
    matrix: sp.csr_array
    k: int
    self_included: bool

    @property
    def n(self) -> int:
        """Number of cells."""
        return len(self.cells)

    @property
    def cardinalities(self) -> npt.NDArray[np.int64]:
        """Neighbours of each cell inside the area (the cell itself counted if included)."""
        return np.asarray(np.diff(self.matrix.indptr), dtype=np.int64)

    def without_self(self) -> KRingWeights:
        """The same neighbourhoods with a zero diagonal."""
        if not self.self_included:
            return self
        return kring_weights(self.cells, self.k, self_included=False)


def kring_weights(cells: Cells, k: int = 1, *, self_included: bool = True) -> KRingWeights:
    """Binary k-ring weights over ``cells`` (sorted internally), built in bulk.

    One ``grid_disk`` over all cells gives every (origin, neighbour) pair; a
    ``searchsorted`` against the sorted cells keeps the neighbours inside the study
    area and gives their column. Pairs come out grouped by origin, so the CSR arrays
    are written directly (no COO sort).
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    cells = as_study_cells(cells)
    n = len(cells)
    origin, neighbour = h3cells.grid_disk_pairs(cells, k)
    col, inside = h3cells.lookup(cells, neighbour)
    if not self_included:
        inside &= neighbour != cells[origin]
    rows = origin[inside]
    index_dtype = np.int32 if n < 2**31 - 1 else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    indices = col[inside].astype(index_dtype)
    data = np.ones(len(indices), dtype=np.float64)
    matrix = sp.csr_array((data, indices, indptr), shape=(n, n))
    return KRingWeights(cells, matrix, k, self_included)


# --------------------------------------------------------------------------- significance


def two_sided_p(z: npt.ArrayLike) -> FloatArray:
    """Two-sided normal p-value ``2 Φ(−|z|)``."""
    return np.asarray(2.0 * ndtr(-np.abs(np.asarray(z, dtype=np.float64))), dtype=np.float64)


def fdr_critical_p(p: npt.ArrayLike, alpha: float) -> float:
    """Benjamini–Hochberg critical p-value at false discovery rate ``alpha``.

    With the ``m`` p-values sorted, ``p_(1) ≤ … ≤ p_(m)``, the critical value is the
    largest ``p_(r)`` with ``p_(r) ≤ r α / m``; tests with ``p ≤`` it are discoveries.
    Returns ``-1.0`` when there is none (nothing is significant). NaN p-values count as
    tests that are never significant.
    """
    values = np.asarray(p, dtype=np.float64).ravel()
    m = values.size
    if m == 0:
        return -1.0
    ordered = np.sort(np.where(np.isnan(values), np.inf, values))
    passing = np.nonzero(ordered <= alpha * np.arange(1, m + 1) / m)[0]
    return float(ordered[passing[-1]]) if passing.size else -1.0


def significant(p: npt.ArrayLike, alpha: float, *, fdr: bool = False) -> npt.NDArray[np.bool_]:
    """Whether each test is significant at ``alpha`` (BH-corrected over all of ``p`` if ``fdr``)."""
    values = np.asarray(p, dtype=np.float64)
    critical = fdr_critical_p(values, alpha) if fdr else alpha
    with np.errstate(invalid="ignore"):
        return np.asarray(values <= critical if fdr else values < critical, dtype=bool)


def confidence_bins(z: npt.ArrayLike, p: npt.ArrayLike, *, fdr: bool = False,
                    levels: Sequence[float] = CONFIDENCE_LEVELS) -> npt.NDArray[np.int8]:
    """Gi_Bin: ``sign(z)`` × the number of ``levels`` (0.10, 0.05, 0.01) at which a cell
    is significant, so ±3/±2/±1 are 99/95/90 % confidence and 0 is not significant.

    Without FDR a cell is significant at α when ``p < α``. With ``fdr`` each level's
    threshold is the Benjamini–Hochberg critical p-value of all cells at that level
    (:func:`fdr_critical_p`), which is how ArcGIS's Hot Spot Analysis applies its FDR
    option: z and p stay as computed, only the bins shrink.
    """
    z_a = np.asarray(z, dtype=np.float64)
    p_a = np.asarray(p, dtype=np.float64)
    level = np.zeros(z_a.shape, dtype=np.int8)
    for alpha in levels:
        level += significant(p_a, alpha, fdr=fdr).astype(np.int8)
    return (np.sign(z_a).astype(np.int8) * level).astype(np.int8)


# --------------------------------------------------------------------------- Gi*


def gi_star_z(lag: npt.ArrayLike, w_sum: npt.ArrayLike, w_sq_sum: npt.ArrayLike, *,
              mean: npt.ArrayLike, std: npt.ArrayLike, n: int) -> FloatArray:
    """Ord & Getis (1995) standardised Gi* from its ingredients (any broadcastable shape).

    ``z = (L − x̄ W) / (s √((n S₁ − W²) / (n − 1)))`` with ``L = Σ_j w_ij x_j``,
    ``W = Σ_j w_ij``, ``S₁ = Σ_j w_ij²``, ``x̄`` and ``s`` the mean and population
    standard deviation of the ``n`` values. Where the denominator is 0 (no variation,
    or a neighbourhood that is the whole area) the statistic is undefined; it is
    reported as ``z = 0`` (not significant).
    """
    lag_a = np.asarray(lag, dtype=np.float64)
    w_a = np.asarray(w_sum, dtype=np.float64)
    s1_a = np.asarray(w_sq_sum, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(np.clip((n * s1_a - w_a**2) / (n - 1), 0.0, None))
        den = np.asarray(std, dtype=np.float64) * spread
        z = (lag_a - np.asarray(mean, dtype=np.float64) * w_a) / den
    return np.asarray(np.where(den > 0, z, 0.0), dtype=np.float64)


class GiStar:
    r"""Getis–Ord local :math:`G_i^*` hot-spot statistic on H3 k-ring weights.

    For counts :math:`x_1 … x_n` over the study area and weights :math:`w_{ij}`
    (self included),

    .. math::

        G_i^* = \frac{\sum_j w_{ij} x_j - \bar x \sum_j w_{ij}}
                     {s \sqrt{\left[n \sum_j w_{ij}^2 - (\sum_j w_{ij})^2\right] / (n-1)}}

    with :math:`\bar x` the mean and :math:`s` the population standard deviation
    (Getis & Ord 1992; Ord & Getis 1995, eq. 14 — already a z-score). ``p`` is the
    two-sided normal p-value; ``bin`` is ArcGIS's Gi_Bin (:func:`confidence_bins`).

    Equivalence with esda: ``esda.G_Local(y, w, transform="B", star=True)`` computes
    the same z (``Zs``) when ``w`` holds the same k-ring neighbours *without* self
    (libpysal ``Graph.build_h3(ids, order=k, weight="binary")``): esda then sets the
    diagonal to 1 and keeps the weights binary. The default ``transform="R"``
    row-standardises, which changes :math:`S_1` and so the statistic; a ``w`` that
    already has a diagonal is used as it is. ``tests/test_hotspots.py`` checks the
    equality to 1e-9.

    Parameters
    ----------
    y : array of float
        Value per cell (calls), aligned with ``weights.cells``.
    weights : KRingWeights
        Weights with the self-weight (``kring_weights(cells, k)``).
    fdr : bool
        Apply the Benjamini–Hochberg correction to the bins.

    Attributes
    ----------
    z : array of float
        Standardised Gi* per cell.
    p : array of float
        Two-sided normal p-value per cell (never FDR-adjusted, as in ArcGIS).
    bin : array of int8
        −3 … 3 confidence bin.
    lag : array of float
        :math:`\sum_j w_{ij} x_j`, the neighbourhood total.
    mean, std : float
        Mean and population standard deviation of ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from geo import h3cells
    >>> centre = h3cells.latlng_to_cells([31.52], [74.35], 8)
    >>> _, cells = h3cells.grid_disk_pairs(centre, 3)
    >>> cells = np.sort(cells)                       # 37 cells, 3 rings round Lahore
    >>> _, cluster = h3cells.grid_disk_pairs(centre, 1)
    >>> y = np.where(np.isin(cells, cluster), 20.0, 1.0)  # 20 calls in 7 cells, 1 elsewhere
    >>> gi = GiStar(y, kring_weights(cells, 1))
    >>> i = np.searchsorted(cells, centre[0])
    >>> round(float(gi.z[i]), 3), int(gi.bin[i]), int((gi.bin == 3).sum())
    (6.0, 3, 7)
    """

    def __init__(self, y: npt.ArrayLike, weights: KRingWeights, *, fdr: bool = False) -> None:
        values = np.asarray(y, dtype=np.float64).ravel()
        if values.shape != (weights.n,):
            raise ValueError(f"y has {values.size} values for {weights.n} cells")
        if not np.all(np.isfinite(values)):
            raise ValueError("y has missing or infinite values; an empty cell counts 0")
        if not weights.self_included:
            raise ValueError("Gi* needs the self-weight: use kring_weights(cells, k, self_included=True)")
        if weights.n < 2:
            raise ValueError("Gi* needs at least two cells")
        self.y = values
        self.weights = weights
        self.fdr = fdr
        self.n = weights.n
        self.mean = float(values.mean())
        self.std = float(values.std())
        matrix = weights.matrix
        self.lag = np.asarray(matrix @ values, dtype=np.float64)
        w_sum = np.asarray(matrix.sum(axis=1), dtype=np.float64)
        # binary weights: sum of squares equals the sum
        w_sq = w_sum if np.all(matrix.data == 1.0) else np.asarray(matrix.multiply(matrix).sum(axis=1))
        self.z = gi_star_z(self.lag, w_sum, w_sq, mean=self.mean, std=self.std, n=self.n)
        self.p = two_sided_p(self.z)
        self.bin = confidence_bins(self.z, self.p, fdr=fdr)

    @classmethod
    def from_cells(cls, cells: Cells, y: npt.ArrayLike, *, k: int = 1, fdr: bool = False) -> GiStar:
        """Gi* of ``y`` (aligned with ascending ``cells``) on k-ring weights built here."""
        return cls(y, kring_weights(cells, k), fdr=fdr)

    @property
    def cells(self) -> Cells:
        """The cells, ascending (the order of every attribute)."""
        return self.weights.cells

    def frame(self) -> pd.DataFrame:
        """``h3`` (hex string), ``count``, ``z``, ``p``, ``bin`` per cell (``count`` is
        int64 when every value is a whole number, as calls are)."""
        return pd.DataFrame({"h3": h3cells.hex_strings(self.cells), "count": _counts_column(self.y),
                             "z": self.z, "p": self.p, "bin": self.bin})


def _counts_column(y: FloatArray) -> npt.NDArray[np.float64] | npt.NDArray[np.int64]:
    return y.astype(np.int64) if bool(np.all(np.mod(y, 1.0) == 0.0)) else y


def hotspots(calls: Any, area: AreaRef | str | shapely.Geometry, res: int, *, k: int = 1,
             fdr: bool = False, where: CallFilter | None = None,
             boundaries: BoundarySet | None = None) -> GiStar:
    """Gi* hot spots of calls over a study area: aggregate (zero cells kept), then Gi*.

    ``calls`` may be pandas or Dask; ``area`` is a polygon, or ``LEVEL:CODE`` or an
    :class:`AreaRef` of an area in ``boundaries``. The counts are integral but returned as
    floats in ``GiStar.y``.
    """
    cells = study_area_cells(area, res, boundaries)
    counts = cell_counts(calls, cells, where=where).frame["count"]
    return GiStar(counts.to_numpy(dtype=np.float64), kring_weights(cells, k), fdr=fdr)


# --------------------------------------------------------------------------- local Moran

QUADRANTS = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}
"""esda's quadrant codes ``q`` and their labels (value, neighbours' mean)."""


class LocalMoran:
    r"""Local Moran's :math:`I_i` clusters (HH, LL) and outliers (HL, LH) through esda.

    .. math:: I_i = \frac{z_i}{m_2} \sum_{j \ne i} w_{ij} z_j,
              \quad z_i = x_i - \bar x,\quad m_2 = \sum_k z_k^2 / (n - 1)

    (Anselin 1995; the :math:`n - 1` divisor is esda's) on row-standardised k-ring
    weights without self. The quadrant is
    the sign of :math:`z_i` and of its spatial lag; a cell is labelled when its
    conditional-permutation pseudo p-value is below ``alpha``, else ``"ns"``.
    ``esda.Moran_Local`` does the computation (its ``n_jobs=1`` path; without numba
    installed the permutations run in numpy and take seconds per 100 k cells).

    Attributes
    ----------
    I : array of float
        Local Moran statistic (``Moran_Local.Is``).
    q : array of int
        Quadrant 1 HH, 2 LH, 3 LL, 4 HL.
    p : array of float
        Pseudo p-value from ``permutations`` conditional permutations, folded to the
        nearer tail as esda does today: ``(min(m, P − m) + 1) / (P + 1)`` with ``m``
        the permutations whose :math:`I_i` is at least the observed one.
    label : array of str
        ``HH``/``LL``/``HL``/``LH`` where ``p < alpha``, else ``ns``.
    esda : esda.Moran_Local
        The underlying esda object.
    """

    def __init__(self, y: npt.ArrayLike, weights: KRingWeights, *, permutations: int = 999,
                 alpha: float = 0.05, seed: int | None = 12345) -> None:
        import esda  # noqa: PLC0415 -- esda/libpysal are heavy; load on use
        from libpysal.graph import Graph  # noqa: PLC0415

        values = np.asarray(y, dtype=np.float64).ravel()
        if values.shape != (weights.n,):
            raise ValueError(f"y has {values.size} values for {weights.n} cells")
        if permutations < 1:
            raise ValueError("local Moran labels need permutations ≥ 1")
        plain = weights.without_self()
        graph = Graph.from_sparse(plain.matrix.tocsr())
        self.weights = plain
        with warnings.catch_warnings():
            # esda announces a future change of its default alternative; Moran_Local does
            # not take the argument yet, and ``p`` is documented as today's folded p-value
            warnings.filterwarnings("ignore", "The alternative hypothesis", DeprecationWarning)
            self.esda = esda.Moran_Local(values, graph, transformation="r", permutations=permutations,
                                         n_jobs=1, seed=seed, keep_simulations=False)
        self.y = values
        self.I = np.asarray(self.esda.Is, dtype=np.float64)
        self.q = np.asarray(self.esda.q, dtype=np.int64)
        self.p = np.asarray(self.esda.p_sim, dtype=np.float64)
        labels = np.array([QUADRANTS[int(v)] for v in (1, 2, 3, 4)], dtype=object)[self.q - 1]
        self.label = np.where(self.p < alpha, labels, "ns").astype(object)

    def frame(self) -> pd.DataFrame:
        """``h3``, ``count``, ``I``, ``p``, ``quadrant``, ``label`` per cell."""
        quadrant = np.array(list(QUADRANTS.values()), dtype=object)[self.q - 1]
        return pd.DataFrame({"h3": h3cells.hex_strings(self.weights.cells), "count": _counts_column(self.y),
                             "I": self.I, "p": self.p, "quadrant": quadrant, "label": self.label})
