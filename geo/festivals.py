"""Festival dates that change crime and call patterns in Punjab, 2019–2027: the one table
that both the history generator (its surges) and the forecasters (their calendar
features) read.

Eid ul-Fitr and Eid ul-Adha (shopping rush, travel, cattle markets) and Ashura
(10 Muharram: processions, security deployments) move eleven days a year through the
Gregorian calendar. Dates are as observed in Pakistan (the moon-sighting committee
decides; a day either way happens): 2019–2025 from the federal government's public
holiday notifications (Cabinet Division), 2026–2027 projected from the Umm al-Qura
calendar plus the day by which Pakistan's sighting usually follows Saudi Arabia's —
check them against the notification when it is published.
"""

from __future__ import annotations

import datetime as dt


def _dates(*days: str) -> tuple[dt.date, ...]:
    return tuple(dt.date.fromisoformat(d) for d in days)


FESTIVALS: dict[str, tuple[dt.date, ...]] = {
    "eid_ul_fitr": _dates("2019-06-05", "2020-05-24", "2021-05-13", "2022-05-03", "2023-04-22",
                          "2024-04-10", "2025-03-31", "2026-03-21", "2027-03-10"),
    "eid_ul_adha": _dates("2019-08-12", "2020-08-01", "2021-07-21", "2022-07-10", "2023-06-29",
                          "2024-06-17", "2025-06-07", "2026-05-27", "2027-05-17"),
    "ashura": _dates("2019-09-10", "2020-08-30", "2021-08-19", "2022-08-09", "2023-07-29",
                     "2024-07-17", "2025-07-06", "2026-06-26", "2027-06-15"),
}
"""First day of each festival per year (Ashura: 10 Muharram)."""

FESTIVAL_WINDOWS: dict[str, tuple[int, int]] = {
    "eid_ul_fitr": (3, 2), "eid_ul_adha": (3, 2), "ashura": (1, 0)}
"""Days before and after the date that count as the festival: the pre-Eid shopping days
and the first Eid days; 9 and 10 Muharram, the procession days."""

FIRST_YEAR = min(d.year for dates in FESTIVALS.values() for d in dates)
LAST_YEAR = max(d.year for dates in FESTIVALS.values() for d in dates)
