"""Constants that settings and ``safecity token`` read without importing the router or the
boundaries (numpy, shapely, pyproj, geopandas): the token command must start in a fraction
of a second."""

from __future__ import annotations

DEFAULT_NEAREST_LIMIT_M = 5_000.0
"""How far outside every station area a point may be and still go to the nearest station."""

PROVINCE_CODE = "PK6"
"""Punjab's P-code (COD-AB), the code of the province level."""
