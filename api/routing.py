"""The application's router: from the database's boundary set, or files when embedded."""

from __future__ import annotations

from api.settings import Settings, get_settings
from jurisdictions.catalog import punjab_router
from jurisdictions.index import Progress
from jurisdictions.router import Router


def _quiet(_step: str, _fraction: float) -> None:
    return None


def current_router(settings: Settings | None = None, progress: Progress = _quiet) -> Router:
    """The router the service and CLI use.

    With ``DATABASE_URL`` set it is compiled from that database's ``stations`` table
    (cached by boundary-set version); on the embedded default, from the shipped files.
    """
    settings = settings or get_settings()
    if settings.database.is_postgres:
        from api.db.boundary_store import router_from_database  # noqa: PLC0415

        return router_from_database(settings, progress=progress)
    return punjab_router(settings.routing.nearest_limit_m, progress=progress)
