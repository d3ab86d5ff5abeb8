"""Rolling-origin backtest: every method forecasts each origin from the past alone.

For each origin *o* (period starts, oldest first) the backtest slices the events
strictly before *o* itself (:meth:`Events.before`) and hands only those to the
method's ``fit``; the period ``[o, o + period)`` is then scored
(:func:`geo.forecast.metrics.score_forecast`). A method never receives an event at or
after its origin, and :meth:`Forecaster.fit` refuses one if it did: nothing computed
for an origin (features, bandwidths, EM parameters) can depend on what followed.

Over the origins each method gets the mean and standard deviation of hit rate, PAI
and PEI per coverage level, and a paired, one-sided Wilcoxon signed-rank test of its
hit rates against each baseline's at the same origins (Wilcoxon 1945): the question is
whether it catches more, origin by origin, not whether its average is higher.
Origins whose period had no event are left out of means and tests.

Wilcoxon, F. (1945). Individual comparisons by ranking methods. *Biometrics Bulletin*
1(6), 80–83.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import wilcoxon

from geo.forecast.events import Events, ForecastError, as_time
from geo.forecast.grid import Grid
from geo.forecast.methods import BASELINES, Forecaster, Period, period_length
from geo.forecast.methods.base import cell_counts
from geo.forecast.metrics import COVERAGES, coverage_key, score_forecast

FloatArray = npt.NDArray[np.float64]


def rolling_origins(events: Events, period: Period, count: int, end: object | None = None
                    ) -> list[np.datetime64]:
    """The last ``count`` period starts whose whole period lies before ``end``.

    ``end`` defaults to local midnight after the last event. Days start at midnight,
    weeks on Monday (as the rest of the project counts them). Oldest first.
    """
    if count < 1:
        raise ForecastError("a backtest needs at least one origin")
    if end is None:
        if events.end is None:
            raise ForecastError("no events to place origins by")
        stop = events.end.astype("datetime64[D]") + np.timedelta64(1, "D")
    else:
        stop = as_time(end).astype("datetime64[D]")
    if period == "week":  # the Monday on or before stop: 1970-01-05 was a Monday
        stop = stop - ((stop - np.datetime64("1970-01-05")).astype(np.int64) % 7).astype("m8[D]")
    length = period_length(period)
    last = stop.astype("datetime64[ns]") - length
    origins = [last - k * length for k in range(count - 1, -1, -1)]
    if origins[0] <= events.start:
        raise ForecastError(f"{count} {period} origins reach back to {pd.Timestamp(origins[0])}, "
                            f"before the events begin ({pd.Timestamp(events.start)})")
    return origins


@dataclass
class MethodResult:
    """One method's scores at every origin (rows) and coverage level (columns)."""

    name: str
    citation: str
    params: dict[str, object]
    hit_rate: FloatArray
    pai: FloatArray
    pei: FloatArray
    seconds: float
    p_vs: dict[str, FloatArray] = field(default_factory=dict)
    """One-sided Wilcoxon p-value per coverage against each baseline (by name)."""

    def mean(self, metric: str) -> FloatArray:
        """Mean over the scored origins, per coverage (NaN if none was scored)."""
        return _column_stat(getattr(self, metric), lambda v: float(v.mean()), 1)

    def sd(self, metric: str) -> FloatArray:
        """Sample standard deviation over the scored origins, per coverage."""
        return _column_stat(getattr(self, metric), lambda v: float(v.std(ddof=1)), 2)


def _column_stat(values: FloatArray, stat: Callable[[FloatArray], float], at_least: int) -> FloatArray:
    out = np.full(values.shape[1], np.nan)
    for j in range(values.shape[1]):
        column = values[:, j][np.isfinite(values[:, j])]
        if column.size >= at_least:
            out[j] = stat(column)
    return out


@dataclass
class Backtest:
    """A finished backtest: origins, what was scored, and every method's result."""

    period: Period
    coverages: tuple[float, ...]
    origins: list[np.datetime64]
    period_events: npt.NDArray[np.int64]
    """Events inside the grid in each origin's period."""
    history_events: int
    """Events inside the grid before the last origin's period ended."""
    cells: int
    res: int
    methods: dict[str, MethodResult]

    @property
    def scored_origins(self) -> int:
        """Origins whose period had at least one event."""
        return int((self.period_events > 0).sum())

    def table(self, metric: str = "pai") -> pd.DataFrame:
        """Mean of ``metric`` per method (rows) and coverage (columns)."""
        return pd.DataFrame({coverage_key(c): [m.mean(metric)[j] for m in self.methods.values()]
                             for j, c in enumerate(self.coverages)}, index=list(self.methods))

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: per method ``hit_rate``, ``pai`` and ``pei`` (means) keyed by coverage
        strings, their ``*_sd``, the paired tests in ``beats``, timings and per-origin hit
        rates; top level ``origins`` (count), ``events``, ``cells`` and the origin times."""
        keys = [coverage_key(c) for c in self.coverages]

        def by_cov(values: FloatArray) -> dict[str, float | None]:
            return {k: (None if not np.isfinite(v) else float(v)) for k, v in zip(keys, values, strict=True)}

        methods: dict[str, object] = {}
        for name, m in self.methods.items():
            methods[name] = {
                "citation": m.citation, "params": {k: _plain(v) for k, v in m.params.items()},
                "seconds": m.seconds,
                **{metric: by_cov(m.mean(metric)) for metric in ("hit_rate", "pai", "pei")},
                **{f"{metric}_sd": by_cov(m.sd(metric)) for metric in ("hit_rate", "pai", "pei")},
                "beats": {base: {k: {"p": (None if not np.isfinite(p) else float(p)),
                                     "significant": bool(np.isfinite(p) and p < 0.05)}
                                 for k, p in zip(keys, ps, strict=True)}
                          for base, ps in m.p_vs.items()},
                "per_origin_hit_rate": {k: [None if not np.isfinite(v) else float(v)
                                            for v in m.hit_rate[:, j]] for j, k in enumerate(keys)},
            }
        return {"period": self.period, "origins": len(self.origins),
                "scored_origins": self.scored_origins,
                "origin_times": [str(pd.Timestamp(o)) for o in self.origins],
                "events": self.history_events, "period_events": self.period_events.tolist(),
                "cells": self.cells, "res": self.res, "coverages": keys, "methods": methods}


def _plain(value: object) -> object:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def paired_p(method: FloatArray, baseline: FloatArray) -> float:
    """One-sided Wilcoxon signed-rank p-value that ``method`` beats ``baseline`` (paired
    over origins; origins without events and zero differences left out; 1 when no
    origin differs)."""
    ok = np.isfinite(method) & np.isfinite(baseline)
    diff = method[ok] - baseline[ok]
    diff = diff[np.abs(diff) > 1e-12]
    if diff.size == 0:
        return 1.0
    return float(wilcoxon(diff, alternative="greater").pvalue)


def run_backtest(events: Events, grid: Grid, methods: Sequence[Forecaster] | Mapping[str, Forecaster],
                 *, period: Period, origins: int | Sequence[object],
                 coverages: Sequence[float] = COVERAGES, end: object | None = None) -> Backtest:
    """Backtest ``methods`` on ``events`` over rolling origins.

    ``origins`` is a count (the last *n* whole periods before ``end``,
    :func:`rolling_origins`) or explicit period starts. Every method gets, at every
    origin, exactly ``events.before(origin)``.
    """
    located = events.on(grid)
    length = period_length(period)
    starts = (rolling_origins(located, period, origins, end) if isinstance(origins, int)
              else sorted(as_time(o) for o in origins))
    chosen = dict(methods) if isinstance(methods, Mapping) else {m.name: m for m in methods}
    cov = tuple(float(c) for c in coverages)
    actual = [cell_counts(located.between(o, o + length), len(grid)) for o in starts]
    period_events = np.array([int(a.sum()) for a in actual], dtype=np.int64)
    results: dict[str, MethodResult] = {}
    for name, method in chosen.items():
        rows: list[tuple[FloatArray, FloatArray, FloatArray]] = []
        spent = 0.0
        for origin, counts in zip(starts, actual, strict=True):
            began = time.perf_counter()
            risk = method.fit(located.before(origin), grid, origin, period)
            spent += time.perf_counter() - began
            s = score_forecast(risk, counts, grid.area_m2, cov)
            rows.append((s.hit_rate, s.pai, s.pei))
        hit, pai, pei = (np.vstack(col) for col in zip(*rows, strict=True))
        results[name] = MethodResult(name, method.citation, method.params(), hit, pai, pei, spent)
    for name, result in results.items():
        for base in BASELINES:
            if base in results and base != name:
                result.p_vs[base] = np.array([paired_p(result.hit_rate[:, j], results[base].hit_rate[:, j])
                                              for j in range(len(cov))])
    seen = located.before(starts[-1] + length).cell
    assert seen is not None
    history = int((seen >= 0).sum())
    return Backtest(period, cov, list(starts), period_events, history, len(grid), grid.res, results)
