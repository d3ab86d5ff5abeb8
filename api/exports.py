"""Exports of stored records (calls, alerts) as CSV, GeoJSON or GeoParquet files.

What rows an export holds is decided by the same code as the list endpoints (the domain
services' scope conditions, :meth:`api.areas.Areas.conditions`); this module only turns
those rows into a file: encoded by :mod:`geo.tables` (the CLI's ``--out`` writer), in a
worker process when there are more than :data:`INLINE_ROWS` rows, with the sources'
credits inside the file where the format has room (GeoJSON member, Parquet metadata) and
in an ``X-Attribution`` header for CSV, which has none (docs/exports.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from api.bodies import Body, body_job
from api.errors import BadInputError
from geo.basemap import ATTRIBUTION_LINES
from geo.tables import EXTENSIONS, MEDIA_TYPES, encode_table

if TYPE_CHECKING:
    import pandas as pd
    from litestar import Response
    from litestar.types import Receive

    from api.workers import WorkerPool

EXPORT_FORMATS = ("csv", "geojson", "geoparquet")
FORMAT_ALIASES = {"parquet": "geoparquet", "json": "geojson"}
INLINE_ROWS = 20_000
"""Up to this many rows are encoded in the request's process; more go to a worker."""
MAX_ROWS = 500_000
"""The most rows one export holds; more is a 422 asking for a narrower window or area."""


def export_format(value: str | None) -> str:
    """The format of ``?format=`` (CSV by default); 400 naming the formats otherwise."""
    if not value:
        return "csv"
    name = FORMAT_ALIASES.get(value.strip().lower(), value.strip().lower())
    if name not in EXPORT_FORMATS:
        raise BadInputError(f"format: unknown format {value!r}; formats are {', '.join(EXPORT_FORMATS)}")
    return name


def attribution_header() -> str:
    """The credits as one ASCII header value."""
    return "; ".join(ATTRIBUTION_LINES).replace("©", "(c)")


def encode_job(frame: pd.DataFrame, fmt: str, meta: dict[str, Any]) -> bytes:
    """Worker entry point: the file's bytes."""
    return encode_table(frame, fmt, meta=meta, attribution=ATTRIBUTION_LINES)


async def export_file(frame: pd.DataFrame, fmt: str, meta: dict[str, Any], name: str, *,
                      workers: WorkerPool, gzip_it: bool, receive: Receive | None = None
                      ) -> Response[bytes]:
    """The export of ``frame`` in ``fmt``: encoded here when small, in a worker when large
    (gzipped there when ``gzip_it``, except GeoParquet, compressed inside already)."""
    gzip_it = gzip_it and fmt != "geoparquet"
    if len(frame) > INLINE_ROWS:
        body = await workers.run("analytics", body_job, gzip_it, encode_job, frame, fmt, meta,
                                 receive=receive)
    else:
        body = Body.made(encode_job(frame, fmt, meta), gzip_it)
    headers = {"Content-Disposition": f'attachment; filename="{name}{EXTENSIONS[fmt]}"',
               "X-Attribution": attribution_header(), "X-Rows": str(len(frame))}
    return body.response(MEDIA_TYPES[fmt], headers)
