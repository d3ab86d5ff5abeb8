"""One table, three file formats: CSV, GeoJSON and GeoParquet, chosen by name.

The CLI's ``--out`` and the API's exports both go through here, so a file called
``gi.csv`` is CSV wherever it was written, and the credits the sources ask for travel with
the data where the format has room for them:

- GeoJSON: top-level members ``meta`` and ``attribution`` (RFC 7946 allows foreign members);
- GeoParquet / Parquet: the ``safecity`` key of the file's schema metadata (JSON);
- CSV: nowhere in the file (a comment line breaks CSV readers); whoever hands out a CSV
  states the credits beside it (the API in an ``X-Attribution`` header, the CLI on the
  console, docs/exports.md for both).

Geometry comes from the frame: a GeoDataFrame's own, else the hexagon of an ``h3``
column, else a point from ``lat``/``lon``.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "geojson": "application/geo+json",
    "geoparquet": "application/vnd.apache.parquet",
    "parquet": "application/vnd.apache.parquet",
}
"""The file formats and the media type each is sent as."""

SUFFIXES: dict[str, str] = {".csv": "csv", ".geojson": "geojson", ".parquet": "parquet",
                            ".geoparquet": "geoparquet"}
"""File name endings and the format each one means: ``.parquet`` is the table as it is
(GeoParquet only when the frame has a geometry column), ``.geoparquet`` adds the rows'
geometry (hexagons or points) as GeoJSON does."""

EXTENSIONS: dict[str, str] = {"csv": ".csv", "geojson": ".geojson", "geoparquet": ".parquet",
                              "parquet": ".parquet"}

METADATA_KEY = b"safecity"
"""Parquet schema-metadata key holding the export's ``meta`` and ``attribution`` (JSON)."""


class TableFormatError(ValueError):
    """The file name asks for a format this table cannot be written in."""


def format_of(path: Path | str, allowed: Sequence[str] = tuple(MEDIA_TYPES)) -> str:
    """The format ``path``'s ending names; :class:`TableFormatError` for any other ending."""
    suffix = Path(path).suffix.lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None or fmt not in allowed:
        endings = ", ".join(s for s, f in SUFFIXES.items() if f in allowed)
        raise TableFormatError(f"{path}: cannot tell the format from {suffix or 'no ending'!r}; "
                               f"name the file with one of {endings}")
    return fmt


def hexagons(h3: pd.Series) -> Any:
    """Shapely polygons of H3 cells given as hex strings (vectorised through h3ronpy)."""
    import pyarrow as pa  # noqa: PLC0415
    import shapely  # noqa: PLC0415
    from h3ronpy import vector  # noqa: PLC0415

    from geo.h3cells import from_hex  # noqa: PLC0415

    if len(h3) == 0:
        return np.empty(0, dtype=object)
    wkb = vector.cells_to_wkb_polygons(np.asarray(from_hex(h3.to_numpy()), dtype=np.uint64))
    return shapely.from_wkb(pa.array(wkb).to_numpy(zero_copy_only=False))


def geometry_of(frame: pd.DataFrame) -> Any | None:
    """The rows' geometries: the frame's own, H3 hexagons, or lat/lon points (else ``None``)."""
    import shapely  # noqa: PLC0415

    if "geometry" in frame.columns:
        return np.asarray(frame["geometry"].array, dtype=object)
    if "h3" in frame.columns:
        return hexagons(frame["h3"].astype(str))
    if {"lat", "lon"} <= set(frame.columns):
        lat = pd.to_numeric(frame["lat"], errors="coerce").to_numpy(dtype=float)
        lon = pd.to_numeric(frame["lon"], errors="coerce").to_numpy(dtype=float)
        points: Any = np.asarray(shapely.points(lon, lat), dtype=object)
        points[~(np.isfinite(lat) & np.isfinite(lon))] = None
        return points
    return None


def _plain_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows with NaN/NaT as ``None`` and times as ISO 8601 text."""
    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = out[name].map(lambda t: t.isoformat() if pd.notna(t) else None)
    clean = out.astype(object).where(out.notna(), None)
    return [{str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in clean.to_dict("records")]


def encode_table(frame: pd.DataFrame, fmt: str, *, meta: Mapping[str, Any] | None = None,
                 attribution: Sequence[str] = ()) -> bytes:
    """``frame`` as the bytes of a ``fmt`` file (see the module for where credits go)."""
    extra = {"meta": dict(meta or {}), "attribution": list(attribution)}
    if fmt == "csv":
        data = frame.drop(columns=["geometry"], errors="ignore")
        return data.to_csv(index=False).encode()
    spatial = fmt != "parquet" or "geometry" in frame.columns
    geometry = geometry_of(frame) if spatial else None
    properties = frame.drop(columns=["geometry"], errors="ignore")
    if fmt == "geojson":
        import msgspec  # noqa: PLC0415
        import shapely  # noqa: PLC0415

        if geometry is None:
            raise TableFormatError("GeoJSON needs a geometry, an h3 column or lat/lon columns")
        texts = shapely.to_geojson(geometry) if len(frame) else []
        features = [
            msgspec.Raw(b'{"type":"Feature","geometry":' + (g.encode() if g else b"null")
                        + b',"properties":' + msgspec.json.encode(p, enc_hook=str) + b"}")
            for g, p in zip(texts, _plain_rows(properties), strict=True)
        ]
        return msgspec.json.encode({"type": "FeatureCollection", **extra, "features": features},
                                   enc_hook=str)
    if fmt in ("geoparquet", "parquet"):
        import pyarrow as pa  # noqa: PLC0415
        import pyarrow.parquet as pq  # noqa: PLC0415

        buffer = io.BytesIO()
        note = json.dumps(extra, default=str).encode()
        if geometry is None:
            table = pa.Table.from_pandas(properties, preserve_index=False)
        else:
            import geopandas as gpd  # noqa: PLC0415

            written = io.BytesIO()  # geopandas writes the GeoParquet "geo" metadata
            gpd.GeoDataFrame(properties, geometry=geometry, crs="EPSG:4326").to_parquet(
                written, index=False)
            table = pq.read_table(io.BytesIO(written.getvalue()))
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), METADATA_KEY: note})
        pq.write_table(table, buffer)
        return buffer.getvalue()
    raise TableFormatError(f"unknown format {fmt!r}; formats are {', '.join(MEDIA_TYPES)}")


def write_table(frame: pd.DataFrame, path: Path | str, *, meta: Mapping[str, Any] | None = None,
                attribution: Sequence[str] = (), allowed: Sequence[str] = tuple(MEDIA_TYPES)) -> str:
    """Write ``frame`` in the format ``path`` names (atomically); the format written."""
    target = Path(path)
    fmt = format_of(target, allowed)
    body = encode_table(frame, fmt, meta=meta, attribution=attribution)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(body)
    tmp.replace(target)
    return fmt


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The ``meta`` and ``attribution`` a Parquet file written here carries."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY)
    return dict(json.loads(raw)) if raw else {}
