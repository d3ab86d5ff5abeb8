"""Following a call to its close and reading it back, with no HTTP in sight.

Taking a call is :mod:`api.domain.calls.intake`. Lifecycle (:meth:`CallService.add_event`):
the call row is locked, the state machine in :mod:`api.domain.calls.lifecycle` decides,
the event (with the call as it stood after it) and the new status commit together, then
the event is published to every feed on the call's path (a transfer also to the path it
left). Every trail entry's snapshot is the call's one wire form
(:class:`api.domain.calls.wire.CallEncoder`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
import pandas as pd
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, func, insert, select, tuple_

from api.areas import Areas
from api.audit import AuditService
from api.auth import CALL_TAKER_EVENTS, Principal
from api.channels import FeedPublisher, path_channels
from api.db.call_models import CallEventRecord, CallRecord, DutyShift, metadata
from api.db.intake import NewCall, schedule_alerts
from api.db.transactions import write_transaction
from api.domain.calls.categories import Categories
from api.domain.calls.lifecycle import OPEN_STATUSES, allowed_events, next_status
from api.domain.calls.schemas import Call, CallEvent, CallPage, EventCreate
from api.domain.calls.wire import CallEncoder, TrailEntry, envelope, event_schema
from api.domain.stations.schemas import OnDuty
from api.domain.stations.services import RosterService
from api.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnprocessableError,
)
from api.pagination import decode_cursor, encode_cursor
from api.types import plausible
from jurisdictions.boundaries import PROVINCE_CODE
from jurisdictions.router import Router

MAX_PAGE = 500
DEFAULT_PAGE = 50


@dataclass(frozen=True, slots=True)
class CallFilters:
    """What the list and the export of calls are filtered by, besides time: area codes
    (each within the caller's scope), a status and a category."""

    station: str | None = None
    tehsil: str | None = None
    district: str | None = None
    region: str | None = None
    status: str | None = None
    category: str | None = None

    def areas(self) -> dict[str, str | None]:
        return {"station": self.station, "tehsil": self.tehsil, "district": self.district,
                "region": self.region}

    def given(self) -> dict[str, str]:
        """The filters set, by their query names."""
        return {k: v for k, v in {**self.areas(), "status": self.status,
                                  "category": self.category}.items() if v}


NO_FILTERS = CallFilters()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CallContext:
    """What every call operation needs besides a database session (one per process).

    ``router`` and ``areas`` are read through callables so a boundary set loaded while
    the service runs is used from the next call on.
    """

    router: Callable[[], Router]
    areas: Callable[[], Areas]
    boundary_set: Callable[[], str]
    categories: Categories
    publisher: FeedPublisher | None
    clock: Callable[[], datetime] = utc_now
    future_skew: timedelta = timedelta(minutes=5)
    """How far ahead of the server clock a reported time may be (clocks drift)."""
    duplicate_radius_m: float = 250.0
    duplicate_window: timedelta = timedelta(minutes=15)
    alerts: bool = True
    """Whether calls get a stored alert deadline (an ``alert_due`` row): due at once
    when taken and after every event, so the alert engine (:mod:`api.domain.alerts`)
    looks at the call off the request path. ``False`` leaves alerting out entirely."""
    encoder: msgspec.json.Encoder = field(default_factory=msgspec.json.Encoder)
    """For feed messages around the stored snapshots."""
    wire: CallEncoder = field(default_factory=CallEncoder)
    """The call's one wire form (answers and snapshots)."""


CallFields = CallRecord | NewCall
"""What the wire form is made of: a stored call or one being taken."""


class CallWriting:
    """What taking a call and recording its events share: the per-process context, the
    wire form of a call, trail entries with their snapshots, and the live publish."""

    ctx: CallContext

    def _reported_time(self, value: datetime | None, now: datetime, name: str) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise UnprocessableError(f"{name} needs a time zone (e.g. 2026-01-01T10:00:00+05:00)")
        if value > now + self.ctx.future_skew:
            raise UnprocessableError(f"{name} ({value.isoformat()}) is in the future")
        return plausible(value, name)

    def _event_values(self, record: CallFields, kind: str, at: datetime, now: datetime,
                      principal: Principal, *, from_status: str | None,
                      previous: dict[str, str] | None = None, reason: str | None = None,
                      note: str | None = None) -> dict[str, Any]:
        """Column values of a trail entry but its id and snapshot."""
        values: dict[str, Any] = {
            "call_id": record.id, "type": kind, "at": at, "recorded_at": now,
            "from_status": from_status, "status": record.status,
            "station_code": record.station_code, "tehsil_code": record.tehsil_code,
            "district_code": record.district_code, "region_code": record.region_code,
            **{f"from_{level}_code": previous[level] if previous else None
               for level in ("station", "tehsil", "district", "region")},
            "reason": reason, "note": note, "actor": principal.subject, "role": principal.role,
        }
        return values

    async def _publish(self, event: TrailEntry, record: CallFields, *,
                       unstaffed: bool | None = None) -> None:
        """Deliver a trail entry live (``unstaffed``: the snapshot's, when known)."""
        publisher = self.ctx.publisher
        if publisher is None:
            return
        previous = ({"station": event.from_station_code, "tehsil": event.from_tehsil_code,
                     "district": event.from_district_code, "region": event.from_region_code,
                     "province": PROVINCE_CODE} if event.from_station_code else {})
        await publisher.publish(envelope(event, self.ctx.encoder, unstaffed),
                                path_channels(_path(record), previous))

    @staticmethod
    def seen_by(call: Call, principal: Principal) -> Call:
        """The full form of a call as ``principal`` may read it (the caller's number only
        for roles that may see it): what :meth:`as_call` gives for that principal."""
        if principal.sees_phone or call.caller_phone is None:
            return call
        return msgspec.structs.replace(call, caller_phone=None,
                                       caller_phone_hidden=bool(call.caller_phone))

    def as_call(self, record: CallFields, principal: Principal | None) -> Call:
        """The wire form; ``principal`` ``None`` means the full stored form (snapshots)."""
        areas = self.ctx.areas()
        sees_phone = principal is None or principal.sees_phone
        category = self.ctx.categories
        sho = (OnDuty(officer_name=record.sho_name, rank=record.sho_rank or "",
                      phone=record.sho_phone, shift_start=record.sho_shift_start,
                      shift_end=record.sho_shift_end)
               if record.sho_name and record.sho_shift_start and record.sho_shift_end else None)
        return Call(
            id=record.id, status=record.status, category=record.category,
            category_label=category.label(record.category), serious=record.serious,
            lat=record.lat, lon=record.lon, radius_m=record.radius_m,
            received_at=record.received_at, created_at=record.created_at,
            updated_at=record.updated_at,
            station_code=record.station_code, station_name=areas.name("station", record.station_code),
            tehsil_code=record.tehsil_code, tehsil_name=areas.name("tehsil", record.tehsil_code),
            district_code=record.district_code,
            district_name=areas.name("district", record.district_code),
            region_code=record.region_code, region_name=areas.name("region", record.region_code),
            method=record.method, out_of_coverage=record.out_of_coverage,
            distance_m=record.distance_m, outside_punjab=record.outside_punjab,
            transfer_suggested=record.outside_punjab is not None, sho_on_duty=sho,
            unstaffed=record.unstaffed,
            duplicate_of=record.duplicate_of, allowed_events=list(allowed_events(record.status)),
            caller_phone=record.caller_phone if sees_phone else None,
            caller_phone_hidden=bool(record.caller_phone) and not sees_phone,
            description=record.description,
        )


class CallService(CallWriting,
                  SQLAlchemyAsyncRepositoryService[CallRecord, "CallService.Repo"]):
    """Calls and their event trail; every method checks the principal first."""

    class Repo(SQLAlchemyAsyncRepository[CallRecord]):
        model_type = CallRecord

        async def by_key(self, key: str) -> CallRecord | None:
            found: CallRecord | None = await self.session.scalar(
                select(CallRecord).where(CallRecord.idempotency_key == key))
            return found

        async def by_id(self, call_id: UUID, *, lock: bool = False) -> CallRecord | None:
            statement = select(CallRecord).where(CallRecord.id == call_id)
            if lock:
                statement = statement.with_for_update()
            found: CallRecord | None = await self.session.scalar(statement)
            return found

        async def append_event(self, values: dict[str, Any]) -> int:
            """Insert one trail entry; its id (the feed's event id)."""
            connection = await self.session.connection()
            event_id: int = (await connection.execute(_INSERT_EVENT, values)).scalar_one()
            return event_id

        async def page(self, conditions: list[ColumnElement[bool]], after: tuple[datetime, UUID] | None,
                       limit: int) -> list[CallRecord]:
            statement = select(CallRecord).where(*conditions)
            if after is not None:
                statement = statement.where(tuple_(CallRecord.received_at, CallRecord.id) < after)
            statement = statement.order_by(CallRecord.received_at.desc(),
                                           CallRecord.id.desc()).limit(limit)
            return list((await self.session.scalars(statement)).all())

        async def events(self, call_id: UUID) -> list[CallEventRecord]:
            statement = (select(CallEventRecord).where(CallEventRecord.call_id == call_id)
                         .order_by(CallEventRecord.id))
            return list((await self.session.scalars(statement)).all())

        async def last_event_at(self, call_id: UUID) -> datetime | None:
            statement = (select(CallEventRecord.at).where(CallEventRecord.call_id == call_id)
                         .order_by(CallEventRecord.id.desc()).limit(1))
            found: datetime | None = await self.session.scalar(statement)
            return found

    repository_type = Repo

    def __init__(self, session: Any, *, context: CallContext, roster: RosterService,
                 audit: AuditService, **kwargs: Any) -> None:
        kwargs.setdefault("statement", _SELECT_CALLS)
        super().__init__(session=session, auto_refresh=False, **kwargs)
        self.ctx = context
        self.roster = roster
        self.audit = audit

    async def replay(self, key: str, body_hash: str, principal: Principal, now: datetime
                     ) -> Call:
        """The call an idempotency key already made (audited as ``call.replay``); 409 when
        the body differs or the attempt that held the key rolled back."""
        async with self.repository.session.begin():
            existing = await self.repository.by_key(key)
            if existing is None:  # the other attempt rolled back: nothing to replay
                raise ConflictError("a concurrent request with this Idempotency-Key failed; retry")
            # the scope first: a 409 names the call, which only its area may learn of
            principal.require_scope(_path(existing), "the call this Idempotency-Key made")
            if existing.request_hash != body_hash:
                raise ConflictError("this Idempotency-Key was used with a different request body",
                                    extra={"call_id": str(existing.id)})
            await self.audit.record(principal, "call.replay", now, call_id=existing.id)
            return self.as_call(existing, principal)

    # ------------------------------------------------------------------ reads
    async def get_call(self, call_id: UUID, principal: Principal) -> Call:
        principal.require("call.read")
        # a read that writes its audit entry: on SQLite the write lock is taken first, as
        # a deferred reader cannot become a writer once another connection has written
        async with write_transaction(self.repository.session):
            record = await self._visible(call_id, principal)
            await self.audit.record(principal, "call.read", self.ctx.clock(), call_id=record.id)
        return self.as_call(record, principal)

    async def list_calls(self, principal: Principal, filters: CallFilters = NO_FILTERS, *,
                         since: datetime | None = None, until: datetime | None = None,
                         limit: int = DEFAULT_PAGE, cursor: str | None = None) -> CallPage:
        """Calls newest first within the principal's scope; filters outside it are 403."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadInputError(f"limit must be between 1 and {MAX_PAGE}")
        conditions = self.conditions(principal, filters, since=since, until=until)
        after = decode_cursor(cursor) if cursor else None
        async with write_transaction(self.repository.session):  # reads, then audits
            rows = await self.repository.page(conditions, after, limit + 1)
            shown = rows[:limit]
            await self.audit.record(principal, "call.list", self.ctx.clock(),
                              detail={"calls": [str(r.id) for r in shown]})
        next_cursor = (encode_cursor(shown[-1].received_at, shown[-1].id)
                       if len(rows) > limit else None)
        return CallPage(items=[self.as_call(r, principal) for r in shown], next_cursor=next_cursor)

    def conditions(self, principal: Principal, filters: CallFilters = NO_FILTERS, *,
                   since: datetime | None = None, until: datetime | None = None,
                   since_name: str = "since") -> list[ColumnElement[bool]]:
        """The rows a principal may read with these filters (the list's and the export's):
        403 for a filter outside the scope, 400/422 for unknown values."""
        principal.require("call.read")
        if since and until and since >= until:
            raise BadInputError(f"{since_name} must be before until")
        status, category = filters.status, filters.category
        if category is not None:
            self.ctx.categories.get(category)
        if status is not None and status not in (*OPEN_STATUSES, "closed", "cancelled"):
            raise BadInputError(f"unknown status {status!r}")
        conditions: list[ColumnElement[bool]] = self.ctx.areas().conditions(
            principal, _SCOPE_COLUMN, filters.areas())
        if status is not None:
            conditions.append(CallRecord.status == status)
        if category is not None:
            conditions.append(CallRecord.category == category)
        if since is not None:
            conditions.append(CallRecord.received_at >= since)
        if until is not None:
            conditions.append(CallRecord.received_at < until)
        return conditions

    async def export_rows(self, principal: Principal, conditions: list[ColumnElement[bool]],
                          *, max_rows: int) -> pd.DataFrame:
        """The selected calls as a table, oldest first, with area names and category labels;
        the caller's phone only for roles that call people back. The export is audited."""
        columns = [c for name, c in _EXPORT_COLUMNS.items()
                   if name != "caller_phone" or principal.sees_phone]
        statement = select(*columns).where(*conditions).order_by(CallRecord.received_at,
                                                                 CallRecord.id)
        async with write_transaction(self.repository.session):  # reads, then audits
            count = await self.repository.session.scalar(
                select(func.count()).select_from(CallRecord).where(*conditions))
            if int(count or 0) > max_rows:
                raise UnprocessableError(f"the export would hold {int(count or 0):,} calls (limit "
                                         f"{max_rows:,}); narrow it with from/until or an area")
            result = await self.repository.session.execute(statement)
            frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
            await self.audit.record(principal, "call.export", self.ctx.clock(),
                                    detail={"calls": len(frame), "phone": principal.sees_phone})
        return self.named(frame)

    def named(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Area names beside their codes and the category's label beside its code."""
        areas = self.ctx.areas()
        frame["id"] = frame["id"].astype(str)
        frame["duplicate_of"] = frame["duplicate_of"].map(lambda v: None if v is None else str(v))
        for when in ("received_at", "updated_at"):
            frame[when] = pd.to_datetime(frame[when], utc=True)
        labels = {c: self.ctx.categories.label(c) for c in frame["category"].unique()}
        frame.insert(list(frame.columns).index("category") + 1, "category_label",
                     frame["category"].map(labels))
        for level in ("station", "tehsil", "district", "region"):
            code = f"{level}_code"
            names = {c: areas.name(level, c) for c in frame[code].unique()}
            frame.insert(list(frame.columns).index(code) + 1, f"{level}_name", frame[code].map(names))
        return frame

    async def list_events(self, call_id: UUID, principal: Principal) -> list[CallEvent]:
        principal.require("call.read")
        async with write_transaction(self.repository.session):  # reads, then audits
            record = await self._visible(call_id, principal)
            rows = await self.repository.events(record.id)
            await self.audit.record(principal, "call.events", self.ctx.clock(), call_id=record.id)
        return [event_schema(r) for r in rows]

    async def _visible(self, call_id: UUID, principal: Principal) -> CallRecord:
        record = await self.repository.by_id(call_id)
        if record is None:
            raise NotFoundError(f"no call {call_id}")
        principal.require_scope(_path(record), f"call {call_id}")
        return record

    # ------------------------------------------------------------------ lifecycle
    async def add_event(self, call_id: UUID, data: EventCreate, principal: Principal
                        ) -> tuple[CallEvent, Call]:
        """Record what happened to a call; 409 (naming the allowed types) when it may not."""
        principal.require("call.event")
        if principal.role == "call_taker" and data.type not in CALL_TAKER_EVENTS:
            raise ForbiddenError(f"a call taker may only post {', '.join(sorted(CALL_TAKER_EVENTS))}")
        ctx = self.ctx
        now = ctx.clock()
        at = self._reported_time(data.at, now, "at") or now
        if data.type in {"transferred", "cancelled"} and not (data.reason and data.reason.strip()):
            raise UnprocessableError(f"a {data.type} event needs a reason")
        if data.type != "transferred" and data.to_station is not None:
            raise UnprocessableError("to_station belongs to a transferred event only")
        session = self.repository.session
        async with write_transaction(session):
            record = await self.repository.by_id(call_id, lock=True)
            if record is None:
                raise NotFoundError(f"no call {call_id}")
            principal.require_scope(_path(record), f"call {call_id}")
            from_status = record.status
            status = next_status(from_status, data.type)
            last = await self.repository.last_event_at(record.id)
            if last is not None and at < last:
                raise UnprocessableError(
                    f"at ({at.isoformat()}) precedes the call's last event ({last.isoformat()})")
            previous = _path(record)
            if data.type == "transferred":
                await self._move(record, data.to_station, at)
            record.status = status
            record.updated_at = now
            await session.flush()  # the call's new status and station, before the snapshot
            event = await self._append_event(
                record, data.type, at, now, principal, from_status=from_status,
                previous=previous if data.type == "transferred" else None,
                reason=data.reason, note=data.note)
            if ctx.alerts:  # the engine re-reads the call: resolve, escalate, reschedule
                await schedule_alerts(await self.repository.session.connection(), record.id, now)
            await self.audit.record(principal, f"event.{data.type}", now, call_id=record.id,
                              detail={"event_id": event.id, "from": from_status, "to": status,
                                      **({"to_station": record.station_code}
                                         if data.type == "transferred" else {})})
        await self._publish(event, record)
        return event_schema(event), self.as_call(record, principal)

    async def _move(self, record: CallRecord, to_station: str | None, at: datetime) -> None:
        """Point the call at another station (a transfer) with that station's SHO on duty."""
        if not to_station:
            raise UnprocessableError("a transferred event needs to_station")
        try:
            target = self.ctx.areas().station(to_station)
        except NotFoundError as exc:
            raise UnprocessableError(f"no station with code {to_station!r}") from exc
        if target.code == record.station_code:
            raise UnprocessableError(f"the call is already at station {target.code}")
        shift = await self.roster.on_duty(target.code, at)
        record.station_code = target.code
        record.tehsil_code = target.path["tehsil"]
        record.district_code = target.path["district"]
        record.region_code = target.path["region"]
        for column, value in staffing(shift).items():
            setattr(record, column, value)

    # ------------------------------------------------------------------ helpers
    async def _append_event(self, record: CallRecord, kind: str, at: datetime, now: datetime,
                            principal: Principal, *, from_status: str | None,
                            previous: dict[str, str] | None = None, reason: str | None = None,
                            note: str | None = None) -> CallEventRecord:
        """Write one trail entry with the call as it stands now; the entry (with its id)."""
        values = self._event_values(record, kind, at, now, principal, from_status=from_status,
                                    previous=previous, reason=reason, note=note)
        values["snapshot"] = self.ctx.wire.encode(self.as_call(record, None))
        event_id = await self.repository.append_event(values)
        return CallEventRecord(id=event_id, **values)


_SELECT_CALLS = select(CallRecord)
"""The repository's base statement, built once instead of per request."""
_EVENTS = metadata.tables["call_events"]
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


_EXPORT_COLUMNS: dict[str, Any] = {name: getattr(CallRecord, name) for name in (
    "id", "received_at", "status", "category", "serious", "lat", "lon", "radius_m",
    "station_code", "tehsil_code", "district_code", "region_code", "method", "out_of_coverage",
    "distance_m", "unstaffed", "duplicate_of", "updated_at", "caller_phone")}
"""A call's exported columns, in order (no description: free text stays in the app)."""

_SCOPE_COLUMN: dict[str, Any] = {
    "station": CallRecord.station_code, "tehsil": CallRecord.tehsil_code,
    "district": CallRecord.district_code, "region": CallRecord.region_code,
}


def _path(record: CallFields) -> dict[str, str]:
    return {"station": record.station_code, "tehsil": record.tehsil_code,
            "district": record.district_code, "region": record.region_code,
            "province": PROVINCE_CODE}


def staffing(shift: DutyShift | None) -> dict[str, Any]:
    """A call's columns naming the SHO on duty (or nobody: ``unstaffed``), for a new call
    and for one transferred to another station alike."""
    return {
        "sho_shift_id": shift.id if shift else None,
        "sho_name": shift.officer_name if shift else None,
        "sho_rank": shift.rank if shift else None, "sho_phone": shift.phone if shift else None,
        "sho_shift_start": shift.starts_at if shift else None,
        "sho_shift_end": shift.ends_at if shift else None, "unstaffed": shift is None}
