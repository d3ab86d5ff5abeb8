"""Pakistan's other provinces and territories: where a point outside Punjab lies.

A 15 call from Islamabad belongs to the Islamabad Capital Territory police, not to the
Rawalpindi station nearest to it; one from Peshawar to Khyber Pakhtunkhwa's. The router
asks :class:`Neighbours` only about points no Punjab station covers, so a point Punjab's
stations cover is Punjab's even where a neighbour's outline overlaps it by a sliver.

Plain library: the caller passes the provinces' polygons
(:func:`jurisdictions.catalog.neighbouring_provinces` reads the shipped COD-AB file).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from jurisdictions.errors import DataFileError

PUNJAB_CODE = "PK6"
"""Punjab's ADM1 P-code in COD-AB (the province itself is not a neighbour)."""


class Neighbours:
    """Named polygons of the provinces and territories around Punjab (not overlapping).

    ``frame`` needs columns ``code``, ``name`` and a WGS84 geometry; the row with
    ``exclude`` (Punjab) is left out.
    """

    def __init__(self, frame: gpd.GeoDataFrame, exclude: str = PUNJAB_CODE) -> None:
        missing = {"code", "name"} - set(frame.columns)
        if missing:
            raise DataFileError(f"provinces need columns code and name; missing {sorted(missing)}")
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            raise DataFileError(f"provinces: expected EPSG:4326 geometry, found {frame.crs}")
        kept = frame[frame["code"].astype(str) != exclude].reset_index(drop=True)
        self.codes: list[str] = kept["code"].astype(str).tolist()
        self.names: list[str] = kept["name"].astype(str).tolist()
        self._polygons = np.asarray(kept.geometry.values, dtype=object)
        shapely.prepare(self._polygons)
        self._tree = shapely.STRtree(self._polygons)

    def locate(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Row of the province covering each point (index into :attr:`names`), -1 if none.

        Vectorised: one tree query for all points. The polygons do not overlap, so a
        point on a shared edge takes the first row (P-code order).
        """
        lat_a = np.asarray(lat, dtype=np.float64).reshape(-1)
        lon_a = np.asarray(lon, dtype=np.float64).reshape(-1)
        rows = np.full(lat_a.size, -1, dtype=np.int64)
        if not lat_a.size:
            return rows
        points = shapely.points(lon_a, lat_a)
        point_i, poly_i = self._tree.query(points, predicate="intersects")
        if point_i.size:
            order = np.lexsort((poly_i, point_i))
            point_i, poly_i = point_i[order], poly_i[order]
            first = np.r_[True, point_i[1:] != point_i[:-1]]
            rows[point_i[first]] = poly_i[first]
        return rows

    def name_at(self, lat: float, lon: float) -> str | None:
        """The name of the province or territory covering one point, or ``None``."""
        row = int(self.locate([lat], [lon])[0])
        return self.names[row] if row >= 0 else None
