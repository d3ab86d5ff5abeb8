"""Taking a call, following it to its close, and reading it back, with no HTTP in sight.

Intake (:meth:`CallIntake.take_call`, one object per process): route the location, find
the SHO on duty, look for an open call of the same incident nearby, then write the call,
its ``received`` event and the routing audit record atomically, and only then publish
it. On PostgreSQL the on-duty check, the duplicate search and the three writes are one
statement (:mod:`api.domain.calls.intake`); on SQLite they are one transaction
(:meth:`CallService.take_in_transaction`). The ``Idempotency-Key`` is a unique column: of
two concurrent retries the database lets one insert and the other finds its row, so a
client that retries after a timeout or a 503 gets exactly one call.

Lifecycle (:meth:`CallService.add_event`): the call row is locked, the state machine in
:mod:`api.domain.calls.lifecycle` decides, the event (with the call as it stood after it)
and the new status commit together, then the event is published to every feed on the
call's path (a transfer also to the path it left).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple
from uuid import UUID

import h3.api.basic_int as h3_int
import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from geoalchemy2 import WKTElement
from sqlalchemy import ColumnElement, bindparam, insert, select, tuple_

from api.areas import Areas
from api.audit import AuditService
from api.audit import entry as audit_entry
from api.auth import CALL_TAKER_EVENTS, Principal
from api.channels import FeedPublisher, path_channels
from api.db.alert_models import AlertDueRecord
from api.db.call_models import CallEventRecord, CallRecord, metadata
from api.db.models import SRID
from api.db.transactions import (
    dialect_insert,
    single_statement_unit,
    write_transaction,
)
from api.domain.calls.categories import Categories, Category
from api.domain.calls.intake import (
    DISK_CELLS,
    DutyCache,
    OneStatement,
)
from api.domain.calls.lifecycle import OPEN_STATUSES, allowed_events, next_status
from api.domain.calls.schemas import Call, CallCreate, CallEvent, CallPage, EventCreate
from api.domain.stations.schemas import OnDuty
from api.domain.stations.services import DutyShift, RosterService
from api.errors import (
    BadInputError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    UnavailableError,
    UnprocessableError,
)
from api.pagination import decode_cursor, encode_cursor
from api.types import plausible
from geo.crs import EARTH_RADIUS_M
from jurisdictions.boundaries import PROVINCE_CODE
from jurisdictions.router import Router

MAX_KEY_LENGTH = 200
MAX_PAGE = 500
DEFAULT_PAGE = 50
DUTY_ATTEMPTS = 3
"""Tries of the one-statement intake when the database refuses the guessed SHO (the
roster changed between the guess and the statement)."""


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
    duty: DutyCache = field(default_factory=DutyCache)
    """Who is on duty where, guessed for the one-statement intake (which checks it)."""


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

    def _event_values(self, record: CallRecord | SimpleNamespace, kind: str, at: datetime, now: datetime,
                      principal: Principal, *, from_status: str | None,
                      previous: dict[str, str] | None = None, reason: str | None = None,
                      note: str | None = None) -> dict[str, Any]:
        """Column values of a trail entry, with the call as it stands now as its snapshot."""
        snapshot = self.ctx.encoder.encode(self.as_call(record, None)).decode()
        values: dict[str, Any] = {
            "call_id": record.id, "type": kind, "at": at, "recorded_at": now,
            "from_status": from_status, "status": record.status,
            "station_code": record.station_code, "tehsil_code": record.tehsil_code,
            "district_code": record.district_code, "region_code": record.region_code,
            **{f"from_{level}_code": previous[level] if previous else None
               for level in ("station", "tehsil", "district", "region")},
            "reason": reason, "note": note, "actor": principal.subject, "role": principal.role,
            "snapshot": snapshot,
        }
        return values

    async def _publish(self, event: CallEventRecord | SimpleNamespace,
                       record: CallRecord | SimpleNamespace) -> None:
        publisher = self.ctx.publisher
        if publisher is None:
            return
        previous = ({"station": event.from_station_code, "tehsil": event.from_tehsil_code,
                     "district": event.from_district_code, "region": event.from_region_code,
                     "province": PROVINCE_CODE} if event.from_station_code else {})
        await publisher.publish(envelope(event, self.ctx.encoder),
                                path_channels(_path(record), previous))

    def as_call(self, record: CallRecord | SimpleNamespace, principal: Principal | None) -> Call:
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
            distance_m=record.distance_m, sho_on_duty=sho, unstaffed=record.unstaffed,
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

        async def insert_if_new(self, values: dict[str, Any]) -> bool:
            """Insert unless the idempotency key exists (then nothing is written)."""
            statement = _INSERT_CALL.get(_dialect(self.session))
            if statement is None:
                table = metadata.tables["calls"]
                statement = (dialect_insert(self.session, table)
                             .on_conflict_do_nothing(index_elements=[table.c.idempotency_key])
                             .returning(table.c.id))
                _INSERT_CALL[_dialect(self.session)] = statement
            connection = await self.session.connection()
            return (await connection.execute(statement, values)).scalar_one_or_none() is not None

        async def take(self, call: dict[str, Any], event: dict[str, Any],
                       audit: dict[str, Any], due: datetime | None) -> int | None:
            """Write a new call, its ``received`` event, its routing audit entry and its alert
            deadline (unless ``due`` is ``None``) inside the caller's transaction (the
            SQLite path); the event's id, or ``None`` when the idempotency key exists
            (nothing written). PostgreSQL takes calls in one statement instead
            (:func:`api.domain.calls.intake.take_statement`)."""
            if not await self.insert_if_new(call):
                return None
            event_id = await self.append_event(event)
            await (await self.session.connection()).execute(_INSERT_AUDIT, audit)
            if due is not None:
                await self.schedule_alerts(call["id"], due)
            return event_id

        async def schedule_alerts(self, call_id: UUID, at: datetime) -> None:
            """Have the alert engine look at the call at ``at`` (its ``alert_due`` row)."""
            table = AlertDueRecord.__table__
            statement = dialect_insert(self.session, table).values(call_id=call_id,
                                                                   next_alert_at=at)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.call_id],
                set_={"next_alert_at": statement.excluded.next_alert_at})
            await (await self.session.connection()).execute(statement)

        async def append_event(self, values: dict[str, Any]) -> int:
            """Insert one trail entry; its id (the feed's event id)."""
            connection = await self.session.connection()
            event_id: int = (await connection.execute(_INSERT_EVENT, values)).scalar_one()
            return event_id

        async def recent_in_cells(self, cells: Sequence[int], since: datetime, until: datetime
                                  ) -> list[_Nearby]:
            """Calls received in ``[since, until]`` in any of ``cells`` (an H3 disk), earliest
            first: one index seek per cell, however long the history."""
            params: dict[str, Any] = {f"c{i}": cells[i % len(cells)] for i in range(DISK_CELLS)}
            connection = await self.session.connection()  # Core rows: no ORM machinery
            rows = await connection.execute(_RECENT_IN_CELLS,
                                              {**params, "since": since, "until": until})
            return [_Nearby(*row) for row in rows.all()]

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

    # ------------------------------------------------------------------ intake
    async def take_in_transaction(self, values: dict[str, Any], detail: dict[str, Any],
                                   category: Category, principal: Principal, now: datetime, *,
                                   due: datetime | None
                                   ) -> tuple[SimpleNamespace, SimpleNamespace] | None:
        """SQLite: on-duty lookup, duplicate search and the three inserts in one
        ``BEGIN IMMEDIATE`` transaction; ``None`` when the idempotency key exists."""
        session = self.repository.session
        received_at = values["received_at"]
        async with single_statement_unit(session):
            shift = await self.roster.on_duty(values["station_code"], received_at)
            values.update(staffing(shift))
            duplicate_of = await self._duplicate_of(category, values["lat"], values["lon"],
                                                    received_at)
            values["duplicate_of"] = duplicate_of
            record = SimpleNamespace(**values)
            event = self._event_values(record, "received", received_at, now, principal,
                                       from_status=None)
            audit = audit_entry(principal, "route", now, call_id=values["id"], detail={
                **detail, "sho_shift_id": values["sho_shift_id"], "unstaffed": shift is None,
                "duplicate_of": str(duplicate_of) if duplicate_of else None})
            lon, lat = values["lon"], values["lat"]
            event_id = await self.repository.take(
                {**values, "geom": WKTElement(f"POINT({lon!r} {lat!r})", srid=SRID)},
                event, audit, due)
        if event_id is None:
            return None
        return record, SimpleNamespace(id=event_id, **event)

    async def replay(self, key: str, body_hash: str, principal: Principal, now: datetime
                     ) -> Call:
        """The call an idempotency key already made (audited as ``call.replay``); 409 when
        the body differs or the attempt that held the key rolled back."""
        async with self.repository.session.begin():
            existing = await self.repository.by_key(key)
            if existing is None:  # the other attempt rolled back: nothing to replay
                raise ConflictError("a concurrent request with this Idempotency-Key failed; retry")
            if existing.request_hash != body_hash:
                raise ConflictError("this Idempotency-Key was used with a different request body",
                                    extra={"call_id": str(existing.id)})
            principal.require_scope(_path(existing), f"call {existing.id}")
            await self.audit.record(principal, "call.replay", now, call_id=existing.id)
            return self.as_call(existing, principal)

    async def _duplicate_of(self, category: Category, lat: float, lon: float,
                            received_at: datetime) -> UUID | None:
        """The open call this one repeats (same incident group, near in space and time)."""
        if not category.links_duplicates:
            return None
        ctx = self.ctx
        window = ctx.duplicate_window
        related = set(ctx.categories.related(category.code))
        rows = await self.repository.recent_in_cells(
            h3_int.grid_disk(h3_int.latlng_to_cell(lat, lon, H3_RES), DUPLICATE_RING),
            received_at - window, received_at + window)
        near = [r for r in rows if r.status in OPEN_STATUSES and r.category in related
                and _haversine_m(lat, lon, r.lat, r.lon) <= ctx.duplicate_radius_m]
        if not near:
            return None
        originals = [r.id for r in near if r.duplicate_of is None]
        if originals:
            return originals[0]
        return near[0].duplicate_of

    # ------------------------------------------------------------------ reads
    async def get_call(self, call_id: UUID, principal: Principal) -> Call:
        principal.require("call.read")
        async with self.repository.session.begin():
            record = await self._visible(call_id, principal)
            await self.audit.record(principal, "call.read", self.ctx.clock(), call_id=record.id)
        return self.as_call(record, principal)

    async def list_calls(self, principal: Principal, *, station: str | None = None,
                         tehsil: str | None = None, district: str | None = None,
                         region: str | None = None, status: str | None = None,
                         category: str | None = None, since: datetime | None = None,
                         until: datetime | None = None, limit: int = DEFAULT_PAGE,
                         cursor: str | None = None) -> CallPage:
        """Calls newest first within the principal's scope; filters outside it are 403."""
        principal.require("call.read")
        if not 1 <= limit <= MAX_PAGE:
            raise BadInputError(f"limit must be between 1 and {MAX_PAGE}")
        if since and until and since >= until:
            raise BadInputError("since must be before until")
        if category is not None:
            self.ctx.categories.get(category)
        if status is not None and status not in (*OPEN_STATUSES, "closed", "cancelled"):
            raise BadInputError(f"unknown status {status!r}")
        conditions: list[ColumnElement[bool]] = self.ctx.areas().conditions(
            principal, _SCOPE_COLUMN,
            {"station": station, "tehsil": tehsil, "district": district, "region": region})
        if status is not None:
            conditions.append(CallRecord.status == status)
        if category is not None:
            conditions.append(CallRecord.category == category)
        if since is not None:
            conditions.append(CallRecord.received_at >= since)
        if until is not None:
            conditions.append(CallRecord.received_at < until)
        after = decode_cursor(cursor) if cursor else None
        async with self.repository.session.begin():
            rows = await self.repository.page(conditions, after, limit + 1)
            shown = rows[:limit]
            await self.audit.record(principal, "call.list", self.ctx.clock(),
                              detail={"calls": [str(r.id) for r in shown]})
        next_cursor = (encode_cursor(shown[-1].received_at, shown[-1].id)
                       if len(rows) > limit else None)
        return CallPage(items=[self.as_call(r, principal) for r in shown], next_cursor=next_cursor)

    async def list_events(self, call_id: UUID, principal: Principal) -> list[CallEvent]:
        principal.require("call.read")
        async with self.repository.session.begin():
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
                await self.repository.schedule_alerts(record.id, now)
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
        event_id = await self.repository.append_event(values)
        return CallEventRecord(id=event_id, **values)

class CallIntake(CallWriting):
    """``POST /calls``: one per process, no session per request.

    On PostgreSQL a call is taken with :class:`~api.domain.calls.intake.OneStatement` on a
    pooled connection's driver: one round trip when the on-duty guess holds. On SQLite,
    and to replay a key already used, a session and a :class:`CallService` do the work.
    """

    def __init__(self, context: CallContext, sessions: Callable[[], Any],
                 one_statement: OneStatement | None,
                 call_service: Callable[[Any], CallService]) -> None:
        self.ctx = context
        self.sessions = sessions
        self.one_statement = one_statement
        self.call_service = call_service
        """The :class:`CallService` of a session (with its collaborators)."""

    async def take_call(self, data: CallCreate, key: str | None, principal: Principal
                     ) -> tuple[Call, bool]:
        """Take a call; ``(call, True)`` when created, ``(call, False)`` for a replayed key."""
        principal.require("call.create")
        key = _checked_key(key)
        ctx = self.ctx
        category = ctx.categories.get(data.category)
        now = ctx.clock()
        received_at = self._reported_time(data.received_at, now, "received_at") or now
        body_hash = _request_hash(data, received_at if data.received_at else None)
        router = ctx.router()
        answer = router.resolve(data.lat, data.lon, data.radius_m)  # 422 outside Punjab
        path = {"station": answer.station_code, "tehsil": answer.tehsil_code,
                "district": answer.district_code, "region": answer.region_code,
                "province": PROVINCE_CODE}
        principal.require_scope(path, f"a call routed to station {answer.station_code}")
        values: dict[str, Any] = {
            "id": uuid.uuid4(), "idempotency_key": key, "request_hash": body_hash,
            "status": "received", "category": category.code, "serious": category.serious,
            "lat": data.lat, "lon": data.lon, "radius_m": data.radius_m,
            "h3_r9": h3_int.latlng_to_cell(data.lat, data.lon, H3_RES),
            "caller_phone": data.caller_phone, "description": data.description,
            "received_at": received_at, "station_code": answer.station_code,
            "tehsil_code": answer.tehsil_code, "district_code": answer.district_code,
            "region_code": answer.region_code, "boundary_set": ctx.boundary_set(),
            "method": answer.method, "out_of_coverage": answer.out_of_coverage,
            "distance_m": answer.distance_m, "duplicate_of": None,
            "created_by": principal.subject, "created_at": now, "updated_at": now,
        }
        due = received_at if ctx.alerts else None
        detail = {"lat": data.lat, "lon": data.lon, "radius_m": data.radius_m,
                  "station": answer.station_code, "method": answer.method,
                  "out_of_coverage": answer.out_of_coverage, "distance_m": answer.distance_m,
                  "boundary_set": values["boundary_set"]}
        if self.one_statement is not None:
            taken = await self._take_one_statement(self.one_statement, values, detail, due,
                                                   category=category, principal=principal, now=now)
        else:
            async with self.sessions() as session:
                taken = await self.call_service(session).take_in_transaction(
                    values, detail, category, principal, now, due=due)
        if taken is not None:
            record, event = taken
            await self._publish(event, record)
            return self.as_call(record, principal), True
        # the key was taken (before us, or by a concurrent retry that committed first)
        async with self.sessions() as session:
            return await self.call_service(session).replay(key, body_hash, principal, now), False

    async def _take_one_statement(self, writer: OneStatement, values: dict[str, Any],
                                  detail: dict[str, Any], due: datetime | None, *,
                                  category: Category,
                                  principal: Principal, now: datetime
                                  ) -> tuple[SimpleNamespace, SimpleNamespace] | None:
        """PostgreSQL: the SHO on duty guessed from :class:`DutyCache`, then one statement
        that checks the guess, searches duplicates and writes call, event and audit entry
        (:func:`take_statement`); ``None`` when the idempotency key exists."""
        ctx = self.ctx
        station, received_at = values["station_code"], values["received_at"]
        search = category.links_duplicates
        window = ctx.duplicate_window
        fixed: dict[str, Any] = {
            "cells": h3_int.grid_disk(values["h3_r9"], DUPLICATE_RING),
            "search": search, "since": received_at - window, "until": received_at + window,
            "open": list(OPEN_STATUSES),
            "related": list(ctx.categories.related(category.code)) if search else [],
            "radius": ctx.duplicate_radius_m, "earth_r": EARTH_RADIUS_M, "due": due,
        }
        for _ in range(DUTY_ATTEMPTS):
            known, shift = ctx.duty.predict(station, received_at)
            if not known:
                async with writer.connection() as connection:
                    shift = await ctx.duty.load(connection, station, received_at, now)
            values.update(staffing(shift))
            record = SimpleNamespace(**values)
            event = self._event_values(record, "received", received_at, now, principal,
                                       from_status=None)
            head, tail = _split_snapshot(event.pop("snapshot"))
            audit = audit_entry(principal, "route", now, call_id=values["id"], detail={
                **detail, "sho_shift_id": values["sho_shift_id"],
                "unstaffed": values["unstaffed"]})
            audit["detail"] = msgspec.json.encode(audit["detail"]).decode()
            params = {**fixed, **{f"call_{k}": v for k, v in values.items()},
                      **{f"event_{k}": v for k, v in event.items()},
                      **{f"audit_{k}": v for k, v in audit.items()},
                      "snap_head": head, "snap_tail": tail}
            row = await writer.take(params)
            if row.ok:
                break
            ctx.duty.forget(station)  # the roster changed since it was read: read it again
        else:
            raise UnavailableError("the station's roster kept changing while the call was "
                                   "taken; retry")
        if row.event_id is None:
            return None
        record.duplicate_of = row.duplicate_of
        event["snapshot"] = head + (f'"{row.duplicate_of}"' if row.duplicate_of else "null") + tail
        return record, SimpleNamespace(id=row.event_id, **event)


_INSERT_CALL: dict[str, Any] = {}
"""``INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING id`` per dialect, built once."""

_SELECT_CALLS = select(CallRecord)
"""The repository's base statement, built once instead of per request."""
_EVENTS = metadata.tables["call_events"]
_AUDIT = metadata.tables["audit_log"]
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
_INSERT_AUDIT = insert(_AUDIT)


H3_RES = 9
"""Cells of about 0.1 km² (edge ~200 m): the ``h3_r9`` column of every call."""

DUPLICATE_RING = 2
"""Two rings around a call's cell hold every point within 250 m of it: a point's cell
centre is at most one edge (~200 m) from the point, so the other cell's centre is within
250 + 2·200 = 650 m of this one, while every cell of the third ring is at least
3·√3/2·347 ≈ 900 m away (tested on random pairs in ``tests/test_calls_unit.py``)."""



class _Nearby(NamedTuple):
    id: UUID
    duplicate_of: UUID | None
    lat: float
    lon: float
    category: str
    status: str


_RECENT_IN_CELLS = (
    select(CallRecord.id, CallRecord.duplicate_of, CallRecord.lat, CallRecord.lon,
           CallRecord.category, CallRecord.status)
    .where(CallRecord.h3_r9.in_([bindparam(f"c{i}") for i in range(DISK_CELLS)]),
           CallRecord.received_at >= bindparam("since"),
           CallRecord.received_at <= bindparam("until"))
    .order_by(CallRecord.received_at, CallRecord.id).limit(500))
"""Duplicate candidates (built once: it runs for every call taken)."""


def _dialect(session: Any) -> str:
    bind = session.bind
    return str(bind.dialect.name) if bind is not None else "postgresql"


_SCOPE_COLUMN: dict[str, Any] = {
    "station": CallRecord.station_code, "tehsil": CallRecord.tehsil_code,
    "district": CallRecord.district_code, "region": CallRecord.region_code,
}


def event_schema(row: CallEventRecord | SimpleNamespace) -> CallEvent:
    return CallEvent(id=row.id, call_id=row.call_id, type=row.type, at=row.at,
                     recorded_at=row.recorded_at, from_status=row.from_status, status=row.status,
                     station_code=row.station_code, from_station_code=row.from_station_code,
                     reason=row.reason, note=row.note, actor=row.actor, role=row.role)


class _Staffing(msgspec.Struct):
    unstaffed: bool


def envelope(row: CallEventRecord | SimpleNamespace, encoder: msgspec.json.Encoder) -> bytes:
    """The feed message of an event (live and replayed alike): event, then the call after it."""
    snapshot = row.snapshot.encode()
    unstaffed = msgspec.json.decode(snapshot, type=_Staffing).unstaffed
    return b"".join((
        b'{"event_id":', str(row.id).encode(), b',"type":', encoder.encode(row.type),
        b',"unstaffed":', b"true" if unstaffed else b"false",
        b',"event":', encoder.encode(event_schema(row)), b',"call":', snapshot, b"}",
    ))


def _path(record: CallRecord | SimpleNamespace) -> dict[str, str]:
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


_NO_LINK = ',"duplicate_of":null,'


def _split_snapshot(snapshot: str) -> tuple[str, str]:
    """A snapshot encoded with ``duplicate_of`` null, cut around that null: the statement
    that finds the link puts it in between. The first match is the field itself (fields
    before it are codes, names and numbers; a quote inside a string is escaped)."""
    at = snapshot.index(_NO_LINK)
    return snapshot[:at + len(_NO_LINK) - 5], snapshot[at + len(_NO_LINK) - 1:]


def _checked_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise BadInputError("an Idempotency-Key header is required (any unique string, e.g. a UUID)")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadInputError(f"Idempotency-Key must be printable ASCII of at most {MAX_KEY_LENGTH} "
                            "characters")
    return key


def _request_hash(data: CallCreate, received_at: datetime | None) -> str:
    """Hash of the body as decoded (so ``1`` and ``1.0``, or equal instants in other time
    zones, are the same request)."""
    canonical = msgspec.structs.replace(data, received_at=received_at)
    return hashlib.sha256(msgspec.json.encode(canonical)).hexdigest()


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))
