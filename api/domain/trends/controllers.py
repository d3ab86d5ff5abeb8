"""``GET /api/v1/trends`` and ``GET /api/v1/forecast``: one service call each.

Scoped as the analytics endpoints are (``analytics.read``; the area must lie in the
token's scope, else 403). The answers are the CLI's (``safecity trends``, ``safecity
forecast predict``) field for field; the forecast never leaves without its backtest score
and the baseline's beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.domain.analytics.schemas import CategoryParam, CodeParam, LevelParam
from api.domain.analytics.services import parse_time
from api.domain.trends.schemas import ForecastQuery, TrendQuery
from api.domain.trends.services import TrendsService, expand_categories

PeriodParam = Annotated[str, Parameter(description="day, week or month (forecast: day or week)")]
UntilParam = Annotated[str | None, Parameter(
    query="until", description="End of the current period (exclusive; ISO 8601, naive is Pakistan "
                               "time). Default: the last complete period")]
RisingParam = Annotated[str | None, Parameter(
    description="Level of the areas ranked for rising counts (default: the next level down)")]
MethodsParam = Annotated[list[str] | None, Parameter(
    description="Methods to backtest besides the baselines (repeatable): kde, prospective, sepp, "
                "lightgbm; default: all")]


def trend_query(*, level: str, code: str | None, category: list[str] | None, period: str,
                until: str | None, rising_level: str | None) -> TrendQuery:
    moment: datetime | None = parse_time(until, "until")
    return TrendQuery(level=level, code=code, categories=expand_categories(category),
                      period=period,  # type: ignore[arg-type]
                      until=moment, rising_level=rising_level)


class TrendsController(Controller):
    """Trends of an area's calls and the honest forecast of its next day or week."""

    path = "/"
    tags = ["trends"]
    security = SECURITY

    @get("/trends", operation_id="trends")
    async def trends(self, *, request: Request[Any, Any, Any], trends: TrendsService,
                     principal: Principal, level: LevelParam = "province", code: CodeParam = None,
                     category: CategoryParam = None, period: PeriodParam = "week",
                     until: UntilParam = None, rising_level: RisingParam = None) -> dict[str, Any]:
        """Counts per period, comparisons with the last 4 periods and last year, Mann–Kendall
        and Sen's slope, STL, change points, a summary sentence and the rising areas."""
        query = trend_query(level=level, code=code, category=category, period=period, until=until,
                            rising_level=rising_level)
        return await trends.trends(principal, query, receive=request.receive)

    @get("/forecast", operation_id="forecast")
    async def forecast(self, *, trends: TrendsService, principal: Principal,
                       level: LevelParam = "province", code: CodeParam = None,
                       category: CategoryParam = None, period: PeriodParam = "week",
                       res: Annotated[int, Parameter(description="H3 resolution (5–10)")] = 8,
                       origins: Annotated[int, Parameter(description="Backtest origins")] = 8,
                       methods: MethodsParam = None) -> dict[str, Any]:
        """Risk per cell for the next day or week by the method that backtested best here,
        with its score and the baseline's (or the baseline, saying none beat it)."""
        query = ForecastQuery(level=level, code=code, categories=expand_categories(category),
                              period=period,  # type: ignore[arg-type]
                              res=res, origins=origins,
                              methods=tuple(m.strip() for v in methods for m in v.split(",") if m.strip())
                              if methods else None)
        return await trends.forecast(principal, query)
