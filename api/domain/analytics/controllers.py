"""``/api/v1/heatmaps/*`` and ``/api/v1/hotspots*``: one service call, then encoding.

Scoped by role like every read: a bearer token with ``analytics.read`` (planners and
command roles, not call takers), and the requested area (``level``, ``code``) must lie in
the token's scope, so a DPO asking for the province or another district is 403. The
results are aggregates per cell; the query behind them never selects caller data.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.params import Parameter

from api.auth import Principal
from api.domain.analytics.formats import encode, pick_format
from api.domain.analytics.schemas import CellQuery
from api.domain.analytics.services import AnalyticsService, parse_categories, parse_time
from api.domain.calls.deps import provide_areas, provide_principal
from api.domain.stations.areas import Areas
from jurisdictions.boundaries import PROVINCE_CODE

SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]

LevelParam = Annotated[str, Parameter(description="province, region, district, tehsil or station")]
CodeParam = Annotated[str | None, Parameter(description="Area code (not for the province)")]
ResParam = Annotated[int, Parameter(description="H3 resolution, 5–10")]
FromParam = Annotated[str | None, Parameter(query="from", description="Start (inclusive), ISO 8601; "
                                            "naive times are Pakistan time")]
UntilParam = Annotated[str | None, Parameter(description="End (exclusive), ISO 8601")]
CategoryParam = Annotated[list[str] | None, Parameter(description="Call categories (repeat or "
                                                      "comma-separate); default: dispatched cases")]
SeriousParam = Annotated[bool | None, Parameter(description="Only serious (true) or non-serious "
                                                "(false) categories")]
FdrParam = Annotated[bool, Parameter(description="Benjamini–Hochberg FDR correction of the bins")]
FormatParam = Annotated[str | None, Parameter(query="format", description="json, geojson, "
                                              "geoparquet or csv (else by Accept)")]


def provide_analytics(request: Request[Any, Any, Any]) -> AnalyticsService:
    service: AnalyticsService = request.app.state.analytics
    return service


def build_query(*, level: str, code: str | None, res: int, since: str | None, until: str | None,
                category: list[str] | None, serious: bool | None, fdr: bool, k: int = 1,
                step: str = "week", min_count: int = 5) -> CellQuery:
    """The query from raw parameters (times and categories parsed; 400 when unreadable)."""
    from api.errors import BadInputError  # noqa: PLC0415

    if step not in ("week", "month"):
        raise BadInputError(f"step must be week or month, not {step!r}")
    return CellQuery(level=level.strip().lower(), code=code.strip() if code else None, res=res,
                     since=parse_time(since, "from"), until=parse_time(until, "until"),
                     categories=parse_categories(category), serious=serious, fdr=fdr, k=k,
                     step=step,  # type: ignore[arg-type]
                     min_count=min_count)


def authorized_query(principal: Principal, query: CellQuery, analytics: AnalyticsService,
                     areas: Areas) -> CellQuery:
    """The checked query, once the principal may read analytics of its area.

    The role is checked first (403 whatever is asked), then the parameters (400/404
    naming the problem), then the scope: the area and its path upwards from the boundary
    set being served must lie inside the token's scope (403 naming both).
    """
    principal.require("analytics.read")
    checked = analytics.check(query)
    code = checked.code if checked.code is not None else PROVINCE_CODE
    principal.require_scope(areas.get(checked.level, code).path, f"{checked.level} {code}")
    return checked


ANALYTICS_DEPENDENCIES = {
    "analytics": Provide(provide_analytics, sync_to_thread=False),
    "areas": Provide(provide_areas, sync_to_thread=False),
}
"""What the analytics and map controllers both need (each adds how it finds the principal)."""


async def _answer(service: AnalyticsService, kind: str, query: CellQuery, request: Request[Any, Any, Any],
                  fmt: str | None, *, principal: Principal, areas: Areas) -> Response[bytes]:
    chosen = pick_format(fmt, request.headers.get("accept"))
    query = authorized_query(principal, query, service, areas)
    result = await service.compute(kind, query)
    body, media_type, headers = encode(result, chosen)
    return Response(body, media_type=media_type, headers={**headers, "Vary": "Accept"})


class AnalyticsController(Controller):
    """Per-cell heat maps and hot spots of the stored call history."""

    path = "/"
    tags = ["analytics"]
    security = SECURITY
    dependencies = {**ANALYTICS_DEPENDENCIES,
                    "principal": Provide(provide_principal, sync_to_thread=False)}

    @get("/heatmaps/calls", operation_id="callHeatmap")
    async def calls_heatmap(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                            principal: Principal, areas: Areas,
                            level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                            since: FromParam = None, until: UntilParam = None,
                            category: CategoryParam = None, serious: SeriousParam = None,
                            fdr: FdrParam = False, fmt: FormatParam = None) -> Response[bytes]:
        """Calls per H3 cell of the area, zero cells kept."""
        query = build_query(level=level, code=code, res=res, since=since, until=until,
                            category=category, serious=serious, fdr=fdr)
        return await _answer(analytics, "calls", query, request, fmt,
                             principal=principal, areas=areas)

    @get("/heatmaps/response", operation_id="responseHeatmap")
    async def response_heatmap(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                               principal: Principal, areas: Areas,
                               level: LevelParam = "province", code: CodeParam = None,
                               res: ResParam = 7, since: FromParam = None, until: UntilParam = None,
                               category: CategoryParam = None, serious: SeriousParam = None,
                               fdr: FdrParam = False, fmt: FormatParam = None,
                               min_count: Annotated[int, Parameter(description="Fewer valid "
                                                                   "response times: too few")] = 5,
                               ) -> Response[bytes]:
        """Median and p90 minutes to scene and share over SLA per cell ("too few" below min_count)."""
        query = build_query(level=level, code=code, res=res, since=since, until=until,
                            category=category, serious=serious, fdr=fdr, min_count=min_count)
        return await _answer(analytics, "response", query, request, fmt,
                             principal=principal, areas=areas)

    @get("/hotspots", operation_id="hotspots")
    async def hotspots(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                       principal: Principal, areas: Areas,
                       level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                       since: FromParam = None, until: UntilParam = None,
                       category: CategoryParam = None, serious: SeriousParam = None,
                       fdr: FdrParam = False, fmt: FormatParam = None,
                       k: Annotated[int, Parameter(description="k-ring size")] = 1) -> Response[bytes]:
        """Getis–Ord Gi* z, p and confidence bin (−3…3) per cell."""
        query = build_query(level=level, code=code, res=res, since=since, until=until,
                            category=category, serious=serious, fdr=fdr, k=k)
        return await _answer(analytics, "hotspots", query, request, fmt,
                             principal=principal, areas=areas)

    @get("/hotspots/emerging", operation_id="emergingHotspots")
    async def emerging(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                       principal: Principal, areas: Areas,
                       level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                       since: FromParam = None, until: UntilParam = None,
                       category: CategoryParam = None, serious: SeriousParam = None,
                       fdr: FdrParam = True, fmt: FormatParam = None,
                       k: Annotated[int, Parameter(description="k-ring size")] = 1,
                       step: Annotated[str, Parameter(description="week or month")] = "week",
                       ) -> Response[bytes]:
        """Emerging hot-spot class per cell (17 classes), Mann–Kendall trend, final-step Gi*."""
        query = build_query(level=level, code=code, res=res, since=since, until=until,
                            category=category, serious=serious, fdr=fdr, k=k, step=step)
        return await _answer(analytics, "emerging", query, request, fmt,
                             principal=principal, areas=areas)
