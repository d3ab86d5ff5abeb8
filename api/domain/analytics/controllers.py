"""``/api/v1/heatmaps/*`` and ``/api/v1/hotspots*``: one service call, then encoding.

Scoped by role like every read: a bearer token with ``analytics.read`` (planners and
command roles, not call takers), and the requested area (``level``, ``code``) must lie in
the token's scope, so a DPO asking for the province or another district is 403. The
results are aggregates per cell; the query behind them never selects caller data.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.bodies import BODY_OPT, takes_gzip
from api.domain.analytics.formats import pick_format
from api.domain.analytics.schemas import (
    CategoryParam,
    CellQuery,
    CodeParam,
    FdrParam,
    FormatParam,
    FromParam,
    KParam,
    LevelParam,
    ResParam,
    SeriousParam,
    UntilParam,
)
from api.domain.analytics.services import AnalyticsService, cell_query


async def _answer(service: AnalyticsService, kind: str, query: CellQuery, request: Request[Any, Any, Any],
                  *, fmt: str | None, principal: Principal) -> Response[bytes]:
    """Computed and encoded in a worker process (stopped if the client goes away)."""
    chosen = pick_format(fmt, request.headers.get("accept"))
    query = service.authorized(principal, query, kind)
    body, media_type, headers = await service.encoded(kind, query, chosen, gzip_it=takes_gzip(request),
                                                      receive=request.receive)
    return body.response(media_type, {**headers, "Vary": "Accept"})


class AnalyticsController(Controller):
    """Per-cell heat maps and hot spots of the stored call history."""

    path = "/"
    tags = ["analytics"]
    security = SECURITY
    opt = BODY_OPT  # gzipped in the worker (api.bodies)

    @get("/heatmaps/calls", operation_id="callHeatmap")
    async def calls_heatmap(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                            principal: Principal,
                            level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                            since: FromParam = None, until: UntilParam = None,
                            category: CategoryParam = None, serious: SeriousParam = None,
                            fdr: FdrParam = False, fmt: FormatParam = None) -> Response[bytes]:
        """Calls per H3 cell of the area, zero cells kept."""
        query = cell_query(level=level, code=code, res=res, since=since, until=until,
                           category=category, serious=serious, fdr=fdr)
        return await _answer(analytics, "calls", query, request, fmt=fmt, principal=principal)

    @get("/heatmaps/response", operation_id="responseHeatmap")
    async def response_heatmap(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                               principal: Principal,
                               level: LevelParam = "province", code: CodeParam = None,
                               res: ResParam = 7, since: FromParam = None, until: UntilParam = None,
                               category: CategoryParam = None, serious: SeriousParam = None,
                               fdr: FdrParam = False, fmt: FormatParam = None,
                               min_count: Annotated[int, Parameter(description="Fewer valid "
                                                                   "response times: too few")] = 5,
                               ) -> Response[bytes]:
        """Median and p90 minutes to scene and share over SLA per cell ("too few" below min_count)."""
        query = cell_query(level=level, code=code, res=res, since=since, until=until,
                           category=category, serious=serious, fdr=fdr, min_count=min_count)
        return await _answer(analytics, "response", query, request, fmt=fmt, principal=principal)

    @get("/hotspots", operation_id="hotspots")
    async def hotspots(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                       principal: Principal,
                       level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                       since: FromParam = None, until: UntilParam = None,
                       category: CategoryParam = None, serious: SeriousParam = None,
                       fdr: FdrParam = False, fmt: FormatParam = None, k: KParam = 1) -> Response[bytes]:
        """Getis–Ord Gi* z, p and confidence bin (−3…3) per cell."""
        query = cell_query(level=level, code=code, res=res, since=since, until=until,
                           category=category, serious=serious, fdr=fdr, k=k)
        return await _answer(analytics, "hotspots", query, request, fmt=fmt, principal=principal)

    @get("/hotspots/emerging", operation_id="emergingHotspots")
    async def emerging(self, *, request: Request[Any, Any, Any], analytics: AnalyticsService,
                       principal: Principal,
                       level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                       since: FromParam = None, until: UntilParam = None,
                       category: CategoryParam = None, serious: SeriousParam = None,
                       fdr: FdrParam = True, fmt: FormatParam = None, k: KParam = 1,
                       step: Annotated[str, Parameter(description="week or month")] = "week",
                       ) -> Response[bytes]:
        """Emerging hot-spot class per cell (17 classes), Mann–Kendall trend, final-step Gi*."""
        query = cell_query(level=level, code=code, res=res, since=since, until=until,
                           category=category, serious=serious, fdr=fdr, k=k, step=step)
        return await _answer(analytics, "emerging", query, request, fmt=fmt, principal=principal)
