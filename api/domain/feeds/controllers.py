"""Live feeds over SSE (``/feeds/{level}/{code}``) and WebSocket (``/ws/...``).

Under ``/api/v1`` (registered by :mod:`api.domain.calls.wiring`): SSE at
``/api/v1/stations/{code}/feed`` and ``/api/v1/feeds/{level}/{code}``, WebSocket at
``/api/v1/ws/stations/{code}`` and ``/api/v1/ws/feeds/{level}/{code}``. The app also
registers the two WebSocket handlers at the root (:data:`UNPREFIXED_SOCKETS`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, WebSocket, get, websocket
from litestar.di import Provide
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import Principal, principal_from_header
from api.domain.calls.deps import provide_areas, provide_feed_service, provide_principal
from api.domain.feeds.services import FeedItem, FeedService
from api.domain.stations.areas import Area, Areas
from api.errors import AppError, BadInputError, is_connection_failure

MAX_EVENT_ID = 2**63 - 1
LAST_EVENT_ID = Parameter(header="Last-Event-ID", ge=0, le=MAX_EVENT_ID, required=False,
                          description="Replay events after this id (from the database)")
RETRY_MS = 3_000


async def sse_response(feeds: FeedService, area: Area, principal: Principal,
                       last_event_id: int | None) -> ServerSentEvent:
    """An SSE stream of ``area``'s feed, after the authorisation check and the audited
    subscription (both before the stream starts, so refusals and a database that is down
    are plain HTTP errors)."""
    feeds.authorize(principal, area)
    await feeds.record_subscription(principal, area, last_event_id)

    async def messages() -> AsyncIterator[ServerSentEventMessage]:
        first = True
        async for item in feeds.stream(area, principal, last_event_id):
            if isinstance(item, str):
                yield ServerSentEventMessage(comment=item, retry=RETRY_MS if first else None,
                                             data=None)
            else:
                yield ServerSentEventMessage(id=item.id, event=item.type, data=item.data.decode())
            first = False

    return ServerSentEvent(messages(), headers={"X-Accel-Buffering": "no"})


class FeedController(Controller):
    path = "/feeds"
    tags = ["feeds"]
    security = [{"BearerToken": []}]
    dependencies = {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "areas": Provide(provide_areas, sync_to_thread=False),
        "feeds": Provide(provide_feed_service, sync_to_thread=False),
    }

    @get("/{level:str}/{code:str}", operation_id="areaFeed", media_type="text/event-stream")
    async def feed(self, *, level: str, code: str, areas: Areas, feeds: FeedService,
                   principal: Principal,
                   last_event_id: Annotated[int | None, LAST_EVENT_ID] = None) -> ServerSentEvent:
        """SSE of every call event in a station, tehsil, district, region or the province."""
        return await sse_response(feeds, areas.get(level, code), principal, last_event_id)


@websocket("/ws/stations/{code:str}", dependencies={
    "areas": Provide(provide_areas, sync_to_thread=False),
    "feeds": Provide(provide_feed_service, sync_to_thread=False)})
async def station_feed_socket(socket: WebSocket[Any, Any, Any], code: str, areas: Areas,
                              feeds: FeedService) -> None:
    """The station feed over WebSocket (``?access_token=``, ``?last_event_id=``)."""
    await serve_socket(socket, "station", code, areas, feeds)


@websocket("/ws/feeds/{level:str}/{code:str}", dependencies={
    "areas": Provide(provide_areas, sync_to_thread=False),
    "feeds": Provide(provide_feed_service, sync_to_thread=False)})
async def area_feed_socket(socket: WebSocket[Any, Any, Any], level: str, code: str, areas: Areas,
                           feeds: FeedService) -> None:
    """Any area's feed over WebSocket."""
    await serve_socket(socket, level, code, areas, feeds)


UNPREFIXED_SOCKETS = (station_feed_socket, area_feed_socket)
"""The same two handlers, registered a second time by the app at the root:
``/ws/stations/{code}`` and ``/ws/feeds/{level}/{code}`` (control-room clients address
WebSockets without the API prefix). Litestar gives each router its own copy of a
handler's registration, not of its code, so both paths run the functions above."""


async def serve_socket(socket: WebSocket[Any, Any, Any], level: str, code: str, areas: Areas,
                        feeds: FeedService) -> None:
    """Accept, check, then send each event as a text frame until the client leaves.

    Refusals close the socket with ``4000 + HTTP status`` (4401, 4403, 4404, 4400, and
    4503 when the database is down) and the reason, since a WebSocket has no status line
    once accepted.
    """
    await socket.accept()
    try:
        principal = principal_from_header(socket.app.state.settings.jwt_secret,
                                          socket.headers.get("authorization"),
                                          socket.query_params.get("access_token"))
        area = areas.get(level, code)
        feeds.authorize(principal, area)
        last = socket.query_params.get("last_event_id") or socket.headers.get("last-event-id")
        last_event_id = _event_id(last)
        await feeds.record_subscription(principal, area, last_event_id)
    except AppError as exc:
        await socket.close(code=4000 + exc.status, reason=str(exc)[:120])
        return
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        await socket.close(code=4503, reason="the database is unreachable; reconnect shortly")
        return
    receiver = asyncio.create_task(_until_disconnect(socket))
    stream = feeds.stream(area, principal, last_event_id)
    try:
        async for item in _until_done(stream, receiver):
            if isinstance(item, FeedItem):
                await socket.send_text(item.data.decode())
            else:
                await socket.send_text(f'{{"type":"comment","comment":"{item}"}}')
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await receiver
        await stream.aclose()  # type: ignore[attr-defined]


async def _until_disconnect(socket: WebSocket[Any, Any, Any]) -> None:
    while True:
        message = await socket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _until_done(stream: AsyncIterator[FeedItem | str],
                      receiver: asyncio.Task[None]) -> AsyncIterator[FeedItem | str]:
    """Items of ``stream`` until the client disconnects (``receiver`` finishes)."""
    while True:
        nxt = asyncio.ensure_future(anext(stream))
        done, _ = await asyncio.wait({nxt, receiver}, return_when=asyncio.FIRST_COMPLETED)
        if nxt not in done:
            nxt.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await nxt
            return
        try:
            yield nxt.result()
        except StopAsyncIteration:
            return


def _event_id(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or int(value) > MAX_EVENT_ID:
        raise BadInputError("last_event_id must be an event id (a non-negative 64-bit integer)")
    return int(value)
