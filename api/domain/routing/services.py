"""Routing as the API sees it: the domain router plus input shaping, no HTTP."""

from __future__ import annotations

import gc
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from api.audit import AuditService
from api.auth import Principal
from api.bodies import Body
from api.domain.routing.schemas import (
    MAX_BATCH,
    MAX_RADIUS_M,
    FeatureCollection,
    Route,
    RouteBatch,
    RouteBatchResult,
    RoutedFeatureCollection,
    RoutePoint,
)
from api.errors import BadInputError, UnprocessableError
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
        outside = getattr(answer, "outside_punjab", None)
        return Route(
            station_code=answer.station_code, station_name=answer.station_name or None,
            tehsil_code=answer.tehsil_code, tehsil_name=answer.tehsil_name or None,
            district_code=answer.district_code, district_name=answer.district_name or None,
            region_code=answer.region_code, region_name=answer.region_name or None,
            method=answer.method,
            out_of_coverage=answer.out_of_coverage,
            distance_m=answer.distance_m,
            stand_in=self.stand_in(answer.station_code),
            outside_punjab=outside, transfer_suggested=outside is not None,
        )

    def route_many(self, lat: np.ndarray, lon: np.ndarray, radius: np.ndarray) -> list[Route]:
        """Route a batch; rejected rows carry their reason instead of failing the batch."""
        frame = self.router.resolve_many(lat, lon, radius)
        names = ("station_code", "station_name", "tehsil_code", "tehsil_name", "district_code",
                 "district_name", "region_code", "region_name", "method", "out_of_coverage",
                 "distance_m", "reason")
        columns = [frame[c].tolist() for c in names]
        outside = (frame["outside_punjab"].tolist() if "outside_punjab" in frame
                   else [""] * len(frame))
        routes: list[Route] = []
        for (station, station_name, tehsil, tehsil_name, district, district_name, region,
             region_name, method, out, distance, reason, beyond) in zip(
                *columns, outside, strict=True):
            routes.append(Route(
                station_code=station or None, station_name=station_name or None,
                tehsil_code=tehsil or None, tehsil_name=tehsil_name or None,
                district_code=district or None, district_name=district_name or None,
                region_code=region or None, region_name=region_name or None,
                method=method,
                out_of_coverage=bool(out),
                distance_m=None if math.isnan(distance) else float(distance),
                reason=reason or None,
                stand_in=self.stand_in(station),
                outside_punjab=beyond or None,
                transfer_suggested=bool(beyond),
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
                          out_of_coverage=route.out_of_coverage, distance_m=route.distance_m,
                          outside_punjab=route.outside_punjab)
        else:
            detail.update(station=None, method="rejected", reason=reason)
        await self._record(principal, "route", detail)

    async def batch(self, principal: Principal, answer: BatchAnswer) -> None:
        detail = {"count": answer.count, "rejected": answer.rejected,
                  "out_of_coverage": answer.out_of_coverage,
                  "outside_punjab": answer.outside_punjab, "boundary_set": answer.boundary_set}
        await self._record(principal, "route.batch", detail)

    async def _record(self, principal: Principal, action: str, detail: dict[str, Any]) -> None:
        async with self.audit.repository.session.begin():
            await self.audit.record(principal, action, datetime.now(UTC), detail=detail)


@dataclass(frozen=True)
class BatchAnswer:
    """A routed batch as it leaves the worker: the encoded :class:`RouteBatchResult`
    (gzipped there when the client takes gzip) and the counts the audit entry records."""

    body: Body
    count: int
    rejected: int
    out_of_coverage: int
    boundary_set: str
    outside_punjab: int = 0
    """Points in another province or territory (answered on a fallback station)."""


def strict_error(exc: msgspec.ValidationError, what: str) -> UnprocessableError:
    """A 422 naming the field (``points[3].radius_m``, ``feature 2``) and the bound broken."""
    message = str(exc)
    text, _sep, where = message.rpartition(" - at `")
    where = where.rstrip("`")
    if not _sep:
        text, where = message, "$"
    field = where.removeprefix("$").lstrip(".") or "the body"
    feature = _FEATURE_PATH.match(field)
    if feature:
        field = f"feature {feature.group(1)}" + (f" ({feature.group(2).lstrip('.')})"
                                                 if feature.group(2) else "")
    hint = (f" (radius_m must be a number from 0 to {MAX_RADIUS_M:,.0f} metres)"
            if field.endswith(("radius_m)", "radius_m")) else "")
    if not hint and text.startswith("Number out of range"):  # inside properties: no key
        hint = (f" (lat must lie within -90..90, lon within -180..180, radius_m within "
                f"0..{MAX_RADIUS_M:,.0f} metres)")
    return UnprocessableError(f"invalid {what}: {field}: {text}{hint}")


_FEATURE_PATH = re.compile(r"^features\[(\d+)\](.*)$")


def decode_point(raw: bytes) -> RoutePoint:
    """One point, decoded strictly: a number sent as a string is a 422, as is any value
    out of its bounds (naming the field)."""
    try:
        return msgspec.json.decode(raw, type=RoutePoint)
    except msgspec.ValidationError as exc:
        raise strict_error(exc, "point") from exc
    except msgspec.DecodeError as exc:
        raise BadInputError(f"malformed JSON: {exc}") from exc


class _Form(msgspec.Struct):
    """Which form a batch body has, read without building its points (``Raw`` slices)."""

    type: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    points: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


_FORM = msgspec.json.Decoder(_Form)
_BATCH = msgspec.json.Decoder(RouteBatch)
_FEATURES = msgspec.json.Decoder(FeatureCollection)


def decode_batch(raw: bytes) -> RouteBatch | FeatureCollection:
    """A batch body: JSON ``{"points": [...]}`` or a GeoJSON FeatureCollection of Points,
    both decoded strictly into their types in one pass (no generic objects first); 400
    when not JSON or neither form, 422 naming the point or feature otherwise."""
    neither = BadInputError("expected {\"points\": [{\"lat\":…, \"lon\":…}]} or a GeoJSON "
                            "FeatureCollection of Points")
    try:
        form = _FORM.decode(raw)
    except msgspec.ValidationError as exc:  # JSON, but not an object
        raise neither from exc
    except msgspec.DecodeError as exc:
        raise BadInputError(f"malformed JSON: {exc}") from exc
    if len(form.points):  # present (an empty Raw: absent)
        decoder: msgspec.json.Decoder[Any] = _BATCH
        what = "batch"
    elif bytes(form.type).strip() == b'"FeatureCollection"':
        decoder, what = _FEATURES, "FeatureCollection"
    else:
        raise neither
    try:
        body: RouteBatch | FeatureCollection = decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise strict_error(exc, what) from exc
    return body


def route_batch_job(raw: bytes, version: str, gzip_it: bool) -> BatchAnswer:
    """Worker job: decode, check and route one batch body on the worker's router of
    boundary set ``version`` (or a newer one), and encode the answer there: a JSON batch
    gets :class:`RouteBatchResult`, a GeoJSON one :class:`RoutedFeatureCollection`
    (gzipped when ``gzip_it``: 15 MB of JSON is not gzipped on the loop taking calls)."""
    state = worker_state()
    router = state.router(version)
    routing = state.memo(("routing", str(router.index.version)), lambda: RoutingService(router))
    with _no_cycle_collection():
        body = decode_batch(raw)
        lat, lon, radius = batch_arrays(body)
        routes = routing.route_many(lat, lon, radius)
        rejected = sum(1 for r in routes if r.method == "rejected")
        encoded = (msgspec.json.encode(routed_features(body, routes, rejected))
                   if isinstance(body, FeatureCollection)
                   else msgspec.json.encode(RouteBatchResult(count=len(routes),
                                                             rejected=rejected, routes=routes)))
    return BatchAnswer(
        body=Body.made(encoded, gzip_it), count=len(routes), rejected=rejected,
        out_of_coverage=sum(1 for r in routes if r.out_of_coverage),
        boundary_set=routing.boundary_set,
        outside_punjab=sum(1 for r in routes if r.transfer_suggested))


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The cycle collector off for one batch: 100,000 features are some 500,000 containers,
    which set off full collections again and again (measured: decoding 100,000 features
    took 0.6 s without them, 1.5-3 s with); none of them form cycles, refcounts free them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def routed_features(body: FeatureCollection, routes: list[Route], rejected: int
                    ) -> RoutedFeatureCollection:
    """Each feature back as sent (``id``, geometry, properties) with its route's fields
    added to its properties, in the order sent."""
    answers: list[dict[str, Any]] = msgspec.to_builtins(routes)
    features: list[dict[str, Any]] = []
    for feature, answer in zip(body.features, answers, strict=True):
        out: dict[str, Any] = {"type": "Feature"}
        if feature.id is not msgspec.UNSET:
            out["id"] = feature.id
        out["geometry"] = feature.geometry
        out["properties"] = {**feature.properties, **answer} if feature.properties else answer
        features.append(out)
    return RoutedFeatureCollection(type="FeatureCollection", count=len(routes),
                                   rejected=rejected, features=features)


def batch_arrays(body: RouteBatch | FeatureCollection
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``lat, lon, radius`` arrays of a decoded batch, every bound checked as for one point
    (422 naming the first point or feature that breaks one)."""
    if isinstance(body, RouteBatch):
        points = body.points
        _check_size(len(points))
        lat = np.fromiter((p.lat for p in points), float, len(points))
        lon = np.fromiter((p.lon for p in points), float, len(points))
        radius = np.fromiter((p.radius_m or 0.0 for p in points), float, len(points))
        return lat, lon, radius
    features = body.features
    n = len(features)
    _check_size(n)
    coords = [f.geometry.coordinates for f in features]
    short = [i for i, c in enumerate(coords) if not 2 <= len(c) <= 3]
    if short:
        raise UnprocessableError(f"invalid FeatureCollection: feature {short[0]}: a Point's "
                                 "coordinates are [lon, lat] (or [lon, lat, height])")
    lon = np.fromiter((c[0] for c in coords), float, n)
    lat = np.fromiter((c[1] for c in coords), float, n)
    raw_radius = [(f.properties or {}).get("radius_m") for f in features]
    typed = [i for i, r in enumerate(raw_radius)
             if r is not None and (isinstance(r, bool) or not isinstance(r, int | float))]
    if typed:
        raise UnprocessableError(
            f"invalid FeatureCollection: feature {typed[0]} (properties.radius_m): expected a "
            f"number, got {type(raw_radius[typed[0]]).__name__} {raw_radius[typed[0]]!r} "
            f"(radius_m must be a number from 0 to {MAX_RADIUS_M:,.0f} metres)")
    radius = np.fromiter((0.0 if r is None else r for r in raw_radius), float, n)
    for values, low, high, name in ((lon, -180.0, 180.0, "longitude (coordinates[0])"),
                                    (lat, -90.0, 90.0, "latitude (coordinates[1])"),
                                    (radius, 0.0, MAX_RADIUS_M, "properties.radius_m")):
        bad = np.flatnonzero(~((values >= low) & (values <= high)))  # NaN is out too
        if bad.size:
            i = int(bad[0])
            raise UnprocessableError(
                f"invalid FeatureCollection: feature {i} ({name}): {values[i]!r} is out of "
                f"bounds; it must be a number from {low:,.0f} to {high:,.0f}")
    return lat, lon, radius


def _check_size(n: int) -> None:
    if n == 0:
        raise BadInputError("the batch is empty")
    if n > MAX_BATCH:
        raise BadInputError(f"a batch holds at most {MAX_BATCH:,} points; got {n:,}", status=413)
