"""Who is on duty where, guessed per process for call intake (which has every guess checked).

Reading the roster for every call cost a round trip (PostgreSQL) or a query inside the
write lock (SQLite). Intake instead guesses from :class:`DutyCache` and the store checks
the guess in the same unit that writes the call (:mod:`api.db.intake`); a roster replaced
meanwhile, by any process, makes the store refuse, and intake forgets the station and
reads it again. The cache is therefore never trusted, only used to guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from api.db.call_models import DutyShift

ShiftReader = Callable[[str | None, datetime, datetime], Awaitable[list[tuple[str, DutyShift]]]]
"""Shifts overlapping ``[lo, hi)`` of one station (or of all, for ``None``), with their
station (:meth:`api.db.intake.CallStore.shifts`)."""


def on_duty_in(shifts: Iterable[DutyShift], at: datetime) -> DutyShift | None:
    """The shift covering ``at`` (``start <= at < end``), latest start first: the rule of
    :data:`api.db.intake_sql.ON_DUTY`."""
    best: DutyShift | None = None
    for shift in shifts:
        if shift.starts_at <= at < shift.ends_at and (best is None
                                                       or shift.starts_at > best.starts_at):
            best = shift
    return best


class _Window:
    """The shifts of one station (or of all) overlapping ``[lo, hi)``, as read at one time."""

    __slots__ = ("hi", "lo", "shifts")

    def __init__(self, lo: datetime, hi: datetime, shifts: dict[str, tuple[DutyShift, ...]]
                 ) -> None:
        self.lo, self.hi, self.shifts = lo, hi, shifts

    def covers(self, at: datetime) -> bool:
        return self.lo <= at < self.hi


def _by_station(rows: list[tuple[str, DutyShift]]) -> dict[str, tuple[DutyShift, ...]]:
    shifts: dict[str, list[DutyShift]] = {}
    for station, shift in rows:
        shifts.setdefault(station, []).append(shift)
    return {station: tuple(found) for station, found in shifts.items()}


class DutyCache:
    """A guess of who is on duty, per process.

    Calls taken now are answered from one window of every station's roster around the
    clock (one query, read again when the clock leaves it); a call reported at another
    time reads a window of its own station. When the store refuses a guess, the
    station's entries are dropped, so the next attempt reads what is there now.
    """

    NOW_WINDOW = timedelta(hours=12)
    STATION_WINDOW = timedelta(hours=12)

    def __init__(self, read: ShiftReader) -> None:
        self._read = read
        self._all: _Window | None = None
        self._distrusted: set[str] = set()
        """Stations whose part of ``_all`` the store refused since it was read."""
        self._own: dict[str, _Window] = {}
        self._loading = asyncio.Lock()

    def predict(self, station: str, at: datetime) -> tuple[bool, DutyShift | None]:
        """``(known, shift)``: whether the cache can say, and what it says."""
        own = self._own.get(station)
        if own is not None and own.covers(at):
            return True, on_duty_in(own.shifts.get(station, ()), at)
        every = self._all
        if every is not None and every.covers(at) and station not in self._distrusted:
            return True, on_duty_in(every.shifts.get(station, ()), at)
        return False, None

    def forget(self, station: str) -> None:
        """The store disagreed: read this station's roster again next time."""
        self._own.pop(station, None)
        self._distrusted.add(station)

    async def guess(self, station: str, at: datetime, now: datetime) -> DutyShift | None:
        """The shift on duty at ``station`` at ``at``, from the cache or read into it."""
        known, shift = self.predict(station, at)
        if known:
            return shift
        if abs(at - now) < self.NOW_WINDOW / 2:
            await self._load_all(now)
            known, shift = self.predict(station, at)
            if known:
                return shift
        lo, hi = at - self.STATION_WINDOW, at + self.STATION_WINDOW
        shifts = _by_station(await self._read(station, lo, hi)).get(station, ())
        self._own[station] = _Window(lo, hi, {station: shifts})
        return on_duty_in(shifts, at)

    async def _load_all(self, now: datetime) -> None:
        async with self._loading:
            every = self._all
            if every is not None and every.covers(now - self.NOW_WINDOW / 2) \
                    and every.covers(now + self.NOW_WINDOW / 2):
                return  # read by another request while this one waited
            lo, hi = now - self.NOW_WINDOW, now + self.NOW_WINDOW
            self._all = _Window(lo, hi, _by_station(await self._read(None, lo, hi)))
            self._distrusted = set()
