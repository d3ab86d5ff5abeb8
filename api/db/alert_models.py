"""Tables of the alerting: alerts, their history, and the deadline column on calls.

- ``alerts``: one row per alert, unique by ``dedup_key`` (the rule's identity of what
  it is about, e.g. ``unacknowledged:<call id>:<since>``), so two workers that evaluate
  the same call raise it once: the database, not a process, decides. ``level``/``code``
  is the command level the alert is addressed to now (it moves up on escalation); the
  area columns place it for scope filtering and feeds.
- ``alert_events``: the append-only history (raised, escalated, calls added,
  acknowledged, resolved), each with the alert as it stood after it; its integer ``id``
  is the alert feeds' event id, so ``Last-Event-ID`` replays from here.
- ``alert_due``: when the alert engine must next look at a call (``next_alert_at``),
  one row per call that has a deadline left. Written with the call and by every
  lifecycle event, so deadlines survive a restart: the engine picks up whatever fell due
  while the service was down. A narrow table of its own, not a column of ``calls``: the
  engine moves a deadline after every look, and changing an indexed column of ``calls``
  would rewrite every one of that wide table's dozen index entries each time (and keep
  the lifecycle's status updates from being HOT updates); here it touches two small
  indexes, and the table holds only the calls still being watched.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase, IdentityBase
from advanced_alchemy.types import GUID, BigIntIdentity, DateTimeUTC
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import metadata

__all__ = ["AlertDueRecord", "AlertEventRecord", "AlertRecord", "metadata"]

DETAIL_JSON = JSON().with_variant(JSONB(), "postgresql")
CODE = String(64)


class AlertRecord(IdentityBase):
    """One alert: what, where, to whom, which calls, and where it stands."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_state_raised", "state", "raised_at"),
        *(Index(f"ix_alerts_{level}_raised", f"{level}_code", "raised_at")
          for level in ("station", "district", "region")),
    )

    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    """Command level the alert is addressed to now (station, district, region, province)."""
    code: Mapped[str] = mapped_column(CODE)
    escalation: Mapped[int] = mapped_column(Integer)
    """Steps taken up the chain (0 where it was raised)."""
    station_code: Mapped[str | None] = mapped_column(CODE)
    tehsil_code: Mapped[str | None] = mapped_column(CODE)
    district_code: Mapped[str | None] = mapped_column(CODE)
    region_code: Mapped[str | None] = mapped_column(CODE)
    call_id: Mapped[UUID | None] = mapped_column(GUID, index=True)
    """The call an alert is about (breach, unacknowledged), or the first of a repeat."""
    call_ids: Mapped[list[str]] = mapped_column(DETAIL_JSON, default=list)
    due_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    """When the rule fell due (may precede ``raised_at`` after a restart)."""
    raised_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(DETAIL_JSON, default=dict)


class AlertEventRecord(IdentityBase):
    """One entry of an alert's history; ``id`` orders the alert feeds."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index("ix_alert_events_alert_id_id", "alert_id", "id"),
    )

    alert_id: Mapped[int] = mapped_column(BigIntIdentity, ForeignKey("alerts.id"))
    type: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    state: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(CODE)
    actor: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    snapshot: Mapped[str] = mapped_column(Text)
    """The alert as JSON right after this entry (what live subscribers were sent)."""


class AlertDueRecord(DefaultBase):
    """A call's next alert deadline; no row once nothing is left to watch."""

    __tablename__ = "alert_due"

    call_id: Mapped[UUID] = mapped_column(GUID, ForeignKey("calls.id"), primary_key=True)
    next_alert_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
