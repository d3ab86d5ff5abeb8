"""Live feeds over HTTP: the SSE response and the WebSocket loop of every feed.

The call feeds (:mod:`api.domain.feeds`) and the alert feeds (:mod:`api.domain.alerts`)
stream the same way from a :class:`Feed` (their feed services): the
authorisation check and the audited subscription first (so refusals and a database that
is down are plain HTTP errors, or close codes on a WebSocket), then what was missed, then
what happens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.areas import Area, Areas
from api.auth import Authenticator, Principal
from api.errors import AppError, BadInputError, is_connection_failure


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One event for a subscriber (``id`` is the SSE event id)."""

    id: int
    type: str
    data: bytes


class Feed(Protocol):
    """What a feed service offers the streams (call feeds and alert feeds alike)."""

    def authorize(self, principal: Principal, area: Area) -> None: ...

    async def record_subscription(self, principal: Principal, area: Area,
                                  last_event_id: int | None) -> None: ...

    def stream(self, area: Area, principal: Principal, last_event_id: int | None
               ) -> AsyncIterator[FeedItem | str]: ...


MAX_EVENT_ID = 2**63 - 1
LAST_EVENT_ID = Parameter(header="Last-Event-ID", ge=0, le=MAX_EVENT_ID, required=False,
                          description="Replay events after this id (from the database)")
LAST_EVENT_ID_QUERY = Parameter(query="last_event_id", ge=0, le=MAX_EVENT_ID, required=False,
                                description="The same as the Last-Event-ID header, for clients "
                                            "that cannot set it (the header wins)")
RETRY_MS = 3_000


async def sse_response(feeds: Feed, area: Area, principal: Principal,
                       last_event_id: int | None, query_event_id: int | None = None
                       ) -> ServerSentEvent:
    """An SSE stream of ``area``'s feed, after the authorisation check and the audited
    subscription (both before the stream starts, so refusals and a database that is down
    are plain HTTP errors)."""
    if last_event_id is None:
        last_event_id = query_event_id
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


async def serve_socket(socket: WebSocket[Any, Any, Any], level: str, code: str, *, areas: Areas,
                       feeds: Feed, authenticator: Authenticator) -> None:
    """Accept, check, then send each event as a text frame until the client leaves.

    Refusals close the socket with ``4000 + HTTP status`` (4401, 4403, 4404, 4400, and
    4503 when the database is down) and the reason, since a WebSocket has no status line
    once accepted.
    """
    await socket.accept()
    try:
        principal = authenticator.principal(socket.headers.get("authorization"),
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
