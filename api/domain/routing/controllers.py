"""Stateless routing for other systems: one point, or a batch of up to 100,000.

Behind a bearer token with the ``route`` action (call takers, planners, administrators),
and every decision is in the audit log (:class:`RoutingAudit`). Answers are not limited
to the caller's scope: they name areas, which are not caller data, and a call taker must
learn that a location lies outside their district to hand the call on.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.exceptions import ClientException, SerializationException, ValidationException
from litestar.openapi import ResponseSpec

from api.auth import SECURITY, Principal
from api.bodies import BODY_OPT, takes_gzip
from api.domain.routing.schemas import MAX_RADIUS_M, Route, RouteBatchResult, RoutePoint
from api.domain.routing.services import (
    RoutingAudit,
    RoutingService,
    route_batch_job,
    strict_error,
)
from api.errors import error_response
from api.hardening import body_errors
from api.workers import WorkerPool
from jurisdictions.errors import JurisdictionsError


def invalid_point(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """A point the framework could not read: 422 naming the field, as the strict decoder
    answers (the same status whether a bound or a type is wrong)."""
    fields = "; ".join(f"{item.get('key', 'body')}: {item.get('message', '')}"
                       for item in exc.extra or [] if isinstance(item, dict))
    return error_response(request, 422, f"invalid point: {fields or exc.detail}",
                          {"extra": exc.extra})


def unreadable_point(request: Request[Any, Any, Any], exc: ClientException) -> Response[Any]:
    """A body the framework could not decode: a number beyond a double (``1e999``) is a
    value out of bounds (422, as any other); anything else stays the framework's 4xx."""
    cause = exc.__cause__
    if isinstance(cause, SerializationException) and isinstance(cause.__cause__,
                                                                msgspec.ValidationError):
        return error_response(request, 422, (
            f"invalid point: {exc.detail} (lat must lie within -90..90, lon within "
            f"-180..180, radius_m within 0..{MAX_RADIUS_M:,.0f} metres)"))
    return error_response(request, exc.status_code, exc.detail,
                          headers=dict(exc.headers) if exc.headers else None)


POINT_ERRORS = body_errors(lambda exc: strict_error(exc, "point"))
"""A point of the wrong shape or out of bounds: the 422 the batch forms give too."""


class RoutingController(Controller):
    path = "/route"
    tags = ["routing"]
    security = SECURITY
    exception_handlers = {ValidationException: invalid_point, ClientException: unreadable_point}

    @post("/", operation_id="routePoint", status_code=200, opt=POINT_ERRORS,
          responses={422: ResponseSpec(None, description="A value out of its bounds or of "
                                       "the wrong type (named), or a point no station can serve")})
    async def route_point(self, data: RoutePoint, routing: RoutingService, principal: Principal,
                          routing_audit: RoutingAudit) -> Route:
        """Resolve one location to its station, tehsil, district and region, codes and
        names (audited). Strict: ``"lat": "31.5"`` is a 422, not a number (the body is
        decoded by :func:`api.hardening.strict_json_body` with :data:`POINT_ERRORS`)."""
        principal.require("route")
        try:
            route = routing.route_one(data)
        except JurisdictionsError as exc:  # outside Punjab, nothing near: a decision too
            await routing_audit.point(principal, data, routing.boundary_set, reason=str(exc))
            raise
        await routing_audit.point(principal, data, routing.boundary_set, route=route)
        return route

    @post("/batch", operation_id="routeBatch", status_code=200, opt=BODY_OPT,
          responses={200: ResponseSpec(
              RouteBatchResult,
              description="A JSON batch's routes, in order (a GeoJSON batch is answered with a "
                          "FeatureCollection: each feature's id, geometry and properties, the "
                          "route's fields added to the properties)"),
                     400: ResponseSpec(None, description="Not JSON, neither form, or empty"),
                     413: ResponseSpec(None, description="More than 100,000 points"),
                     422: ResponseSpec(None, description="A point or feature with a value out "
                                       "of its bounds or of the wrong type (named)"),
                     503: ResponseSpec(None, description="The workers are busy: retry after "
                                       "Retry-After seconds")})
    async def route_batch(self, request: Request[Any, Any, Any], routing: RoutingService,
                          principal: Principal, routing_audit: RoutingAudit,
                          workers: WorkerPool) -> Response[bytes]:
        """Resolve up to 100,000 points (JSON ``{"points": [...]}``, answered in order, or a
        GeoJSON FeatureCollection of Points, answered as a FeatureCollection keeping each
        feature's ``id`` and properties); one audit entry for the batch, with its counts.
        Decoded, routed and encoded in a worker process (stopped if the client goes
        away): 503 with ``Retry-After`` when the workers are busy."""
        principal.require("route")
        workers.admit("route batch")  # a full pool refuses before the body (up to megabytes) is read
        raw = await request.body()
        answer = await workers.run("route batch", route_batch_job, raw, routing.boundary_set,
                                   takes_gzip(request), receive=request.receive)
        await routing_audit.batch(principal, answer)
        return answer.body.response("application/json")
