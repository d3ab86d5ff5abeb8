"""Wire shapes of the stateless routing endpoints (same fields as the router CLI)."""

from __future__ import annotations

import msgspec

from api.types import Latitude, Longitude, Radius

MAX_BATCH = 100_000


class RoutePoint(msgspec.Struct, forbid_unknown_fields=True):
    """A location to route; ``radius_m`` makes it an uncertainty circle (NENA i3)."""

    lat: Latitude
    lon: Longitude
    radius_m: Radius | None = None


class RouteBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 100,000 points (JSON form; a GeoJSON FeatureCollection of Points also works)."""

    points: list[RoutePoint]


class Route(msgspec.Struct):
    """Where a call goes: the station and every level above it."""

    station_code: str | None
    tehsil_code: str | None
    district_code: str | None
    region_code: str | None
    method: str
    out_of_coverage: bool
    distance_m: float | None
    reason: str | None = None
    stand_in: bool | None = None


class RouteBatchResult(msgspec.Struct):
    count: int
    rejected: int
    routes: list[Route]
