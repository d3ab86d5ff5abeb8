"""Stateless routing for other systems: one point, or a batch of up to 100,000.

Behind a bearer token with the ``route`` action (call takers, planners, administrators),
and every decision is in the audit log (:class:`RoutingAudit`). Answers are not limited
to the caller's scope: they name areas, which are not caller data, and a call taker must
learn that a location lies outside their district to hand the call on.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post

from api.auth import SECURITY, Principal
from api.domain.routing.schemas import Route, RouteBatch, RouteBatchResult, RoutePoint
from api.domain.routing.services import RoutingAudit, RoutingService, batch_arrays
from api.errors import BadInputError
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

    @post("/batch", operation_id="routeBatch", status_code=200)
    async def route_batch(self, request: Request[Any, Any, Any], routing: RoutingService,
                          principal: Principal, routing_audit: RoutingAudit) -> RouteBatchResult:
        """Resolve up to 100,000 points (JSON ``{"points": [...]}`` or GeoJSON Points);
        one audit entry for the batch, with its counts."""
        import msgspec  # noqa: PLC0415

        principal.require("route")
        raw = await request.body()
        try:
            generic = msgspec.json.decode(raw)
        except msgspec.DecodeError as exc:
            raise BadInputError(f"malformed JSON: {exc}") from exc
        body: Any = generic
        if isinstance(generic, dict) and "points" in generic:
            try:
                body = msgspec.convert(generic, RouteBatch)
            except msgspec.ValidationError as exc:
                raise BadInputError(f"invalid batch: {exc}") from exc
        lat, lon, radius = batch_arrays(body)
        routes = routing.route_many(lat, lon, radius)
        await routing_audit.batch(principal, routes, routing.boundary_set)
        rejected = sum(1 for r in routes if r.method == "rejected")
        return RouteBatchResult(count=len(routes), rejected=rejected, routes=routes)
