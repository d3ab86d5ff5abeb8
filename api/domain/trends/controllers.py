"""``GET /api/v1/trends``, ``/trends/profile`` and ``/forecast``: one service call each
(and the dashboard's trends and profile panels from the same calls).

Scoped as the analytics endpoints are (``analytics.read``; the area must lie in the
token's scope, else 403). The answers are the CLI's (``safecity trends``, ``safecity
forecast predict``) field for field; the forecast never leaves without its backtest score
and the baseline's beside it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.domain.analytics.schemas import CategoryParam, CodeParam, LevelParam
from api.domain.analytics.services import parse_time
from api.domain.trends.panel import render_panel, render_profile
from api.domain.trends.schemas import PROFILE_DAYS, ForecastQuery, ProfileQuery, TrendQuery
from api.domain.trends.services import TrendsService, expand_categories
from api.errors import UnavailableError, UnprocessableError

PeriodParam = Annotated[str, Parameter(description="day, week or month (forecast: day or week)")]
UntilParam = Annotated[str | None, Parameter(
    query="until", description="End of the current period (exclusive; ISO 8601, naive is Pakistan "
                               "time). Default: the last complete period")]
RisingParam = Annotated[str | None, Parameter(
    description="Level of the areas ranked for rising counts (default: the next level down)")]
WithinParam = Annotated[str | None, Parameter(
    description="Rank within each area of this level (e.g. region: each region of the province)")]
MethodsParam = Annotated[list[str] | None, Parameter(
    description="Methods to backtest besides the baselines (repeatable): kde, prospective, sepp, "
                "lightgbm; default: all")]


def trend_query(*, level: str, code: str | None, category: list[str] | None, period: str,
                until: str | None, rising_level: str | None, rising_within: str | None = None
                ) -> TrendQuery:
    moment: datetime | None = parse_time(until, "until")
    return TrendQuery(level=level, code=code, categories=expand_categories(category),
                      period=period,  # type: ignore[arg-type]
                      until=moment, rising_level=rising_level, rising_within=rising_within)


class TrendsController(Controller):
    """Trends of an area's calls and the honest forecast of its next day or week."""

    path = "/"
    tags = ["trends"]
    security = SECURITY

    @get("/trends", operation_id="trends")
    async def trends(self, *, request: Request[Any, Any, Any], trends: TrendsService,
                     principal: Principal, level: LevelParam = "province", code: CodeParam = None,
                     category: CategoryParam = None, period: PeriodParam = "week",
                     until: UntilParam = None, rising_level: RisingParam = None,
                     rising_within: WithinParam = None) -> dict[str, Any]:
        """Counts per period, comparisons with the last 4 periods and last year, Mann–Kendall
        and Sen's slope, STL, change points, a summary sentence and the rising areas."""
        query = trend_query(level=level, code=code, category=category, period=period, until=until,
                            rising_level=rising_level, rising_within=rising_within)
        return await trends.trends(principal, query, receive=request.receive)

    @get("/trends/profile", operation_id="trendProfile")
    async def profile(self, *, request: Request[Any, Any, Any], trends: TrendsService,
                      principal: Principal, level: LevelParam = "province", code: CodeParam = None,
                      category: CategoryParam = None,
                      days: Annotated[int, Parameter(description="Days counted (7–366)")] = PROFILE_DAYS,
                      until: UntilParam = None) -> dict[str, Any]:
        """When the calls come: calls per day (with each weekday's mean over the window and
        the latest day against the same weekdays before it) and per local hour × weekday
        over the same days — the dashboard's **Daily calls** and **Calls by hour and weekday**."""
        query = ProfileQuery(level=level, code=code, categories=expand_categories(category), days=days,
                             until=parse_time(until, "until"))
        return await trends.profile(principal, query, receive=request.receive)

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


# ---------------------------------------------------------------------------- dashboard panel

PANEL_RES: dict[str, int] = {"province": 6, "region": 7, "district": 8, "tehsil": 8, "station": 9}
"""H3 resolution of the panel's forecast per area level: fine enough to point at streets in
a district, coarse enough that a province's backtest stays within a request's budget."""


class DashTrendsController(Controller):
    """``/dash/{level}/{code}/trends``: the trends panel of a dashboard area page."""

    path = "/dash"
    tags = ["dashboard"]
    security = SECURITY

    @get("/{level:str}/{code:str}/trends", operation_id="dashTrendsPanel", media_type="text/html")
    async def panel(self, *, level: str, code: str, request: Request[Any, Any, Any], trends: TrendsService,
                    page_principal: Principal) -> Response[str]:
        """Summary sentences, the weekly series (inline SVG), the rising areas and the next
        week's risk with its score and the baseline's."""
        level = level.strip().lower()
        area_code = None if level == "province" else code
        query = TrendQuery(level=level, code=area_code, period="week")
        trends.check_trends(page_principal, query)  # 401/403/404 before any work
        answer, answer_error = await _part(trends.trends(page_principal, query, receive=request.receive))
        forecast, forecast_error = await _part(trends.forecast(page_principal, ForecastQuery(
            level=level, code=area_code, period="week", res=PANEL_RES.get(level, 8))))
        html = render_panel(answer, answer_error, forecast, forecast_error)
        return Response(html, media_type="text/html",
                        headers={"Cache-Control": "private, no-store"})


    @get("/{level:str}/{code:str}/profile", operation_id="dashProfilePanel", media_type="text/html")
    async def profile(self, *, level: str, code: str, request: Request[Any, Any, Any],
                      trends: TrendsService, page_principal: Principal) -> Response[str]:
        """**Daily calls** and **Calls by hour and weekday** of the last 56 complete days
        (inline SVG, the numbers in words and tables): ``/api/v1/trends/profile``'s answer,
        a fragment of its own so it never waits for the trends panel's forecast."""
        level = level.strip().lower()
        query = ProfileQuery(level=level, code=None if level == "province" else code)
        trends.check_profile(page_principal, query)  # 401/403/404 before any work
        answer, error = await _part(trends.profile(page_principal, query, receive=request.receive))
        return Response(render_profile(answer, error), media_type="text/html",
                        headers={"Cache-Control": "private, no-store"})


async def _part(work: Awaitable[dict[str, Any]]) -> tuple[dict[str, Any] | None, str | None]:
    """An answer, or why there is none (no calls, too large, the workers busy): one part of
    the panel failing leaves the other standing."""
    try:
        return await work, None
    except (UnprocessableError, UnavailableError) as exc:
        return None, str(exc)
