"""Read one level of boundaries from a file a police GIS cell holds.

GeoJSON, GeoPackage and Shapefile (and the other OGR formats) are read with pyogrio,
GeoParquet with geopandas. The result has the shape every :class:`BoundarySet` frame
has: ``code``, ``name``, the parent's code column (``PARENT_COLUMN``), ``stand_in``
(False) for stations, and MultiPolygon ``geometry`` in EPSG:4326.

Nothing is half-loaded: every feature is checked first and all problems found are
raised together as one :class:`~jurisdictions.errors.InvalidBoundaryError`, each line
naming the feature by its row (counted from 1 in file order) and its code. Whether the
layer fits the rest of the set (gaps, overlaps, nesting) is :mod:`jurisdictions.qa`'s
job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from geo.crs import WGS84
from jurisdictions.boundaries import LEVELS, PARENT_COLUMN, as_multipolygons
from jurisdictions.errors import InvalidBoundaryError

PUNJAB_BOUNDS = (69.3213, 27.7051, 75.3819, 34.0183)
"""(west, south, east, north) of the COD-AB Punjab outline, degrees."""

EXTENT_MARGIN_DEG = 0.5
"""Slack around :data:`PUNJAB_BOUNDS` (about 50 km) for borders drawn a little wide."""

PARQUET_SUFFIXES = (".parquet", ".geoparquet")
MAX_LISTED = 20
"""Problems listed in one error message; the rest are counted."""

_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def _read(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    """The raw frame, or an error saying why the file cannot be read."""
    if not path.exists():
        raise InvalidBoundaryError(f"{path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        if layer is not None:
            raise InvalidBoundaryError(f"{path.name}: GeoParquet files have no layers "
                                       f"(drop --layer {layer})")
        try:
            return gpd.read_parquet(path)
        except Exception as exc:  # any reader failure means the file is unusable
            raise InvalidBoundaryError(f"{path.name}: cannot read as GeoParquet: {exc}") from exc
    import pyogrio  # noqa: PLC0415  (imported with the reader that needs it)

    try:
        layers = [str(name) for name, _kind in pyogrio.list_layers(path)]
    except Exception as exc:  # as above: unreadable, whatever the driver says
        raise InvalidBoundaryError(f"{path.name}: cannot read: {exc}") from exc
    if layer is None and len(layers) > 1:
        raise InvalidBoundaryError(f"{path.name} has {len(layers)} layers "
                                   f"({', '.join(layers)}); choose one with --layer")
    if layer is not None and layer not in layers:
        raise InvalidBoundaryError(f"{path.name} has no layer {layer!r} "
                                   f"(layers: {', '.join(layers)})")
    try:
        frame: gpd.GeoDataFrame = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # as above
        raise InvalidBoundaryError(f"{path.name}: cannot read: {exc}") from exc
    return frame


def _column(frame: pd.DataFrame, wanted: str, role: str, source: str, option: str) -> str:
    """The column named ``wanted`` (exactly, else the one matching it ignoring case)."""
    if wanted in frame.columns:
        return wanted
    folded = [c for c in frame.columns if str(c).lower() == wanted.lower() and c != "geometry"]
    if len(folded) == 1:
        return str(folded[0])
    have = ", ".join(str(c) for c in frame.columns if c != "geometry") or "none"
    raise InvalidBoundaryError(
        f"{source} has no {role} column {wanted!r} (columns: {have}); name it with {option}"
    )


def _as_text(values: pd.Series) -> npt.NDArray[np.object_]:
    """Codes as stripped strings (``None`` when null or blank); 101.0 reads as ``"101"``."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and (finite == finite.round()).all():
            values = values.astype("Int64")
    text = values.astype("string").str.strip()
    text = text.mask(text == "")
    return np.asarray(text.astype(object).where(text.notna(), None).to_numpy(), dtype=object)


def _label(row: int | np.integer, code: object) -> str:
    row = int(row)
    return f"row {row + 1} (code {code!r})" if code is not None else f"row {row + 1} (no code)"


def _swapped_hint(bounds: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Whether each box would fall in Punjab with x and y exchanged."""
    west, south, east, north = PUNJAB_BOUNDS
    m = EXTENT_MARGIN_DEG
    return ((bounds[:, 1] >= west - m) & (bounds[:, 3] <= east + m)
            & (bounds[:, 0] >= south - m) & (bounds[:, 2] <= north + m))


def read_boundary_file(
    path: str | Path,
    level: str,
    *,
    code_column: str = "code",
    name_column: str = "name",
    parent_column: str | None = None,
    layer: str | None = None,
    parents: pd.DataFrame | Iterable[str] | None = None,
) -> gpd.GeoDataFrame:
    """One level of boundaries from ``path``, checked feature by feature.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile (or another OGR format) or GeoParquet.
    level
        ``region``, ``district``, ``tehsil`` or ``station``.
    code_column, name_column
        Columns holding each feature's unique code and its name.
    parent_column
        Column holding the parent's code; defaults to the level's own
        (``region_code``, ``district_code``, ``tehsil_code``). Regions have none: their
        parent is the province.
    layer
        Layer to read from a multi-layer file (GeoPackage).
    parents
        The parent level (a frame with ``code``) or its codes: every parent code must
        be one of them.

    Returns
    -------
    GeoDataFrame
        ``code, name[, <parent>_code][, stand_in]`` and MultiPolygon ``geometry`` in
        EPSG:4326, sorted by code.

    Raises
    ------
    InvalidBoundaryError
        The file cannot be read, lacks a column, or has features with null or duplicate
        codes, no name, empty, non-polygonal or invalid geometry, coordinates outside
        Punjab (often swapped lat/lon) or unknown parent codes. One error lists them all.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")
    if level == "region" and parent_column is not None:
        raise ValueError("regions have no parent column: their parent is the province")
    path = Path(path)
    source = path.name + (f" (layer {layer})" if layer else "")
    raw = _read(path, layer)
    if len(raw) == 0:
        raise InvalidBoundaryError(f"{source} has no features")
    if raw.crs is None:
        raise InvalidBoundaryError(f"{source} has no coordinate reference system; "
                                   "set one in the file (EPSG:4326 for lon/lat)")
    code_col = _column(raw, code_column, "code", source, "--code-column")
    name_col = _column(raw, name_column, "name", source, "--name-column")
    target_parent = PARENT_COLUMN.get(level)
    parent_col = None
    if target_parent is not None:
        parent_col = _column(raw, parent_column or target_parent, f"parent ({level} → "
                             f"{target_parent.removesuffix('_code')}) code", source,
                             "--parent-column")

    try:
        frame = raw.to_crs(WGS84)
    except Exception as exc:  # a CRS pyproj cannot transform from
        raise InvalidBoundaryError(f"{source}: cannot reproject from {raw.crs} to {WGS84}: "
                                   f"{exc}") from exc
    codes = _as_text(frame[code_col])
    names = _as_text(frame[name_col])
    parent_codes = _as_text(frame[parent_col]) if parent_col else None
    geoms = np.asarray(frame.geometry.values, dtype=object)
    problems: list[str] = []

    for i in np.flatnonzero(pd.isna(codes)):
        problems.append(f"{_label(i, None)}: the code ({code_col}) is empty")
    seen = pd.Series(codes).dropna()
    for code, rows in seen.groupby(seen).groups.items():
        if len(rows) > 1:
            where = ", ".join(str(r + 1) for r in rows)
            problems.append(f"rows {where}: code {code!r} is used {len(rows)} times")
    for i in np.flatnonzero(pd.isna(names)):
        problems.append(f"{_label(i, codes[i])}: the name ({name_col}) is empty")
    if parent_codes is not None:
        for i in np.flatnonzero(pd.isna(parent_codes)):
            problems.append(f"{_label(i, codes[i])}: the parent code ({parent_col}) is empty")

    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    for i in np.flatnonzero(missing):
        problems.append(f"{_label(i, codes[i])}: the geometry is empty")
    type_ids = shapely.get_type_id(geoms)
    polygonal = np.isin(type_ids, [int(t) for t in _POLYGONAL])
    for i in np.flatnonzero(~missing & ~polygonal):
        problems.append(f"{_label(i, codes[i])}: the geometry is a {geoms[i].geom_type}, "
                        "not a polygon")
    usable = ~missing & polygonal
    flat = np.full(len(geoms), None, dtype=object)
    flat[usable] = shapely.force_2d(geoms[usable])
    geoms = flat
    finite = np.zeros(len(geoms), dtype=bool)
    bounds = np.full((len(geoms), 4), np.nan)
    bounds[usable] = shapely.bounds(geoms[usable])
    finite[usable] = np.isfinite(bounds[usable]).all(axis=1)
    west, south, east, north = PUNJAB_BOUNDS
    m = EXTENT_MARGIN_DEG
    inside = finite & (bounds[:, 0] >= west - m) & (bounds[:, 2] <= east + m) \
        & (bounds[:, 1] >= south - m) & (bounds[:, 3] <= north + m)
    swapped = finite & _swapped_hint(np.nan_to_num(bounds))
    for i in np.flatnonzero(usable & ~inside):
        box = ("non-finite coordinates" if not finite[i] else
               "lon {:.4f}–{:.4f}, lat {:.4f}–{:.4f}".format(*bounds[i, [0, 2, 1, 3]]))
        hint = ("; lat and lon look swapped" if swapped[i]
                else "; is the file's CRS right?" if finite[i] else "")
        problems.append(f"{_label(i, codes[i])}: coordinates outside Punjab ({box}){hint}")
    checkable = usable & inside
    valid = np.ones(len(geoms), dtype=bool)
    valid[checkable] = shapely.is_valid(geoms[checkable])
    for i in np.flatnonzero(~valid):
        problems.append(f"{_label(i, codes[i])}: invalid geometry: "
                        f"{shapely.is_valid_reason(geoms[i])}")

    if parent_codes is not None and parents is not None:
        known = set(_known_codes(parents))
        for i in np.flatnonzero(pd.notna(parent_codes)):
            if parent_codes[i] not in known:
                parent_level = str(target_parent).removesuffix("_code")
                problems.append(f"{_label(i, codes[i])}: {parent_level} {parent_codes[i]!r} "
                                f"does not exist")

    if problems:
        shown = problems[:MAX_LISTED]
        more = len(problems) - len(shown)
        raise InvalidBoundaryError(
            f"{source}: {len(problems)} problem(s), nothing imported:\n  "
            + "\n  ".join(shown) + (f"\n  … and {more} more" if more else "")
        )

    columns: dict[str, object] = {"code": codes.astype(str), "name": names.astype(str)}
    if target_parent is not None and parent_codes is not None:
        columns[target_parent] = parent_codes.astype(str)
    if level == "station":
        columns["stand_in"] = np.zeros(len(codes), dtype=bool)
    out = gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=WGS84), crs=WGS84)
    out["geometry"] = as_multipolygons(out.geometry)
    return out.sort_values("code").reset_index(drop=True)


def _known_codes(parents: pd.DataFrame | Iterable[str]) -> Iterable[str]:
    if isinstance(parents, pd.DataFrame):
        return (str(c) for c in parents["code"])
    return (str(c) for c in parents)


def imported_version(base: str, level: str, frame: gpd.GeoDataFrame) -> str:
    """Version of a set after ``frame`` replaces its ``level``: the old version plus a
    digest of the new layer's attributes and WKB.

    One rule for everyone (the import command announces it, the store records it); the
    same attributes and coordinates always give the same version.
    """
    digest = hashlib.sha256()
    for column in frame.columns.drop("geometry"):
        digest.update(str(column).encode())
        digest.update("\x1f".join(map(str, frame[column])).encode())
    for wkb in shapely.to_wkb(np.asarray(frame.geometry.values, dtype=object)):
        digest.update(wkb)
    return f"{base}+{level}s-{digest.hexdigest()[:10]}"
