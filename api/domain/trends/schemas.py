"""What the trend and forecast endpoints take: two small, picklable queries (they cross
to a worker process), checked by :class:`~api.domain.trends.services.TrendsService`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

TREND_PERIODS = ("day", "week", "month")
FORECAST_PERIODS = ("day", "week")
PROFILE_DAYS = 56
"""Days of a profile (the daily series and the hour × weekday table): eight whole weeks,
so each weekday is counted eight times and the latest day has seven of its own before it."""


@dataclass(frozen=True)
class TrendQuery:
    """Trends of one area: ``categories`` are codes (groups already expanded; ``None``
    means the dispatched cases); ``until`` ends the current period (``None``: the last
    complete period before now, or before the last call)."""

    level: str = "province"
    code: str | None = None
    categories: tuple[str, ...] | None = None
    period: Literal["day", "week", "month"] = "week"
    until: datetime | None = None
    rising_level: str | None = None
    rising_within: str | None = None
    """Rank within each area of this level (e.g. each region of the province), BH per group."""


@dataclass(frozen=True)
class ForecastQuery:
    """A next-day or next-week forecast of one area at H3 resolution ``res``, with the
    backtest over ``origins`` earlier periods that chooses its method."""

    level: str = "province"
    code: str | None = None
    categories: tuple[str, ...] | None = None
    period: Literal["day", "week"] = "week"
    res: int = 8
    origins: int = 8
    methods: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ProfileQuery:
    """When an area's calls come: the ``days`` days before ``until`` (``None``: the last
    complete day before now, or before the last call), per day and per hour × weekday."""

    level: str = "province"
    code: str | None = None
    categories: tuple[str, ...] | None = None
    days: int = PROFILE_DAYS
    until: datetime | None = None
