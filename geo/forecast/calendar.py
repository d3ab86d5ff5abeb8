"""Festival dates that change crime and call patterns in Punjab, 2020–2027.

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

import datetime as dt

import numpy as np
import numpy.typing as npt

FESTIVALS: dict[str, tuple[dt.date, ...]] = {
    "eid_ul_fitr": tuple(dt.date.fromisoformat(d) for d in (
        "2020-05-24", "2021-05-13", "2022-05-03", "2023-04-22", "2024-04-10", "2025-03-31",
        "2026-03-21", "2027-03-10")),
    "eid_ul_adha": tuple(dt.date.fromisoformat(d) for d in (
        "2020-08-01", "2021-07-21", "2022-07-10", "2023-06-29", "2024-06-17", "2025-06-07",
        "2026-05-27", "2027-05-17")),
    "ashura": tuple(dt.date.fromisoformat(d) for d in (
        "2020-08-30", "2021-08-19", "2022-08-09", "2023-07-29", "2024-07-17", "2025-07-06",
        "2026-06-26", "2027-06-15")),
}
"""First day of each festival per year (Ashura: 10 Muharram)."""

FESTIVAL_WINDOWS: dict[str, tuple[int, int]] = {
    "eid_ul_fitr": (3, 2), "eid_ul_adha": (3, 2), "ashura": (1, 0)}
"""Days before and after the date that count as the festival: the pre-Eid shopping days
and the first Eid days; 9 and 10 Muharram, the procession days."""

FIRST_YEAR, LAST_YEAR = 2020, 2027


def festival_days(starts: npt.NDArray[np.datetime64], days: int) -> dict[str, npt.NDArray[np.int64]]:
    """For periods of ``days`` days from each of ``starts`` (local midnights): how many of
    their days fall in each festival's window. Outside 2020–2027 the table has no dates,
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
