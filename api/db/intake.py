"""Where a taken call is written: the one seam between call intake and its two back ends.

Call intake (:class:`api.domain.calls.intake.CallIntake`) decides everything a new call
is, guesses the SHO on duty from a cache, and hands a :class:`TakeRequest` to a
:class:`CallStore`, which in one atomic unit

1. checks that the guessed shift is the one on duty (if not: nothing is written and the
   answer says so; intake reads the roster again and retries),
2. finds the open call this one repeats (:class:`DuplicateSearch`: same H3 disk, time
   window, related category, open, within the radius; the first original, else what the
   first candidate repeats),
3. writes the call, its ``received`` trail entry (the snapshot completed with the link),
   the routing audit entry and the alert deadline, unless the idempotency key exists.

:class:`PostgresCallStore` does all of it in one statement
(:func:`api.db.intake_sql.take_call_statement`) with group commit; :class:`SqliteCallStore`
in one ``BEGIN IMMEDIATE`` transaction. Both read rosters for the cache with the same
statements.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple, Protocol

import msgspec
import numpy as np
from geoalchemy2 import WKTElement
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from api.db.alert_models import AlertDueRecord
from api.db.call_models import NEAR_DISK_CELLS, DutyShift, metadata
from api.db.group_commit import GroupCommit
from api.db.intake_sql import (
    CALL_COLUMNS,
    NEARBY_CALLS,
    ON_DUTY,
    SHIFTS_OF_ALL,
    SHIFTS_OF_STATION,
    take_call_statement,
)
from api.db.models import SRID
from api.db.transactions import dialect_insert, write_transaction
from geo.crs import EARTH_RADIUS_M
from geo.distance import haversine_m


@dataclass(slots=True)
class NewCall:
    """A ``calls`` row as intake writes it (``geom`` comes from ``lat``/``lon``;
    ``duplicate_of`` is filled in by the store)."""

    id: uuid.UUID
    idempotency_key: str
    request_hash: str
    status: str
    category: str
    serious: bool
    lat: float
    lon: float
    radius_m: float | None
    h3_r9: int
    caller_phone: str | None
    description: str | None
    received_at: datetime
    station_code: str
    tehsil_code: str
    district_code: str
    region_code: str
    boundary_set: str
    method: str
    out_of_coverage: bool
    distance_m: float | None
    outside_punjab: str | None
    sho_shift_id: int | None
    sho_name: str | None
    sho_rank: str | None
    sho_phone: str | None
    sho_shift_start: datetime | None
    sho_shift_end: datetime | None
    unstaffed: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    duplicate_of: uuid.UUID | None = None

    def columns(self) -> dict[str, Any]:
        """Column values (shallow; ``dataclasses.asdict`` would deep-copy)."""
        return {name: getattr(self, name) for name in _NEW_CALL_FIELDS}


_NEW_CALL_FIELDS = tuple(f.name for f in fields(NewCall))
if set(_NEW_CALL_FIELDS) != {*CALL_COLUMNS, "duplicate_of"}:  # pragma: no cover - import guard
    raise RuntimeError("api.db.intake.NewCall no longer matches the calls table: "
                       f"{sorted(set(_NEW_CALL_FIELDS) ^ {*CALL_COLUMNS, 'duplicate_of'})}")


@dataclass(frozen=True, slots=True)
class DuplicateSearch:
    """Which earlier call a new one repeats: calls in ``cells`` received in
    ``[since, until]`` (earliest 500), open, of a ``related`` category, within
    ``radius_m`` great-circle metres."""

    cells: Sequence[int]
    since: datetime
    until: datetime
    open_statuses: Sequence[str]
    related: Sequence[str]
    radius_m: float


@dataclass(frozen=True, slots=True)
class TakeRequest:
    """Everything a store writes for one call."""

    call: NewCall
    event: dict[str, Any]
    """The ``received`` trail entry's columns but ``id``, ``call_id`` and ``snapshot``."""
    snapshot: tuple[str, str]
    """The call's wire form before and after its ``duplicate_of`` value."""
    audit: dict[str, Any]
    """The routing audit entry's columns but ``id`` and ``call_id``; ``detail`` a dict."""
    search: DuplicateSearch | None
    """``None``: the category links no duplicates."""
    due: datetime | None
    """When the alert engine first looks at the call; ``None`` when alerting is off."""


class Taken(NamedTuple):
    """What a store answers."""

    ok: bool
    """The on-duty guess held (``False``: nothing was written, guess again)."""
    event_id: int | None
    """The ``received`` entry's id; ``None`` when the idempotency key exists."""
    duplicate_of: uuid.UUID | None


class CallStore(Protocol):
    """The back end's half of call intake."""

    async def take(self, request: TakeRequest) -> Taken: ...

    async def shifts(self, station: str | None, lo: datetime, hi: datetime
                     ) -> list[tuple[str, DutyShift]]:
        """Shifts overlapping ``[lo, hi)`` of one station (or of all), with their station."""
        ...


def snapshot_with_link(snapshot: tuple[str, str], duplicate_of: uuid.UUID | None) -> str:
    """The stored snapshot: the wire form with the link the store found (the same text
    the PostgreSQL statement builds)."""
    head, tail = snapshot
    return head + (f'"{duplicate_of}"' if duplicate_of else "null") + tail


async def _read_shifts(connection: Any, station: str | None, lo: datetime, hi: datetime
                       ) -> list[tuple[str, DutyShift]]:
    if station is None:
        rows = await connection.execute(SHIFTS_OF_ALL, {"lo": lo, "hi": hi})
    else:
        rows = await connection.execute(SHIFTS_OF_STATION, {"station": station, "lo": lo, "hi": hi})
    return [(row[0], DutyShift(*row[1:])) for row in rows.all()]


class PostgresCallStore(GroupCommit):
    """:func:`~api.db.intake_sql.take_call_statement` compiled once for asyncpg and run with
    group commit: the calls of one batch link duplicates and resolve repeated keys exactly
    as if they had come one at a time."""

    def __init__(self, engine: AsyncEngine, **group: Any) -> None:
        compiled = take_call_statement().compile(dialect=engine.dialect)
        super().__init__(engine, str(compiled), **group)
        self.names = tuple(compiled.positiontup or ())
        # the statement's binds in its positional order, gathered per call with C-level
        # getters: the call's fields, the event's and audit entry's columns, the rest
        calls = [n for n in self.names if n.startswith("call_")]
        events = [n for n in self.names if n.startswith("event_")]
        audits = [n for n in self.names if n.startswith("audit_") and n != "audit_detail"]
        self._call = attrgetter(*(n.removeprefix("call_") for n in calls))
        self._event = itemgetter(*(n.removeprefix("event_") for n in events))
        self._audit = itemgetter(*(n.removeprefix("audit_") for n in audits))
        rest = [n for n in self.names if n not in {*calls, *events, *audits}]
        self._rest = rest
        gathered = [*calls, *events, *audits, *rest]
        self._order = itemgetter(*(gathered.index(n) for n in self.names))

    async def take(self, request: TakeRequest) -> Taken:
        search = request.search
        extra: dict[str, Any] = {
            "search": search is not None, "earth_r": EARTH_RADIUS_M, "due": request.due,
            "cells": list(search.cells) if search else [],
            "since": search.since if search else None, "until": search.until if search else None,
            "open": list(search.open_statuses) if search else [],
            "related": list(search.related) if search else [],
            "radius": search.radius_m if search else 0.0,
            "snap_head": request.snapshot[0], "snap_tail": request.snapshot[1],
            "audit_detail": msgspec.json.encode(request.audit["detail"]).decode(),
        }
        values = (*self._call(request.call), *self._event(request.event),
                  *self._audit(request.audit), *(extra[n] for n in self._rest))
        row = await self.run(self._order(values))
        duplicate_of = row["duplicate_of"]
        return Taken(row["ok"], row["event_id"],
                     None if duplicate_of is None else uuid.UUID(bytes=duplicate_of.bytes))

    async def shifts(self, station: str | None, lo: datetime, hi: datetime
                     ) -> list[tuple[str, DutyShift]]:
        async with self.engine.connect() as connection:
            return await _read_shifts(connection, station, lo, hi)


_EVENTS = metadata.tables["call_events"]
_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
_INSERT_AUDIT = insert(metadata.tables["audit_log"])
_CALLS = metadata.tables["calls"]


class SqliteCallStore:
    """The same unit as :class:`PostgresCallStore` in one ``BEGIN IMMEDIATE`` transaction
    on the embedded file (SQLite has no data-modifying CTEs; its one writer at a time
    makes the separate statements as safe)."""

    def __init__(self, sessions: Callable[[], AsyncSession]) -> None:
        self.sessions = sessions
        self._insert_call: Any = None

    async def take(self, request: TakeRequest) -> Taken:
        call = request.call
        async with self.sessions() as session, write_transaction(session):
            connection = await session.connection()
            on_duty = (await connection.execute(
                ON_DUTY, {"station": call.station_code, "at": call.received_at})).first()
            if (DutyShift(*on_duty) if on_duty else None) != _guessed(call):
                return Taken(False, None, None)
            duplicate_of = (await _duplicate_of(connection, call, request.search)
                            if request.search else None)
            values = {**call.columns(), "duplicate_of": duplicate_of,
                      "geom": WKTElement(f"POINT({call.lon!r} {call.lat!r})", srid=SRID)}
            if self._insert_call is None:
                self._insert_call = (dialect_insert(connection, _CALLS)
                                     .on_conflict_do_nothing(index_elements=[_CALLS.c.idempotency_key])
                                     .returning(_CALLS.c.id))
            if (await connection.execute(self._insert_call, values)).scalar_one_or_none() is None:
                return Taken(True, None, None)
            event_id: int = (await connection.execute(_INSERT_EVENT, {
                **request.event, "call_id": call.id,
                "snapshot": snapshot_with_link(request.snapshot, duplicate_of)})).scalar_one()
            audit = request.audit
            await connection.execute(_INSERT_AUDIT, {**audit, "call_id": call.id, "detail": {
                **audit["detail"], "duplicate_of": str(duplicate_of) if duplicate_of else None}})
            if request.due is not None:
                await schedule_alerts(connection, call.id, request.due)
        return Taken(True, event_id, duplicate_of)

    async def shifts(self, station: str | None, lo: datetime, hi: datetime
                     ) -> list[tuple[str, DutyShift]]:
        async with self.sessions() as session:
            return await _read_shifts(await session.connection(), station, lo, hi)


def _guessed(call: NewCall) -> DutyShift | None:
    if call.sho_shift_id is None:
        return None
    # intake sets the six columns together (api.domain.calls.services.staffing)
    return DutyShift(call.sho_shift_id, call.sho_name or "", call.sho_rank or "", call.sho_phone,
                     call.sho_shift_start or call.received_at, call.sho_shift_end or call.received_at)


async def _duplicate_of(connection: Any, call: NewCall, search: DuplicateSearch
                        ) -> uuid.UUID | None:
    """The ``near``/``dup`` CTEs of the PostgreSQL statement, over the same candidates."""
    cells = list(search.cells)
    params: dict[str, Any] = {f"c{i}": cells[i % len(cells)] for i in range(NEAR_DISK_CELLS)}
    rows = (await connection.execute(NEARBY_CALLS, {**params, "since": search.since,
                                                    "until": search.until})).all()
    rows = [r for r in rows if r.status in search.open_statuses and r.category in search.related]
    if not rows:
        return None
    distance = haversine_m(call.lat, call.lon, np.array([r.lat for r in rows]),
                           np.array([r.lon for r in rows]))
    near = [r for r, d in zip(rows, distance.tolist(), strict=True) if d <= search.radius_m]
    originals: list[uuid.UUID] = [r.id for r in near if r.duplicate_of is None]
    if originals:
        return originals[0]
    first: uuid.UUID | None = near[0].duplicate_of if near else None
    return first


async def schedule_alerts(connection: Any, call_id: uuid.UUID, at: datetime) -> None:
    """Have the alert engine look at the call at ``at`` (its ``alert_due`` row)."""
    table = AlertDueRecord.__table__
    statement = dialect_insert(connection, table).values(call_id=call_id, next_alert_at=at)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.call_id], set_={"next_alert_at": statement.excluded.next_alert_at})
    await connection.execute(statement)
