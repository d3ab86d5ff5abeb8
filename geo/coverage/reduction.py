"""Exact reductions of a coverage instance, which make tehsil-sized MILPs quick.

Before a model is written, demand that existing sites already cover and demand no candidate
can reach leave it; demand points covered by the same candidates merge; candidates
dominated by another are fixed out. None of this changes the optimum (the tests compare
with spopt's models on the full matrix), only the size of the model.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from geo.coverage.matrix import BoolArray, CoverageMatrix, FloatArray, IntArray


@dataclass(frozen=True)
class Reduction:
    """Exact reductions of a coverage instance before it becomes a MILP.

    1. Demand already covered by an existing site is covered in every plan: it becomes a
       constant (``base_weight``) and leaves the model.
    2. Demand no candidate can reach is never covered: it leaves the model.
    3. Demand points covered by exactly the same candidates merge into one group whose
       weight is their sum.
    4. A candidate whose groups are a subset of another candidate's (ties: the lower
       index stays) is dominated: any plan using it is matched or beaten by one using the
       other instead, for the MCLP and the LSCP alike, so it is fixed to 0 (``kept`` is
       ``False``); so is a candidate that covers no remaining demand.

    The optimum value is unchanged (the tests compare with spopt on the full matrix);
    only the model gets smaller, which is what makes tehsil-sized instances quick.
    """

    base_covered: BoolArray
    base_weight: float
    group_weights: FloatArray
    group_sites: tuple[IntArray, ...]
    kept: BoolArray

    @classmethod
    def of(cls, matrix: CoverageMatrix) -> Reduction:
        """Reduce ``matrix``."""
        base = matrix.covered(matrix.predefined)
        free = ~matrix.predefined
        keep_pair = ~base[matrix.rows] & free[matrix.cols]
        rows, cols = matrix.rows[keep_pair], matrix.cols[keep_pair]
        groups: dict[bytes, int] = {}
        group_of_row = np.full(matrix.n_clients, -1, dtype=np.int64)
        bounds = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1], True]) if rows.size else np.zeros(1, int)
        members: list[IntArray] = []
        for a, b in itertools.pairwise(bounds):
            key = cols[a:b].tobytes()
            g = groups.setdefault(key, len(groups))
            if g == len(members):
                members.append(cols[a:b])
            group_of_row[rows[a]] = g
        n_groups = len(members)
        in_group = group_of_row >= 0
        weights = np.bincount(group_of_row[in_group], weights=matrix.weights[in_group],
                              minlength=n_groups).astype(np.float64)
        kept = np.zeros(matrix.n_facilities, dtype=bool)
        if n_groups:
            g_idx = np.repeat(np.arange(n_groups), [m.size for m in members])
            f_idx = np.concatenate(members)
            b = sparse.csr_matrix((np.ones(f_idx.size), (g_idx, f_idx)),
                                  shape=(n_groups, matrix.n_facilities))
            size = np.asarray(b.sum(axis=0)).reshape(-1)
            overlap = (b.T @ b).tocoo()
            j, k, v = overlap.row, overlap.col, overlap.data
            beaten = (j != k) & (v >= size[j]) & ((size[k] > size[j]) | ((size[k] == size[j]) & (k < j)))
            dominated = np.zeros(matrix.n_facilities, dtype=bool)
            dominated[j[beaten]] = True
            kept = (size > 0) & ~dominated
            members = [m[kept[m]] for m in members]
        return cls(base, float(matrix.weights[base].sum()), weights, tuple(members), kept)

    @property
    def n_groups(self) -> int:
        """Demand groups left in the model."""
        return int(self.group_weights.size)


