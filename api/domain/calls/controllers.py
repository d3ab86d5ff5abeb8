"""``/calls``: take a call, read calls, post and read lifecycle events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, cast
from uuid import UUID

import msgspec
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.bodies import BODY_OPT, takes_gzip
from api.domain.analytics.schemas import FromParam, UntilParam
from api.domain.analytics.services import parse_time
from api.domain.calls.intake import CallIntake
from api.domain.calls.schemas import Call, CallCreate, CallEvent, CallPage, EventCreate
from api.domain.calls.services import DEFAULT_PAGE, MAX_PAGE, CallFilters, CallService
from api.exports import MAX_ROWS, export_file, export_format
from api.hardening import NO_COMPRESSION
from api.types import aware
from api.workers import WorkerPool


class EventAnswer(msgspec.Struct):
    """The recorded event and the call as it stands after it."""

    event: CallEvent
    call: Call


CodeFilter = Annotated[str | None, Parameter(max_length=64)]
"""An area or category code the list and the export of calls are filtered by."""
StatusFilter = Annotated[str | None, Parameter(max_length=16)]
"""A call status the list and the export of calls are filtered by."""


async def call_filters(*, station: CodeFilter = None, tehsil: CodeFilter = None,
                       district: CodeFilter = None, region: CodeFilter = None,
                       status: StatusFilter = None, category: CodeFilter = None) -> CallFilters:
    """The query parameters the list and the export of calls share (a dependency: one
    declaration for both)."""
    return CallFilters(station=station, tehsil=tehsil, district=district, region=region,
                       status=status, category=category)


class CallController(Controller):
    path = "/calls"
    tags = ["calls"]
    security = SECURITY
    dependencies = {"filters": Provide(call_filters)}

    @post("/", operation_id="createCall", status_code=201, opt={NO_COMPRESSION: True},
          responses_description="201 when created; 200 when the key was seen with this body")
    async def create_call(
        self,
        data: CallCreate,
        principal: Principal,
        call_intake: CallIntake,
        idempotency_key: Annotated[str, Parameter(
            header="Idempotency-Key", min_length=1, max_length=200,
            description="Unique per call; a retry with the same key and body returns the "
                        "same call (200), with another body 409")],
    ) -> Response[Call]:
        """Take a call: route it, find the SHO on duty, store it, deliver it live."""
        answer = await call_intake.take_call(data, idempotency_key, principal)
        status = 201 if answer.created else 200
        if answer.text is not None:  # the call's JSON already made (its snapshot): as it is
            return cast("Response[Call]", Response(answer.text.encode(), status_code=status,
                                                   media_type=MediaType.JSON))
        return Response(answer.call, status_code=status)

    @get("/{call_id:uuid}", operation_id="getCall")
    async def get_call(self, call_id: UUID, calls: CallService, principal: Principal) -> Call:
        """One call (the read is audited)."""
        return await calls.get_call(call_id, principal)

    @get("/", operation_id="listCalls")
    async def list_calls(
        self,
        *,
        calls: CallService,
        principal: Principal,
        filters: CallFilters,
        since: Annotated[datetime | None, Parameter(description="received at or after")] = None,
        until: Annotated[datetime | None, Parameter(description="received before")] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> CallPage:
        """Calls in the caller's scope, newest first, one page at a time."""
        return await calls.list_calls(principal, filters, since=aware(since, "since"),
                                      until=aware(until, "until"), limit=limit, cursor=cursor)

    @get("/export", opt=BODY_OPT, operation_id="exportCalls", media_type="text/csv",
         responses_description="the calls as CSV, GeoJSON or GeoParquet")
    async def export_calls(
        self,
        *,
        request: Request[Any, Any, Any],
        calls: CallService,
        principal: Principal,
        workers: WorkerPool,
        filters: CallFilters,
        since: FromParam = None,
        until: UntilParam = None,
        fmt: Annotated[str | None, Parameter(query="format", max_length=16,
                                             description="csv (default), geojson or geoparquet")] = None,
    ) -> Response[bytes]:
        """The calls the list would show (same scope and filters; ``from``/``until`` as
        ``/hotspots``), oldest first, as one file with area names; the caller's phone only
        for roles that call back. Large exports are encoded in a worker process."""
        chosen = export_format(fmt)
        conditions = calls.conditions(principal, filters, since=parse_time(since, "from"),
                                      until=parse_time(until, "until"), since_name="from")
        frame = await calls.export_rows(principal, conditions, max_rows=MAX_ROWS)
        meta = {"kind": "calls", "scope": {"role": principal.role, "level": principal.level,
                                           "code": principal.scope},
                "filters": {**filters.given(),
                            **{k: v for k, v in {"from": since, "until": until}.items() if v}},
                "rows": len(frame), "caller_phone": principal.sees_phone}
        name = f"calls-{principal.level}-{principal.scope}"
        return await export_file(frame, chosen, meta, name, workers=workers,
                                 gzip_it=takes_gzip(request), receive=request.receive)

    @get("/{call_id:uuid}/events", operation_id="listCallEvents")
    async def list_events(self, call_id: UUID, calls: CallService,
                          principal: Principal) -> list[CallEvent]:
        """The call's trail, oldest first."""
        return await calls.list_events(call_id, principal)

    @post("/{call_id:uuid}/events", operation_id="addCallEvent", status_code=201)
    async def add_event(self, call_id: UUID, data: EventCreate, calls: CallService,
                        principal: Principal) -> EventAnswer:
        """Record a lifecycle event; 409 names the events allowed next."""
        event, call = await calls.add_event(call_id, data, principal)
        return EventAnswer(event=event, call=call)
