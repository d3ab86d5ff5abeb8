"""Stateless routing for other systems: one point, or a batch of up to 100,000.

Behind a bearer token with the ``route`` action (call takers, planners, administrators),
and every decision is in the audit log (:class:`RoutingAudit`). Answers are not limited
to the caller's scope: they name areas, which are not caller data, and a call taker must
learn that a location lies outside their district to hand the call on.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, post
from litestar.openapi import ResponseSpec

from api.auth import SECURITY, Principal
from api.domain.routing.schemas import Route, RouteBatchResult, RoutePoint
from api.domain.routing.services import RoutingAudit, RoutingService, route_batch_job
from api.workers import WorkerPool
from jurisdictions.errors import JurisdictionsError


class RoutingController(Controller):
    path = "/route"
    tags = ["routing"]
    security = SECURITY

    @post("/", operation_id="routePoint", status_code=200)
    async def route_point(self, data: RoutePoint, routing: RoutingService, principal: Principal,
                          routing_audit: RoutingAudit) -> Route:
        """Resolve one location to its station, tehsil, district and region (audited)."""
        principal.require("route")
        try:
            route = routing.route_one(data)
        except JurisdictionsError as exc:  # outside Punjab, nothing near: a decision too
            await routing_audit.point(principal, data, routing.boundary_set, reason=str(exc))
            raise
        await routing_audit.point(principal, data, routing.boundary_set, route=route)
        return route

    @post("/batch", operation_id="routeBatch", status_code=200,
          responses={200: ResponseSpec(RouteBatchResult, description="The batch's routes, in order")})
    async def route_batch(self, request: Request[Any, Any, Any], routing: RoutingService,
                          principal: Principal, routing_audit: RoutingAudit,
                          workers: WorkerPool) -> Response[bytes]:
        """Resolve up to 100,000 points (JSON ``{"points": [...]}`` or GeoJSON Points);
        one audit entry for the batch, with its counts. Decoded, routed and encoded in a
        worker process (stopped if the client goes away): 503 with ``Retry-After`` when
        the workers are busy."""
        principal.require("route")
        workers.admit()  # a full pool refuses before the body (up to megabytes) is read
        raw = await request.body()
        answer = await workers.run("route batch", route_batch_job, raw, routing.boundary_set,
                                   receive=request.receive)
        await routing_audit.batch(principal, answer)
        return Response(answer.body, media_type="application/json")
