"""Stateless routing for other systems: one point, or a batch of up to 100,000."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import Provide

from api.domain.routing.schemas import Route, RouteBatch, RouteBatchResult, RoutePoint
from api.domain.routing.services import RoutingService, batch_arrays
from api.errors import BadInputError


def provide_routing(request: Request[Any, Any, Any]) -> RoutingService:
    service: RoutingService = request.app.state.routing
    return service


class RoutingController(Controller):
    path = "/route"
    tags = ["routing"]
    dependencies = {"routing": Provide(provide_routing, sync_to_thread=False)}

    @post("/", operation_id="routePoint", status_code=200)
    async def route_point(self, data: RoutePoint, routing: RoutingService) -> Route:
        """Resolve one location to its station, tehsil, district and region."""
        return routing.route_one(data)

    @post("/batch", operation_id="routeBatch", status_code=200)
    async def route_batch(self, request: Request[Any, Any, Any],
                          routing: RoutingService) -> RouteBatchResult:
        """Resolve up to 100,000 points (JSON ``{"points": [...]}`` or GeoJSON Points)."""
        import msgspec  # noqa: PLC0415

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
        rejected = sum(1 for r in routes if r.method == "rejected")
        return RouteBatchResult(count=len(routes), rejected=rejected, routes=routes)
