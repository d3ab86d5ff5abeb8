"""``GET /maps/{kind}``: an analytics result as an offline pydeck page."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import Provide
from litestar.params import Parameter

from api.domain.analytics.controllers import (
    CategoryParam,
    CodeParam,
    FromParam,
    LevelParam,
    ResParam,
    SeriousParam,
    UntilParam,
    build_query,
    provide_analytics,
)
from api.domain.analytics.services import AnalyticsService
from api.domain.maps.services import map_page


class MapController(Controller):
    """Map pages for RPOs and CPOs; every asset they load comes from this service."""

    path = "/maps"
    tags = ["maps"]
    dependencies = {"analytics": Provide(provide_analytics, sync_to_thread=False)}

    @get("/{kind:str}", operation_id="mapPage", media_type="text/html")
    async def page(self, *, kind: str, request: Request[Any, Any, Any], analytics: AnalyticsService,
                   level: LevelParam = "province", code: CodeParam = None, res: ResParam = 7,
                   since: FromParam = None, until: UntilParam = None, category: CategoryParam = None,
                   serious: SeriousParam = None,
                   fdr: Annotated[bool | None, Parameter(description="FDR correction (default: on "
                                                         "for emerging, off otherwise)")] = None,
                   k: Annotated[int, Parameter(description="k-ring size")] = 1,
                   step: Annotated[str, Parameter(description="week or month (emerging)")] = "week",
                   min_count: Annotated[int, Parameter(description="response: fewer valid times "
                                                       "is too few")] = 5) -> Response[str]:
        """calls, response, hotspots or emerging as an HTML map (deck.gl, no internet needed)."""
        import anyio  # noqa: PLC0415

        query = build_query(level=level, code=code, res=res, since=since, until=until,
                            category=category, serious=serious,
                            fdr=fdr if fdr is not None else kind == "emerging", k=k, step=step,
                            min_count=min_count)
        result = await analytics.compute(kind, query)
        checked = analytics.check(query)
        area = analytics.area_geometry(checked)
        boundaries = analytics.boundaries
        page = await anyio.to_thread.run_sync(lambda: map_page(result, boundaries, area))
        return Response(page, media_type="text/html; charset=utf-8")
