"""``/api/v1/plans``: start an expansion plan, follow it, read its sites; ``/maps/plans/{id}``."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import Provide
from litestar.params import Parameter

from api.auth import Principal
from api.domain.calls.deps import provide_principal
from api.domain.maps.controllers import MapToken, provide_map_principal, token_to_cookie
from api.domain.plans.deps import provide_plans
from api.domain.plans.schemas import Plan, PlanAccepted, PlanCreate, PlanPage
from api.domain.plans.services import DEFAULT_PAGE, MAX_PAGE, PlanService

SECURITY: list[dict[str, list[str]]] = [{"BearerToken": []}]
GEOJSON = "application/geo+json"


class PlanController(Controller):
    """Safe City expansion plans (roles planner, ig, rpo, dpo, cpo, admin; within scope)."""

    path = "/plans"
    tags = ["plans"]
    security = SECURITY
    dependencies = {
        "principal": Provide(provide_principal, sync_to_thread=False),
        "plans": Provide(provide_plans, sync_to_thread=False),
    }

    @post("/", operation_id="createPlan", status_code=202,
          responses_description="202: queued; poll the Location until state is succeeded or failed")
    async def create_plan(self, data: PlanCreate, plans: PlanService,
                          principal: Principal) -> Response[PlanAccepted]:
        """Start a tehsil's camera-site plan (MCLP or LSCP) as a background job."""
        accepted = await plans.create(data, principal)
        return Response(accepted, status_code=202, headers={"Location": accepted.links.self})

    @get("/", operation_id="listPlans")
    async def list_plans(
        self,
        *,
        plans: PlanService,
        principal: Principal,
        tehsil: Annotated[str | None, Parameter(max_length=64)] = None,
        district: Annotated[str | None, Parameter(max_length=64)] = None,
        region: Annotated[str | None, Parameter(max_length=64)] = None,
        plan_state: Annotated[str | None, Parameter(query="state", max_length=16, description=(
            "queued, running, succeeded or failed"))] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
    ) -> PlanPage:
        """Plans in the caller's scope, newest first, one page at a time."""
        return await plans.list_plans(principal, tehsil=tehsil, district=district,
                                      region=region, state=plan_state, limit=limit,
                                      cursor=cursor)

    @get("/{plan_id:uuid}", operation_id="getPlan")
    async def get_plan(self, plan_id: UUID, plans: PlanService, principal: Principal) -> Plan:
        """State, stage, progress and timings; the summary once it succeeded, the error if it failed."""
        return await plans.get(plan_id, principal)

    @get("/{plan_id:uuid}/sites", operation_id="getPlanSites", media_type=GEOJSON)
    async def get_sites(self, plan_id: UUID, plans: PlanService,
                        principal: Principal) -> Response[bytes]:
        """The plan's sites (existing ones marked) with the demand each covers, as GeoJSON (409
        until the plan succeeded)."""
        collection = await plans.sites(plan_id, principal)
        return Response(msgspec.json.encode(collection), media_type=GEOJSON)


class PlanMapController(Controller):
    """A plan's map page; a browser link carries its token as ``?token=`` (or
    ``?access_token=``), swapped for the ``/maps`` cookie as on the analytics map pages."""

    path = "/maps/plans"
    tags = ["maps"]
    security = SECURITY
    dependencies = {
        "principal": Provide(provide_map_principal, sync_to_thread=False),
        "plans": Provide(provide_plans, sync_to_thread=False),
    }

    @get("/{plan_id:uuid}", operation_id="planMapPage", media_type="text/html")
    async def page(self, plan_id: UUID, request: Request[Any, Any, Any], plans: PlanService,
                   principal: Principal,
                   token: MapToken = None,
                   ) -> Response[Any]:
        """Demand cells by coverage, coverage disks and sites (deck.gl, no internet needed)."""
        import anyio  # noqa: PLC0415

        from api.domain.maps.plans import plan_map_page  # noqa: PLC0415

        redirect = token_to_cookie(request)
        if redirect is not None:
            return redirect
        row, sites, demand = await plans.map_data(plan_id, principal)
        boundaries = plans.boundaries

        def build() -> Any:
            return plan_map_page(row, sites, demand, boundaries)

        page = await anyio.to_thread.run_sync(build)
        return Response(page, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "private, no-store"})
