"""Tables of the call service: calls, their event trail, SHO rosters and the audit log.

They share :data:`api.db.models.metadata` (advanced-alchemy's registry), so one Alembic
history migrates them with the boundary tables. Areas are referred to by code plus the
boundary set's version, never by foreign key: a new boundary set replaces area rows but
must leave every call exactly as it was routed.

- ``calls``: one row per helpline call, unique by ``idempotency_key`` (the database, not a
  process, decides which of two concurrent retries creates the call); the routed area
  codes, the SHO who was on duty, ``unstaffed``, ``duplicate_of`` and the current status.
- ``call_events``: the append-only trail (``received`` and every lifecycle event), each
  with the call as it stood after it (``snapshot``). Its integer ``id`` is the feed's
  event id, so ``Last-Event-ID`` replays from here. Area columns hold where the call was
  after the event and, for a transfer, where it came from, so every level's feed can be
  replayed with an indexed query.
- ``roster_shifts`` and ``station_rosters``: the duty roster of each station (one row per
  shift) and a per-station row that serialises concurrent replacements.
- ``audit_log``: routing decisions, call reads and writes: who, when, what.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple
from uuid import UUID

from advanced_alchemy.base import DefaultBase, IdentityBase, UUIDAuditBase
from advanced_alchemy.types import GUID, DateTimeUTC
from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import SRID, metadata

__all__ = ["CELL_RES", "NEAR_DISK_CELLS", "NEAR_RING", "AuditEntry", "CallEventRecord", "CallRecord",
           "DutyShift", "RosterShift", "StationRoster", "metadata"]

CELL_RES = 9
"""Resolution of every call's ``h3_r9`` cell (about 0.1 km², edge ~200 m)."""
NEAR_RING = 2
"""Rings of ``h3_r9`` cells around a call that hold every point within 250 m of it (the
duplicate radius; the repeat alerts' 100 m too): a point's cell centre is at most one edge
(~200 m) from the point, so the other cell's centre is within 250 + 2·200 = 650 m of this
one, while every cell of the third ring is at least 3·√3/2·347 ≈ 900 m away (tested on
random pairs in ``tests/test_calls_unit.py``)."""
NEAR_DISK_CELLS = 19
"""Cells in a disk of :data:`NEAR_RING` rings (no pentagon lies near Punjab)."""

DETAIL_JSON = JSON().with_variant(JSONB(), "postgresql")
CODE = String(64)


def _point() -> Geometry:
    """``geometry(Point, 4326)`` with a spatial index (GiST, or an R*Tree on SpatiaLite)."""
    return Geometry(geometry_type="POINT", srid=SRID, spatial_index=True)


class CallRecord(UUIDAuditBase):
    """One helpline-15 call: where it was, where it went, who had it, where it stands."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_received_at_id", "received_at", "id"),
        Index("ix_calls_h3_received", "h3_r9", "received_at"),
        *(Index(f"ix_calls_{level}_received", f"{level}_code", "received_at")
          for level in ("station", "tehsil", "district", "region")),
        Index("ix_calls_phone_received", "caller_phone", "received_at",
              postgresql_where=text("caller_phone IS NOT NULL"),
              sqlite_where=text("caller_phone IS NOT NULL")),
        Index("ix_calls_duplicate_of", "duplicate_of", postgresql_where=text("duplicate_of IS NOT NULL"),
              sqlite_where=text("duplicate_of IS NOT NULL")),
        CheckConstraint("lat BETWEEN -90 AND 90 AND lon BETWEEN -180 AND 180",
                        name="coordinates"),
    )

    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    """sha256 of the canonical request body: the same key with another body is a conflict."""
    status: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(CODE)
    serious: Mapped[bool] = mapped_column(Boolean)
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    radius_m: Mapped[float | None] = mapped_column(Double)
    geom: Mapped[WKBElement] = mapped_column(_point())
    h3_r9: Mapped[int] = mapped_column(BigInteger)
    """H3 cell (:data:`CELL_RES`) of the location: nearby calls by index lookup."""
    caller_phone: Mapped[str | None] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    station_code: Mapped[str] = mapped_column(CODE)
    tehsil_code: Mapped[str] = mapped_column(CODE)
    district_code: Mapped[str] = mapped_column(CODE)
    region_code: Mapped[str] = mapped_column(CODE)
    boundary_set: Mapped[str] = mapped_column(Text)
    """Version of the boundary set the router used (the codes above belong to it)."""
    method: Mapped[str] = mapped_column(String(16))
    out_of_coverage: Mapped[bool] = mapped_column(Boolean)
    distance_m: Mapped[float | None] = mapped_column(Double)
    outside_punjab: Mapped[str | None] = mapped_column(Text)
    """The province or territory the call came from when not Punjab (its station is only
    the nearest Punjab one, a fallback: the call should be transferred)."""
    sho_shift_id: Mapped[int | None] = mapped_column(Integer)
    sho_name: Mapped[str | None] = mapped_column(Text)
    sho_rank: Mapped[str | None] = mapped_column(Text)
    sho_phone: Mapped[str | None] = mapped_column(String(32))
    sho_shift_start: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    sho_shift_end: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    unstaffed: Mapped[bool] = mapped_column(Boolean)
    duplicate_of: Mapped[UUID | None] = mapped_column(GUID, ForeignKey("calls.id"))
    created_by: Mapped[str] = mapped_column(Text)


class CallEventRecord(IdentityBase):
    """One entry of a call's trail; ``id`` orders the feeds and is the SSE event id."""

    __tablename__ = "call_events"
    __table_args__ = (
        Index("ix_call_events_call_id_id", "call_id", "id"),
        # replay of a station's or district's feed from far back; coarser feeds and recent
        # ids are served by the primary key range (id > Last-Event-ID)
        Index("ix_call_events_station_id", "station_code", "id"),
        Index("ix_call_events_district_id", "district_code", "id"),
        *(Index(f"ix_call_events_from_{level}_id", f"from_{level}_code", "id",
                postgresql_where=text(f"from_{level}_code IS NOT NULL"),
                sqlite_where=text(f"from_{level}_code IS NOT NULL"))
          for level in ("station", "district")),
    )

    call_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("calls.id"))
    type: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    """When it happened (as reported; the call's ``received_at`` for ``received``)."""
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    from_status: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    station_code: Mapped[str] = mapped_column(CODE)
    tehsil_code: Mapped[str] = mapped_column(CODE)
    district_code: Mapped[str] = mapped_column(CODE)
    region_code: Mapped[str] = mapped_column(CODE)
    from_station_code: Mapped[str | None] = mapped_column(CODE)
    from_tehsil_code: Mapped[str | None] = mapped_column(CODE)
    from_district_code: Mapped[str | None] = mapped_column(CODE)
    from_region_code: Mapped[str | None] = mapped_column(CODE)
    reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    snapshot: Mapped[str] = mapped_column(Text)
    """The call as JSON right after this event (what live subscribers were sent)."""


class StationRoster(DefaultBase):
    """One row per station with a roster: locked by a replacement, so two never interleave."""

    __tablename__ = "station_rosters"

    station_code: Mapped[str] = mapped_column(CODE, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_by: Mapped[str] = mapped_column(Text)
    shift_count: Mapped[int] = mapped_column(Integer)


class RosterShift(IdentityBase):
    """One officer's duty as (acting) SHO of a station over ``[starts_at, ends_at)``."""

    __tablename__ = "roster_shifts"
    __table_args__ = (
        Index("ix_roster_shifts_station_start", "station_code", "starts_at"),
        CheckConstraint("ends_at > starts_at", name="order"),
    )

    station_code: Mapped[str] = mapped_column(CODE, ForeignKey("station_rosters.station_code"))
    officer_name: Mapped[str] = mapped_column(Text)
    rank: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    starts_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    ends_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))


class DutyShift(NamedTuple):
    """A ``roster_shifts`` row as call intake and the on-duty answer read it."""

    id: int
    officer_name: str
    rank: str
    phone: str | None
    starts_at: dt.datetime
    ends_at: dt.datetime


class AuditEntry(IdentityBase):
    """Who did or read what, when: routing decisions, call reads, writes, roster changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))
    call_id: Mapped[UUID | None] = mapped_column(GUID, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(DETAIL_JSON, default=dict)
