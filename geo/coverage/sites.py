"""Camera sites as the plans use them: candidate and existing sites, from files or demand.

Every site frame has :data:`SITE_COLUMNS` (``existing`` sites are fixed in every plan,
``stand_in`` marks the stand-in layer of :mod:`geo.coverage.standin`, ``source`` says
where a site comes from) and point geometry in EPSG:4326. Candidate new sites default to
the centres of the demand cells; a planner's own candidates or the real existing cameras
come from a point file (:func:`read_sites`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.coverage.errors import SiteFileError
from geo.crs import WGS84

SITE_COLUMNS = ("site_id", "name", "existing", "stand_in", "source", "geometry")


def site_frame(site_id: Any, name: Any, geometry: Any, *, existing: bool, stand_in: bool,
               source: str, **extra: Any) -> gpd.GeoDataFrame:
    """Sites in the one shape every plan uses (:data:`SITE_COLUMNS`, then ``extra`` columns);
    scalars are repeated for every site."""
    n = len(geometry)
    columns: dict[str, Any] = {"site_id": np.asarray(site_id, dtype=object),
                               "name": np.asarray(name, dtype=object),
                               "existing": np.full(n, existing), "stand_in": np.full(n, stand_in),
                               "source": np.full(n, source, dtype=object)}
    columns.update({key: np.asarray(value, dtype=object) if np.ndim(value) else np.full(n, value)
                    for key, value in extra.items()})
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geometry, crs=WGS84), crs=WGS84)


def candidates_from_demand(demand: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Candidate new sites at the centres of the demand cells (``site_id`` ``h3:<cell>``)."""
    return site_frame(("h3:" + demand["cell"].astype(str)).to_numpy(),
                       ("cell " + demand["cell"].astype(str)).to_numpy(), demand.geometry.to_numpy(),
                       existing=False, stand_in=False, source="candidate: demand cell centre")


def read_sites(path: Path | str, *, existing: bool) -> gpd.GeoDataFrame:
    """Sites from a point file: GeoJSON, GPKG, Shapefile, GeoParquet, or CSV with ``lat, lon``.

    An id is taken from ``site_id``, ``id`` or ``name`` (in that order) and made up from
    the file name otherwise; a name from ``name``. Geometries are converted to EPSG:4326
    (a file without a CRS is read as EPSG:4326, as GeoJSON prescribes).

    Raises :class:`SiteFileError` for an unreadable file, non-point geometry, missing
    coordinates or duplicate ids, naming the problem.
    """
    source = Path(path)
    if not source.is_file():
        raise SiteFileError(f"{source}: no such file")
    suffix = source.suffix.lower()
    try:
        if suffix in {".csv", ".txt"}:
            table = pd.read_csv(source)
            cols = {c.lower(): c for c in table.columns}
            lat_c = cols.get("lat", cols.get("latitude"))
            lon_c = cols.get("lon", cols.get("lng", cols.get("longitude")))
            if lat_c is None or lon_c is None:
                raise SiteFileError(f"{source}: a site CSV needs 'lat' and 'lon' columns "
                                    f"(has {', '.join(map(str, table.columns))})")
            lat = pd.to_numeric(table[lat_c], errors="coerce")
            lon = pd.to_numeric(table[lon_c], errors="coerce")
            bad = lat.isna() | lon.isna() | ~lat.between(-90, 90) | ~lon.between(-180, 180)
            if bad.any():
                raise SiteFileError(f"{source}: rows {(table.index[bad] + 2).tolist()[:10]} "
                                    "have no valid lat/lon")
            frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon, lat), crs=WGS84)
        elif suffix in {".parquet", ".geoparquet"}:
            frame = gpd.read_parquet(source)
        else:
            frame = gpd.read_file(source)
    except SiteFileError:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise SiteFileError(f"cannot read {source}: {exc}") from exc
    if frame.empty:
        raise SiteFileError(f"{source}: no sites")
    if frame.crs is None:
        frame = frame.set_crs(WGS84)
    frame = frame.to_crs(WGS84)
    kinds = set(frame.geometry.geom_type.dropna())
    if frame.geometry.isna().any() or frame.geometry.is_empty.any() or not kinds <= {"Point"}:
        raise SiteFileError(f"{source}: every site must be one point (found {', '.join(sorted(kinds))} "
                            "or empty geometries)")
    cols = {c.lower(): c for c in frame.columns if c != "geometry"}
    id_col = next((cols[c] for c in ("site_id", "id", "name") if c in cols), None)
    ids = (frame[id_col].astype(str).to_numpy() if id_col is not None
           else np.array([f"{source.stem}-{i + 1:05d}" for i in range(len(frame))]))
    if pd.Series(ids).duplicated().any():
        first = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise SiteFileError(f"{source}: duplicate site ids, e.g. {first!r}")
    names = frame[cols["name"]].astype(str).to_numpy() if "name" in cols else ids
    return site_frame(ids, names, frame.geometry.to_numpy(), existing=existing, stand_in=False,
                       source=f"file: {source.name}")
