"""Response-time intervals of calls and their statistics, the CAD way.

A call's lifecycle stamps (``received_at``, ``acknowledged_at``, ``dispatched_at``,
``on_scene_at``, ``closed_at``) give five intervals (:data:`INTERVALS`). An interval is

- *missing* when one of its ends was never recorded (the call never got there);
- *excluded* when its stamps are inconsistent: the interval is negative, or a stage
  recorded between its ends is out of order (an on-scene time before the dispatch time
  makes the call's response time untrustworthy, whatever its sign) — CAD practice is to
  leave such records out of a statistic and count them, never to mix them in;
- *valid* otherwise, and only valid intervals enter a mean or a percentile.

Percentiles interpolate linearly between order statistics (numpy's default). The SLA
applies to the response interval (received → on scene): its limit depends on the
category and on whether the call's station is urban or rural (:class:`SlaTable`).
Everything is vectorised over calls; groups (child areas, hour × weekday) go through one
``groupby`` each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.aggregate import LOCAL_TZ

STAGES = ("received_at", "acknowledged_at", "dispatched_at", "on_scene_at", "closed_at")
"""Lifecycle stamps in the order a consistent call passes them."""

INTERVALS: dict[str, tuple[str, str]] = {
    "queue": ("received_at", "acknowledged_at"),
    "dispatch": ("received_at", "dispatched_at"),
    "travel": ("dispatched_at", "on_scene_at"),
    "response": ("received_at", "on_scene_at"),
    "on_scene": ("on_scene_at", "closed_at"),
}
"""Name → (start stamp, end stamp)."""

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_EPOCH = pd.Timestamp(0, tz="UTC")

VALID, MISSING, EXCLUDED = 0, 1, 2
"""Per-interval state codes in :class:`CallIntervals`."""


class ResponseDataError(ValueError):
    """A frame lacks what the response statistics need (the message names it)."""


@dataclass(frozen=True)
class CallIntervals:
    """Seconds of every interval per call, with a state code per interval."""

    seconds: pd.DataFrame
    """One float column per interval (NaN where not valid)."""
    state: pd.DataFrame
    """One int8 column per interval: :data:`VALID`, :data:`MISSING` or :data:`EXCLUDED`."""


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def call_intervals(frame: pd.DataFrame) -> CallIntervals:
    """Every interval of every call in ``frame`` (columns: the :data:`STAGES` present).

    ``received_at`` is required; a missing stage column counts as never recorded.
    """
    if "received_at" not in frame.columns:
        raise ResponseDataError("response statistics need a 'received_at' column")
    n = len(frame)
    stamps = np.full((n, len(STAGES)), np.nan)
    for j, name in enumerate(STAGES):
        if name in frame.columns:
            since_epoch = _utc(frame[name]) - _EPOCH
            stamps[:, j] = since_epoch.dt.total_seconds().to_numpy(dtype=np.float64,
                                                                   na_value=np.nan)
    seconds: dict[str, npt.NDArray[np.float64]] = {}
    states: dict[str, npt.NDArray[np.int8]] = {}
    for interval, (start, end) in INTERVALS.items():
        a, b = STAGES.index(start), STAGES.index(end)
        span = stamps[:, a:b + 1]
        delta = stamps[:, b] - stamps[:, a]
        missing = np.isnan(delta)
        # out of order: a present stamp earlier than a present stamp before it in the span
        running = np.fmax.accumulate(np.where(np.isnan(span), -np.inf, span), axis=1)
        disordered = np.any(span[:, 1:] < running[:, :-1], axis=1)
        excluded = ~missing & ((delta < 0) | disordered)
        state = np.where(missing, MISSING, np.where(excluded, EXCLUDED, VALID)).astype(np.int8)
        seconds[interval] = np.where(state == VALID, delta, np.nan)
        states[interval] = state
    return CallIntervals(pd.DataFrame(seconds, index=frame.index),
                         pd.DataFrame(states, index=frame.index))


@dataclass(frozen=True)
class SlaTable:
    """On-scene limits (minutes) per category for urban and for rural stations.

    A station is urban when its tehsil has more urban than rural residents (census
    2023): the category table (``data/categories.csv``) holds both limits.
    """

    urban: Mapping[str, float]
    rural: Mapping[str, float]

    @classmethod
    def from_categories(cls, table: pd.DataFrame) -> SlaTable:
        """Both limits of every dispatched category of a category table
        (:func:`geo.categories.read_categories`)."""
        limits = {where: {str(code): float(minutes)
                          for code, minutes in zip(table["code"], table[f"sla_{where}_min"],
                                                   strict=True) if pd.notna(minutes)}
                  for where in ("urban", "rural")}
        return cls(urban=limits["urban"], rural=limits["rural"])

    def minutes(self, category: pd.Series, urban: pd.Series) -> npt.NDArray[np.float64]:
        """The limit of each call (NaN for categories without an SLA)."""
        by_urban = category.astype(str).map(dict(self.urban)).astype(np.float64)
        by_rural = category.astype(str).map(dict(self.rural)).astype(np.float64)
        return np.where(urban.to_numpy(dtype=bool), by_urban.to_numpy(), by_rural.to_numpy())

    def limit(self, category: str, urban: bool) -> float | None:
        """The limit of one call, in minutes, or ``None`` when the category has none."""
        found = (self.urban if urban else self.rural).get(category)
        return None if found is None else float(found)


def urban_tehsils(tehsils: pd.DataFrame) -> dict[str, bool]:
    """Tehsil code → urban (census 2023 urban residents above rural ones)."""
    urban = tehsils["urban_2023"].fillna(0) > tehsils["rural_2023"].fillna(0)
    return dict(zip(tehsils["code"].astype(str), urban.tolist(), strict=True))


def _summary(seconds: pd.Series, state: pd.Series, within: pd.Series | None) -> dict[str, Any]:
    valid = seconds.dropna().to_numpy(dtype=np.float64)
    out: dict[str, Any] = {
        "count": int(valid.size),
        "excluded": int((state == EXCLUDED).sum()),
        "missing": int((state == MISSING).sum()),
        "mean_min": float(valid.mean() / 60) if valid.size else None,
        "p50_min": float(np.percentile(valid, 50) / 60) if valid.size else None,
        "p90_min": float(np.percentile(valid, 90) / 60) if valid.size else None,
    }
    if within is not None:
        assessed = within.dropna()
        out["sla_assessed"] = int(assessed.size)
        out["within_sla"] = float(assessed.mean()) if assessed.size else None
    return out


def interval_stats(intervals: CallIntervals, sla_minutes: npt.NDArray[np.float64] | None = None,
                   rows: npt.NDArray[np.bool_] | None = None) -> dict[str, dict[str, Any]]:
    """``count, excluded, missing, mean_min, p50_min, p90_min`` per interval, and for the
    response interval ``sla_assessed`` (valid calls with an SLA) and ``within_sla``
    (their share on scene within it) when ``sla_minutes`` (one limit per call) is given.
    ``rows`` restricts the statistics to a subset of calls."""
    seconds, state = intervals.seconds, intervals.state
    limits = sla_minutes
    if rows is not None:
        seconds, state = seconds[rows], state[rows]
        limits = None if sla_minutes is None else sla_minutes[rows]
    out: dict[str, dict[str, Any]] = {}
    for name in INTERVALS:
        within = None
        if name == "response" and limits is not None:
            ok = seconds[name].notna().to_numpy() & np.isfinite(limits)
            values = np.where(ok, seconds[name].to_numpy() <= limits * 60.0, np.nan)
            within = pd.Series(values, index=seconds.index)
        out[name] = _summary(seconds[name], state[name], within)
    return out


def grouped_stats(intervals: CallIntervals, groups: pd.Series,
                  sla_minutes: npt.NDArray[np.float64] | None = None
                  ) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`interval_stats` per group key (e.g. each child area's code), keys sorted."""
    codes, keys = pd.factorize(groups, sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, key in enumerate(keys):
        rows = np.zeros(len(codes), dtype=bool)
        rows[order[bounds[i]:bounds[i + 1]]] = True
        out[str(key)] = interval_stats(intervals, sla_minutes, rows)
    return out


def hour_weekday_table(received_at: pd.Series, seconds: pd.Series) -> dict[str, Any]:
    """Valid calls and median interval (minutes) per local hour (rows 0–23) × weekday
    (columns Mon–Sun); ``None`` where no call was valid."""
    local = _utc(received_at).dt.tz_convert(LOCAL_TZ)
    valid = seconds.notna().to_numpy()
    hours = local.dt.hour.to_numpy()[valid]
    days = local.dt.day_of_week.to_numpy()[valid]
    values = seconds.to_numpy(dtype=np.float64)[valid] / 60.0
    frame = pd.DataFrame({"hour": hours, "day": days, "minutes": values})
    grouped = frame.groupby(["hour", "day"])["minutes"]
    full = pd.MultiIndex.from_product([range(24), range(7)], names=["hour", "day"])
    counts = grouped.size().reindex(full, fill_value=0).to_numpy().reshape(24, 7)
    medians = grouped.median().reindex(full).to_numpy().reshape(24, 7)
    return {"hours": list(range(24)), "weekdays": list(WEEKDAYS),
            "count": counts.astype(int).tolist(),
            "p50_min": [[None if np.isnan(v) else float(v) for v in row] for row in medians]}


@dataclass(frozen=True)
class SlowStationReview:
    """Stations whose response times are far slower than their peers'.

    A station's peers are the stations of the same setting (urban or rural: their
    calls' travel differs by a factor of two, so a slow urban station looks like an
    ordinary rural one). Each station with at least ``min_calls`` valid response times
    gets its median response; it is flagged when that median is at least ``min_ratio``
    times the median of its peers' medians (a robust reference a few slow stations
    cannot drag).
    """

    min_calls: int = 10
    min_ratio: float = 1.6

    def review(self, station: pd.Series, urban: pd.Series, response_s: pd.Series) -> pd.DataFrame:
        """Per station: ``station_code, urban, calls, median_min, peer_median_min, ratio,
        flagged``. ``urban`` is per call (the station's setting is its calls' majority)."""
        frame = pd.DataFrame({"station_code": station.astype(str).to_numpy(),
                              "urban": urban.to_numpy(dtype=np.float64),
                              "seconds": response_s.to_numpy(dtype=np.float64)})
        frame = frame[np.isfinite(frame["seconds"])]
        per = frame.groupby("station_code").agg(urban=("urban", "mean"), calls=("seconds", "size"),
                                                median=("seconds", "median")).reset_index()
        per["urban"] = per["urban"] > 0.5
        enough = per["calls"] >= self.min_calls
        peers = per[enough].groupby("urban")["median"].median()
        per["median_min"] = per["median"] / 60
        per["peer_median_min"] = per["urban"].map(peers).astype(np.float64) / 60
        per["ratio"] = per["median_min"] / per["peer_median_min"]
        per["flagged"] = enough & (per["ratio"] >= self.min_ratio)
        review: pd.DataFrame = per[["station_code", "urban", "calls", "median_min",
                                    "peer_median_min", "ratio", "flagged"]]
        return review.sort_values("station_code").reset_index(drop=True)


def within_sla(intervals: CallIntervals, sla_minutes: npt.NDArray[np.float64]) -> pd.Series:
    """1/0 per call for on scene within its SLA; NaN where there is no valid response time
    or no SLA."""
    response = intervals.seconds["response"].to_numpy()
    ok = np.isfinite(response) & np.isfinite(sla_minutes)
    return pd.Series(np.where(ok, (response <= sla_minutes * 60.0).astype(np.float64), np.nan),
                     index=intervals.seconds.index)


def response_report(frame: pd.DataFrame, sla_minutes: npt.NDArray[np.float64],
                    children: pd.Series | None = None) -> dict[str, Any]:
    """The whole review of one area: statistics per interval (with the SLA share of the
    response interval), per child area when ``children`` gives each call's child code,
    and the hour-of-day × weekday table of response times."""
    intervals = call_intervals(frame)
    out: dict[str, Any] = {
        "calls": len(frame),
        "intervals": interval_stats(intervals, sla_minutes),
        "hour_weekday": {"interval": "response",
                         **hour_weekday_table(frame["received_at"], intervals.seconds["response"])},
    }
    if children is not None:
        out["children"] = grouped_stats(intervals, children, sla_minutes)
    return out


def call_sla_minutes(frame: pd.DataFrame, sla: SlaTable, urban_by_tehsil: Mapping[str, bool]
                     ) -> npt.NDArray[np.float64]:
    """Each call's on-scene limit from its category and its tehsil's setting."""
    urban = frame["tehsil_code"].astype(str).map(dict(urban_by_tehsil)).fillna(False).astype(bool)
    return sla.minutes(frame["category"], urban)
