"""A live feed of one area: what was missed (from the database), then what happens.

The subscription is opened *before* the replay query runs, so nothing that commits in
between is lost; events the replay already sent are skipped when they arrive live. Each
item is the same envelope live and replayed (:func:`api.domain.calls.services.envelope`).
Roles that may not see caller numbers get them removed here, per subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar.channels import ChannelsPlugin
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import Area
from api.audit import AuditService
from api.auth import Action, Principal
from api.channels import channel_name
from api.db.call_models import CallEventRecord
from api.domain.calls.wire import envelope
from api.errors import BadInputError
from api.streams import FeedItem

REPLAY_BATCH = 500
MAX_REPLAY = 20_000
"""A subscriber further behind than this should page ``GET /calls`` instead."""


class _Head(msgspec.Struct):
    event_id: int
    type: str


class FeedService:
    """Authorises, replays and streams the feed of one area."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], channels: ChannelsPlugin,
                 heartbeat_s: float = 15.0) -> None:
        self.sessions = sessions
        self.channels = channels
        self.heartbeat_s = heartbeat_s
        self._encoder = msgspec.json.Encoder()

    action: Action = "feed.read"
    redacts = True
    """Whether items carry calls whose caller numbers some roles may not see."""

    def channel(self, area: Area) -> str:
        """The live channel of ``area``'s feed."""
        return channel_name(area.level, area.code)

    def authorize(self, principal: Principal, area: Area) -> None:
        """403 unless the principal may watch ``area`` (its own area or one inside it)."""
        principal.require(self.action)
        principal.require_scope(area.path, f"the {area.level} {area.code} feed")

    async def record_subscription(self, principal: Principal, area: Area,
                                  last_event_id: int | None) -> None:
        """Audit a subscription (a feed reads calls); before the stream starts, so a database
        that is down answers 503 instead of breaking an accepted stream."""
        async with self.sessions() as session, session.begin():
            await AuditService(session=session).record(
                principal, "feed.subscribe", datetime.now(UTC),
                detail={"feed": self.channel(area), "last_event_id": last_event_id})

    async def replay(self, area: Area, after_id: int, limit: int = REPLAY_BATCH) -> list[FeedItem]:
        """Events of ``area`` with ids above ``after_id``, oldest first."""
        statement = (select(CallEventRecord).where(CallEventRecord.id > after_id,
                                                   _area_condition(area))
                     .order_by(CallEventRecord.id).limit(limit))
        async with self.sessions() as session:
            rows = (await session.scalars(statement)).all()
        return [FeedItem(r.id, r.type, envelope(r, self._encoder)) for r in rows]

    async def stream(self, area: Area, principal: Principal, last_event_id: int | None
                     ) -> AsyncIterator[FeedItem | str]:
        """Items for one subscriber; a ``str`` is a comment (subscribed, keep-alive)."""
        if last_event_id is not None and last_event_id < 0:
            raise BadInputError("Last-Event-ID must be a non-negative event id")
        redact = self.redacts and not principal.sees_phone
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        async with self.channels.start_subscription([self.channel(area)]) as sub:
            pump = asyncio.create_task(_pump(sub.iter_events(), queue))
            try:
                yield f"subscribed {area.level}:{area.code}"
                sent: set[int] = set()
                if last_event_id is not None:
                    after = last_event_id
                    while len(sent) < MAX_REPLAY:
                        batch = await self.replay(area, after)
                        for item in batch:
                            sent.add(item.id)
                            yield _redacted(item) if redact else item
                        if len(batch) < REPLAY_BATCH:
                            break
                        after = batch[-1].id
                while True:
                    try:
                        payload = await asyncio.wait_for(queue.get(), self.heartbeat_s)
                    except TimeoutError:
                        yield "keep-alive"
                        continue
                    head = msgspec.json.decode(payload, type=_Head)
                    if head.event_id in sent:
                        continue
                    item = FeedItem(head.event_id, head.type, payload)
                    yield _redacted(item) if redact else item
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump


async def _pump(events: AsyncIterator[bytes], queue: asyncio.Queue[bytes]) -> None:
    """Move a subscriber's events to a queue that can be waited on with a timeout."""
    async for payload in events:
        queue.put_nowait(payload)


def _area_condition(area: Area) -> ColumnElement[bool]:
    """Events on the area's path, or that left it (a transfer away)."""
    if area.level == "province":
        return true()
    here: Any = getattr(CallEventRecord, f"{area.level}_code")
    left: Any = getattr(CallEventRecord, f"from_{area.level}_code")
    return or_(here == area.code, left == area.code)


def _redacted(item: FeedItem) -> FeedItem:
    """The item without the caller's number (for roles that may not see it)."""
    message: dict[str, Any] = msgspec.json.decode(item.data)
    call = message.get("call") or {}
    if call.get("caller_phone"):
        call["caller_phone"] = None
        call["caller_phone_hidden"] = True
    return FeedItem(item.id, item.type, msgspec.json.encode(message))
