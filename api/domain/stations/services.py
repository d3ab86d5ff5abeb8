"""SHO duty rosters: replace a station's roster, read it, and say who is on duty when."""

from __future__ import annotations

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
