"""Response-time statistics of an area from the stored calls (``GET /stats/response``).

One query reads the calls routed to the area in the window with the first time of each
lifecycle stage (aggregates over ``call_events``, never a caller's number); the numbers
come from :func:`geo.response.response_report`, so the API, the CLI and a notebook on a
frame agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import pandas as pd
from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import LEVELS, PARENT_LEVEL, Areas
from api.auth import Principal
from api.db.call_models import CallEventRecord, CallRecord
from api.errors import BadInputError, NotFoundError, UnprocessableError
from api.shipped import load_categories
from geo.response import SlaTable, call_sla_minutes, response_report, urban_tehsils
from jurisdictions.boundaries import PROVINCE_CODE, BoundarySet

CHILD_LEVEL = {parent: child for child, parent in PARENT_LEVEL.items()}
STAGE_EVENTS = ("acknowledged", "dispatched", "on_scene", "closed")


@dataclass(frozen=True)
class ResponseQuery:
    level: str = "province"
    code: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    serious: bool | None = None
    by: str | None = None
    """``child``: statistics per child area too."""


def stages_statement(query: ResponseQuery) -> Select[Any]:
    """Calls of the area and window, each with the first time of every stage."""
    event = CallEventRecord
    stages = [func.min(event.at).filter(event.type == kind).label(f"{kind}_at")
              for kind in STAGE_EVENTS]
    columns: list[Any] = [CallRecord.id, CallRecord.received_at, CallRecord.category,
                          CallRecord.station_code, CallRecord.tehsil_code,
                          CallRecord.district_code, CallRecord.region_code, *stages]
    statement = (select(*columns)
                 .outerjoin(event, and_(event.call_id == CallRecord.id,
                                        event.type.in_(STAGE_EVENTS)))
                 .group_by(CallRecord.id))
    if query.level != "province":
        statement = statement.where(getattr(CallRecord, f"{query.level}_code") == query.code)
    if query.since is not None:
        statement = statement.where(CallRecord.received_at >= query.since)
    if query.until is not None:
        statement = statement.where(CallRecord.received_at < query.until)
    if query.category is not None:
        statement = statement.where(CallRecord.category == query.category)
    if query.serious is not None:
        statement = statement.where(CallRecord.serious.is_(query.serious))
    return statement


class ResponseStatsService:
    """Checks a request, reads the calls, and computes the review."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 boundaries: Callable[[], BoundarySet], areas: Callable[[], Areas],
                 sla: SlaTable | None = None) -> None:
        self.sessions = sessions
        self.boundaries = boundaries
        self.areas = areas
        table = load_categories()
        self.sla = sla or SlaTable.from_categories(table)
        self.categories = set(table["code"].astype(str))

    def check(self, query: ResponseQuery, principal: Principal) -> dict[str, Any]:
        """The area (level, code, name) after the checks; 4xx naming the first problem."""
        principal.require("stats.read")
        if query.level not in LEVELS:
            raise BadInputError(f"level must be one of {', '.join(LEVELS)}")
        if query.by not in (None, "child"):
            raise BadInputError("by must be 'child' (or absent)")
        if query.by == "child" and query.level == "station":
            raise BadInputError("a station has no child areas")
        if query.since and query.until and query.since >= query.until:
            raise BadInputError("from must be before until")
        if query.category is not None and query.category not in self.categories:
            raise BadInputError(f"unknown category {query.category!r}")
        if query.level == "province":
            principal.require_scope({"province": PROVINCE_CODE}, "the province")
            return {"level": "province", "code": PROVINCE_CODE, "name": "Punjab"}
        if not query.code:
            raise BadInputError(f"level {query.level} needs a code")
        try:
            area = self.areas().get(query.level, query.code)
        except NotFoundError as exc:
            raise UnprocessableError(f"no {query.level} with code {query.code!r}") from exc
        principal.require_scope(area.path, f"{query.level} {query.code}")
        return {"level": area.level, "code": area.code, "name": area.name}

    async def frame(self, query: ResponseQuery) -> pd.DataFrame:
        async with self.sessions() as session:
            result = await session.execute(stages_statement(query))
            frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
        for column in ("received_at", *(f"{k}_at" for k in STAGE_EVENTS)):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame

    async def response(self, query: ResponseQuery, principal: Principal) -> dict[str, Any]:
        area = self.check(query, principal)
        frame = await self.frame(query)
        report = await anyio.to_thread.run_sync(lambda: self.report(frame, query))
        return {"area": area, "from": query.since, "until": query.until,
                "category": query.category, "serious": query.serious, **report}

    def report(self, frame: pd.DataFrame, query: ResponseQuery) -> dict[str, Any]:
        """:func:`geo.response.response_report` with SLAs and child names filled in."""
        boundaries = self.boundaries()
        limits = call_sla_minutes(frame, self.sla, urban_tehsils(boundaries.layer("tehsil")))
        child = CHILD_LEVEL.get(query.level) if query.by == "child" else None
        report = response_report(frame, limits, frame[f"{child}_code"] if child else None)
        if child is not None:
            areas = self.areas()
            report["children"] = [
                {"level": child, "code": code, "name": areas.name(child, code), "intervals": stats}
                for code, stats in report["children"].items()]
        return report
