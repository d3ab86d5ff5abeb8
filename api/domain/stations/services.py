"""SHO duty rosters: replace a station's roster, read it, say who is on duty when, and guess
it fast for call intake (:class:`DutyCache`, whose every guess the store checks)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete, insert, select

from api.areas import Area
from api.audit import AuditService
from api.auth import Principal
from api.db.call_models import DutyShift, RosterShift, StationRoster
from api.db.intake_sql import ON_DUTY
from api.db.transactions import dialect_insert, write_transaction
from api.domain.stations.schemas import OnDuty, OnDutyAnswer, Roster, RosterPut, Shift, ShiftIn
from api.errors import UnprocessableError
from api.types import plausible

_SELECT_SHIFTS = select(RosterShift)

MAX_SHIFT = timedelta(hours=48)
"""Longer than any real duty; a longer one is a typing error (a wrong date)."""


class RosterService(SQLAlchemyAsyncRepositoryService[RosterShift, "RosterService.Repo"]):
    """Roster shifts of every station; one replacement at a time per station."""

    class Repo(SQLAlchemyAsyncRepository[RosterShift]):
        model_type = RosterShift

        async def on_duty(self, station_code: str, at: datetime) -> DutyShift | None:
            """The shift covering ``at`` (``start <= at < end``), latest start first."""
            connection = await self.session.connection()  # Core row: asked on every call
            row = (await connection.execute(ON_DUTY, {"station": station_code, "at": at})).first()
            return DutyShift(*row) if row is not None else None

        async def shifts(self, station_code: str) -> list[RosterShift]:
            statement = (select(RosterShift).where(RosterShift.station_code == station_code)
                         .order_by(RosterShift.starts_at))
            return list((await self.session.scalars(statement)).all())

        async def header(self, station_code: str) -> StationRoster | None:
            found: StationRoster | None = await self.session.get(StationRoster, station_code)
            return found

        async def bump_revision(self, station_code: str, at: datetime, actor: str,
                                count: int) -> int:
            """Create or advance the station's roster row (its row lock serialises writers)."""
            statement = dialect_insert(self.session, StationRoster).values(
                station_code=station_code, revision=1, updated_at=at, updated_by=actor,
                shift_count=count)
            statement = statement.on_conflict_do_update(
                index_elements=[StationRoster.station_code],
                set_={"revision": StationRoster.revision + 1, "updated_at": at,
                      "updated_by": actor, "shift_count": count},
            ).returning(StationRoster.revision)
            revision: int = (await self.session.execute(statement)).scalar_one()
            return revision

        async def replace_shifts(self, station_code: str, shifts: list[ShiftIn]) -> None:
            await self.session.execute(delete(RosterShift)
                                       .where(RosterShift.station_code == station_code))
            if shifts:
                await self.session.execute(insert(RosterShift), [
                    {"station_code": station_code, "officer_name": s.officer_name, "rank": s.rank,
                     "phone": s.phone, "starts_at": s.start, "ends_at": s.end} for s in shifts])

    repository_type = Repo

    def __init__(self, session: Any, *, audit: AuditService, **kwargs: Any) -> None:
        kwargs.setdefault("statement", _SELECT_SHIFTS)
        super().__init__(session=session, **kwargs)
        self.audit = audit

    async def on_duty(self, station_code: str, at: datetime) -> DutyShift | None:
        """The shift on duty at ``at`` (inside the caller's transaction, if any)."""
        return await self.repository.on_duty(station_code, at)

    async def replace(self, station: Area, data: RosterPut, principal: Principal,
                      now: datetime) -> Roster:
        """Replace ``station``'s roster with ``data`` (checked: order, length, no overlap)."""
        principal.require("roster.write")
        principal.require_scope(station.path, f"station {station.code}")
        shifts = _checked(data.shifts)
        session = self.repository.session
        async with write_transaction(session):
            revision = await self.repository.bump_revision(station.code, now, principal.subject,
                                                           len(shifts))
            await self.repository.replace_shifts(station.code, shifts)
            await self.audit.record(
                principal, "roster.write", now,
                detail={"station": station.code, "revision": revision, "shifts": len(shifts)})
        return await self._read(station)

    async def read(self, station: Area, principal: Principal) -> Roster:
        principal.require("roster.read")
        principal.require_scope(station.path, f"station {station.code}")
        async with self.repository.session.begin():
            return await self._read(station)

    async def on_duty_answer(self, station: Area, at: datetime, principal: Principal) -> OnDutyAnswer:
        """Who is on duty at ``station`` at ``at``; ``unstaffed`` when nobody is."""
        principal.require("roster.read")
        principal.require_scope(station.path, f"station {station.code}")
        async with self.repository.session.begin():
            shift = await self.repository.on_duty(station.code, at)
        return OnDutyAnswer(station_code=station.code, station_name=station.name, at=at,
                            on_duty=on_duty_of(shift), unstaffed=shift is None)

    async def _read(self, station: Area) -> Roster:
        header = await self.repository.header(station.code)
        rows = await self.repository.shifts(station.code)
        return Roster(
            station_code=station.code, station_name=station.name,
            revision=header.revision if header else 0,
            updated_at=header.updated_at if header else None,
            updated_by=header.updated_by if header else None,
            shifts=[Shift(id=r.id, officer_name=r.officer_name, rank=r.rank, phone=r.phone,
                          start=r.starts_at, end=r.ends_at) for r in rows],
        )


def on_duty_of(shift: DutyShift | None) -> OnDuty | None:
    """The wire form of a shift, ``None`` when nobody is on duty."""
    if shift is None:
        return None
    return OnDuty(officer_name=shift.officer_name, rank=shift.rank, phone=shift.phone,
                  shift_start=shift.starts_at, shift_end=shift.ends_at)


def _checked(shifts: list[ShiftIn]) -> list[ShiftIn]:
    """Shifts sorted by start; 422 naming the first that ends before it starts, runs too
    long, or overlaps another (two SHOs at once would make "who is on duty" ambiguous)."""
    for shift in shifts:
        plausible(shift.start, f"start of {shift.officer_name}'s shift")
        plausible(shift.end, f"end of {shift.officer_name}'s shift")
    ordered = sorted(shifts, key=lambda s: s.start)
    for i, shift in enumerate(ordered):
        if shift.end <= shift.start:
            raise UnprocessableError(f"shift of {shift.officer_name} starting {shift.start.isoformat()} "
                                     "ends before it starts")
        if shift.end - shift.start > MAX_SHIFT:
            raise UnprocessableError(f"shift of {shift.officer_name} starting {shift.start.isoformat()} "
                                     f"lasts more than {MAX_SHIFT.total_seconds() / 3600:.0f} hours")
        if i and ordered[i - 1].end > shift.start:
            before = ordered[i - 1]
            raise UnprocessableError(
                f"shifts overlap: {before.officer_name} {before.start.isoformat()}–"
                f"{before.end.isoformat()} and {shift.officer_name} {shift.start.isoformat()}–"
                f"{shift.end.isoformat()}")
    return ordered


# --------------------------------------------------------------------------- on-duty guesses
# Reading the roster for every call cost a round trip (PostgreSQL) or a query inside the
# write lock (SQLite). Call intake instead guesses from a DutyCache and the store checks
# the guess in the same unit that writes the call (api/db/intake.py); a roster replaced
# meanwhile, by any process, makes the store refuse, and intake forgets the station and
# reads it again. The cache is therefore never trusted, only used to guess.

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
