"""When calls happen: hourly intensities per category over the generated period.

The expected number of calls of category ``c`` in local hour ``h`` of day ``d`` is

    rate_c · 24 · P_c[hour] · W_c[weekday] · S(d) · G(d) · F_c(d)

with ``rate_c`` the category's full-scale hourly rate times ``scale``, ``P_c`` its
hour-of-day shares (sum 1), ``W_c`` its weekday factors (mean 1), ``S`` the seasonal
drift ``1 + A·cos(2π(doy − peak)/365.25)``, ``G`` the growth ``(1 + g)^(years since the
start)`` and ``F_c`` the product of the festival surges covering the day. Hour and
weekday factors multiply, so each category's hour-of-day shape is exactly ``P_c`` in
expectation. Counts per hour are Poisson; times are uniform within the hour.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.synth.config import LOCAL_UTC_OFFSET_HOURS, SynthConfig, hour_profile, weekday_profile

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class Period:
    """Whole local calendar months from ``start`` (the 1st of a month)."""

    start: dt.date
    months: int

    @classmethod
    def parse(cls, start: str | dt.date, months: int) -> Period:
        """From ``YYYY-MM`` (or a date; its month is used) and a month count ≥ 1."""
        if months < 1:
            raise ValueError(f"months must be at least 1, got {months}")
        if isinstance(start, str):
            try:
                day = dt.date.fromisoformat(f"{start}-01" if len(start) == 7 else start)
            except ValueError as exc:
                raise ValueError(f"start must be YYYY-MM, got {start!r}") from exc
        else:
            day = start
        return cls(day.replace(day=1), months)

    def month_start(self, k: int) -> dt.date:
        """First day of the ``k``-th month (0-based; ``k = months`` is the end)."""
        y, m = divmod(self.start.month - 1 + k, 12)
        return dt.date(self.start.year + y, m + 1, 1)

    @property
    def end(self) -> dt.date:
        return self.month_start(self.months)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def hours(self) -> int:
        return self.days * 24

    def labels(self) -> list[str]:
        """``YYYY-MM`` of each month."""
        return [self.month_start(k).strftime("%Y-%m") for k in range(self.months)]

    def month_of_day(self) -> npt.NDArray[np.int64]:
        """Month index (0-based) of each day of the period."""
        bounds = np.array([(self.month_start(k) - self.start).days for k in range(1, self.months + 1)])
        return np.searchsorted(bounds, np.arange(self.days), side="right").astype(np.int64)

    @property
    def start_utc(self) -> pd.Timestamp:
        """The period's first instant (local midnight) in UTC."""
        local = pd.Timestamp(self.start)
        return (local - pd.Timedelta(hours=LOCAL_UTC_OFFSET_HOURS)).tz_localize("UTC")

    @property
    def end_utc(self) -> pd.Timestamp:
        return self.start_utc + pd.Timedelta(days=self.days)


def day_factors(period: Period, config: SynthConfig) -> npt.NDArray[np.float64]:
    """Seasonal drift times growth for each day of the period."""
    days = pd.date_range(period.start, periods=period.days, freq="D")
    doy = days.day_of_year.to_numpy(dtype=np.float64)
    season = 1.0 + config.seasonal_amplitude * np.cos(
        2 * np.pi * (doy - config.seasonal_peak_day) / 365.25)
    growth = (1.0 + config.annual_growth) ** (np.arange(period.days) / 365.25)
    return season * growth


def surge_factors(period: Period, config: SynthConfig, codes: list[str]
                  ) -> npt.NDArray[np.float64]:
    """Product of surge factors per (category, day)."""
    out = np.ones((len(codes), period.days))
    for surge in config.surges:
        first = (surge.day - period.start).days - surge.before_days
        last = (surge.day - period.start).days + surge.after_days
        lo, hi = max(first, 0), min(last + 1, period.days)
        if lo >= hi:
            continue
        for code in surge.categories:
            out[codes.index(code), lo:hi] *= surge.factor
    return out


def hourly_intensity(categories: pd.DataFrame, period: Period, config: SynthConfig,
                     scale: float) -> npt.NDArray[np.float64]:
    """Expected calls per (category row, hour of the period)."""
    codes = categories["code"].tolist()
    basis = categories["basis_calls"].to_numpy(dtype=np.float64)
    total = config.calls_per_30_days or basis.sum()
    rate_per_hour = scale * basis / basis.sum() * total / (30 * 24)
    weekday = pd.date_range(period.start, periods=period.days, freq="D").day_of_week.to_numpy()
    profiles = categories["peak_profile"].tolist()
    hour_shares = np.stack([hour_profile(p) for p in profiles])          # (C, 24)
    week = np.stack([weekday_profile(p) for p in profiles])[:, weekday]  # (C, D)
    daily = week * day_factors(period, config)[None, :] * surge_factors(period, config, codes)
    lam = rate_per_hour[:, None, None] * 24 * hour_shares[:, None, :] * daily[:, :, None]
    return np.asarray(lam.reshape(len(codes), period.hours), dtype=np.float64)


def draw_times(intensity: npt.NDArray[np.float64], rng: np.random.Generator
               ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Poisson counts per (category, hour); returns category rows and seconds from start."""
    counts = rng.poisson(intensity).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    n_hours = intensity.shape[1]
    category = (cell // n_hours).astype(np.int64)
    seconds = (cell % n_hours) * float(SECONDS_PER_HOUR) + rng.random(cell.size) * SECONDS_PER_HOUR
    return category, seconds


def draw_times_in(intensity_row: npt.NDArray[np.float64], first_hour: int, last_hour: int,
                  n: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    """``n`` times (seconds from start) in hours ``[first_hour, last_hour)`` shaped like a row."""
    weights = intensity_row[first_hour:last_hour]
    hours = first_hour + rng.choice(weights.size, size=n, p=weights / weights.sum())
    return hours * float(SECONDS_PER_HOUR) + rng.random(n) * SECONDS_PER_HOUR
