"""Great-circle distance, the one formula every "how far apart are these calls" uses.

The duplicate search of call intake (both back ends) and the repeat-location alert both
ask whether two calls lie within a few hundred metres. Over such distances the haversine
on a sphere of the mean Earth radius is exact to well under a metre; projected UTM metres
(:mod:`geo.crs`) are for areas and for distances between many points at once.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from geo.crs import EARTH_RADIUS_M


def haversine_m(lat: npt.ArrayLike, lon: npt.ArrayLike, lats: npt.ArrayLike,
                lons: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Metres along the sphere of :data:`~geo.crs.EARTH_RADIUS_M` between ``(lat, lon)``
    and each of ``(lats, lons)`` (degrees; arrays broadcast).

    ``2 R asin(sqrt(min(1, sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2))))``; the ``min`` keeps
    rounding from pushing antipodal points past the arcsine's domain.

    >>> float(haversine_m(31.0, 74.0, 32.0, 74.0).round())
    111195.0
    """
    lat0, lon0 = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    p1, p2 = np.radians(lat0), np.radians(np.asarray(lats, dtype=np.float64))
    dp, dl = p2 - p1, np.radians(np.asarray(lons, dtype=np.float64) - lon0)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(1.0, a))), dtype=np.float64)
