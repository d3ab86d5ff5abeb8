"""The still part of a dashboard's map: basemap, the area, its children and stations.

Computed in a worker process (clipping the basemap and simplifying outlines takes a
fraction of a second for the province: never on the event loop), encoded there once as
JSON and gzip (:func:`static_map_bytes_job`) and kept by the service per area and
boundary set as bytes: a request sends them as they are, with an ETag, and the browser
keeps them. The live part (today's calls, open alerts) is read per request. The shapes
reuse the map pages' helpers (:mod:`api.domain.maps.services`), so the dashboard's map
draws the same basemap with the same rounding.
"""

from __future__ import annotations

import hashlib
from typing import Any

from api.areas import PARENT_LEVEL
from api.bodies import gzipped
from api.domain.maps.services import (
    DECIMALS,
    basemap_payload,
    frame_of,
    label_points,
    paths,
    polygons,
    shipped_basemap,
    tolerance_of,
)
from api.workers import worker_state

CHILD_LEVEL = {parent: child for child, parent in PARENT_LEVEL.items()}


def area_shape(boundaries: Any, level: str, code: str) -> Any:
    """The geometry of one area (the province: its regions' union)."""
    import shapely  # noqa: PLC0415

    if level == "province":
        return shapely.union_all(boundaries.layer("region").geometry.values)
    frame = boundaries.layer(level)
    return frame.geometry.values[(frame["code"] == code).to_numpy()][0]


def children_of(boundaries: Any, level: str, code: str, below: str) -> Any:
    """The frame of the areas of level ``below`` inside ``level`` ``code`` (each layer
    names only its parent, so the chain is walked down one level at a time)."""
    order = ("province", "region", "district", "tehsil", "station")
    codes = {code}
    for finer in order[order.index(level) + 1:]:
        frame = boundaries.layer(finer)
        if level != "province" or finer != "region":
            frame = frame[frame[f"{PARENT_LEVEL[finer]}_code"].isin(codes)]
        if finer == below:
            return frame
        codes = set(frame["code"].astype(str))
    raise ValueError(f"no {below} lies below a {level}")


def static_map(boundaries: Any, basemap: Any, level: str, code: str) -> dict[str, Any]:
    """What the dashboard map draws that does not change while the boundary set stays."""
    import shapely  # noqa: PLC0415

    area = area_shape(boundaries, level, code)
    window = frame_of(area)
    tolerance = tolerance_of(window)
    simple = shapely.simplify(area, tolerance)
    child = CHILD_LEVEL.get(level)
    out: dict[str, Any] = {
        "area": {"level": level, "code": code,
                 "bounds": [round(float(b), DECIMALS) for b in area.bounds],
                 "outline": paths([simple])},
        "basemap": basemap_payload(basemap, window),
        "children": None,
    }
    if child is not None:
        frame = children_of(boundaries, level, code, child)
        shapes = shapely.simplify(frame.geometry.values, tolerance)
        out["children"] = {
            "level": child,
            "codes": frame["code"].astype(str).tolist(),
            "names": frame["name"].astype(str).tolist(),
            "polygons": [polygons([shape]) for shape in shapes],
            "labels": label_points(frame.geometry.values),
            "outlines": paths(shapes),
        }
    all_stations = boundaries.layer("station")
    stations = (children_of(boundaries, level, code, "station") if level != "station"
                else all_stations[all_stations["code"] == code])
    out["stations"] = {"codes": stations["code"].astype(str).tolist(),
                       "names": stations["name"].astype(str).tolist(),
                       "points": label_points(stations.geometry.values)}
    return out


def static_map_job(level: str, code: str, version: str) -> dict[str, Any]:
    """Worker job: :func:`static_map` on the boundary set ``version``."""
    boundaries = worker_state().boundaries(version)
    return static_map(boundaries, shipped_basemap(), level, code)


STILL_FORMAT = 2
"""The still part's encoding (part of its URL and ETag: a change here is a new URL)."""


def encode_still(still: dict[str, Any]) -> tuple[bytes, bytes, str]:
    """The still part as JSON bytes, the same gzipped (level 9: once per area and boundary
    set, not per request) and its ETag (a digest of the JSON)."""
    import msgspec  # noqa: PLC0415

    body = msgspec.json.encode(still)
    etag = f'"{STILL_FORMAT}-{hashlib.sha256(body).hexdigest()[:24]}"'
    return body, gzipped(body, 9), etag


def static_map_bytes_job(level: str, code: str, version: str) -> tuple[bytes, bytes, str]:
    """Worker job: :func:`static_map_job` encoded by :func:`encode_still`."""
    return encode_still(static_map_job(level, code, version))
