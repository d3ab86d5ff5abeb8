"""``/stats/response``: the response times senior officers review."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, get
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.domain.stats.services import ResponseQuery, ResponseStatsService
from api.types import aware


class StatsController(Controller):
    path = "/stats"
    tags = ["stats"]
    security = SECURITY

    @get("/response", operation_id="responseStats")
    async def response(
        self, *, stats: ResponseStatsService, principal: Principal,
        level: Annotated[str, Parameter(max_length=16)] = "province",
        code: Annotated[str | None, Parameter(max_length=64)] = None,
        since: Annotated[datetime | None, Parameter(query="from")] = None,
        until: Annotated[datetime | None, Parameter()] = None,
        category: Annotated[str | None, Parameter(max_length=64)] = None,
        serious: Annotated[bool | None, Parameter()] = None,
        by: Annotated[str | None, Parameter(max_length=8)] = None,
    ) -> dict[str, Any]:
        """Queue, dispatch, travel, response and on-scene times: count, excluded, mean,
        p50, p90 (minutes), share within SLA, per child area (``by=child``), and an
        hour-of-day × weekday table."""
        query = ResponseQuery(level=level, code=code, since=aware(since, "from"),
                              until=aware(until, "until"), category=category, serious=serious,
                              by=by)
        return await stats.response(query, principal)
