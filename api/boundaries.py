"""The application's boundary set: the database's current set, the system of record.

On the embedded default a database that was never loaded falls back to the shipped
files, so a newcomer's first ``safecity serve`` works; with ``DATABASE_URL`` set, an
empty database is an error that says to run ``safecity jurisdictions load``.
"""

from __future__ import annotations

from api.db.boundary_store import read_boundary_set
from api.db.engine import sync_engine
from api.db.errors import NoBoundarySetError
from api.settings import Settings, get_settings
from jurisdictions.boundaries import BoundarySet
from jurisdictions.catalog import punjab_boundary_set


def current_boundaries(settings: Settings | None = None) -> BoundarySet:
    """The set the service serves."""
    settings = settings or get_settings()
    found = read_boundary_set(sync_engine(settings))
    if found is not None:
        return found
    if settings.database.is_postgres:
        raise NoBoundarySetError("the database holds no boundary set; "
                                 "run: safecity jurisdictions load")
    return punjab_boundary_set()
