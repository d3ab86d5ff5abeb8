"""Tables behind the area dashboard: a narrow per-call projection and its refresh mark.

``dashboard_calls`` holds, for every call, only what the dashboard's figures read: the
routed area codes, category, seriousness, and the call's queue and response intervals
and SLA limit as :mod:`geo.response` defines them (computed once, by the refresh job, not
at every page view: the definitions would otherwise need ``call_events`` joined to
``calls`` on each request). ``dashboard_refresh`` holds the id of the last call event the
projection has taken in; the job takes every event after it (new calls and lifecycle
events alike), so a new call is counted within a tick.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import BigInteger, Boolean, Double, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import metadata

__all__ = ["RESPONSE_BINS", "RESPONSE_BIN_S", "DashboardCall", "DashboardRefresh", "metadata"]

CODE = String(64)
OPEN_WHERE = ("status IN ('received', 'transferred', 'acknowledged', 'dispatched', 'en_route', "
              "'on_scene')")
"""The open calls (a partial index: the live counts read only them)."""
RESPONSE_BIN_S = 30.0
RESPONSE_BINS = 480
"""Bins of 30 s up to 4 h; slower responses share the last bin."""


class DashboardCall(DefaultBase):
    """One call as the dashboard counts it (replaced whenever the call has a new event)."""

    __tablename__ = "dashboard_calls"
    __table_args__ = (
        Index("ix_dashboard_calls_received_at", "received_at"),
        *(Index(f"ix_dashboard_calls_{level}_received", f"{level}_code", "received_at")
          for level in ("station", "tehsil", "district", "region")),
        Index("ix_dashboard_calls_open", "received_at", postgresql_where=text(OPEN_WHERE),
              sqlite_where=text(OPEN_WHERE)),
    )

    call_id: Mapped[UUID] = mapped_column(GUID, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    station_code: Mapped[str] = mapped_column(CODE)
    tehsil_code: Mapped[str] = mapped_column(CODE)
    district_code: Mapped[str] = mapped_column(CODE)
    region_code: Mapped[str] = mapped_column(CODE)
    category: Mapped[str] = mapped_column(CODE)
    serious: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    queue_s: Mapped[float | None] = mapped_column(Double)
    """Received → acknowledged, seconds (``None`` unless valid: :func:`geo.response.call_intervals`)."""
    response_s: Mapped[float | None] = mapped_column(Double)
    """Received → on scene, seconds (``None`` unless valid)."""
    response_bin: Mapped[int | None] = mapped_column(Integer)
    """``response_s`` in :data:`RESPONSE_BIN_S` steps (capped at :data:`RESPONSE_BINS` - 1):
    percentiles of any set of calls from summed bins, in SQL on both back ends."""
    within_sla: Mapped[int | None] = mapped_column(Integer)
    """1/0: on scene within the category's SLA; ``None`` with no valid response or no SLA."""


class DashboardRefresh(DefaultBase):
    """The one row saying how far the projection has read ``call_events``."""

    __tablename__ = "dashboard_refresh"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger)
    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
