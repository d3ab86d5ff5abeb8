"""The shipped basemap, read once: the files of ``<data dir>/basemap`` after their sha256 check.

:mod:`geo.basemap` reads whatever folder it is given; this is the one place that says
which folder (the service's data directory, ``SAFECITY_DATA_DIR``) and refuses files
that differ from the checksums recorded in ``data/SOURCES.md``.
"""

from __future__ import annotations

from functools import cache

from geo.basemap import FILES, Basemap, read_basemap
from jurisdictions.sources import data_dir, verified_source

BASEMAP_FOLDER = "basemap"


@cache
def shipped_basemap() -> Basemap:
    """The basemap of the data directory (checked, read and kept for the process's life)."""
    for name in FILES:
        verified_source(f"{BASEMAP_FOLDER}/{name}")
    return read_basemap(data_dir() / BASEMAP_FOLDER)
