r"""Trends in call counts per area and category: honest about what the numbers show.

From a frame of events (a time column, and whatever area and category columns the
caller names) :func:`count_series` builds complete count series per day, week
(Monday–Sunday) or month in Pakistan time — periods without a call are zeros, never
gaps. :func:`trend_report` reads one series:

- **comparisons** of the latest period with the mean of the previous
  :data:`RECENT_PERIODS` and with the same period a year before (52 weeks, 364 days or
  12 months back, so weekdays line up), each with an exact conditional test for two
  Poisson counts (Przyborowski & Wilenski 1940): under equal rates, the current count
  given the total is binomial with the exposure share. Crime counts are usually
  over-dispersed, so the test is, if anything, too ready to call a change; it is
  never bent the other way.
- a **monotonic trend**: Mann–Kendall (:func:`geo.emerging.mann_kendall`) with Sen's
  slope and its 95 % interval (``scipy.stats.theilslopes``, Sen 1968);
- a **seasonal–trend decomposition** (STL, Cleveland et al. 1990, robust fitting) when
  the series holds at least two seasonal cycles (7 days, 52 weeks or 12 months), with
  the strengths of trend and season of Wang, Smith & Hyndman (2006); otherwise the
  report says why there is none;
- **change points** in the level: PELT (Killick, Fearnhead & Eckley 2012, ``ruptures``)
  on the Anscombe-transformed counts :math:`2\sqrt{x + 3/8}`, whose variance is about 1
  for Poisson counts, with a least-squares cost and the penalty
  :math:`\beta = 3\,\hat\sigma^2 \ln n` per change: the modified BIC of Zhang &
  Siegmund (2007) in units of the noise variance :math:`\hat\sigma^2`, estimated
  robustly from the median absolute first difference so that over-dispersion and the
  level shifts themselves do not shrink it; segments are at least
  :data:`MIN_SEGMENT` periods long. Why 3 and not BIC's 2: on simulated Poisson
  series of 60 periods without any change, 2 ln n finds a spurious change in 18 % of
  them, 3 ln n in 4.5 %, while a doubling of the level half-way is still found in
  96 % (the check is in ``tests/test_trends.py``).

The :attr:`TrendReport.summary` sentence is built from these figures only: it says
"significant" only where the test said so at ``alpha``, and "too few calls" where a
comparison rests on fewer than :data:`MIN_CALLS` calls in all.
:func:`rank_rising` ranks many areas by how significantly their latest period rose,
with the Benjamini–Hochberg correction within each group.

Przyborowski, J. and Wilenski, H. (1940). Homogeneity of results in testing samples
from Poisson series. *Biometrika* 31, 313–323. Sen, P. K. (1968). Estimates of the
regression coefficient based on Kendall's tau. *JASA* 63, 1379–1389. Cleveland, R. B.
et al. (1990). STL: a seasonal-trend decomposition procedure based on loess. *Journal
of Official Statistics* 6(1), 3–73. Wang, X., Smith, K. and Hyndman, R. (2006).
Characteristic-based clustering for time series data. *Data Mining and Knowledge
Discovery* 13, 335–364. Killick, R., Fearnhead, P. and Eckley, I. A. (2012). Optimal
detection of changepoints with a linear computational cost. *JASA* 107, 1590–1598.
Zhang, N. R. and Siegmund, D. O. (2007). A modified Bayes information criterion with
applications to the analysis of comparative genomic hybridization data. *Biometrics*
63(1), 22–32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import ruptures
from scipy import stats
from statsmodels.tsa.seasonal import STL

from geo.aggregate import local_times
from geo.emerging import mann_kendall
from geo.hotspots import significant

TrendPeriod = Literal["day", "week", "month"]
FREQUENCIES: dict[str, str] = {"day": "D", "week": "W-SUN", "month": "M"}
"""pandas period frequency of each period (weeks end on Sunday, so start on Monday)."""
SEASON: dict[str, int] = {"day": 7, "week": 52, "month": 12}
"""Periods per seasonal cycle: the week of days, the year of weeks or months."""
YEAR_BACK: dict[str, int] = {"day": 364, "week": 52, "month": 12}
"""Periods back to "the same period last year" (364 days keeps the weekday)."""
RECENT_PERIODS = 4
"""The current period is compared with the mean of this many before it."""
MIN_CALLS = 20
"""Fewest calls (current and compared periods together) for a comparison to be
reported; below it the summary says "too few calls". At 20 calls a doubling is just
detectable; a percentage from a handful of calls misleads more than it tells."""
MIN_TREND_PERIODS = 8
"""Fewest periods for a Mann–Kendall trend (its normal approximation needs about 8)."""
MIN_SEGMENT = 3
"""Shortest segment between change points, in periods."""
CHANGE_PENALTY = 3.0
"""Penalty per change point in units of σ̂² ln n (modified BIC; see the module notes)."""
ALPHA = 0.05


class TrendDataError(ValueError):
    """The events cannot be counted as asked (missing column, unknown period)."""


# --------------------------------------------------------------------------- series


def _frequency(period: str) -> str:
    try:
        return FREQUENCIES[period]
    except KeyError:
        raise TrendDataError(f"period must be one of {sorted(FREQUENCIES)}, got {period!r}") from None


def count_series(events: pd.DataFrame, *, period: TrendPeriod = "week", time: str = "received_at",
                 by: Sequence[str] = (), start: object | None = None, end: object | None = None
                 ) -> pd.DataFrame:
    """Complete count series: one row per period (index: local start of the period),
    one column per combination of the ``by`` columns (one column ``"all"`` without).

    ``start`` and ``end`` (local times, ``end`` exclusive) default to the periods of
    the first and last event; periods and groups without events are zeros.
    """
    freq = _frequency(period)
    missing = [c for c in (time, *by) if c not in events.columns]
    if missing:
        raise TrendDataError(f"no column(s) {missing}; the frame has {list(events.columns)}")
    local = local_times(events[time])
    ok = local.notna().to_numpy()
    periods = local[ok].dt.to_period(freq)
    if periods.empty and (start is None or end is None):
        raise TrendDataError("no events with a time to count")
    first = pd.Period(pd.Timestamp(start), freq) if start is not None else periods.min()  # type: ignore[arg-type]
    last = (pd.Period(pd.Timestamp(end) - pd.Timedelta(1, "ns"), freq) if end is not None  # type: ignore[arg-type]
            else periods.max())
    index = pd.period_range(first, last, freq=freq)
    keys = [periods.rename("period")] + [events.loc[ok, c].astype(object).rename(c) for c in by]
    counts = pd.Series(1, index=periods.index).groupby(keys, observed=True).sum()
    table = (counts.unstack(list(by)) if by else counts.to_frame("all"))
    table = table.reindex(index).fillna(0).astype(np.int64)
    table.index = index.start_time
    table.index.name = "period_start"
    return table


# --------------------------------------------------------------------------- results


WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def hour_weekday_counts(events: pd.DataFrame, *, time: str = "received_at", start: object | None = None,
                        end: object | None = None) -> npt.NDArray[np.int64]:
    """Events per local hour of day (rows 0–23) × weekday (columns Monday–Sunday) in
    ``[start, end)`` (local times; ``None``: unbounded), as ``/stats/response``'s
    ``hour_weekday`` table lays them out.

    >>> frame = pd.DataFrame({"received_at": pd.to_datetime(["2024-01-01 09:30", "2024-01-07 23:59"])})
    >>> table = hour_weekday_counts(frame)
    >>> int(table[9, 0]), int(table[23, 6]), int(table.sum())
    (1, 1, 2)
    """
    if time not in events.columns:
        raise TrendDataError(f"no column {time!r}; the frame has {list(events.columns)}")
    local = local_times(events[time]).dropna()
    if start is not None:
        local = local[local >= pd.Timestamp(start)]  # type: ignore[arg-type]
    if end is not None:
        local = local[local < pd.Timestamp(end)]  # type: ignore[arg-type]
    table = np.zeros((24, 7), dtype=np.int64)
    np.add.at(table, (local.dt.hour.to_numpy(), local.dt.day_of_week.to_numpy()), 1)
    return table


@dataclass(frozen=True)
class Comparison:
    """The current count against a baseline of ``len(baseline)`` earlier periods."""

    against: str
    current: int
    baseline: list[int]
    baseline_mean: float
    change: float | None
    """Relative change on the baseline mean (0.18 = up 18 %); None when the mean is 0."""
    p_value: float | None
    """Two-sided exact conditional test; None with too few calls."""
    significant: bool
    enough_calls: bool


@dataclass(frozen=True)
class Trend:
    """Mann–Kendall and Sen's slope over the whole series."""

    periods: int
    tau: float
    p_value: float
    significant: bool
    sen_slope: float
    """Calls per period."""
    slope_low: float
    slope_high: float


@dataclass(frozen=True)
class Decomposition:
    """STL components (same length as the series) and their strengths (0–1)."""

    season_length: int
    trend: list[float]
    seasonal: list[float]
    residual: list[float]
    trend_strength: float
    seasonal_strength: float


@dataclass(frozen=True)
class TrendReport:
    """Everything :func:`trend_report` found for one series, with the counts it rests on."""

    label: str
    period: str
    period_starts: list[str]
    counts: list[int]
    current_start: str
    current: int
    vs_recent: Comparison
    vs_last_year: Comparison | None
    trend: Trend | None
    decomposition: Decomposition | None
    decomposition_note: str
    change_points: list[str]
    change_point_penalty: float | None
    summary: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# --------------------------------------------------------------------------- tests


def conditional_poisson_p(current: int, baseline_total: int, baseline_periods: int,
                          alternative: Literal["two-sided", "greater"] = "two-sided") -> float:
    """Exact test that the current period's rate equals the baseline's: given the
    total ``n``, ``current ~ Binomial(n, 1 / (1 + baseline_periods))`` under equal rates."""
    n = current + baseline_total
    if n == 0:
        return 1.0
    return float(stats.binomtest(current, n, 1.0 / (1 + baseline_periods), alternative=alternative).pvalue)


def _compare(against: str, current: int, baseline: npt.NDArray[np.int64], alpha: float) -> Comparison:
    mean = float(baseline.mean()) if baseline.size else 0.0
    enough = baseline.size > 0 and int(current + baseline.sum()) >= MIN_CALLS
    p = conditional_poisson_p(current, int(baseline.sum()), baseline.size) if enough else None
    return Comparison(against, current, baseline.astype(int).tolist(), mean,
                      (current - mean) / mean if mean > 0 else None, p,
                      bool(p is not None and p < alpha), enough)


def _trend(y: npt.NDArray[np.float64], alpha: float) -> Trend | None:
    if y.size < MIN_TREND_PERIODS:
        return None
    mk = mann_kendall(y)
    slope, _, low, high = stats.theilslopes(y, np.arange(y.size, dtype=np.float64))
    p = float(mk.p[0])
    return Trend(int(y.size), float(mk.tau[0]), p, p < alpha, float(slope), float(low), float(high))


def _decompose(y: npt.NDArray[np.float64], period: str) -> tuple[Decomposition | None, str]:
    season = SEASON[period]
    if y.size < 2 * season:
        return None, (f"no seasonal decomposition: {y.size} {period}s, STL needs two cycles "
                      f"({2 * season} {period}s)")
    fit = STL(y, period=season, robust=True).fit()
    trend, seasonal, resid = (np.asarray(a, dtype=np.float64) for a in (fit.trend, fit.seasonal, fit.resid))

    def strength(component: npt.NDArray[np.float64]) -> float:
        total = float(np.var(component + resid))
        return max(0.0, 1.0 - float(np.var(resid)) / total) if total > 0 else 0.0

    return (Decomposition(season, trend.tolist(), seasonal.tolist(), resid.tolist(), strength(trend),
                          strength(seasonal)), f"STL with a {season}-{period} season (robust)")


def change_points(counts: npt.ArrayLike) -> tuple[list[int], float | None]:
    """Positions where a new level starts (PELT, see the module notes) and the penalty."""
    y = 2.0 * np.sqrt(np.asarray(counts, dtype=np.float64) + 0.375)
    if y.size < 2 * MIN_SEGMENT:
        return [], None
    sigma = float(np.median(np.abs(np.diff(y)))) / (0.6745 * math.sqrt(2.0))
    if sigma <= 0:
        sigma = float(np.std(np.diff(y))) / math.sqrt(2.0)
    if sigma <= 0:
        return [], None  # a constant series has no change
    penalty = CHANGE_PENALTY * sigma**2 * math.log(y.size)
    ends = ruptures.Pelt(model="l2", min_size=MIN_SEGMENT, jump=1).fit(y[:, None]).predict(pen=penalty)
    return [int(e) for e in ends[:-1]], penalty


# --------------------------------------------------------------------------- report


def _percent(change: float) -> str:
    return f"{abs(change) * 100:.0f} %"


def _comparison_text(c: Comparison, what: str, alpha: float) -> str:
    if not c.enough_calls:
        total = c.current + sum(c.baseline)
        return f"too few calls to compare with {what} ({total} in all, {MIN_CALLS} needed)"
    if c.change is None:
        core = f"{c.current} against none in {what}"
    elif c.change == 0:
        core = f"level with {what} ({c.baseline_mean:.1f})"
    else:
        core = (f"{'up' if c.change > 0 else 'down'} {_percent(c.change)} on {what} "
                f"({c.baseline_mean:.1f})")
    verdict = "significant" if c.significant else "not significant"
    return f"{core}, {verdict} (p = {c.p_value:.2g}, α = {alpha:g})"


def trend_report(series: pd.Series, *, period: TrendPeriod = "week", label: str = "calls",
                 alpha: float = ALPHA) -> TrendReport:
    """Analyse one complete count series (as a column of :func:`count_series`); the
    last period is the current one."""
    _frequency(period)
    if series.size < 1:
        raise TrendDataError("an empty series has no current period")
    y = series.to_numpy(dtype=np.float64)
    counts = series.to_numpy(dtype=np.int64)
    starts = [str(pd.Timestamp(t).date()) for t in series.index]
    current = int(counts[-1])
    recent = counts[-1 - RECENT_PERIODS:-1]
    vs_recent = _compare(f"the previous {RECENT_PERIODS} {period}s", current, recent, alpha)
    back = YEAR_BACK[period]
    vs_year = (_compare(f"the same {period} last year", current, counts[-1 - back:-back], alpha)
               if counts.size > back else None)
    trend = _trend(y, alpha)
    decomposition, note = _decompose(y, period)
    cuts, penalty = change_points(counts)

    parts = [f"{label}: {current} in the {period} from {starts[-1]}",
             _comparison_text(vs_recent, f"the {RECENT_PERIODS}-{period} average", alpha)]
    parts.append(_comparison_text(vs_year, f"the same {period} last year", alpha) if vs_year is not None
                 else f"no data for the same {period} last year")
    if trend is None:
        parts.append(f"too short for a trend ({len(counts)} {period}s, {MIN_TREND_PERIODS} needed)")
    elif trend.significant:
        direction = "rising" if trend.sen_slope > 0 or trend.tau > 0 else "falling"
        parts.append(f"{direction} trend over {trend.periods} {period}s (Mann–Kendall p = "
                     f"{trend.p_value:.2g}; Sen's slope {trend.sen_slope:+.2f} a {period})")
    else:
        parts.append(f"no significant trend over {trend.periods} {period}s (Mann–Kendall p = "
                     f"{trend.p_value:.2g})")
    if cuts:
        parts.append("level changed from " + ", ".join(starts[c] for c in cuts))
    return TrendReport(label, period, starts, counts.astype(int).tolist(), starts[-1], current, vs_recent,
                       vs_year, trend, decomposition, note, [starts[c] for c in cuts], penalty,
                       "; ".join(parts))


def rank_rising(events: pd.DataFrame, *, area: str, period: TrendPeriod = "week",
                time: str = "received_at", within: str | None = None, end: object | None = None,
                alpha: float = ALPHA) -> pd.DataFrame:
    """Areas whose latest period rose most significantly on the previous
    :data:`RECENT_PERIODS`, ranked within each ``within`` group (e.g. region; the whole
    frame when ``None``).

    One-sided exact conditional test per area; areas with fewer than
    :data:`MIN_CALLS` calls in the five periods are not tested (``p`` is NaN) — a
    filter on the total, which the conditional test does not depend on, so the
    Benjamini–Hochberg correction over the tested areas of a group stays valid.
    Columns: the group, ``area``, ``current``, ``baseline`` (calls in the previous
    periods), ``baseline_mean``, ``change``, ``p``, ``q`` (BH-adjusted), ``significant``
    and ``rank`` (1 = strongest rise: smallest p, then largest change).
    """
    by = [within, area] if within else [area]
    table = count_series(events, period=period, time=time, by=by, end=end)
    window = table.iloc[-1 - RECENT_PERIODS:]
    current = window.iloc[-1].to_numpy(dtype=np.int64)
    before = window.iloc[:-1].sum().to_numpy(dtype=np.int64)
    frame = window.columns.to_frame(index=False)
    if within is None:
        frame.columns = ["area"]
    else:
        frame.columns = [within, "area"]
    frame["current"] = current
    frame["baseline"] = before
    frame["baseline_mean"] = before / RECENT_PERIODS
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["change"] = np.where(before > 0, current / frame["baseline_mean"] - 1.0, np.nan)
    tested = (current + before) >= MIN_CALLS
    n = current + before
    p = np.full(len(frame), np.nan)
    p[tested] = stats.binom.sf(current[tested] - 1, n[tested], 1.0 / (1 + RECENT_PERIODS))
    frame["p"] = p
    frame["q"] = np.nan
    frame["significant"] = False
    groups = frame.groupby(within, sort=True).groups if within else {None: frame.index}
    for rows in groups.values():
        idx = np.asarray([r for r in rows if tested[r]], dtype=np.int64)
        if idx.size:
            frame.loc[idx, "q"] = stats.false_discovery_control(p[idx], method="bh")
            frame.loc[idx, "significant"] = significant(p[idx], alpha, fdr=True)
    frame = frame.sort_values([*([within] if within else []), "p", "change"],
                              ascending=[*([True] if within else []), True, False], na_position="last")
    frame["rank"] = frame.groupby(within).cumcount() + 1 if within else np.arange(1, len(frame) + 1)
    return frame.reset_index(drop=True)
