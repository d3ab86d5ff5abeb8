"""``/api/v1/plans``: start an expansion plan, follow it, read its sites (its map page is
``/maps/plans/{id}``, :mod:`api.domain.maps`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import Parameter

from api.auth import SECURITY, Principal
from api.domain.plans.schemas import Plan, PlanAccepted, PlanCreate, PlanPage
from api.domain.plans.services import DEFAULT_PAGE, MAX_PAGE, PlanService

GEOJSON = "application/geo+json"


class PlanController(Controller):
    """Safe City expansion plans (roles planner, ig, rpo, dpo, cpo, admin; within scope)."""

    path = "/plans"
    tags = ["plans"]
    security = SECURITY

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
