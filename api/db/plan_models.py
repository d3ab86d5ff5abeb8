"""The ``plans`` table: Safe City expansion plans run as background jobs.

One row per plan, written by the worker that runs it and read by any worker, so
``GET /api/v1/plans/{id}`` answers from whichever process receives it and after a
restart. It shares :data:`api.db.models.metadata` (migration ``0004``).

A row holds the request (``params``), where the job stands (``state``: ``queued``,
``running``, ``succeeded`` or ``failed``; ``stage`` and ``progress`` 0..1; seconds per
stage in ``timings``), who asked (``created_by``, ``created_role``), the tehsil and the
codes above it (for scope checks without the boundary set that was in force), and when
done the ``summary``, the sites as a GeoJSON FeatureCollection (``result``) and the
demand cells with their coverage (``demand``). Nothing in it identifies a caller: demand
is counted per H3 cell.

``owner`` (``host:pid:token``) and ``heartbeat_at`` say which process has an unfinished
job and that it is alive; a job whose process died is marked failed ("interrupted") by
the next process to start on that host, or by any process once the heartbeat is stale.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from advanced_alchemy.base import DefaultBase
from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import JSON, CheckConstraint, Double, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from api.db.models import metadata

__all__ = ["PLAN_STATES", "PlanRecord", "metadata"]

PLAN_JSON = JSON().with_variant(JSONB(), "postgresql")
CODE = String(64)
PLAN_STATES = ("queued", "running", "succeeded", "failed")
UNFINISHED = ("queued", "running")


class PlanRecord(DefaultBase):
    """One expansion plan job and, once it succeeded, its result."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed')", name="state"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
        Index("ix_plans_state_heartbeat", "state", "heartbeat_at"),
        Index("ix_plans_district_created", "district_code", "created_at"),
    )

    id: Mapped[UUID] = mapped_column(GUID, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[float] = mapped_column(Double)
    params: Mapped[dict[str, Any]] = mapped_column(PLAN_JSON)
    """The request as checked: tehsil, sites, radius_m, model, target, from, until, res, …"""
    tehsil_code: Mapped[str] = mapped_column(CODE)
    tehsil_name: Mapped[str] = mapped_column(Text)
    district_code: Mapped[str] = mapped_column(CODE)
    region_code: Mapped[str] = mapped_column(CODE)
    boundary_set: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(Text)
    created_role: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(Text)
    """``host:pid:token`` of the process that runs the job."""
    created_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTimeUTC(timezone=True))
    timings: Mapped[dict[str, Any]] = mapped_column(PLAN_JSON)
    """Seconds per stage (the running stage's so far, as of the last update)."""
    error: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(PLAN_JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(PLAN_JSON)
    """The sites as a GeoJSON FeatureCollection (existing ones marked), ``summary`` in it."""
    demand: Mapped[list[Any] | None] = mapped_column(PLAN_JSON)
    """Demand cells: ``[h3, calls, serious_calls, demand, covered_before, covered_after, site_id]``."""
