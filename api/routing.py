"""The application's router: compiled from the database's current boundary set.

On the embedded default a database that was never loaded falls back to the shipped
files (so the first command works with no setup); with ``DATABASE_URL`` set, an empty
database is a clear error.
"""

from __future__ import annotations

from api.db.boundary_store import router_from_database
from api.db.errors import NoBoundarySetError
from api.settings import Settings, get_settings
from geo.progress import Progress, no_progress
from jurisdictions.catalog import punjab_router
from jurisdictions.router import Router


def current_router(settings: Settings | None = None, progress: Progress = no_progress) -> Router:
    """The router the service and CLI use (the compiled index is cached by set version)."""
    settings = settings or get_settings()
    try:
        return router_from_database(settings, progress=progress)
    except NoBoundarySetError:
        if settings.database.is_postgres:
            raise
    return punjab_router(settings.routing.nearest_limit_m, progress=progress)
