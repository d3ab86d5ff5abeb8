"""``GET /console``, its live feed and its buttons, for a signed-in SHO (tablet-shaped).

Everything goes through the services the API uses, with the principal of the session
(``page_principal``): the open calls are :meth:`CallService.list_calls`, the buttons post
:meth:`CallService.add_event` (so the lifecycle's state machine, the audit trail, the
feeds and the alert deadlines are the API's), the live list is the station feed of
:class:`FeedService` over SSE, the roster is :class:`RosterService`. The small map is the
map pages' client over the station's outlines and the offline basemap, drawn in a worker
process once per station and boundary set.

An SHO's console is its own station; a command role above (a DPO covering an unstaffed
station) opens ``/console?station=CODE`` for a station inside its scope.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent

from api.areas import Area, Areas
from api.auth import Principal
from api.domain.accounts.services import PageUser, template_context
from api.domain.calls.schemas import Call, EventCreate
from api.domain.calls.services import CallFilters, CallService
from api.domain.feeds.services import FeedService
from api.domain.jurisdictions.services import JurisdictionService
from api.domain.maps.services import area_map_job
from api.domain.stations.services import RosterService
from api.errors import UnprocessableError
from api.pages import html_page, render
from api.streams import LAST_EVENT_ID, sse_response
from api.workers import WorkerPool

OPEN = ("received", "transferred", "acknowledged", "dispatched", "en_route", "on_scene")
"""The statuses of calls still open (the console's list)."""
PER_STATUS = 100
"""Open calls read per status (a station rarely has more than a handful)."""
BUTTONS = (("acknowledged", "Acknowledge"), ("dispatched", "Dispatch"), ("en_route", "En route"),
           ("on_scene", "On scene"), ("closed", "Close"), ("transferred", "Transfer"))
"""The lifecycle events the console posts, with their buttons' names."""
CONSOLE_JS = "/static/web/console.js"
MAP_JS = "/static/maps/safecity-map.js"
MAP_CSS = "/static/maps/safecity-map.css"
DECK_JS = "/static/vendor/deck.gl/dist.min.js"
H3_JS = "/static/vendor/h3-js/h3-js.umd.js"

_MAPS: OrderedDict[tuple[str, str], str] = OrderedDict()
"""Station map data already drawn, by (boundary set, station): a console is reopened often."""
_MAPS_KEPT = 64

StationParam = Annotated[str | None, Parameter(
    query="station", max_length=64, description="A station in scope (default: the SHO's own)")]


def console_station(principal: Principal, areas: Areas, code: str | None) -> Area:
    """The station a console shows: the SHO's own, or one in scope named by a command role."""
    principal.require("feed.read")
    principal.require("call.event")
    if code is None:
        if principal.level != "station":
            raise UnprocessableError("name the station: /console?station=CODE")
        code = principal.scope
    station = areas.station(code)
    principal.require_scope(station.path, f"station {station.code}")
    return station


async def open_calls(calls: CallService, principal: Principal, station: Area) -> list[Call]:
    """The station's open calls, oldest first (the API's list, one read per open status)."""
    found: list[Call] = []
    for status in OPEN:
        page = await calls.list_calls(principal, CallFilters(station=station.code, status=status),
                                      limit=PER_STATUS)
        found += page.items
    return sorted(found, key=lambda c: c.received_at)


def transfer_targets(jurisdictions: JurisdictionService, station: Area) -> list[tuple[str, str]]:
    """(code, name) of the other stations of the station's district, by name."""
    boundaries = jurisdictions.boundaries
    tehsils = boundaries.layer("tehsil")
    district_tehsils = set(tehsils.loc[tehsils["district_code"] == station.path.get("district"), "code"])
    stations = boundaries.layer("station")
    near = stations[stations["tehsil_code"].isin(district_tehsils) & (stations["code"] != station.code)]
    return sorted(zip(near["code"].astype(str), near["name"].astype(str), strict=True),
                  key=lambda pair: pair[1])


async def station_map(workers: WorkerPool, version: str, station: Area) -> str:
    """The map client's JSON for the station (drawn in a worker once, then kept)."""
    key = (version, station.code)
    known = _MAPS.get(key)
    if known is None:
        known = await workers.run("analytics", area_map_job, "station", station.code, version)
        _MAPS[key] = known
        if len(_MAPS) > _MAPS_KEPT:
            _MAPS.popitem(last=False)
    _MAPS.move_to_end(key)
    return known


class ConsoleController(Controller):
    """The SHO console: one station's open calls, live."""

    path = "/console"
    include_in_schema = False

    @get("/", media_type="text/html")
    async def page(self, *, page_user: PageUser, calls: CallService, rosters: RosterService,
                   areas: Areas, feeds: FeedService, jurisdictions: JurisdictionService,
                   workers: WorkerPool, station_code: StationParam = None) -> Response[Any]:
        """The console of the user's station (or ``?station=`` in scope)."""
        principal = page_user.principal
        station = console_station(principal, areas, station_code)
        feeds.authorize(principal, station)
        listed = await open_calls(calls, principal, station)
        now = calls.ctx.clock()
        roster = await rosters.read(station, principal)
        on_duty = await rosters.on_duty_answer(station, now, principal)
        upcoming = [s for s in roster.shifts if s.end > now and s.start < now + timedelta(hours=24)]
        version = str(jurisdictions.boundaries.version)
        state = {"station": {"code": station.code, "name": station.name},
                 "calls": listed, "buttons": BUTTONS, "now": now}
        body = render("console/page.html", **template_context(
            page_user, station=station, on_duty=on_duty, shifts=upcoming, targets=transfer_targets(
                jurisdictions, station), buttons=BUTTONS,
            state=msgspec.json.encode(state).decode().replace("<", "\\u003c"),
            map_data=await station_map(workers, version, station),
            console_js=CONSOLE_JS, map_js=MAP_JS, map_css=MAP_CSS, deck_js=DECK_JS, h3_js=H3_JS))
        return html_page(body)

    @get("/feed", media_type="text/event-stream")
    async def feed(self, *, page_principal: Principal, areas: Areas, feeds: FeedService,
                   station_code: StationParam = None,
                   last_event_id: Annotated[int | None, LAST_EVENT_ID] = None) -> ServerSentEvent:
        """The station feed (the API's ``/stations/{code}/feed``) for the console's session."""
        station = console_station(page_principal, areas, station_code)
        return await sse_response(feeds, station, page_principal, last_event_id)

    @post("/calls/{call_id:uuid}/events", status_code=201)
    async def add_event(self, call_id: UUID, data: EventCreate, calls: CallService,
                        page_principal: Principal) -> Call:
        """A button: the lifecycle event through the calls service, as ``POST
        /api/v1/calls/{id}/events`` records it (CSRF-checked by ``page_principal``)."""
        _event, call = await calls.add_event(call_id, data, page_principal)
        return call
