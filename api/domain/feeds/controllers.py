"""Live call feeds over SSE and WebSocket (the streaming itself is :mod:`api.streams`).

Under ``/api/v1``: SSE at ``/api/v1/stations/{code}/feed`` and
``/api/v1/feeds/{level}/{code}``, WebSocket at ``/api/v1/ws/stations/{code}`` and
``/api/v1/ws/feeds/{level}/{code}``. The app also registers the two WebSocket handlers
at the root (:data:`UNPREFIXED_SOCKETS`).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, WebSocket, get, websocket
from litestar.response import ServerSentEvent

from api.areas import Areas
from api.auth import SECURITY, Authenticator, Principal
from api.domain.feeds.services import FeedService
from api.domain.stations.schemas import StationCode
from api.streams import LAST_EVENT_ID, LAST_EVENT_ID_QUERY, serve_socket, sse_response


class FeedController(Controller):
    path = "/feeds"
    tags = ["feeds"]
    security = SECURITY

    @get("/{level:str}/{code:str}", operation_id="areaFeed", media_type="text/event-stream")
    async def feed(self, *, level: str, code: str, areas: Areas, feeds: FeedService,
                   principal: Principal,
                   last_event_id: Annotated[int | None, LAST_EVENT_ID] = None,
                   query_event_id: Annotated[int | None, LAST_EVENT_ID_QUERY] = None) -> ServerSentEvent:
        """SSE of every call event in a station, tehsil, district, region or the province."""
        return await sse_response(feeds, areas.get(level, code), principal, last_event_id,
                                query_event_id)


@get("/stations/{code:str}/feed", operation_id="stationFeed", media_type="text/event-stream",
     tags=["stations"], security=SECURITY)
async def station_feed(*, code: StationCode, areas: Areas, feeds: FeedService, principal: Principal,
                       last_event_id: Annotated[int | None, LAST_EVENT_ID] = None,
                       query_event_id: Annotated[int | None, LAST_EVENT_ID_QUERY] = None) -> ServerSentEvent:
    """Server-Sent Events of the station's calls; ``Last-Event-ID`` replays what was missed."""
    return await sse_response(feeds, areas.station(code), principal, last_event_id,
                              query_event_id)


@websocket("/ws/stations/{code:str}")
async def station_feed_socket(socket: WebSocket[Any, Any, Any], code: str, *, areas: Areas,
                              feeds: FeedService, authenticator: Authenticator) -> None:
    """The station feed over WebSocket (``?access_token=``, ``?last_event_id=``)."""
    await serve_socket(socket, "station", code, areas=areas, feeds=feeds,
                       authenticator=authenticator)


@websocket("/ws/feeds/{level:str}/{code:str}")
async def area_feed_socket(socket: WebSocket[Any, Any, Any], level: str, code: str, *,
                           areas: Areas, feeds: FeedService, authenticator: Authenticator) -> None:
    """Any area's feed over WebSocket."""
    await serve_socket(socket, level, code, areas=areas, feeds=feeds, authenticator=authenticator)


UNPREFIXED_SOCKETS = (station_feed_socket, area_feed_socket)
"""The same two handlers, registered a second time by the app at the root:
``/ws/stations/{code}`` and ``/ws/feeds/{level}/{code}`` (control-room clients address
WebSockets without the API prefix). Litestar gives each router its own copy of a
handler's registration, not of its code, so both paths run the functions above."""
