"""Routing defaults that settings read without importing the router (numpy, shapely, pyproj):
the ``safecity token`` command reads settings and must start in a fraction of a second."""

from __future__ import annotations

DEFAULT_NEAREST_LIMIT_M = 5_000.0
"""How far outside every station area a point may be and still go to the nearest station."""
