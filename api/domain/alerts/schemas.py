"""Wire forms of alerts and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class Alert(msgspec.Struct):
    """An alert: what, where, to whom (``level``/``code``), which calls, where it stands."""

    id: int
    type: str
    state: str
    level: str
    code: str
    escalation: int
    station_code: str | None
    tehsil_code: str | None
    district_code: str | None
    region_code: str | None
    call_id: UUID | None
    call_ids: list[str]
    due_at: datetime
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    summary: str
    detail: dict[str, Any]
    area_name: str | None = None
    """The name of the area the alert is addressed to (``level``/``code``)."""
    station_name: str | None = None
    tehsil_name: str | None = None
    district_name: str | None = None
    region_name: str | None = None


class AlertEvent(msgspec.Struct):
    """One entry of an alert's history (raised, escalated, updated, acknowledged, resolved)."""

    id: int
    alert_id: int
    type: str
    at: datetime
    state: str
    level: str
    code: str
    actor: str
    note: str | None


class AlertWithHistory(msgspec.Struct):
    alert: Alert
    history: list[AlertEvent]


class AlertPage(msgspec.Struct):
    """Alerts newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[Alert]
    next_cursor: str | None


class AlertAction(msgspec.Struct, forbid_unknown_fields=True):
    """An optional note with an acknowledgement or a resolution."""

    note: str | None = msgspec.field(default=None)
