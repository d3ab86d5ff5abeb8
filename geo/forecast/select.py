"""Which forecast to show: the method that backtested best, or the baseline.

The rule (the issue's: no forecast without how well it predicted this area before):

1. A backtest with fewer than :data:`MIN_ORIGINS` scored origins cannot show a method
   beating anything (a one-sided signed-rank test over 7 origins cannot go below
   p = 1/128, and a week of luck is not a record); the better baseline is shown.
2. Otherwise every non-baseline method is tested against each baseline at the
   headline coverage (one-sided Wilcoxon over origins, :mod:`geo.forecast.backtest`),
   Holm-corrected over the candidate methods for each baseline (Holm 1979). A method
   qualifies when it beats *both* baselines at ``alpha`` after correction.
3. Of the qualifying methods the one with the highest mean PAI is shown, with the
   better baseline's scores beside it. With none, the better baseline (higher mean
   PAI) is shown and the reason says so.

Holm, S. (1979). A simple sequentially rejective multiple test procedure.
*Scandinavian Journal of Statistics* 6(2), 65–70.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from statsmodels.stats.multitest import multipletests

from geo.forecast.backtest import Backtest, MethodResult
from geo.forecast.methods import BASELINES
from geo.forecast.metrics import coverage_key

MIN_ORIGINS = 8
"""Fewest scored origins for a method to be preferred to a baseline."""
HEADLINE_COVERAGE = 0.05
"""Coverage at which methods are compared and scores shown (5 % of the area)."""


@dataclass(frozen=True)
class MethodScore:
    """Mean and spread over origins of one method at the headline coverage."""

    method: str
    hit_rate: float
    hit_rate_sd: float
    pai: float
    pai_sd: float
    pei: float

    @classmethod
    def of(cls, result: MethodResult, column: int) -> MethodScore:
        return cls(result.name, float(result.mean("hit_rate")[column]),
                   float(result.sd("hit_rate")[column]), float(result.mean("pai")[column]),
                   float(result.sd("pai")[column]), float(result.mean("pei")[column]))


@dataclass(frozen=True)
class Selection:
    """The method to show, its score, the baseline's beside it, and why.

    ``p_values`` are the Holm-corrected one-sided p-values of the shown method
    against each baseline (empty when a baseline is shown).
    """

    method: str
    is_baseline: bool
    coverage: float
    score: MethodScore
    baseline: MethodScore
    p_values: dict[str, float]
    origins: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["coverage"] = coverage_key(self.coverage)
        return data


def select_method(backtest: Backtest, *, coverage: float = HEADLINE_COVERAGE, alpha: float = 0.05,
                  min_origins: int = MIN_ORIGINS) -> Selection:
    """Pick what to show from a finished backtest (see the module's rule)."""
    if coverage not in backtest.coverages:
        raise ValueError(f"coverage {coverage} was not backtested ({backtest.coverages})")
    missing = [b for b in BASELINES if b not in backtest.methods]
    if missing:
        raise ValueError(f"the backtest lacks the baseline(s) {missing}")
    j = backtest.coverages.index(coverage)
    results = backtest.methods
    base_scores = sorted((MethodScore.of(results[b], j) for b in BASELINES),
                         key=lambda s: -np.nan_to_num(s.pai, nan=-np.inf))
    best_base, other_base = base_scores[0], base_scores[1]
    origins = backtest.scored_origins
    candidates = [name for name in results if name not in BASELINES]
    pct = f"{coverage:.0%}"
    if origins < min_origins:
        return Selection(best_base.method, True, coverage, best_base, other_base, {}, origins,
                         f"only {origins} scored origins (at least {min_origins} are needed to "
                         f"prefer a method to the baselines); showing {best_base.method}")
    if not candidates:
        return Selection(best_base.method, True, coverage, best_base, other_base, {}, origins,
                         f"no method besides the baselines was backtested; showing {best_base.method}")
    adjusted: dict[str, dict[str, float]] = {name: {} for name in candidates}
    for base in BASELINES:
        raw = [float(results[name].p_vs[base][j]) for name in candidates]
        holm = multipletests(raw, alpha=alpha, method="holm")[1]
        for name, p in zip(candidates, holm, strict=True):
            adjusted[name][base] = float(p)
    qualified = [name for name in candidates if all(p < alpha for p in adjusted[name].values())]
    if qualified:
        chosen = max(qualified, key=lambda name: (float(results[name].mean("pai")[j]),
                                                  -candidates.index(name)))
        score = MethodScore.of(results[chosen], j)
        p_text = ", ".join(f"p = {p:.3g} vs {b}" for b, p in adjusted[chosen].items())
        return Selection(chosen, False, coverage, score, best_base, adjusted[chosen], origins,
                         f"{chosen} beat both baselines at {pct} of the area over {origins} origins "
                         f"({p_text}, Holm-corrected); PAI {score.pai:.2f} against "
                         f"{best_base.method}'s {best_base.pai:.2f}")
    nearest = min(candidates, key=lambda name: max(adjusted[name].values()))
    worst_p = max(adjusted[nearest].values())
    return Selection(best_base.method, True, coverage, best_base, other_base, {}, origins,
                     f"no method beat both baselines significantly at {pct} of the area over "
                     f"{origins} origins (closest: {nearest}, p = {worst_p:.3g} after Holm); "
                     f"showing the baseline {best_base.method}")
