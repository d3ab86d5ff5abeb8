"""Festival days as features for the forecasters (the dates: :mod:`geo.festivals`).

Eid ul-Fitr and Eid ul-Adha (shopping rush, travel, cattle markets) and Ashura
(10 Muharram: processions, security deployments) move eleven days a year through the
Gregorian calendar, so a model needs them as features; a month or week of year cannot
stand in for them. Dates are as observed in Pakistan (the moon-sighting committee
decides; a day either way happens): 2020–2025 from the federal government's public
holiday notifications (Cabinet Division), 2026–2027 projected from the Umm al-Qura
calendar plus the day by which Pakistan's sighting usually follows Saudi Arabia's —
check them against the notification when it is published.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geo.festivals import FESTIVAL_WINDOWS, FESTIVALS, FIRST_YEAR, LAST_YEAR


def festival_days(starts: npt.NDArray[np.datetime64], days: int) -> dict[str, npt.NDArray[np.int64]]:
    """For periods of ``days`` days from each of ``starts`` (local midnights): how many of
    their days fall in each festival's window. Outside the tabled years the table has no dates,
    so a ``ValueError`` names the years instead of silently returning zeros."""
    first = np.asarray(starts).astype("datetime64[D]")
    if first.size:
        years = first.astype("datetime64[Y]").astype(np.int64) + 1970
        if years.min() < FIRST_YEAR or years.max() > LAST_YEAR:
            raise ValueError(f"festival dates are tabled for {FIRST_YEAR}–{LAST_YEAR}, "
                             f"periods reach {int(years.min())}–{int(years.max())}")
    out: dict[str, npt.NDArray[np.int64]] = {}
    for name, dates in FESTIVALS.items():
        before, after = FESTIVAL_WINDOWS[name]
        marked = np.concatenate([np.datetime64(d, "D") + np.arange(-before, after + 1) for d in dates])
        in_period = (marked[None, :] >= first[:, None]) & (marked[None, :] < first[:, None] + days)
        out[name] = in_period.sum(axis=1).astype(np.int64)
    return out
