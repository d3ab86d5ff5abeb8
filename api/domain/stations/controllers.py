"""``/stations/{code}``: the SHO roster and who is on duty (the station's live feed is
:mod:`api.domain.feeds`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from litestar import Controller, get, put
from litestar.params import Parameter

from api.areas import Areas
from api.auth import SECURITY, Principal
from api.domain.stations.schemas import OnDutyAnswer, Roster, RosterPut, StationCode
from api.domain.stations.services import RosterService
from api.types import aware


class StationController(Controller):
    path = "/stations"
    tags = ["stations"]
    security = SECURITY

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
        moment = aware(at, "at") or datetime.now(UTC)
        return await rosters.on_duty_answer(areas.station(code), moment, principal)
