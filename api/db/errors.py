"""Errors of the persistence layer, each refining an application error and a built-in.

Callers (the CLI, the service's one exception mapping) catch :class:`DatabaseError` for
the whole family; the built-in bases keep generic ``except ValueError`` code working.
"""

from __future__ import annotations

from api.errors import AppError, ConflictError, NotFoundError, UnavailableError


class DatabaseError(AppError):
    """Base class of every error raised by :mod:`api.db`."""

    status = 500


class DatabaseConfigError(DatabaseError, ValueError):
    """``DATABASE_URL`` (or the SQLite path) cannot be used as given."""


class DatabaseUnavailableError(DatabaseError, UnavailableError, ConnectionError):
    """The database does not answer (down, wrong host or port, refused login)."""

    status = 503


class SpatialExtensionError(DatabaseError, RuntimeError):
    """PostGIS (or SpatiaLite) is missing, so geometry columns cannot exist."""


class NoBoundarySetError(DatabaseError, NotFoundError):
    """The database holds no boundary set yet (run ``safecity jurisdictions load``)."""

    status = 404


class BoundarySetConflictError(DatabaseError, ConflictError):
    """The set cannot be written as asked (its version was superseded, dates go backwards)."""

    status = 409


class BoundarySetWriteError(DatabaseError, ValueError):
    """The set's frames cannot be stored (missing columns, bad geometry, broken parents)."""

    status = 400
