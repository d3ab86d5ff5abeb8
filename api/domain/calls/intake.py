"""Taking a call (``POST /calls``), the same on both back ends.

:meth:`CallIntake.take_call` checks the request, routes the location, checks the caller's
scope and builds the call, its ``received`` trail entry and the routing audit entry; it
guesses the SHO on duty from the per-process :class:`~api.domain.stations.services.DutyCache`
and hands everything to the back end's :class:`~api.db.intake.CallStore`, which checks
the guess, links the open call this one repeats and writes it all atomically
(PostgreSQL: one statement with group commit; SQLite: one transaction). Only then is the
call published. A guess the store refuses (the roster was replaced meanwhile) is read
again and retried.

The ``Idempotency-Key`` is a unique column: of two concurrent retries the database lets
one insert and the other finds its row, so a client that retries after a timeout or a
503 gets exactly one call (:meth:`CallService.replay`). Keys are stored within the
caller's jurisdiction scope (:func:`scoped_key`): call takers of two areas who happen to
pick the same key take two calls, and neither learns of the other's.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple

import h3.api.basic_int as h3_int
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import entry as audit_entry
from api.auth import Principal
from api.db.call_models import CELL_RES, NEAR_RING
from api.db.intake import CallStore, DuplicateSearch, NewCall, TakeRequest, snapshot_with_link
from api.domain.calls.categories import Category
from api.domain.calls.lifecycle import OPEN_STATUSES
from api.domain.calls.schemas import Call, CallCreate
from api.domain.calls.services import CallContext, CallService, CallWriting, staffing
from api.domain.calls.wire import Written
from api.domain.stations.services import DutyCache
from api.errors import BadInputError, UnavailableError
from jurisdictions.boundaries import PROVINCE_CODE

MAX_KEY_LENGTH = 200
NEAR_DISKS_KEPT = 8192
"""Disks :func:`near_disk` remembers, least recently used dropped (~1 kB each)."""
DUTY_ATTEMPTS = 3
"""Tries when the store refuses the guessed SHO (the roster changed between the guess and
the write)."""


class Answer(NamedTuple):
    """What :meth:`CallIntake.take_call` answers."""

    call: Call
    """The call as the caller may read it."""
    created: bool
    """``False``: the key was seen with this body; ``call`` is the one it made."""
    text: str | None = None
    """``call``'s JSON when it is the stored wire form as it is (the caller sees the phone):
    the trail entry's snapshot, sent without encoding the call again."""


class CallIntake(CallWriting):
    """``POST /calls``: one per process, no session per request (the store has its own
    connections; a replayed key opens a session to answer with the stored call)."""

    def __init__(self, context: CallContext, sessions: Callable[[], AsyncSession],
                 store: CallStore, call_service: Callable[[AsyncSession], CallService]) -> None:
        self.ctx = context
        self.sessions = sessions
        self.store = store
        self.call_service = call_service
        """The :class:`CallService` of a session (with its collaborators), for a replay."""
        self.duty = DutyCache(store.shifts)

    async def take_call(self, data: CallCreate, key: str | None, principal: Principal
                        ) -> Answer:
        """Take a call: created, or the call a replayed key made (:class:`Answer`)."""
        principal.require("call.create")
        key = scoped_key(principal.scope, checked_key(key))
        ctx = self.ctx
        category = ctx.categories.get(data.category)
        now = ctx.clock()
        received_at = self._reported_time(data.received_at, now, "received_at") or now
        body_hash = request_hash(data, received_at if data.received_at else None)
        answer = ctx.router().resolve(data.lat, data.lon, data.radius_m)  # 422 outside Punjab
        path = {"station": answer.station_code, "tehsil": answer.tehsil_code,
                "district": answer.district_code, "region": answer.region_code,
                "province": PROVINCE_CODE}
        principal.require_scope(path, f"a call routed to station {answer.station_code}")
        call = NewCall(
            id=uuid.uuid4(), idempotency_key=key, request_hash=body_hash, status="received",
            category=category.code, serious=category.serious, lat=data.lat, lon=data.lon,
            radius_m=data.radius_m, h3_r9=h3_int.latlng_to_cell(data.lat, data.lon, CELL_RES),
            caller_phone=data.caller_phone, description=data.description,
            received_at=received_at, station_code=answer.station_code,
            tehsil_code=answer.tehsil_code, district_code=answer.district_code,
            region_code=answer.region_code, boundary_set=ctx.boundary_set(),
            method=answer.method, out_of_coverage=answer.out_of_coverage,
            distance_m=answer.distance_m, outside_punjab=answer.outside_punjab,
            created_by=principal.subject, created_at=now,
            updated_at=now, **staffing(None))
        routed = {"lat": data.lat, "lon": data.lon, "radius_m": data.radius_m,
                  "station": answer.station_code, "method": answer.method,
                  "out_of_coverage": answer.out_of_coverage, "distance_m": answer.distance_m,
                  "outside_punjab": answer.outside_punjab, "boundary_set": call.boundary_set}
        search = self._duplicate_search(category, call)
        due = received_at if ctx.alerts else None
        for _ in range(DUTY_ATTEMPTS):
            shift = await self.duty.guess(call.station_code, received_at, now)
            for column, value in staffing(shift).items():
                setattr(call, column, value)
            event = self._event_values(call, "received", received_at, now, principal,
                                       from_status=None)
            stored = self.as_call(call, None)  # the full form: snapshots, and the answer
            snapshot = ctx.wire.around(stored, "duplicate_of")
            audit = audit_entry(principal, "route", now, call_id=call.id, detail={
                **routed, "sho_shift_id": call.sho_shift_id, "unstaffed": call.unstaffed})
            del audit["call_id"]
            taken = await self.store.take(TakeRequest(call=call, event=event, snapshot=snapshot,
                                                      audit=audit, search=search, due=due))
            if taken.ok:
                break
            self.duty.forget(call.station_code)  # the roster changed: read it again
        else:
            raise UnavailableError("the station's roster kept changing while the call was "
                                   "taken; retry")
        if taken.event_id is None:  # the key was taken (before us, or by a concurrent retry)
            async with self.sessions() as session:
                replayed = await self.call_service(session).replay(key, body_hash, principal, now)
            return Answer(replayed, False)
        call.duplicate_of = taken.duplicate_of
        text = snapshot_with_link(snapshot, taken.duplicate_of)
        await self._publish(Written(id=taken.event_id, **event, snapshot=text), call,
                            unstaffed=call.unstaffed)
        made = msgspec.structs.replace(stored, duplicate_of=taken.duplicate_of)
        if principal.sees_phone or call.caller_phone is None:  # the full form: as stored
            return Answer(made, True, text)
        return Answer(self.seen_by(made, principal), True)

    def _duplicate_search(self, category: Category, call: NewCall) -> DuplicateSearch | None:
        """Where the store looks for the open call this one repeats (``None``: the
        category links no duplicates)."""
        if not category.links_duplicates:
            return None
        ctx = self.ctx
        window = ctx.duplicate_window
        return DuplicateSearch(
            cells=near_disk(call.h3_r9), since=call.received_at - window,
            until=call.received_at + window, open_statuses=OPEN_STATUSES,
            related=tuple(ctx.categories.related(category.code)),
            radius_m=ctx.duplicate_radius_m)


@lru_cache(maxsize=NEAR_DISKS_KEPT)
def near_disk(cell: int) -> tuple[int, ...]:
    """The H3 disk of :data:`NEAR_RING` around ``cell`` where a repeated call is looked for
    (remembered: calls come again and again from the same cells, and ``grid_disk`` costs
    more than the rest of the search's preparation)."""
    return tuple(h3_int.grid_disk(cell, NEAR_RING))


def checked_key(key: str | None) -> str:
    """The ``Idempotency-Key`` as stored; 400 when missing or not printable ASCII."""
    if key is None or not key.strip():
        raise BadInputError("an Idempotency-Key header is required (any unique string, e.g. a UUID)")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadInputError(f"Idempotency-Key must be printable ASCII of at most {MAX_KEY_LENGTH} "
                            "characters")
    return key


def scoped_key(scope: str, key: str) -> str:
    """The key as stored, within the caller's scope: ``SCOPE/key`` for an area's call takers
    (an area code holds no ``/``), the key itself for the province's (the control room, the
    replayed and bulk-loaded history, all keys stored before keys were scoped) unless it
    holds a ``/`` (then ``PK6/key``, which no area's form can be). Too long for the column,
    the key part is its SHA-256 (``SCOPE/#…``). So two areas' keys never meet."""
    if scope == PROVINCE_CODE and "/" not in key:
        return key
    stored = f"{scope}/{key}"
    if len(stored) <= MAX_KEY_LENGTH:
        return stored
    return f"{scope}/#{hashlib.sha256(key.encode()).hexdigest()}"


def request_hash(data: CallCreate, received_at: datetime | None) -> str:
    """Hash of the body as decoded (so ``1`` and ``1.0``, or equal instants in other time
    zones, are the same request)."""
    canonical = msgspec.structs.replace(data, received_at=received_at)
    return hashlib.sha256(msgspec.json.encode(canonical)).hexdigest()
