"""The dashboard's trends and profile panels: HTML fragments (``api/templates/dashboard/``)
built from the trend, forecast and profile answers of :mod:`api.domain.trends.services`.

The series is drawn as inline SVG here (no script, no asset to load): a polyline of the
weekly counts, the current week as a dot, change points as dashed lines. The forecast
block always shows the shown method's score next to the baseline's, and says so when the
baseline itself is shown.

The profile panel (``render_profile``, ``GET /api/v1/trends/profile``: a fragment of its own,
so it never waits for the forecast's backtest) is drawn the same way: **Daily calls**, a bar
per day with the mean of its weekday over the window as a tick, and **Calls by hour and
weekday**, 7 × 24 cells shaded by count. Their x positions are percentages and their
heights pixels, so a chart fills its column at any width while its text keeps its size
(a scaled ``viewBox`` would shrink the labels to nothing on a phone). Each states the
numbers it rests on in words and in a table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import pandas as pd

SVG_WIDTH, SVG_HEIGHT, SVG_PAD = 320, 72, 6


@dataclass(frozen=True)
class Sparkline:
    """What the template draws: the polyline's points, the last point, change-point x's."""

    points: str
    last_x: float
    last_y: float
    changes: list[tuple[float, str]]
    low: int
    high: int
    first: str
    last: str
    label: str


def sparkline(starts: list[str], counts: list[int], change_points: list[str], period: str
              ) -> Sparkline | None:
    """Coordinates of the series in a ``SVG_WIDTH`` × ``SVG_HEIGHT`` box (None when empty)."""
    if not counts:
        return None
    high = max(*counts, 1)
    step = (SVG_WIDTH - 2 * SVG_PAD) / max(len(counts) - 1, 1)

    def x(i: int) -> float:
        return round(SVG_PAD + i * step, 1)

    def y(v: int) -> float:
        return round(SVG_HEIGHT - SVG_PAD - (SVG_HEIGHT - 2 * SVG_PAD) * v / high, 1)

    points = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(counts))
    index = {s: i for i, s in enumerate(starts)}
    changes = [(x(index[c]), c) for c in change_points if c in index]
    label = (f"Calls per {period} from {starts[0]} to {starts[-1]}: lowest {min(counts)}, highest "
             f"{max(counts)}, latest {counts[-1]}")
    return Sparkline(points, x(len(counts) - 1), y(counts[-1]), changes, min(counts), max(counts),
                     starts[0], starts[-1], label)


DAILY_TOP, DAILY_PLOT, DAILY_AXIS = 16, 120, 20
"""Daily chart: pixels above the plot (the top gridline's label), of the plot, of the date row."""
GRID_ROW, GRID_HEAD = 22, 18
"""Hour × weekday chart: pixels per weekday row, and of the hour row above them."""
BLUES = ((222, 235, 247), (8, 48, 107))
"""Shades of a cell with one call and of the busiest cell (ColorBrewer Blues' ends)."""
NO_CALLS = "#f4f3ef"


def _nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 4, 5, 6, 8 × 10^k at or above ``value`` (at least 2, so
    the half-way gridline is a whole number).

    >>> _nice_ceiling(64), _nice_ceiling(7), _nice_ceiling(1_234), _nice_ceiling(0)
    (80, 8, 2000, 2)
    """
    if value <= 2:
        return 2
    power = 10 ** math.floor(math.log10(value))
    return int(next(f * power for f in (1, 2, 4, 5, 6, 8, 10) if f * power >= value))


def _pct(value: float) -> str:
    return f"{value:.3f}%"


@dataclass(frozen=True)
class DailyChart:
    """What the template draws for **Daily calls**."""

    bars: list[dict[str, Any]]
    gridlines: list[tuple[float, str]]
    dates: list[tuple[str, str, str]]
    weeks: list[tuple[str, list[int]]]
    height: int
    label: str
    description: str


def daily_chart(profile: dict[str, Any]) -> DailyChart:
    """Bars (x, width in %; y, height in px) of each day's calls, the tick of its weekday's
    mean, gridlines at 0, half and the top of a round scale, Mondays' dates, and the
    counts per week (Monday first) for the table."""
    daily = profile["daily"]
    dates = [pd.Timestamp(d) for d in daily["dates"]]
    counts: list[int] = daily["counts"]
    means: list[float] = daily["same_weekday_mean"]
    top = _nice_ceiling(max([*counts, *means, 1]))
    step = 100 / len(counts)

    def y(v: float) -> float:
        return round(DAILY_TOP + DAILY_PLOT * (1 - v / top), 1)

    bars = [{"x": _pct(i * step + step * 0.12), "w": _pct(step * 0.76), "x2": _pct(i * step + step * 0.88),
             "y": y(c),
             "h": round(DAILY_TOP + DAILY_PLOT - y(c), 1), "mean_y": y(m), "latest": i == len(counts) - 1,
             "title": f"{d:%a %d %b %Y}: {c} calls (mean of {d:%a}s: {m:.1f})"}
            for i, (d, c, m) in enumerate(zip(dates, counts, means, strict=True))]
    gridlines = [(y(v), f"{v:,}") for v in (0, top // 2, top)]
    starts = [(_pct(i * step), f"{d.day} {d:%b}") for i, d in enumerate(dates) if d.day_of_week == 0]
    # every other Monday, counted back from the last, may hide on a narrow chart (CSS .sc-odd)
    mondays = [(x, text, "sc-odd" if (len(starts) - 1 - k) % 2 else "") for k, (x, text) in enumerate(starts)]
    weeks: list[tuple[str, list[int]]] = []
    for d, c in zip(dates, counts, strict=True):
        if not weeks or d.day_of_week == 0:
            weeks.append((str((d - pd.Timedelta(days=d.day_of_week)).date()), [-1] * 7))
        weeks[-1][1][d.day_of_week] = c
    latest = profile["latest_day"]
    total = profile["calls"]
    label = (f"Calls per day from {profile['from']} to {dates[-1].date()}: lowest {min(counts)}, "
             f"highest {max(counts)}, latest {counts[-1]}")
    day_name = f"{pd.Timestamp(latest['date']):%A}"
    usual = (f", against a mean of {latest['same_weekday_mean']:.1f} on the "
             f"{latest['earlier_same_weekdays']} {day_name}s before it"
             if latest["same_weekday_mean"] is not None else "")
    description = (f"{total:,} calls over {profile['days']} days, {profile['from']} to "
                   f"{dates[-1].date()} (Pakistan time): {min(counts):,} to {max(counts):,} a day, "
                   f"mean {total / len(counts):.1f}. Latest day, {day_name} {latest['date']}: "
                   f"{latest['count']:,}{usual}.")
    return DailyChart(bars, gridlines, mondays, weeks, DAILY_TOP + DAILY_PLOT + DAILY_AXIS, label,
                      description)


@dataclass(frozen=True)
class HourGrid:
    """What the template draws for **Calls by hour and weekday**."""

    cells: list[dict[str, Any]]
    hours: list[tuple[str, str]]
    weekdays: list[tuple[str, float]]
    rows: list[tuple[str, list[int]]]
    high: int
    high_colour: str
    low_colour: str
    height: int
    label: str
    description: str


def _shade(count: int, high: int) -> str:
    if count <= 0:
        return NO_CALLS
    t = (count - 1) / max(high - 1, 1)
    lo, hi = BLUES
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(lo, hi, strict=True))


def hour_grid(profile: dict[str, Any]) -> HourGrid:
    """7 rows (Monday first) × 24 hour columns, each cell shaded from one call (palest) to
    the busiest cell's count (darkest); no calls is the page's paper colour."""
    table = profile["hour_weekday"]
    counts: list[list[int]] = table["count"]  # 24 rows of hours × 7 weekdays
    names: list[str] = table["weekdays"]
    high = max(max(row) for row in counts)
    cells = []
    for day, name in enumerate(names):
        for hour in range(24):
            c = counts[hour][day]
            cells.append({"x": _pct(hour * 100 / 24), "w": _pct(100 / 24 - 0.25),
                          "y": GRID_HEAD + day * GRID_ROW, "fill": _shade(c, high),
                          "title": f"{name} {hour:02d}:00–{hour + 1:02d}:00: {c} calls"})
    hours = [(_pct(h * 100 / 24), f"{h:02d}") for h in range(0, 24, 3)]
    weekdays = [(name, GRID_HEAD + day * GRID_ROW + GRID_ROW * 0.68) for day, name in enumerate(names)]
    rows = [(name, [counts[h][day] for h in range(24)]) for day, name in enumerate(names)]
    busiest_hour, busiest_day = divmod(max(range(24 * 7), key=lambda i: counts[i // 7][i % 7]), 7)
    per_day, per_hour = table["per_weekday"], table["per_hour"]
    top_day = max(range(7), key=lambda d: per_day[d])
    top_hour = max(range(24), key=lambda h: per_hour[h])
    quiet_hour = min(range(24), key=lambda h: per_hour[h])
    label = (f"Calls by hour and weekday, {profile['from']} to {profile['latest_day']['date']}: "
             f"busiest hour {names[busiest_day]} {busiest_hour:02d}:00 with {high} calls")
    full = [f"{pd.Timestamp(2024, 1, 1 + d):%A}" for d in range(7)]  # 1 January 2024 was a Monday
    description = (f"One cell: the calls in one hour of one weekday over the {profile['days']} days, "
                   f"0 to {high:,}. Busiest: {names[busiest_day]} {busiest_hour:02d}:00–"
                   f"{busiest_hour + 1:02d}:00 ({high:,}). Busiest weekday {full[top_day]} "
                   f"({per_day[top_day]:,}); busiest hour of the day {top_hour:02d}:00–{top_hour + 1:02d}:00 "
                   f"({per_hour[top_hour]:,} over all days); quietest {quiet_hour:02d}:00–"
                   f"{quiet_hour + 1:02d}:00 ({per_hour[quiet_hour]:,}).")
    return HourGrid(cells, hours, weekdays, rows, high, _shade(high, high), _shade(1, high),
                    GRID_HEAD + 7 * GRID_ROW, label, description)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:+.0%}"


@cache
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: PLC0415

    return Environment(loader=PackageLoader("api", "templates"), autoescape=select_autoescape(),
                       trim_blocks=True, lstrip_blocks=True)


def render_panel(trends: dict[str, Any] | None, trends_error: str | None,
                 forecast: dict[str, Any] | None, forecast_error: str | None) -> str:
    """The fragment; either answer may be missing, with the reason shown in its place."""
    line = None
    if trends is not None:
        report = trends["report"]
        line = sparkline(report["period_starts"], report["counts"], report["change_points"],
                         trends["period"])
    return str(_templates().get_template("dashboard/_trends.html").render(
        trends=trends, trends_error=trends_error, forecast=forecast, forecast_error=forecast_error,
        line=line, width=SVG_WIDTH, height=SVG_HEIGHT, percent=percent))


def render_profile(profile: dict[str, Any] | None, error: str | None) -> str:
    """The profile fragment (**Daily calls**, **Calls by hour and weekday**), or why there
    is none."""
    return str(_templates().get_template("dashboard/_profile_panel.html").render(
        profile=profile, error=error, daily=daily_chart(profile) if profile else None,
        grid=hour_grid(profile) if profile else None))
