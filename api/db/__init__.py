"""Persistence: engines, models, migrations and the boundary-set store.

PostGIS (``DATABASE_URL``) is the system of record; without it the embedded SQLite file
with SpatiaLite holds the same tables. Everything that talks to a database goes through
this package, so the domain packages (``jurisdictions``, ``geo``) never import SQLAlchemy.
"""
