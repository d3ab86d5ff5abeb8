"""Routing as the API sees it: the domain router plus input shaping, no HTTP."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from api.audit import AuditService
from api.auth import Principal
from api.domain.routing.schemas import MAX_BATCH, Route, RouteBatch, RouteBatchResult, RoutePoint
from api.errors import BadInputError
from api.workers import worker_state
from jurisdictions.router import Router


class RoutingService:
    """Wraps a :class:`Router` (swapped in place when a new boundary set loads)."""

    def __init__(self, router: Router) -> None:
        self.router = router
        stations = router.index.stations
        flags = stations["stand_in"] if "stand_in" in stations else pd.Series(False, stations.index)
        self._stand_in = dict(zip(stations["code"].tolist(), flags.astype(bool).tolist(),
                                  strict=True))

    @property
    def boundary_set(self) -> str:
        """Version of the boundary set the router answers from (recorded with each decision)."""
        return str(self.router.index.version)

    def stand_in(self, station_code: str | None) -> bool | None:
        """Whether a station is a stand-in (``None`` when there is no station)."""
        return self._stand_in.get(station_code) if station_code else None

    def route_one(self, point: RoutePoint) -> Route:
        """Route one point; domain errors propagate (mapped to 4xx in one place)."""
        answer = self.router.resolve(point.lat, point.lon, point.radius_m)
        return Route(
            station_code=answer.station_code,
            tehsil_code=answer.tehsil_code,
            district_code=answer.district_code,
            region_code=answer.region_code,
            method=answer.method,
            out_of_coverage=answer.out_of_coverage,
            distance_m=answer.distance_m,
            stand_in=self.stand_in(answer.station_code),
        )

    def route_many(self, lat: np.ndarray, lon: np.ndarray, radius: np.ndarray) -> list[Route]:
        """Route a batch; rejected rows carry their reason instead of failing the batch."""
        frame = self.router.resolve_many(lat, lon, radius)
        columns = [frame[c].tolist() for c in ("station_code", "tehsil_code", "district_code",
                                                 "region_code", "method", "out_of_coverage",
                                                 "distance_m", "reason")]
        routes: list[Route] = []
        for station, tehsil, district, region, method, out, distance, reason in zip(
            *columns, strict=True
        ):
            routes.append(Route(
                station_code=station or None,
                tehsil_code=tehsil or None,
                district_code=district or None,
                region_code=region or None,
                method=method,
                out_of_coverage=bool(out),
                distance_m=None if math.isnan(distance) else float(distance),
                reason=reason or None,
                stand_in=self.stand_in(station),
            ))
        return routes


class RoutingAudit:
    """Puts every routing decision of the stateless endpoints in the audit log.

    One point is one ``route`` entry (as a call's routing is, without a call id), a
    rejection included; a batch is one ``route.batch`` entry with its counts, not one per
    point. Each entry commits in its own transaction before the answer is sent, so a
    decision that cannot be recorded is not given (a database outage is a 503).
    """

    def __init__(self, audit: AuditService) -> None:
        self.audit = audit

    async def point(self, principal: Principal, point: RoutePoint, boundary_set: str, *,
                    route: Route | None = None, reason: str | None = None) -> None:
        detail: dict[str, Any] = {"lat": point.lat, "lon": point.lon, "radius_m": point.radius_m,
                                  "boundary_set": boundary_set}
        if route is not None:
            detail.update(station=route.station_code, method=route.method,
                          out_of_coverage=route.out_of_coverage, distance_m=route.distance_m)
        else:
            detail.update(station=None, method="rejected", reason=reason)
        await self._record(principal, "route", detail)

    async def batch(self, principal: Principal, answer: BatchAnswer) -> None:
        detail = {"count": answer.count, "rejected": answer.rejected,
                  "out_of_coverage": answer.out_of_coverage, "boundary_set": answer.boundary_set}
        await self._record(principal, "route.batch", detail)

    async def _record(self, principal: Principal, action: str, detail: dict[str, Any]) -> None:
        async with self.audit.repository.session.begin():
            await self.audit.record(principal, action, datetime.now(UTC), detail=detail)


@dataclass(frozen=True)
class BatchAnswer:
    """A routed batch as it leaves the worker: the encoded :class:`RouteBatchResult` and
    the counts the audit entry records."""

    body: bytes
    count: int
    rejected: int
    out_of_coverage: int
    boundary_set: str


def decode_batch(raw: bytes) -> Any:
    """A batch body: :class:`RouteBatch` for JSON ``{"points": [...]}``, else the decoded
    JSON (a GeoJSON FeatureCollection is read by :func:`batch_arrays`); 400 when malformed."""
    import msgspec  # noqa: PLC0415

    try:
        generic = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadInputError(f"malformed JSON: {exc}") from exc
    if isinstance(generic, dict) and "points" in generic:
        try:
            return msgspec.convert(generic, RouteBatch)
        except msgspec.ValidationError as exc:
            raise BadInputError(f"invalid batch: {exc}") from exc
    return generic


def route_batch_job(raw: bytes, version: str) -> BatchAnswer:
    """Worker job: decode, check and route one batch body on the worker's router of
    boundary set ``version`` (or a newer one), and encode the answer there."""
    import msgspec  # noqa: PLC0415

    state = worker_state()
    router = state.router(version)
    routing = state.memo(("routing", str(router.index.version)), lambda: RoutingService(router))
    lat, lon, radius = batch_arrays(decode_batch(raw))
    routes = routing.route_many(lat, lon, radius)
    rejected = sum(1 for r in routes if r.method == "rejected")
    return BatchAnswer(
        body=msgspec.json.encode(RouteBatchResult(count=len(routes), rejected=rejected,
                                                  routes=routes)),
        count=len(routes), rejected=rejected,
        out_of_coverage=sum(1 for r in routes if r.out_of_coverage),
        boundary_set=routing.boundary_set)


def batch_arrays(body: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``lat, lon, radius`` arrays from a :class:`RouteBatch` or a GeoJSON FeatureCollection."""
    if isinstance(body, RouteBatch):
        points = body.points
        _check_size(len(points))
        lat = np.fromiter((p.lat for p in points), float, len(points))
        lon = np.fromiter((p.lon for p in points), float, len(points))
        radius = np.fromiter((p.radius_m or 0.0 for p in points), float, len(points))
        return lat, lon, radius
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        features = body.get("features")
        if not isinstance(features, list):
            raise BadInputError("a FeatureCollection needs a 'features' list")
        _check_size(len(features))
        lat = np.empty(len(features))
        lon = np.empty(len(features))
        radius = np.zeros(len(features))
        for i, feature in enumerate(features):
            geometry = (feature or {}).get("geometry") or {}
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                raise BadInputError(f"feature {i}: expected a Point geometry [lon, lat]")
            try:
                lon[i], lat[i] = float(coords[0]), float(coords[1])
                props = feature.get("properties") or {}
                radius[i] = float(props.get("radius_m") or 0.0)
            except (TypeError, ValueError) as exc:
                raise BadInputError(f"feature {i}: coordinates must be numbers") from exc
        return lat, lon, radius
    raise BadInputError("expected {\"points\": [{\"lat\":…, \"lon\":…}]} or a GeoJSON "
                        "FeatureCollection of Points")


def _check_size(n: int) -> None:
    if n == 0:
        raise BadInputError("the batch is empty")
    if n > MAX_BATCH:
        raise BadInputError(f"a batch holds at most {MAX_BATCH:,} points; got {n:,}", status=413)
