"""The dashboard's trends panel: an HTML fragment (``api/templates/dashboard/_trends.html``)
built from the trend and forecast answers of :mod:`api.domain.trends.services`.

The series is drawn as inline SVG here (no script, no asset to load): a polyline of the
weekly counts, the current week as a dot, change points as dashed lines. The forecast
block always shows the shown method's score next to the baseline's, and says so when the
baseline itself is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

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
