"""One result, four encodings: JSON rows, GeoJSON, GeoParquet and CSV.

The format is ``?format=`` when given, else the first ``Accept`` media type understood,
else JSON. GeoJSON and GeoParquet carry each cell's hexagon as a polygon (EPSG:4326).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pandas as pd

from api.domain.analytics.schemas import ACCEPT_TYPES, FORMAT_ALIASES, FORMATS, CellResult
from api.errors import BadInputError
from api.exports import attribution_header
from geo.basemap import ATTRIBUTION_LINES
from geo.tables import encode_table
from geo.tables import hexagons as table_hexagons


def pick_format(format_param: str | None, accept: str | None) -> str:
    """The output format for ``?format=`` and the ``Accept`` header (400 for an unknown one)."""
    if format_param:
        name = FORMAT_ALIASES.get(format_param.lower(), format_param.lower())
        if name not in FORMATS:
            raise BadInputError(f"unknown format {format_param!r}; formats are "
                                f"{', '.join([*FORMATS, *FORMAT_ALIASES])}")
        return name
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ACCEPT_TYPES:
            return ACCEPT_TYPES[media]
    return "json"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows with NaN as ``None`` (JSON ``null``) and numpy scalars as Python ones."""
    clean = frame.astype(object).where(frame.notna(), None)
    return [{str(k): v for k, v in row.items()} for row in clean.to_dict("records")]


def hexagons(h3: pd.Series) -> Any:
    """Shapely polygons of H3 cells given as hex strings (:func:`geo.tables.hexagons`)."""
    return table_hexagons(h3)


def encode(result: CellResult, fmt: str) -> tuple[bytes, str, dict[str, str]]:
    """``(body, media type, extra headers)`` of ``result`` in ``fmt``."""
    meta = msgspec.to_builtins(result.meta)
    frame = result.frame
    area = result.meta.area
    filename = f"{result.meta.kind}-{area.level}-{area.code or 'punjab'}-r{result.meta.res}"
    if fmt == "json":
        return msgspec.json.encode({"meta": meta, "cells": _records(frame)}), FORMATS[fmt], {}
    if fmt == "csv":  # no room for credits in the file: they travel in a header
        return (frame.to_csv(index=False).encode(), FORMATS[fmt],
                {"Content-Disposition": f'attachment; filename="{filename}.csv"',
                 "X-Attribution": attribution_header()})
    if fmt == "geojson":
        import shapely  # noqa: PLC0415

        geometries = shapely.to_geojson(hexagons(frame["h3"])) if len(frame) else []
        features = [
            msgspec.Raw(b'{"type":"Feature","geometry":' + g.encode() + b',"properties":'
                             + msgspec.json.encode(props) + b"}")
            for g, props in zip(geometries, _records(frame), strict=True)
        ]
        body = msgspec.json.encode({"type": "FeatureCollection", "meta": meta,
                                    "attribution": list(ATTRIBUTION_LINES), "features": features})
        return body, FORMATS[fmt], {}
    if fmt == "geoparquet":
        body = encode_table(frame, "geoparquet", meta=meta, attribution=ATTRIBUTION_LINES)
        return (body, FORMATS[fmt],
                {"Content-Disposition": f'attachment; filename="{filename}.parquet"'})
    raise BadInputError(f"unknown format {fmt!r}")
