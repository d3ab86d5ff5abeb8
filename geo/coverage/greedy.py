"""The greedy baseline: add, one at a time, the site that covers the most uncovered demand.

Every plan reports it beside the MILP's answer, and the models start from it, so a solve
cut short by its time limit is never worse than greedy. Greedy gets at least ``1 − 1/e``
of the MCLP's optimal gain (Nemhauser, Wolsey & Fisher 1978); the rest is what the MILP
is for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from geo.coverage.errors import CoverageInputError
from geo.coverage.matrix import BoolArray, CoverageMatrix, FloatArray, IntArray


@dataclass(frozen=True)
class GreedyResult:
    """The greedy plan: ``order`` of new sites picked, covered share after each pick."""

    selected: BoolArray
    order: IntArray
    shares: FloatArray
    """``shares[k]``: covered share with the first ``k`` greedy sites (``shares[0]``: existing)."""
    seconds: float

    @property
    def covered_share(self) -> float:
        """Covered share of the full greedy plan."""
        return float(self.shares[-1])

    def share_at(self, k: int) -> float:
        """Covered share with ``k`` greedy sites (greedy stops once nothing more is covered)."""
        return float(self.shares[min(k, self.shares.size - 1)])


def greedy_coverage(matrix: CoverageMatrix, new_sites: int | None = None, *,
                    target: float | None = None, allowed: npt.ArrayLike | None = None) -> GreedyResult:
    """Greedy baseline: add, one at a time, the site covering the most uncovered demand.

    Stops after ``new_sites`` sites, once ``target`` share is covered (whichever comes
    first when both are given), or when no site adds anything. Greedy achieves at least
    ``1 − 1/e`` of the MCLP's optimal gain (Nemhauser, Wolsey & Fisher 1978); ties go to
    the lowest site index. ``allowed`` restricts the sites it may add.

    >>> m = CoverageMatrix.from_cost_matrix([[0, 9], [9, 0], [5, 5]], [1.0, 1.0, 3.0], 5)
    >>> greedy_coverage(m, 2).shares.round(2).tolist()
    [0.0, 0.8, 1.0]
    """
    if new_sites is None and target is None:
        raise CoverageInputError("give new_sites or target")
    started = time.perf_counter()
    limit = matrix.free_sites if new_sites is None else min(int(new_sites), matrix.free_sites)
    selected = matrix.predefined.copy()
    blocked = selected.copy() if allowed is None else selected | ~np.asarray(allowed, dtype=bool)
    residual = np.where(matrix.covered(selected), 0.0, matrix.weights)
    total = matrix.total_weight
    shares = [1.0 - residual.sum() / total]
    order: list[int] = []
    aij_t = matrix.aij_t
    while len(order) < limit and (target is None or shares[-1] < target - 1e-12):
        gains = aij_t @ residual
        gains[blocked] = -1.0
        j = int(np.argmax(gains))
        if gains[j] <= 0:
            break
        selected[j] = blocked[j] = True
        order.append(j)
        residual[aij_t.indices[aij_t.indptr[j]:aij_t.indptr[j + 1]]] = 0.0
        shares.append(1.0 - residual.sum() / total)
    return GreedyResult(selected, np.asarray(order, dtype=np.int64), np.asarray(shares),
                        time.perf_counter() - started)
