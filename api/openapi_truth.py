"""The OpenAPI document as the service answers: every error status an operation can give,
with the one error body, and the analytics results in each format they come in.

Litestar documents what a handler's signature says: a handler answering ``bytes`` in one of
four formats is documented as a string, and the errors that :mod:`api.errors` maps
(401, 403, 404, 409, 415, 422, 503) are not documented at all. :func:`tell_the_truth`
completes the generated document once, when the app is assembled; schemathesis checks
every answer against it (``tests/test_calls_schemathesis.py``).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin

ERROR_BODY: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["status_code", "detail", "request_id"],
    "properties": {
        "status_code": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string", "description": "Also the answer's X-Request-ID"},
        "extra": {"description": "Which inputs were wrong (validation errors)"},
        "call_id": {"type": "string", "format": "uuid",
                    "description": "409 on a reused Idempotency-Key: the call it made"},
    },
    "additionalProperties": True,
}
"""What every error answer carries (:func:`api.errors.exception_to_http_response`)."""

WHY: Final[dict[int, str]] = {
    400: "Bad input: a wrong parameter or body (strict JSON types)",
    401: "No valid bearer token",
    403: "The token's role or jurisdiction scope does not allow this",
    404: "No such resource",
    409: "Conflict (a reused Idempotency-Key with another body, an event not allowed now, "
         "a plan not (yet) succeeded)",
    415: "The body is not application/json",
    422: "Well-formed but unusable (outside Punjab, times out of range, a range too long)",
    499: "The client went away before the answer; its work was stopped",
    503: "The database or the worker pool cannot serve now: retry after Retry-After seconds",
}

HEAVY: Final = frozenset({"callHeatmap", "responseHeatmap", "hotspots", "emergingHotspots",
                          "mapPage", "planMapPage", "routeBatch", "createPlan"})
"""Operations run in the worker pool: 503 when it is full, 499 when the client left."""

READS_OF_FINISHED_WORK: Final = frozenset({"getPlanSites", "planMapPage"})
"""Reads that answer 409 until the work they read has succeeded (a queued, running or
failed plan)."""

OTHER_SUCCESSES: Final[dict[str, dict[str, str]]] = {
    "createCall": {"200": "The Idempotency-Key was seen with this body: the call it made"},
    "mapPage": {"303": "A link with ?token=: the same page without it, the token as a cookie"},
    "planMapPage": {"303": "A link with ?token=: the same page without it, the token as a cookie"},
    "dashboardMapStill": {"304": "If-None-Match named the current ETag: the client's copy holds"},
}
"""Answers besides the handler's own status."""

ENCODED_OBJECTS: Final[dict[str, str]] = {
    "dashboardMapStill": "The map's still part: basemap, the area's outline, its child areas "
                         "with names and label points, stations (JSON, gzipped once)",
    "listJurisdictions": "Every area of the level as a GeoJSON FeatureCollection, with the "
                         "level, the boundary set and the credits (encoded once per set)",
    "getPlanSites": "The plan's sites as a GeoJSON FeatureCollection of Points (existing ones "
                    "marked, the demand each covers) with the plan's summary and credits",
}
"""Operations whose handler sends JSON it encoded before (bytes, which Litestar documents
as a string): the 200 is a JSON object."""

CELL_RESULTS: Final = frozenset({"callHeatmap", "responseHeatmap", "hotspots", "emergingHotspots"})


def _cell_formats(components: dict[str, Any], result_meta: type[msgspec.Struct]) -> dict[str, Any]:
    """The 200 of a per-cell result in each ``?format=`` (or ``Accept``)."""
    (meta,), definitions = msgspec.json.schema_components(
        [result_meta], ref_template="#/components/schemas/{name}")
    components.update(definitions)
    cells = {"type": "array", "items": {"type": "object", "additionalProperties": True,
                                        "description": "One study-area cell: h3 and its figures"}}
    return {
        "application/json": {"schema": {"type": "object", "required": ["meta", "cells"],
                                        "properties": {"meta": meta, "cells": cells}}},
        "application/geo+json": {"schema": {
            "type": "object", "required": ["type", "meta", "features"],
            "properties": {"type": {"const": "FeatureCollection"}, "meta": meta,
                           "features": {"type": "array", "items": {"type": "object"}}}}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    }


def statuses(operation: dict[str, Any], method: str, path: str) -> list[int]:
    """The error statuses ``operation`` can answer."""
    if path == "/health":
        return []
    found = {400, 404, 503}
    if operation.get("security"):
        found |= {401, 403}
    if "requestBody" in operation:
        found.add(415)
    if method in {"post", "put"} or operation.get("operationId") in READS_OF_FINISHED_WORK:
        found.add(409)
    if path.startswith(("/api/v1", "/maps")):
        found.add(422)
    if operation.get("operationId") in HEAVY:
        found.add(499)
    return sorted(found)


def complete(document: dict[str, Any], result_meta: type[msgspec.Struct]) -> dict[str, Any]:
    """``document`` (a generated OpenAPI dict) with every error status and the analytics
    formats (their ``meta``: ``result_meta``) documented; changed in place and returned."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ERROR_BODY
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    formats = _cell_formats(components, result_meta)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses: dict[str, Any] = operation["responses"]
            for status in statuses(operation, method, path):
                answer = responses.setdefault(str(status), {"description": WHY[status]})
                answer["content"] = error
                if status == 503:
                    answer["headers"] = {"Retry-After": {
                        "schema": {"type": "integer"}, "description": "Seconds to wait"}}
            for status_text, description in OTHER_SUCCESSES.get(operation.get("operationId", ""),
                                                                 {}).items():
                responses.setdefault(status_text, {"description": description})
            if operation.get("operationId") in CELL_RESULTS:
                responses["200"]["content"] = formats
            if (encoded := ENCODED_OBJECTS.get(operation.get("operationId", ""))) is not None:
                media = next(iter(responses["200"].get("content", {})), "application/json")
                responses["200"]["content"] = {media: {"schema": {
                    "type": "object", "additionalProperties": True, "description": encoded}}}
    return document


def tell_the_truth(app: Litestar, result_meta: type[msgspec.Struct]) -> None:
    """Complete ``app``'s OpenAPI document (built here, once, and served as completed);
    ``result_meta`` is the analytics results' ``meta`` (a domain type, handed in)."""
    complete(app.plugins.get(OpenAPIPlugin).provide_openapi_schema(), result_meta)
