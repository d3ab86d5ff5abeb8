"""``/stations/{code}``: the SHO roster, who is on duty, and the station's live feed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, get, put
from litestar.di import Provide
from litestar.openapi.spec import Example
from litestar.params import Parameter
from litestar.response import ServerSentEvent

from api.auth import Principal
from api.domain.calls.deps import (
    provide_areas,
    provide_db_session,
    provide_feed_service,
    provide_principal,
    provide_roster_service,
)
from api.domain.calls.times import plausible
from api.domain.feeds.controllers import LAST_EVENT_ID, sse_response
from api.domain.feeds.services import FeedService
from api.domain.stations.areas import Areas
from api.domain.stations.schemas import OnDutyAnswer, Roster, RosterPut
from api.domain.stations.services import RosterService
from api.errors import BadInputError

StationCode = Annotated[str, Parameter(max_length=64, description="station code",
                                       examples=[Example(value="PK61701-007")])]


class StationController(Controller):
    path = "/stations"
    tags = ["stations"]
    security = [{"BearerToken": []}]
    dependencies = {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "db_session": Provide(provide_db_session),
        "rosters": Provide(provide_roster_service, sync_to_thread=False),
        "areas": Provide(provide_areas, sync_to_thread=False),
        "feeds": Provide(provide_feed_service, sync_to_thread=False),
    }

    @put("/{code:str}/roster", operation_id="putRoster")
    async def put_roster(self, code: StationCode, data: RosterPut, rosters: RosterService, areas: Areas,
                         principal: Principal) -> Roster:
        """Replace the station's SHO roster (shifts must not overlap)."""
        return await rosters.replace(areas.station(code), data, principal, datetime.now(UTC))

    @get("/{code:str}/roster", operation_id="getRoster")
    async def get_roster(self, code: StationCode, rosters: RosterService, areas: Areas,
                         principal: Principal) -> Roster:
        """The station's stored roster."""
        return await rosters.read(areas.station(code), principal)

    @get("/{code:str}/on-duty", operation_id="getOnDuty")
    async def on_duty(
        self, code: StationCode, rosters: RosterService, areas: Areas, principal: Principal,
        at: Annotated[datetime | None, Parameter(description="moment asked about (default now)")] = None,
    ) -> OnDutyAnswer:
        """Who holds the station at ``at``; ``unstaffed`` when nobody does."""
        if at is not None and at.tzinfo is None:
            raise BadInputError("at needs a time zone (e.g. 2026-11-25T22:00:00+05:00)")
        moment = plausible(at, "at") if at is not None else datetime.now(UTC)
        return await rosters.on_duty_answer(areas.station(code), moment, principal)

    @get("/{code:str}/feed", operation_id="stationFeed", media_type="text/event-stream")
    async def feed(self, code: StationCode, areas: Areas, feeds: FeedService, principal: Principal,
                   last_event_id: Annotated[int | None, LAST_EVENT_ID] = None) -> ServerSentEvent:
        """Server-Sent Events of the station's calls; ``Last-Event-ID`` replays what was missed."""
        return await sse_response(feeds, areas.station(code), principal, last_event_id)


__all__: list[Any] = ["StationController"]
