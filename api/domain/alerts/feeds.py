"""The alert feed of one command level: what was missed (from ``alert_events``), then live.

Same stream as the call feeds (:class:`api.domain.feeds.services.FeedService`: subscribe,
replay from the database after ``Last-Event-ID``, then live, nothing lost in between),
on the ``alerts:<level>:<code>`` channels. A level's feed carries the alerts of its area
addressed to it or above: a district sees an unacknowledged call once it is escalated
to the district, a station sees every alert of the station at once.
"""

from __future__ import annotations

from sqlalchemy import select

from api.areas import Area
from api.auth import Action
from api.db.alert_models import AlertEventRecord, AlertRecord
from api.domain.alerts.engine import alert_channel, envelope
from api.domain.alerts.rules import COMMAND_LEVELS
from api.domain.feeds.services import REPLAY_BATCH, FeedService
from api.streams import FeedItem


class AlertFeedService(FeedService):
    action: Action = "alert.read"
    redacts = False  # alerts carry call ids and summaries, never a caller's number

    def channel(self, area: Area) -> str:
        return alert_channel(area.level, area.code)

    async def replay(self, area: Area, after_id: int, limit: int = REPLAY_BATCH) -> list[FeedItem]:
        levels = COMMAND_LEVELS[COMMAND_LEVELS.index(area.level):]
        statement = (select(AlertEventRecord)
                     .join(AlertRecord, AlertRecord.id == AlertEventRecord.alert_id)
                     .where(AlertEventRecord.id > after_id, AlertEventRecord.level.in_(levels))
                     .order_by(AlertEventRecord.id).limit(limit))
        if area.level != "province":
            statement = statement.where(getattr(AlertRecord, f"{area.level}_code") == area.code)
        async with self.sessions() as session:
            rows = (await session.scalars(statement)).all()
        return [FeedItem(r.id, f"alert.{r.type}", envelope(self._encoder, {
            "id": r.id, "alert_id": r.alert_id, "type": r.type, "at": r.at, "state": r.state,
            "level": r.level, "code": r.code, "actor": r.actor, "note": r.note},
            r.snapshot.encode())) for r in rows]
