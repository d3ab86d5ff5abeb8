"""The application's boundary set: from the database (system of record) or the files."""

from __future__ import annotations

from api.settings import Settings, get_settings
from jurisdictions.boundaries import BoundarySet
from jurisdictions.catalog import punjab_boundary_set


def current_boundaries(settings: Settings | None = None) -> BoundarySet:
    """The set the service serves: the database's current set when it has one."""
    settings = settings or get_settings()
    try:
        from api.db.boundary_store import read_boundary_set  # noqa: PLC0415
        from api.db.engine import sync_engine  # noqa: PLC0415
    except ImportError:
        return punjab_boundary_set()
    found = read_boundary_set(sync_engine(settings))
    return found if found is not None else punjab_boundary_set()
