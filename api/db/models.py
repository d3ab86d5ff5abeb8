"""SQLAlchemy 2 models of the system of record (PostGIS, or SQLite with SpatiaLite).

Every model derives from advanced-alchemy's :class:`~advanced_alchemy.base.DefaultBase`,
so they share advanced-alchemy's registry and metadata (:data:`metadata`, the one
Alembic migrates) with the service's own tables, which derive from its UUID bases.
``DefaultBase`` adds no primary key of its own: jurisdiction tables are keyed by their
official ``code`` text.

Boundary sets
-------------
``regions``, ``districts``, ``tehsils`` and ``stations`` (and ``provinces``) hold the
**current** set, one row per area with ``code text primary key``, ``name``, the parent's
code, the set's version in ``boundary_set`` and ``geom geometry(MultiPolygon, 4326)``
with a spatial index, so QGIS opens them as they are. ``boundary_sets`` has one row per
set ever loaded: when it took effect, when it was superseded (``expires_at``, null for
the current one; a partial unique index allows one such row) and where it came from.
A superseded set's rows move to the ``*_history`` twins (same columns, keyed by
``(boundary_set, code)``) in the transaction that loads its successor, so the current
tables stay small and keyed by code, and any past set can be read back whole.

Other tables must refer to an area by its code and the set's version (as text), never
by a foreign key to a current table: those rows are replaced when a new set is loaded.
"""

from __future__ import annotations

import datetime as dt

from advanced_alchemy.base import DefaultBase, orm_registry
from advanced_alchemy.types import DateTimeUTC
from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    MetaData,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

metadata: MetaData = orm_registry.metadata
"""The metadata every safecity model (and Alembic's ``target_metadata``) shares."""

SRID = 4326


def _area() -> Geometry:
    """``geometry(MultiPolygon, 4326)`` with a GiST index (an R*Tree on SpatiaLite).

    A new type object per column: geoalchemy2's DDL hooks change the type in place.
    """
    return Geometry(geometry_type="MULTIPOLYGON", srid=SRID, spatial_index=True)


_VERSION_FK = "boundary_sets.version"

NOTES_JSON = JSON().with_variant(JSONB(), "postgresql")
"""JSON (JSONB on PostgreSQL). Not advanced-alchemy's ``JsonB``: with SQLAlchemy 2.1 its
Oracle variant fails when attached to a table (``util.portable_instancemethod`` is gone)."""


class BoundarySetRecord(DefaultBase):
    """One boundary set: its version and the period it is (or was) in force."""

    __tablename__ = "boundary_sets"
    __table_args__ = (
        # at most one current set: the expression is the same (true) on every current row
        Index("uq_boundary_sets_current", text("(expires_at IS NULL)"), unique=True,
              postgresql_where=text("expires_at IS NULL"),
              sqlite_where=text("expires_at IS NULL")),
    )

    version: Mapped[str] = mapped_column(Text, primary_key=True)
    loaded_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC)
    effective_from: Mapped[dt.datetime] = mapped_column(DateTimeUTC)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC)
    stand_in: Mapped[bool] = mapped_column(Boolean, server_default=false())
    """True when any station of the set is a stand-in (not official police data)."""
    source: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[dict[str, str]] = mapped_column(NOTES_JSON, default=dict)


# ---------------------------------------------------------------- current tables
class Province(DefaultBase):
    """The province outline of the current set (the root of the hierarchy)."""

    __tablename__ = "provinces"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK))
    geom: Mapped[WKBElement] = mapped_column(_area())


class Region(DefaultBase):
    """A police region (RPO) of the current set."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    population_2023: Mapped[int | None] = mapped_column(BigInteger)
    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK))
    geom: Mapped[WKBElement] = mapped_column(_area())


class District(DefaultBase):
    """A district (DPO/CPO) of the current set."""

    __tablename__ = "districts"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(Text, ForeignKey("regions.code"), index=True)
    population_2023: Mapped[int | None] = mapped_column(BigInteger)
    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK))
    geom: Mapped[WKBElement] = mapped_column(_area())


class Tehsil(DefaultBase):
    """A tehsil of the current set, with its census 2023 population when known."""

    __tablename__ = "tehsils"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(Text, ForeignKey("districts.code"), index=True)
    population_2023: Mapped[int | None] = mapped_column(BigInteger)
    rural_2023: Mapped[int | None] = mapped_column(BigInteger)
    urban_2023: Mapped[int | None] = mapped_column(BigInteger)
    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK))
    geom: Mapped[WKBElement] = mapped_column(_area())


class Station(DefaultBase):
    """A police-station area (SHO) of the current set; ``stand_in`` until official."""

    __tablename__ = "stations"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    tehsil_code: Mapped[str] = mapped_column(Text, ForeignKey("tehsils.code"), index=True)
    stand_in: Mapped[bool] = mapped_column(Boolean)
    x_m: Mapped[float | None] = mapped_column(Double)
    """Station point, EPSG:32643 metres (stand-ins have one; imported areas may not)."""
    y_m: Mapped[float | None] = mapped_column(Double)
    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK))
    geom: Mapped[WKBElement] = mapped_column(_area())


# ---------------------------------------------------------------- superseded sets
class ProvinceHistory(DefaultBase):
    """Provinces of superseded sets."""

    __tablename__ = "provinces_history"

    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    geom: Mapped[WKBElement] = mapped_column(_area())


class RegionHistory(DefaultBase):
    """Regions of superseded sets."""

    __tablename__ = "regions_history"

    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    population_2023: Mapped[int | None] = mapped_column(BigInteger)
    geom: Mapped[WKBElement] = mapped_column(_area())


class DistrictHistory(DefaultBase):
    """Districts of superseded sets."""

    __tablename__ = "districts_history"

    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(Text)
    population_2023: Mapped[int | None] = mapped_column(BigInteger)
    geom: Mapped[WKBElement] = mapped_column(_area())


class TehsilHistory(DefaultBase):
    """Tehsils of superseded sets."""

    __tablename__ = "tehsils_history"

    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(Text)
    population_2023: Mapped[int | None] = mapped_column(BigInteger)
    rural_2023: Mapped[int | None] = mapped_column(BigInteger)
    urban_2023: Mapped[int | None] = mapped_column(BigInteger)
    geom: Mapped[WKBElement] = mapped_column(_area())


class StationHistory(DefaultBase):
    """Station areas of superseded sets."""

    __tablename__ = "stations_history"

    boundary_set: Mapped[str] = mapped_column(Text, ForeignKey(_VERSION_FK), primary_key=True)
    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    tehsil_code: Mapped[str] = mapped_column(Text)
    stand_in: Mapped[bool] = mapped_column(Boolean)
    x_m: Mapped[float | None] = mapped_column(Double)
    y_m: Mapped[float | None] = mapped_column(Double)
    geom: Mapped[WKBElement] = mapped_column(_area())


AreaModel = type[Province] | type[Region] | type[District] | type[Tehsil] | type[Station]
HistoryModel = (type[ProvinceHistory] | type[RegionHistory] | type[DistrictHistory]
                | type[TehsilHistory] | type[StationHistory])

CURRENT: dict[str, AreaModel] = {
    "province": Province, "region": Region, "district": District, "tehsil": Tehsil,
    "station": Station,
}
"""Current table of each level, coarse to fine (parents are written before children)."""

HISTORY: dict[str, HistoryModel] = {
    "province": ProvinceHistory, "region": RegionHistory, "district": DistrictHistory,
    "tehsil": TehsilHistory, "station": StationHistory,
}
"""History table of each level."""


def table_of(model: type[DefaultBase]) -> Table:
    """A model's Core table (typed as such: ``__table__`` is typed as any FromClause)."""
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


BOUNDARY_SETS = table_of(BoundarySetRecord)
CURRENT_TABLES: dict[str, Table] = {level: table_of(m) for level, m in CURRENT.items()}
HISTORY_TABLES: dict[str, Table] = {level: table_of(m) for level, m in HISTORY.items()}
