r"""How well a risk surface caught the events that followed: hit rate, PAI and PEI.

For a coverage level *c* (a share of the study area) the cells of highest risk per
area are flagged until they cover :math:`a = c\,A` of the area *A*. With *n* of the *N*
events of the period in the flagged cells:

.. math::

    \text{hit rate} = \frac{n}{N},\qquad
    \text{PAI} = \frac{n / N}{a / A}\ \text{(Chainey, Tompson \& Uhlig 2008)},\qquad
    \text{PEI} = \frac{n}{n^*}\ \text{(Hunt 2016)}

where :math:`n^*` is the most events any selection of the same area could have caught
(the cells ranked by their actual counts), so PEI is 1 for a perfect forecast and PAI
of a perfect forecast is :math:`1/c` once every event is inside.

Ties are honest: cells of equal risk are not ordered by accident. The block of tied
cells that straddles the area *a* is taken in the proportion of its area that is still
needed, and contributes that share of its events — the expected result of breaking
the ties at random. A forecast of all zeros therefore scores exactly what a random
map scores (hit rate *c*, PAI 1).

Chainey, S., Tompson, L. and Uhlig, S. (2008). The utility of hotspot mapping for
predicting spatial patterns of crime. *Security Journal* 21, 4–28. Hunt, J. M. (2016).
*Do crime hot spots move? Exploring the effects of the modifiable areal unit problem
and modifiable temporal unit problem on crime hot spot stability.* PhD thesis,
American University, Washington DC (the predictive efficiency index).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

COVERAGES: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10, 0.20)
"""Coverage levels of the issue: 1, 2, 5, 10 and 20 % of the area."""


def coverage_key(coverage: float) -> str:
    """JSON key of a coverage level (``0.05`` → ``"0.05"``)."""
    return f"{coverage:g}"


def captured(score: npt.ArrayLike, counts: npt.ArrayLike, area: npt.ArrayLike,
             coverages: Sequence[float]) -> FloatArray:
    """Expected events caught by the cells of highest ``score`` per area at each coverage.

    ``score``, ``counts`` and ``area`` are per cell; ties are broken at random in
    expectation (see the module notes).
    """
    s = np.asarray(score, dtype=np.float64)
    y = np.asarray(counts, dtype=np.float64)
    a = np.asarray(area, dtype=np.float64)
    density = s / a
    order = np.argsort(-density, kind="stable")
    d_sorted = density[order]
    starts = np.flatnonzero(np.r_[True, d_sorted[1:] != d_sorted[:-1]])
    block_area = np.add.reduceat(a[order], starts)
    block_hits = np.add.reduceat(y[order], starts)
    cum_area = np.cumsum(block_area)
    cum_hits = np.cumsum(block_hits)
    wanted = np.asarray(coverages, dtype=np.float64) * a.sum()
    b = np.minimum(np.searchsorted(cum_area, wanted - 1e-9 * a.sum(), side="left"), len(starts) - 1)
    share = np.clip((wanted - (cum_area[b] - block_area[b])) / block_area[b], 0.0, 1.0)
    return np.asarray(cum_hits[b] - block_hits[b] + share * block_hits[b], dtype=np.float64)


@dataclass(frozen=True)
class Scores:
    """Hit rate, PAI and PEI of one forecast at each coverage level (NaN without events)."""

    coverages: tuple[float, ...]
    events: int
    hit_rate: FloatArray
    pai: FloatArray
    pei: FloatArray


def score_forecast(risk: npt.ArrayLike, counts: npt.ArrayLike, area: npt.ArrayLike,
                   coverages: Sequence[float] = COVERAGES) -> Scores:
    """Score a risk surface against the counts that followed (one period)."""
    c = tuple(float(v) for v in coverages)
    if any(not 0.0 < v <= 1.0 for v in c):
        raise ValueError(f"coverage levels must lie in (0, 1], got {c}")
    y = np.asarray(counts, dtype=np.float64)
    total = float(y.sum())
    if total <= 0:
        nan = np.full(len(c), np.nan)
        return Scores(c, 0, nan, nan.copy(), nan.copy())
    hits = captured(risk, y, area, c)
    best = captured(y, y, area, c)
    hit_rate = hits / total
    return Scores(c, round(total), hit_rate, hit_rate / np.asarray(c), hits / best)
