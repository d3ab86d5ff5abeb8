"""Trend and forecast answers built from a frame of calls: one function each, shared by
``safecity trends`` / ``safecity forecast`` (files or the database) and by the worker jobs
behind ``GET /api/v1/trends`` and ``GET /api/v1/forecast``, so the CLI and the API give
the same fields from the same code.

Nothing here reads a file or the database: callers pass the calls (``lat, lon,
received_at, category`` and, for the ranking, the child areas' code column), the area's
polygon and the names of areas. The statistics are :mod:`geo.trends` and
:mod:`geo.forecast`; this module only decides the windows and shapes the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from api.domain.trends.schemas import PROFILE_DAYS
from geo.aggregate import LOCAL_TZ, local_times
from geo.forecast.backtest import Backtest, run_backtest
from geo.forecast.events import events_from_frame
from geo.forecast.grid import Grid
from geo.forecast.methods import Forecaster, Period, default_methods
from geo.forecast.metrics import coverage_key
from geo.forecast.riskmap import RiskMap, risk_map
from geo.forecast.select import select_method
from geo.trends import (
    ALPHA,
    FREQUENCIES,
    WEEKDAY_NAMES,
    TrendPeriod,
    count_series,
    hour_weekday_counts,
    rank_rising,
    trend_report,
)

CHILD_LEVEL: dict[str, str | None] = {"province": "district", "region": "district",
                                      "district": "tehsil", "tehsil": "station", "station": None}
"""The areas ranked for rising counts inside an area of each level (none inside a station)."""

LOOKBACK: dict[str, pd.DateOffset] = {"day": pd.DateOffset(days=400), "week": pd.DateOffset(weeks=106),
                                      "month": pd.DateOffset(months=26)}
"""History read for a trend: enough for the same period last year and for STL's two
seasonal cycles (14 days, 104 weeks, 24 months), and no more."""

FORECAST_LOOKBACK_DAYS = 400
"""History read for a forecast: the backtest's origins plus what the methods look back
(the learned model's 26-period mean at most), and a year for the festival calendar."""

BY_CATEGORY_MAX = 8
"""Categories summarised one by one under the area's summary (the busiest ones)."""

CELLS_SHOWN = 0.2
"""The forecast answer lists the cells of the highest risk covering this share of the area."""


class TrendInputError(ValueError):
    """The request cannot be answered as asked (no calls, an unknown method, …)."""


# --------------------------------------------------------------------------- windows


def period_start(moment: pd.Timestamp, period: str) -> pd.Timestamp:
    """Local start of the period (day, week from Monday, month) holding ``moment``."""
    return pd.Period(moment, FREQUENCIES[period]).start_time


def complete_end(times: pd.Series, period: str, now: pd.Timestamp) -> pd.Timestamp:
    """Where the last complete period ends (local): the end of the last call's period
    when that period is over by ``now`` (a history), else its start (live data: the
    running period is never reported as the current one)."""
    local = local_times(times).dropna()
    latest = min(now, local.max()) if len(local) else now
    start = period_start(latest, period)
    following: pd.Timestamp = start + _step(period)
    return following if following <= now else start


def first_full_start(times: pd.Series, period: str) -> pd.Timestamp | None:
    """Start of the first period the calls cover whole (a history beginning mid-week would
    otherwise show a low first week, which reads as a rise)."""
    local = local_times(times).dropna()
    if not len(local):
        return None
    first = local.min()
    start = period_start(first, period)
    return start if first.normalize() == start else start + _step(period)


def _step(period: str) -> pd.DateOffset:
    return {"day": pd.DateOffset(days=1), "week": pd.DateOffset(weeks=1),
            "month": pd.DateOffset(months=1)}[period]


def to_local(moment: Any) -> pd.Timestamp:
    """A naive local (Pakistan) timestamp from an aware or naive time."""
    return cast(pd.Timestamp, local_times(pd.Series([pd.Timestamp(moment)])).iloc[0])


# --------------------------------------------------------------------------- trends


@dataclass(frozen=True)
class AreaRef:
    """The area a trend or forecast is about."""

    level: str
    code: str | None
    name: str

    def to_dict(self) -> dict[str, object]:
        return {"level": self.level, "code": self.code, "name": self.name}


def _short(label: str) -> str:
    """"Dacoity, robbery or snatching" → "dacoity, robbery or snatching" (mid-sentence)."""
    return label[:1].lower() + label[1:] if label[:2] != label[:2].upper() else label


def trends_payload(calls: pd.DataFrame, *, area: AreaRef, period: TrendPeriod, until: pd.Timestamp,
                   categories: Sequence[str], labels: Mapping[str, str],
                   rising_level: str | None = None, area_names: Mapping[str, str] | None = None,
                   rising_within: str | None = None, observed_from: pd.Timestamp | None = None,
                   alpha: float = ALPHA) -> dict[str, Any]:
    """The trend answer of an area: the report of all selected calls, one summary per
    busy category, and the ranking of the child areas whose latest period rose most.

    ``calls`` are those of the area (``received_at``, ``category`` and, for the ranking,
    ``<rising_level>_code``); ``until`` (local, exclusive) ends the current period;
    ``observed_from`` is when the record begins (the first call of any category: a rare
    category's first call is not the start of observation), by default the first call.
    """
    if len(calls):
        calls = calls.loc[local_times(calls["received_at"]).to_numpy() < until.to_datetime64()]
    first = (pd.Series([observed_from]) if observed_from is not None
             else calls["received_at"] if len(calls) else pd.Series([], dtype="datetime64[ns]"))
    start = first_full_start(first, period) if len(first) and len(calls) else None
    window = first_full_start(pd.Series([until - LOOKBACK[period]]), period)  # what callers read
    if start is not None and window is not None:
        start = max(start, window)
    if start is None or start >= until:
        raise TrendInputError(f"no calls of the selection in {area.name} before {until:%Y-%m-%d}")
    what = (_short(labels[categories[0]]) if len(categories) == 1 else "dispatched cases"
            if len(categories) > 3 else " and ".join(_short(labels[c]) for c in categories))
    series = count_series(calls, period=period, start=start, end=until)["all"]
    report = trend_report(series, period=period, label=f"{what} in {area.name}", alpha=alpha)

    by_category: list[dict[str, Any]] = []
    if len(categories) > 1:
        table = count_series(calls, period=period, by=["category"], start=start, end=until)
        busiest = table.sum().sort_values(ascending=False).index[:BY_CATEGORY_MAX]
        for code in busiest:
            name = _short(labels.get(str(code), str(code)))
            one = trend_report(table[code], period=period, label=f"{name} in {area.name}", alpha=alpha)
            by_category.append({"category": str(code), "label": labels.get(str(code), str(code)),
                                "calls": int(table[code].sum()), "current": one.current,
                                "change": one.vs_recent.change, "p_value": one.vs_recent.p_value,
                                "significant": one.vs_recent.significant, "summary": one.summary})
    return {"area": area.to_dict(), "period": period, "categories": list(categories),
            "from": str(start), "until": str(until), "calls": int(series.sum()),
            "summary": report.summary, "report": report.to_dict(), "by_category": by_category,
            "rising": rising_payload(calls, level=rising_level, period=period, until=until,
                                     names=area_names or {}, within=rising_within, alpha=alpha)}


def rising_payload(calls: pd.DataFrame, *, level: str | None, period: TrendPeriod, until: pd.Timestamp,
                   names: Mapping[str, str], within: str | None = None, alpha: float = ALPHA
                   ) -> dict[str, Any]:
    """The child areas ranked by how significantly their latest period rose on the
    previous four (:func:`geo.trends.rank_rising`, Benjamini–Hochberg over the areas, or
    over the areas of each ``within`` group, ranks restarting per group)."""
    note = ("areas with fewer than 20 calls in the five periods are not tested; q is the "
            "Benjamini-Hochberg adjusted p-value over the tested areas")
    if level is None:
        return {"level": None, "within": None, "alpha": alpha, "areas": [],
                "note": "no smaller areas to rank"}
    column = f"{level}_code"
    group = f"{within}_code" if within else None
    for needed in (column, group):
        if needed is not None and needed not in calls.columns:
            raise TrendInputError(f"the calls have no {needed} column to rank by")
    ranked = rank_rising(calls.dropna(subset=[c for c in (column, group) if c]), area=column,
                         within=group, period=period, end=until, alpha=alpha)
    rows = []
    for row in cast(list[dict[str, Any]], ranked.to_dict("records")):
        code = str(row["area"])
        rows.append({"code": code, "name": names.get(code, code), "current": int(row["current"]),
                     "baseline_mean": float(row["baseline_mean"]), "change": _finite(row["change"]),
                     "p": _finite(row["p"]), "q": _finite(row["q"]),
                     "significant": bool(row["significant"]), "rank": int(row["rank"]),
                     **({"group": str(row[group])} if group else {})})
    return {"level": level, "within": within, "alpha": alpha, "areas": rows, "note": note}


def _finite(value: object) -> float | None:
    number = float(cast(float, value))
    return number if np.isfinite(number) else None


# --------------------------------------------------------------------------- profile


def profile_payload(calls: pd.DataFrame, *, area: AreaRef, until: pd.Timestamp,
                    categories: Sequence[str], days: int = PROFILE_DAYS) -> dict[str, Any]:
    """When an area's calls come: calls per day over the ``days`` days before ``until``
    (local, exclusive) with each day's same-weekday mean over those days, the latest day
    against the mean of the same weekday before it, and the calls per local hour × weekday
    of the same days (rows hours 0–23, columns Monday–Sunday, as ``/stats/response``)."""
    start = until - pd.Timedelta(days=days)
    if len(calls):
        local = local_times(calls["received_at"]).to_numpy()
        calls = calls.loc[(local >= start.to_datetime64()) & (local < until.to_datetime64())]
    series = count_series(calls, period="day", start=start, end=until)["all"]
    counts = series.to_numpy(dtype=np.int64)
    weekdays = pd.DatetimeIndex(series.index).day_of_week.to_numpy()
    means = pd.Series(counts).groupby(weekdays).transform("mean").to_numpy(dtype=np.float64)
    earlier = counts[:-1][weekdays[:-1] == weekdays[-1]]
    table = hour_weekday_counts(calls, start=start, end=until)
    per_day = table.sum(axis=0)
    per_hour = table.sum(axis=1)
    return {
        "area": area.to_dict(), "categories": list(categories), "days": days,
        "from": str(start.date()), "until": str(until.date()), "timezone": LOCAL_TZ,
        "calls": int(counts.sum()),
        "daily": {"dates": [str(d.date()) for d in series.index], "counts": counts.tolist(),
                  "same_weekday_mean": [round(float(m), 2) for m in means]},
        "latest_day": {"date": str(series.index[-1].date()), "weekday": WEEKDAY_NAMES[int(weekdays[-1])],
                       "count": int(counts[-1]), "earlier_same_weekdays": len(earlier),
                       "same_weekday_mean": round(float(earlier.mean()), 2) if len(earlier) else None},
        "hour_weekday": {"hours": list(range(24)), "weekdays": list(WEEKDAY_NAMES),
                         "count": table.tolist(), "per_weekday": per_day.tolist(),
                         "per_hour": per_hour.tolist()},
    }


# --------------------------------------------------------------------------- forecast


def pick_methods(names: Sequence[str] | None) -> dict[str, Forecaster]:
    """The named methods (all by default), always with both baselines: no forecast is
    shown without them beside it."""
    available = default_methods()
    if not names:
        return available
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise TrendInputError(f"unknown method(s) {', '.join(unknown)}; methods are "
                              f"{', '.join(available)}")
    wanted = {"naive", "historical_average", *names}
    return {name: m for name, m in available.items() if name in wanted}


def backtest_summary(result: Backtest) -> dict[str, Any]:
    """The backtest's scores without the per-origin detail (the API's and the panel's)."""
    full = result.to_dict()
    methods = cast(dict[str, dict[str, Any]], full["methods"])
    keep = ("citation", "hit_rate", "pai", "pei", "hit_rate_sd", "pai_sd", "beats", "seconds")
    return {**{k: full[k] for k in ("period", "origins", "scored_origins", "origin_times", "events",
                                    "cells", "res", "coverages")},
            "methods": {name: {k: m[k] for k in keep} for name, m in methods.items()}}


@dataclass(frozen=True)
class ForecastRun:
    """A backtest, the selection it led to and the risk map for the next period."""

    backtest: Backtest
    risk_map: RiskMap

    def payload(self, area: AreaRef, categories: Sequence[str] | None) -> dict[str, Any]:
        """JSON answer: the map's summary (``cells``: how many in the grid) with the chosen
        method's score and the baseline's beside it, the backtest's scores and
        ``top_cells``, the cells of highest risk covering :data:`CELLS_SHOWN` of the area."""
        shown = self.risk_map.frame(coverages=(0.01, 0.05, 0.1, CELLS_SHOWN))
        top = shown[shown[f"top_{coverage_key(CELLS_SHOWN)}"]].sort_values("rank")
        records = cast(list[dict[str, Any]], top.to_dict("records"))
        selection = self.risk_map.selection
        return {"area": area.to_dict(), "categories": list(categories) if categories else None,
                **self.risk_map.to_dict(), "beats_baselines": not selection.is_baseline,
                "reason": selection.reason, "backtest": backtest_summary(self.backtest),
                "top_cells": [{"h3": str(r["h3"]), "risk": float(r["risk"]), "rank": int(r["rank"]),
                           **{f"top_{k}": bool(r[f"top_{k}"]) for k in ("0.01", "0.05", "0.1")}}
                          for r in records]}


def run_forecast(calls: pd.DataFrame, polygon: Any, *, res: int, period: Period, origins: int,
                 origin: pd.Timestamp, methods: Mapping[str, Forecaster],
                 lat: str = "lat", lon: str = "lon", time: str = "received_at",
                 coverages: Sequence[float] | None = None) -> ForecastRun:
    """Backtest ``methods`` over the ``origins`` whole periods before ``origin``, pick
    what to show (:func:`geo.forecast.select.select_method`) and forecast
    ``[origin, origin + period)`` with it, from the events before ``origin`` only."""
    from geo.forecast.metrics import COVERAGES  # noqa: PLC0415

    events = events_from_frame(calls, lat=lat, lon=lon, time=time, drop_invalid=True)
    grid = Grid.from_polygon(polygon, res)
    covs = tuple(coverages) if coverages else COVERAGES
    if 0.05 not in covs:
        covs = (*covs, 0.05)  # the headline coverage the selection compares at
    result = run_backtest(events, grid, methods, period=period, origins=origins, end=origin,
                          coverages=sorted(covs))
    chosen = select_method(result)
    return ForecastRun(result, risk_map(events, grid, origin, period, selection=chosen,
                                        methods=methods))


def next_origin(times: pd.Series, period: Period, now: pd.Timestamp) -> pd.Timestamp:
    """Start of the period to forecast: the end of the last complete one
    (:func:`complete_end`): the day or week after a history, the running day or week of
    live data, forecast from everything known before it."""
    return complete_end(times, period, now)
