"""The one place that picks a metric CRS for Punjab.

Punjab straddles UTM zones 42N (west of 72° E) and 43N (east of it). Distances and
areas are computed in the zone of the data's centre, never in degrees.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

WGS84 = "EPSG:4326"
UTM_42N = 32642
UTM_43N = 32643
ZONE_EDGE_LON = 72.0
EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG) of every great-circle distance (duplicates, repeat alerts)."""


def utm_epsg(lon: float) -> int:
    """EPSG code of the UTM zone (42N or 43N) for a longitude in Punjab.

    >>> utm_epsg(71.5), utm_epsg(74.3)
    (32642, 32643)
    """
    return UTM_42N if lon < ZONE_EDGE_LON else UTM_43N


def utm_epsg_array(lon: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Vectorised :func:`utm_epsg`."""
    return np.where(np.asarray(lon, dtype=float) < ZONE_EDGE_LON, UTM_42N, UTM_43N)


PROVINCE_EPSG = UTM_43N
"""Zone used for province-wide areas (QA, Voronoi): most of Punjab's area lies in 43N."""
