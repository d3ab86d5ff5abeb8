"""Wire shapes of the stateless routing endpoints (same fields as the router CLI).

Inputs are decoded strictly (``"lat": "31.5"`` is refused, not read as a number) and the
same bounds hold in every form: a JSON point, a JSON batch and a GeoJSON batch.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from api.types import Latitude, Longitude, Radius

MAX_BATCH = 100_000
MAX_RADIUS_M = 50_000.0
"""The largest uncertainty radius (the bound of :data:`api.types.Radius`)."""


class RoutePoint(msgspec.Struct, forbid_unknown_fields=True):
    """A location to route; ``radius_m`` makes it an uncertainty circle (NENA i3)."""

    lat: Latitude
    lon: Longitude
    radius_m: Radius | None = None


class RouteBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Up to 100,000 points (JSON form; a GeoJSON FeatureCollection of Points also works)."""

    points: list[RoutePoint]


class PointGeometry(msgspec.Struct):
    """A GeoJSON Point (``[lon, lat]``, an optional height ignored)."""

    type: Literal["Point"]
    coordinates: list[float]


class Feature(msgspec.Struct):
    """A GeoJSON Feature of a batch: its ``id`` and ``properties`` come back in the answer;
    ``properties.radius_m`` is its uncertainty radius."""

    type: Literal["Feature"]
    geometry: PointGeometry
    properties: dict[str, Any] | None = None
    id: str | int | float | msgspec.UnsetType = msgspec.UNSET


class FeatureCollection(msgspec.Struct):
    """A GeoJSON batch (other members such as ``bbox`` or ``name`` are ignored)."""

    type: Literal["FeatureCollection"]
    features: list[Feature]


class Route(msgspec.Struct):
    """Where a call goes: the station and every level above it, codes and names.

    ``outside_punjab`` names the province or territory a point lies in when it is not
    Punjab's (e.g. ``"Islamabad Capital Territory"``); the station is then only the
    nearest Punjab one, a fallback, and ``transfer_suggested`` is true.
    """

    station_code: str | None
    station_name: str | None
    tehsil_code: str | None
    tehsil_name: str | None
    district_code: str | None
    district_name: str | None
    region_code: str | None
    region_name: str | None
    method: str
    out_of_coverage: bool
    distance_m: float | None
    reason: str | None = None
    stand_in: bool | None = None
    outside_punjab: str | None = None
    transfer_suggested: bool = False


class RouteBatchResult(msgspec.Struct):
    """A JSON batch's answer: one route per point, in the order sent."""

    count: int
    rejected: int
    routes: list[Route]


class RoutedFeatureCollection(msgspec.Struct):
    """A GeoJSON batch's answer: each feature back with its ``id``, geometry and
    properties, the route's fields added to its properties (replacing same-named ones)."""

    type: Literal["FeatureCollection"]
    count: int
    rejected: int
    features: list[dict[str, Any]]
