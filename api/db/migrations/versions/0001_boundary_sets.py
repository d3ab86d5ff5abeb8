"""Boundary sets: versioned jurisdiction tables and their history.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

``boundary_sets`` lists every set loaded (one current: ``expires_at IS NULL``);
``provinces``, ``regions``, ``districts``, ``tehsils`` and ``stations`` hold the current
set keyed by ``code``, each with ``geom geometry(MultiPolygon, 4326)`` and a spatial
index (GiST on PostGIS, an R*Tree on SpatiaLite); the ``*_history`` twins, keyed by
``(boundary_set, code)``, keep superseded sets. Geometry columns and spatial indexes go
through geoalchemy2's operations so SpatiaLite registers them in ``geometry_columns``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVEL_TABLES = ("provinces", "regions", "districts", "tehsils", "stations")
"""Coarse to fine: a table's parent is created before it."""

geo_op: Any = op
"""Alembic's ``op`` with geoalchemy2's operations (registered at import, so untyped)."""

PARENT = {"districts": ("region_code", "regions"), "tehsils": ("district_code", "districts"),
          "stations": ("tehsil_code", "tehsils")}


def _geom() -> sa.Column[Any]:
    # spatial_index=False: the index is created explicitly below, on both back ends
    return sa.Column("geom", Geometry(geometry_type="MULTIPOLYGON", srid=4326, dimension=2,
                                      spatial_index=False), nullable=False)


def _attributes(table: str) -> list[sa.Column[Any]]:
    """The columns of a level besides code, boundary_set and geom (same in its history)."""
    columns: list[sa.Column[Any]] = [sa.Column("name", sa.Text(), nullable=False)]
    if table in PARENT:
        columns.append(sa.Column(PARENT[table][0], sa.Text(), nullable=False))
    if table in ("regions", "districts", "tehsils"):
        columns.append(sa.Column("population_2023", sa.BigInteger(), nullable=True))
    if table == "tehsils":
        columns += [sa.Column("rural_2023", sa.BigInteger(), nullable=True),
                    sa.Column("urban_2023", sa.BigInteger(), nullable=True)]
    if table == "stations":
        columns += [sa.Column("stand_in", sa.Boolean(), nullable=False),
                    sa.Column("x_m", sa.Double(), nullable=True),
                    sa.Column("y_m", sa.Double(), nullable=True)]
    return columns


def _version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["boundary_set"], ["boundary_sets.version"],
                                   name=op.f(f"fk_{table}_boundary_set_boundary_sets"))


def _spatial_index(table: str) -> None:
    geo_op.create_geospatial_index(f"idx_{table}_geom", table, ["geom"], unique=False,
                               postgresql_using="gist", postgresql_ops={})


def upgrade() -> None:
    op.create_table(
        "boundary_sets",
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("loaded_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("effective_from", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("expires_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("stand_in", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("notes", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()),
                                                  "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_boundary_sets")),
    )
    op.create_index("uq_boundary_sets_current", "boundary_sets",
                    [sa.literal_column("(expires_at IS NULL)")], unique=True,
                    postgresql_where=sa.text("expires_at IS NULL"),
                    sqlite_where=sa.text("expires_at IS NULL"))

    for table in LEVEL_TABLES:
        constraints: list[sa.Constraint] = [_version_fk(table)]
        if table in PARENT:
            column, parent = PARENT[table]
            constraints.append(sa.ForeignKeyConstraint(
                [column], [f"{parent}.code"], name=op.f(f"fk_{table}_{column}_{parent}")))
        geo_op.create_geospatial_table(
            table,
            sa.Column("code", sa.Text(), nullable=False),
            *_attributes(table),
            sa.Column("boundary_set", sa.Text(), nullable=False),
            _geom(),
            *constraints,
            sa.PrimaryKeyConstraint("code", name=op.f(f"pk_{table}")),
        )
        _spatial_index(table)
        if table in PARENT:
            column = PARENT[table][0]
            op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)

    for table in LEVEL_TABLES:
        history = f"{table}_history"
        geo_op.create_geospatial_table(
            history,
            sa.Column("boundary_set", sa.Text(), nullable=False),
            sa.Column("code", sa.Text(), nullable=False),
            *_attributes(table),
            _geom(),
            _version_fk(history),
            sa.PrimaryKeyConstraint("boundary_set", "code", name=op.f(f"pk_{history}")),
        )
        _spatial_index(history)


def downgrade() -> None:
    for table in reversed(LEVEL_TABLES):
        for name in (f"{table}_history", table):
            if name in PARENT:
                op.drop_index(op.f(f"ix_{name}_{PARENT[name][0]}"), table_name=name)
            geo_op.drop_geospatial_index(f"idx_{name}_geom", table_name=name,
                                     postgresql_using="gist", column_name="geom")
            geo_op.drop_geospatial_table(name)
    op.drop_index("uq_boundary_sets_current", table_name="boundary_sets")
    op.drop_table("boundary_sets")
