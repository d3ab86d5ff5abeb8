"""Configuration of the call-history generator: every number the generator uses.

Defaults are documented in ``data/CATEGORIES.md`` (volumes, SLAs) and in the docstrings
here (profiles, response times, surges). A config is frozen and JSON-serialisable
(:meth:`SynthConfig.to_dict`), so the truth file records exactly what made the data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from geo.festivals import FESTIVAL_WINDOWS, FESTIVALS

LOCAL_UTC_OFFSET_HOURS = 5
"""Pakistan Standard Time is UTC+5 all year (no daylight saving since 2009)."""

# --------------------------------------------------------------------------- profiles
# Relative call intensity per local hour 0..23 (normalised when used). Shapes follow
# the patterns the issue names and the general emergency-call literature: street crime
# peaks in the evening, traffic accidents at the two rush hours, domestic incidents late
# evening, information calls in office hours, prank calls late at night. They are
# project assumptions, not measured PUCAR-15 curves (none are public).
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "street_crime": (3.0, 2.2, 1.5, 1.0, 0.8, 0.8, 1.0, 1.6, 2.4, 3.0, 3.4, 3.8,
                     4.0, 4.1, 4.2, 4.5, 5.0, 5.6, 6.4, 7.2, 7.6, 7.2, 6.0, 4.4),
    "violent_night": (4.5, 3.8, 3.0, 2.2, 1.6, 1.4, 1.6, 2.0, 2.6, 3.0, 3.4, 3.6,
                      3.8, 3.8, 3.9, 4.2, 4.6, 5.2, 5.8, 6.2, 6.6, 6.6, 6.2, 5.4),
    "daytime_crime": (1.2, 0.9, 0.7, 0.6, 0.6, 0.8, 1.4, 2.6, 4.0, 5.0, 5.6, 5.8,
                      5.8, 5.6, 5.6, 5.6, 5.4, 5.2, 4.8, 4.2, 3.6, 2.8, 2.0, 1.5),
    "traffic_rush": (1.2, 0.8, 0.6, 0.6, 0.8, 1.4, 2.8, 5.0, 7.2, 6.6, 4.8, 4.2,
                     4.2, 4.4, 4.6, 5.0, 5.8, 7.0, 7.4, 6.2, 4.6, 3.4, 2.4, 1.6),
    "domestic_evening": (3.2, 2.2, 1.4, 1.0, 0.8, 1.0, 1.6, 2.4, 3.0, 3.4, 3.6, 3.8,
                         4.0, 4.2, 4.2, 4.4, 4.8, 5.4, 6.0, 6.8, 7.2, 7.0, 6.0, 4.6),
    "fire_afternoon": (2.0, 1.6, 1.4, 1.2, 1.2, 1.4, 2.0, 2.8, 3.6, 4.2, 4.8, 5.4,
                       5.8, 6.0, 6.0, 5.8, 5.4, 5.0, 4.8, 4.6, 4.2, 3.6, 3.0, 2.4),
    "commute": (0.8, 0.5, 0.4, 0.3, 0.3, 0.5, 1.2, 3.0, 5.2, 5.4, 4.8, 4.6,
                5.0, 5.8, 6.4, 6.4, 6.0, 5.8, 5.2, 4.6, 3.8, 2.8, 1.9, 1.2),
    "office_hours": (1.0, 0.7, 0.5, 0.4, 0.4, 0.6, 1.2, 2.2, 3.6, 5.0, 6.0, 6.4,
                     6.4, 6.2, 6.2, 6.0, 5.8, 5.6, 5.2, 4.8, 4.2, 3.4, 2.4, 1.6),
    "prank_late": (5.6, 4.6, 3.4, 2.4, 1.6, 1.0, 0.8, 1.0, 1.6, 2.4, 3.2, 3.8,
                   4.2, 4.4, 4.6, 4.8, 5.0, 5.2, 5.6, 6.0, 6.6, 7.0, 7.0, 6.4),
    "all_calls": (3.4, 2.6, 1.9, 1.4, 1.1, 1.1, 1.6, 2.5, 3.4, 4.2, 4.8, 5.2,
                  5.4, 5.4, 5.5, 5.6, 5.8, 6.0, 6.2, 6.4, 6.6, 6.4, 5.6, 4.4),
}

# Relative intensity per local weekday, Monday..Sunday (normalised to mean 1). Sunday is
# Pakistan's weekly holiday: less commuting traffic and office business, more domestic
# incidents and late-night prank calls.
WEEKDAY_PROFILES: dict[str, tuple[float, ...]] = {
    "street_crime": (1.00, 0.98, 0.98, 1.00, 0.96, 1.05, 1.03),
    "violent_night": (1.00, 0.98, 0.98, 0.99, 1.00, 1.03, 1.02),
    "daytime_crime": (1.04, 1.03, 1.03, 1.02, 0.95, 0.98, 0.95),
    "traffic_rush": (1.06, 1.04, 1.04, 1.04, 0.98, 0.98, 0.86),
    "domestic_evening": (0.97, 0.96, 0.96, 0.97, 1.04, 1.02, 1.08),
    "fire_afternoon": (1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00),
    "commute": (1.06, 1.05, 1.05, 1.04, 0.96, 0.96, 0.88),
    "office_hours": (1.08, 1.06, 1.05, 1.04, 0.95, 0.96, 0.86),
    "prank_late": (0.96, 0.95, 0.96, 0.98, 1.02, 1.06, 1.07),
    "all_calls": (1.00, 0.99, 0.99, 1.00, 0.99, 1.02, 1.01),
}


def hour_profile(key: str) -> npt.NDArray[np.float64]:
    """The 24 hour-of-day shares (sum 1) of a profile key from the category table."""
    values = np.asarray(HOUR_PROFILES[key], dtype=np.float64)
    return np.asarray(values / values.sum(), dtype=np.float64)


def weekday_profile(key: str) -> npt.NDArray[np.float64]:
    """The 7 weekday factors (Monday first, mean 1) of a profile key."""
    values = np.asarray(WEEKDAY_PROFILES[key], dtype=np.float64)
    return np.asarray(values / values.mean(), dtype=np.float64)


# --------------------------------------------------------------------------- surges
@dataclass(frozen=True)
class Surge:
    """A festival-style surge: calls of ``categories`` × ``factor`` around ``day``.

    The window runs from ``day - before_days`` to ``day + after_days`` (local dates).
    """

    name: str
    day: dt.date
    factor: float
    categories: tuple[str, ...]
    before_days: int = 0
    after_days: int = 0


def default_surges() -> tuple[Surge, ...]:
    """Eid ul-Fitr, Eid ul-Adha and Muharram (Ashura) surges on :data:`geo.festivals.FESTIVALS`.

    Eid: shopping rush and travel in the three days before and the first days of Eid
    (street crime, traffic, harassment, fire); Eid ul-Adha also brings cattle-market
    robberies. Muharram: processions on 9-10 Muharram (public order, security threats).
    """
    effects = {  # festival: (surge name, factor, categories)
        "eid_ul_fitr": ("eid_ul_fitr", 1.4, ("dacoity_robbery", "other_crime", "traffic_accident",
                                             "harassment", "fire")),
        "eid_ul_adha": ("eid_ul_adha", 1.3, ("dacoity_robbery", "other_crime", "traffic_accident",
                                             "fire")),
        "ashura": ("muharram_ashura", 1.5, ("other_crime", "terrorism", "fire")),
    }
    return tuple(Surge(name, day, factor, categories, before_days=FESTIVAL_WINDOWS[festival][0],
                       after_days=FESTIVAL_WINDOWS[festival][1])
                 for festival, (name, factor, categories) in effects.items()
                 for day in FESTIVALS[festival])


# --------------------------------------------------------------------------- response
@dataclass(frozen=True)
class ResponseModel:
    """Log-normal stage durations in seconds, by urban/rural station and hour of day.

    Each stage is ``median × hour factor × other factors × exp(sigma·Z)``. Medians are
    set so that a typical serious call is on scene in about 7 min (urban) and 13 min
    (rural), inside the 10/20-minute SLAs, with a p90 that breaches them at a
    realistic rate; they are project assumptions (no public PUCAR-15 stage times).
    """

    ack_median_s: tuple[float, float] = (50.0, 75.0)
    """(urban, rural) received → acknowledged by the station."""
    ack_sigma: float = 0.6
    dispatch_median_s: tuple[float, float] = (60.0, 100.0)
    """(urban, rural) acknowledged → dispatched."""
    dispatch_sigma: float = 0.55
    travel_median_s: tuple[float, float] = (360.0, 720.0)
    """(urban, rural) dispatched → on scene."""
    travel_sigma: float = 0.5
    on_scene_median_s: tuple[float, float] = (2400.0, 2700.0)
    """(urban, rural) on scene → closed."""
    on_scene_sigma: float = 0.6
    ack_hour_factor: tuple[float, ...] = (1.35, 1.35, 1.35, 1.35, 1.35, 1.35, 1.15, 1.0,
                                          1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                                          1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.15)
    """Night shifts acknowledge more slowly."""
    travel_hour_factor: tuple[float, ...] = (0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.9, 1.05,
                                             1.25, 1.25, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                                             1.0, 1.25, 1.25, 1.25, 1.1, 0.95, 0.95, 0.95)
    """Rush hours (08-10, 17-20) slow travel; empty night roads speed it up."""
    serious_factor: float = 0.85
    """Serious crimes are dispatched and driven with priority."""
    handling_median_s: tuple[tuple[str, float], ...] = (("information", 120.0),
                                                        ("hoax", 45.0), ("dropped", 10.0))
    """Calls that are not dispatched are closed by the call taker after this long."""
    handling_sigma: float = 0.5

    def handling_median(self, call_class: str) -> float:
        """Median handling time (s) of a class that is not dispatched."""
        return dict(self.handling_median_s)[call_class]


# --------------------------------------------------------------------------- the whole
@dataclass(frozen=True)
class HotspotPlan:
    """Planted hotspots: extra calls per month in single H3 cells, by class.

    Extra calls are ``max(floor_calls, full-scale count × scale)`` per month, so they
    stay visible in shrunken test and demo data. Classes follow ArcGIS Emerging Hot Spot
    Analysis at monthly steps: ``persistent`` (every month, flat), ``new`` (the final
    month only), ``intensifying`` (every month, rising), ``diminishing`` (every month,
    falling). Trend classes need at least 3 months, ``new`` at least 2.
    """

    res: int = 8
    per_class: int = 4
    persistent_calls: float = 250.0
    new_calls: float = 300.0
    trend_low_calls: float = 150.0
    trend_high_calls: float = 450.0
    floor_calls: float = 12.0
    categories: tuple[str, ...] = ("dacoity_robbery", "other_crime")
    separation_k: int = 8
    """Hotspots lie at least this many cells apart (and as far from city cores)."""


@dataclass(frozen=True)
class SynthConfig:
    """Everything the generator does besides seed, scale, start and months."""

    calls_per_30_days: float | None = None
    """Full-scale volume of a 30-day month; ``None`` uses the category table's
    ``basis_calls`` total (PUCAR-15, April 2020: 1,879,001 calls)."""
    urban_call_rate_ratio: float = 2.0
    """Calls per urban resident ÷ calls per rural resident (cities are far denser:
    more reporting, more street crime, better phone coverage)."""
    category_urban_affinity: tuple[tuple[str, float], ...] = (
        ("dacoity_robbery", 1.5), ("harassment", 1.3), ("traffic_accident", 0.8),
        ("hoax", 1.3), ("information", 1.2))
    """Extra urban weight of some categories (street crime is urban; crashes happen on
    highways between towns)."""
    town_scale_m_per_sqrt_person: float = 2.0
    """Distance decay around a town: radius ~ Gamma(2, s), s = k·sqrt(urban residents)."""
    town_scale_min_m: float = 250.0
    town_scale_max_m: float = 9_000.0
    persons_per_village: float = 2_500.0
    village_scale_m: float = 350.0
    max_out_of_coverage_share: float = 0.002
    """At most this share of calls lies outside every station (border areas, bad GPS);
    the rest are pulled toward their settlement until a station covers them."""
    follow_up_share: float = 0.04
    """Share of dispatched calls that are a second call by the same caller about the same
    incident (same place, minutes later): the duplicate-linking rule's material."""
    follow_up_median_s: float = 480.0
    hoax_calls_per_caller: float = 15.0
    """Hoax calls come from a pool of repeat callers (PSCA warns the top 200 monthly),
    each calling from home, with Zipf-like activity."""
    hoax_zipf_exponent: float = 0.7
    seasonal_amplitude: float = 0.08
    seasonal_peak_day: int = 172
    """Crime peaks in the summer (day of year 172, about 21 June)."""
    annual_growth: float = 0.04
    """Drift of the call volume per year from the start month."""
    surges: tuple[Surge, ...] = field(default_factory=default_surges)
    response: ResponseModel = field(default_factory=ResponseModel)
    slow_stations: int = 6
    slow_factor: float = 2.2
    """Planted slow stations take this much longer to acknowledge, dispatch and arrive."""
    missing_on_scene_rate: float = 0.01
    on_scene_before_dispatch_rate: float = 0.004
    hotspots: HotspotPlan = field(default_factory=HotspotPlan)

    def affinity(self, code: str) -> float:
        """Urban affinity of a category (1 when not listed)."""
        return dict(self.category_urban_affinity).get(code, 1.0)

    def validate(self, category_codes: list[str]) -> None:
        """Raise :class:`SynthConfigError` for settings the generator cannot honour."""
        unknown = {c for c, _ in self.category_urban_affinity} - set(category_codes)
        for surge in self.surges:
            unknown |= set(surge.categories) - set(category_codes)
        unknown |= set(self.hotspots.categories) - set(category_codes)
        if unknown:
            raise SynthConfigError(f"unknown categories in config: {sorted(unknown)}")
        for name in ("max_out_of_coverage_share", "follow_up_share", "missing_on_scene_rate",
                     "on_scene_before_dispatch_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 0.5:
                raise SynthConfigError(f"{name} must lie in [0, 0.5), got {value}")
        if self.slow_factor <= 0 or self.urban_call_rate_ratio <= 0:
            raise SynthConfigError("slow_factor and urban_call_rate_ratio must be positive")
        if not 5 <= self.hotspots.res <= 10:
            raise SynthConfigError("hotspot resolution must lie in 5..10")
        if len(self.response.ack_hour_factor) != 24 or len(self.response.travel_hour_factor) != 24:
            raise SynthConfigError("hour factors need 24 values")

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready copy (dates as ISO strings)."""
        data = asdict(self)
        data["surges"] = [{**s, "day": s["day"].isoformat()} for s in data["surges"]]
        return data


class SynthConfigError(ValueError):
    """A generator setting is out of range or names an unknown category."""
