"""``/stats/response``: the response times senior officers review."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.domain.analytics.schemas import FromParam, UntilParam
from api.domain.analytics.services import parse_time
from api.domain.stats.services import ResponseQuery, ResponseStatsService


class StatsController(Controller):
    path = "/stats"
    tags = ["stats"]
    security = SECURITY

    @get("/response", operation_id="responseStats")
    async def response(
        self, *, stats: ResponseStatsService, principal: Principal,
        level: Annotated[str, Parameter(max_length=16)] = "province",
        code: Annotated[str | None, Parameter(max_length=64)] = None,
        since: FromParam = None,
        until: UntilParam = None,
        category: Annotated[str | None, Parameter(max_length=64)] = None,
        serious: Annotated[bool | None, Parameter()] = None,
        by: Annotated[str | None, Parameter(max_length=8)] = None,
    ) -> dict[str, Any]:
        """Queue, dispatch, travel, response and on-scene times: count, excluded, mean,
        p50, p90 (minutes), share within SLA, per child area (``by=child``), and an
        hour-of-day × weekday table. ``from``/``until`` as ``/hotspots``: a date or an
        RFC 3339 time (naive: Pakistan time)."""
        query = ResponseQuery(level=level, code=code, since=parse_time(since, "from"),
                              until=parse_time(until, "until"), category=category, serious=serious,
                              by=by)
        return await stats.response(query, principal)
