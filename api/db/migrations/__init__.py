"""Alembic's script directory for safecity's schema (see :mod:`api.db.migrate`)."""
