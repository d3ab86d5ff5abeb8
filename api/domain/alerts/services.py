"""Alerts for people: list them in scope, acknowledge and resolve them; scan for hot spots.

No HTTP here. Every method checks the principal first; a read outside the principal's
area is 403, like every other read of the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import h3
import msgspec
import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, select

from api.areas import Areas
from api.audit import AuditService
from api.auth import Principal
from api.db.alert_models import AlertEventRecord, AlertRecord
from api.db.transactions import write_transaction
from api.domain.alerts.engine import (
    AlertContext,
    AlertWriter,
    TickReport,
    alert_event_schema,
    alert_schema,
)
from api.domain.alerts.rules import ALERT_STATES, ALERT_TYPES, COMMAND_LEVELS, hotspot_alerts
from api.domain.alerts.schemas import Alert, AlertPage, AlertWithHistory
from api.domain.analytics.schemas import CellQuery
from api.domain.analytics.services import AnalyticsService
from api.errors import BadInputError, ConflictError, NotFoundError, UnprocessableError
from geo.aggregate import LOCAL_TZ, local_times, step_index, step_starts
from jurisdictions.boundaries import PROVINCE_CODE
from jurisdictions.router import Router

MAX_PAGE = 500
DEFAULT_PAGE = 50

NEXT_STATES: dict[str, tuple[str, ...]] = {
    "open": ("acknowledged", "resolved"), "acknowledged": ("resolved",), "resolved": (),
}
"""Where a person may move an alert (the engine also resolves cleared ones itself)."""

_AREA_COLUMN: dict[str, Any] = {level: getattr(AlertRecord, f"{level}_code")
                                for level in ("station", "tehsil", "district", "region")}


EXPORT_COLUMNS = ("id", "type", "state", "summary", "level", "code", "area_name", "escalation",
                  "station_code", "station_name", "tehsil_code", "tehsil_name", "district_code",
                  "district_name", "region_code", "region_name", "raised_at", "due_at",
                  "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "resolution",
                  "calls", "call_ids", "cell", "lat", "lon")
"""An alert's exported columns, in order (no caller data: alerts carry none)."""


def named_summary(summary: str, station_code: str | None, names: dict[str, str | None]) -> str:
    """``summary`` with the station's name beside its code ("station Attock stand-in
    station 1 (PK60101-001)"), and where a cell is ("… in Attock, Attock district")."""
    station = names.get("station")
    if station_code and station and f"station {station_code}" in summary:
        summary = summary.replace(f"station {station_code}", f"station {station} ({station_code})")
    if "at cell " in summary and (names.get("tehsil") or names.get("district")):
        where = ", ".join(n for n in (station, names.get("tehsil"),
                                      f"{names['district']} district" if names.get("district") else None)
                          if n)
        summary = f"{summary} in {where}"
    return summary


class AlertService:
    """Reads and moves alerts on behalf of a principal."""

    def __init__(self, ctx: AlertContext, areas: Callable[[], Areas]) -> None:
        self.ctx = ctx
        self.areas = areas

    async def list_alerts(self, principal: Principal, *, level: str | None = None,
                          code: str | None = None, state: str | None = None,
                          type: str | None = None, limit: int = DEFAULT_PAGE,
                          cursor: str | None = None) -> AlertPage:
        """Alerts in an area (default: the principal's own), newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise BadInputError(f"limit must be between 1 and {MAX_PAGE}")
        conditions = self.conditions(principal, level=level, code=code, state=state, type=type)
        if cursor is not None:
            if not cursor.isdigit():
                raise BadInputError("invalid cursor (pass back next_cursor unchanged)")
            conditions.append(AlertRecord.id < int(cursor))
        statement = (select(AlertRecord.__table__).where(*conditions)
                     .order_by(AlertRecord.id.desc()).limit(limit + 1))
        async with self.ctx.sessions() as session:
            rows = [dict(r) for r in (await session.execute(statement)).mappings()]
        shown = rows[:limit]
        next_cursor = str(shown[-1]["id"]) if len(rows) > limit else None
        return AlertPage(items=[self.named(alert_schema(r)) for r in shown], next_cursor=next_cursor)

    def conditions(self, principal: Principal, *, level: str | None = None, code: str | None = None,
                   state: str | None = None, type: str | None = None) -> list[ColumnElement[bool]]:
        """The alerts a principal may read with these filters (the list's and the export's)."""
        principal.require("alert.read")
        if state is not None and state not in ALERT_STATES:
            raise BadInputError(f"unknown state {state!r}; states are {', '.join(ALERT_STATES)}")
        if type is not None and type not in ALERT_TYPES:
            raise BadInputError(f"unknown type {type!r}; types are {', '.join(ALERT_TYPES)}")
        conditions: list[ColumnElement[bool]] = []
        if level is not None or code is not None:
            if level not in COMMAND_LEVELS:
                raise BadInputError(f"level must be one of {', '.join(COMMAND_LEVELS)}")
            if level != "province":
                if not code:
                    raise BadInputError(f"level {level} needs a code")
                try:
                    area = self.areas().get(level, code)
                except NotFoundError as exc:
                    raise UnprocessableError(f"no {level} with code {code!r}") from exc
                principal.require_scope(area.path, f"{level} {code}")
                conditions.append(_AREA_COLUMN[level] == code)
            else:
                principal.require_scope({"province": PROVINCE_CODE}, "the province")
        if principal.role != "admin" and principal.level in _AREA_COLUMN:
            conditions.append(_AREA_COLUMN[principal.level] == principal.scope)
        if state is not None:
            conditions.append(AlertRecord.state == state)
        if type is not None:
            conditions.append(AlertRecord.type == type)
        return conditions

    def named(self, alert: Alert) -> Alert:
        """The alert with its areas' names, and a summary that says where in words."""
        areas = self.areas()
        names = {level: areas.name(level, getattr(alert, f"{level}_code"))
                 for level in ("station", "tehsil", "district", "region")}
        return msgspec.structs.replace(
            alert, area_name=areas.name(alert.level, alert.code) or areas.name("province", alert.code),
            station_name=names["station"], tehsil_name=names["tehsil"],
            district_name=names["district"], region_name=names["region"],
            summary=named_summary(alert.summary, alert.station_code, names))

    async def export_rows(self, principal: Principal, conditions: list[ColumnElement[bool]], *,
                          max_rows: int) -> pd.DataFrame:
        """The selected alerts as a table, oldest first, with names and a position: the
        call's (for call alerts) or the hot-spot cell's centre."""
        from sqlalchemy import func  # noqa: PLC0415

        from api.db.call_models import CallRecord  # noqa: PLC0415

        statement = (select(AlertRecord.__table__, CallRecord.lat, CallRecord.lon)
                     .outerjoin(CallRecord, CallRecord.id == AlertRecord.call_id)
                     .where(*conditions).order_by(AlertRecord.id))
        async with self.ctx.sessions() as session:
            count = int(await session.scalar(
                select(func.count()).select_from(AlertRecord).where(*conditions)) or 0)
            if count > max_rows:
                raise UnprocessableError(f"the export would hold {count:,} alerts (limit {max_rows:,}); "
                                         "narrow it with state, type or an area")
            rows = [dict(r) for r in (await session.execute(statement)).mappings()]
        records = []
        for row in rows:
            alert = self.named(alert_schema(row))
            lat, lon = row.get("lat"), row.get("lon")
            cell = alert.detail.get("h3") if isinstance(alert.detail, dict) else None
            if lat is None and cell:
                lat, lon = h3.cell_to_latlng(str(cell))
            records.append({
                "id": alert.id, "type": alert.type, "state": alert.state, "summary": alert.summary,
                "level": alert.level, "code": alert.code, "area_name": alert.area_name,
                "escalation": alert.escalation,
                "station_code": alert.station_code, "station_name": alert.station_name,
                "tehsil_code": alert.tehsil_code, "tehsil_name": alert.tehsil_name,
                "district_code": alert.district_code, "district_name": alert.district_name,
                "region_code": alert.region_code, "region_name": alert.region_name,
                "raised_at": alert.raised_at, "due_at": alert.due_at,
                "acknowledged_at": alert.acknowledged_at, "acknowledged_by": alert.acknowledged_by,
                "resolved_at": alert.resolved_at, "resolved_by": alert.resolved_by,
                "resolution": alert.resolution, "calls": len(alert.call_ids),
                "call_ids": " ".join(alert.call_ids), "cell": cell, "lat": lat, "lon": lon})
        frame = pd.DataFrame.from_records(records, columns=EXPORT_COLUMNS)
        for name in ("raised_at", "due_at", "acknowledged_at", "resolved_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame

    async def get_alert(self, alert_id: int, principal: Principal) -> AlertWithHistory:
        principal.require("alert.read")
        async with self.ctx.sessions() as session:
            row = await _visible(session, alert_id, principal, lock=False)
            history = (await session.execute(
                select(AlertEventRecord.__table__).where(AlertEventRecord.alert_id == alert_id)
                .order_by(AlertEventRecord.id))).mappings()
            events = [alert_event_schema(dict(e)) for e in history]
        return AlertWithHistory(alert=self.named(alert_schema(row)), history=events)

    async def move(self, alert_id: int, to_state: str, principal: Principal,
                   note: str | None = None) -> Alert:
        """Acknowledge or resolve; 409 naming the allowed moves when it may not."""
        principal.require("alert.act")
        now = self.ctx.clock()
        async with self.ctx.sessions() as session:
            async with write_transaction(session):
                row = await _visible(session, alert_id, principal, lock=True)
                allowed = NEXT_STATES[row["state"]]
                if to_state not in allowed:
                    names = ", ".join(allowed) if allowed else "none (the alert is resolved)"
                    raise ConflictError(f"a {row['state']} alert cannot be {to_state}; allowed: {names}",
                                        extra={"state": row["state"], "allowed": list(allowed)})
                writer = AlertWriter(await session.connection(), self.ctx)
                who = f"{principal.role}:{principal.subject}"
                if to_state == "acknowledged":
                    writer.set(row, now, state="acknowledged", acknowledged_at=now,
                               acknowledged_by=who)
                    writer.event(row, "acknowledged", now, who, note)
                else:
                    writer.resolve(row, now, who, note, now)
                await writer.flush()
                await AuditService(session=session).record(
                    principal, f"alert.{to_state}", now,
                    call_id=row["call_id"], detail={"alert_id": alert_id, "note": note})
            await writer.publish()
        return self.named(alert_schema(row))


async def _visible(session: Any, alert_id: int, principal: Principal, *, lock: bool
                   ) -> dict[str, Any]:
    statement = select(AlertRecord.__table__).where(AlertRecord.id == alert_id)
    if lock:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).mappings().first()
    if found is None:
        raise NotFoundError(f"no alert {alert_id}")
    row = dict(found)
    path = {level: row[f"{level}_code"] for level in _AREA_COLUMN} | {"province": PROVINCE_CODE}
    principal.require_scope(path, f"alert {alert_id}")
    return row


@dataclass
class HotspotScanner:
    """Alert 3: the emerging hot-spot analysis of the recent history, province-wide.

    Runs the hot-spot issue's detector (:class:`geo.emerging.EmergingHotSpots` through
    :class:`AnalyticsService`) over the last ``policy.hotspot_steps`` whole steps and
    raises one alert per cell that is a new or intensifying hot spot in the latest
    step, addressed to the district its centre routes to.
    """

    ctx: AlertContext
    analytics: AnalyticsService
    router: Callable[[], Router]

    def window(self, now: datetime) -> tuple[datetime, datetime, datetime]:
        """Start of the first step, start of the latest whole step, and the end (the start
        of the step ``now`` lies in), as aware times."""
        policy = self.ctx.policy
        step = policy.hotspot_step
        current = step_index(local_times(pd.Series([pd.Timestamp(now)])), step)[0]  # type: ignore[arg-type]
        starts = step_starts(np.array([current - policy.hotspot_steps, current - 1, current]),
                             step).tz_localize(LOCAL_TZ)  # type: ignore[arg-type]
        first, last, end = (t.to_pydatetime() for t in starts)
        return first, last, end

    async def scan(self, now: datetime | None = None) -> TickReport:
        now = now or self.ctx.clock()
        policy = self.ctx.policy
        since, last_step, until = self.window(now)
        query = CellQuery(level="province", res=policy.hotspot_res, since=since, until=until,
                          step=policy.hotspot_step, fdr=True)  # type: ignore[arg-type]
        result = await self.analytics.compute("emerging", query, background=True)
        frame = result.frame
        from geo.emerging import ALERT_CLASSES  # noqa: PLC0415

        hot = frame[frame["category"].isin(ALERT_CLASSES)].reset_index(drop=True)
        report = TickReport()
        if hot.empty:
            return report
        paths = await anyio.to_thread.run_sync(lambda: self._paths(hot))
        routed = [i for i, path in enumerate(paths) if path]  # centres outside every station
        wanted = hotspot_alerts(hot.iloc[routed], [paths[i] for i in routed], last_step, policy)
        async with self.ctx.sessions() as session:
            async with write_transaction(session):
                writer = AlertWriter(await session.connection(), self.ctx)
                await writer.apply(wanted, now, report)
            await writer.publish()
        return report

    def _paths(self, hot: pd.DataFrame) -> list[dict[str, str]]:
        import h3  # noqa: PLC0415

        centres = [h3.cell_to_latlng(cell) for cell in hot["h3"]]
        answers = self.router().resolve_many([c[0] for c in centres], [c[1] for c in centres])
        out: list[dict[str, str]] = []
        for row in answers.itertuples(index=False):
            if not row.station_code:
                out.append({})
                continue
            out.append({"station": str(row.station_code), "tehsil": str(row.tehsil_code),
                        "district": str(row.district_code), "region": str(row.region_code),
                        "province": PROVINCE_CODE})
        return out
