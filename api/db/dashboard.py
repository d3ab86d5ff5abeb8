"""SQL of the area dashboard: the projection's refresh and the figures' aggregates.

Every figure query reads ``dashboard_calls`` (:mod:`api.db.dashboard_models`) or, for
what is live (open calls, their ages), ``calls`` over a recent window of
``received_at`` (its indexes per level). Each query is grouped by the child areas of
the area asked about, so one pass gives both the area's **Key figures** (the children
summed; percentiles from summed bins) and its **Areas** table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, case, delete, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.call_models import CallEventRecord, CallRecord
from api.db.dashboard_models import DashboardCall, DashboardRefresh
from api.db.transactions import dialect_insert, insert_columns

MARK_ID = 1
DASHBOARD_CALLS: Table = DashboardCall.__table__  # type: ignore[assignment]
OPEN_STATUSES = ("received", "transferred", "acknowledged", "dispatched", "en_route", "on_scene")
UNACKNOWLEDGED = ("received", "transferred")


async def read_mark(session: AsyncSession, *, lock: bool) -> int:
    """The last call event the projection has taken in (0 before the first refresh).
    ``lock``: the refresh's own read, in its write transaction, which holds the row
    (PostgreSQL), so two workers never refresh at once, and creates the mark at 0 when
    there is none. A plain read never writes: on SQLite a write inside a read transaction
    fails at once ("database is locked") while another connection writes."""
    statement = select(DashboardRefresh.last_event_id).where(DashboardRefresh.id == MARK_ID)
    postgres = session.get_bind().dialect.name == "postgresql"
    if lock and postgres:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).scalar_one_or_none()
    if found is None and not lock:
        return 0
    if found is None:  # another worker may be creating it too: the first one wins
        await session.execute(dialect_insert(session, DashboardRefresh).values(
            id=MARK_ID, last_event_id=0, refreshed_at=func.now())
            .on_conflict_do_nothing(index_elements=[DashboardRefresh.id]))
        found = (await session.execute(statement)).scalar_one()
    return int(found)


async def write_mark(session: AsyncSession, last_event_id: int, now: datetime) -> None:
    await session.execute(update(DashboardRefresh).where(DashboardRefresh.id == MARK_ID)
                          .values(last_event_id=last_event_id, refreshed_at=now))


async def events_until(session: AsyncSession, after_id: int, limit: int) -> int:
    """The id of the last of (at most) ``limit`` call events after ``after_id``
    (``after_id`` when there is none)."""
    ids = select(CallEventRecord.id).where(CallEventRecord.id > after_id) \
        .order_by(CallEventRecord.id).limit(limit).subquery()
    last = await session.scalar(select(func.max(ids.c.id)))
    return after_id if last is None else int(last)


def changed_calls(after_id: int, until_id: int) -> Select[Any]:
    """The calls with an event in ``(after_id, until_id]`` (a subquery: a batch of a
    history's events names tens of thousands of calls, too many for bound parameters)."""
    return (select(CallEventRecord.call_id)
            .where(CallEventRecord.id > after_id, CallEventRecord.id <= until_id).distinct())


async def replace_calls(session: AsyncSession, changed: Select[Any],
                        columns: Mapping[str, Sequence[Any]]) -> None:
    """The projection's rows of the ``changed`` calls replaced by ``columns``' rows."""
    await session.execute(delete(DashboardCall).where(DashboardCall.call_id.in_(changed)))
    await insert_columns(session, DASHBOARD_CALLS, columns)


def _area(column_of: Any, level: str, code: str) -> list[Any]:
    return [] if level == "province" else [getattr(column_of, f"{level}_code") == code]


def _child(column_of: Any, child_level: str | None) -> Any:
    return getattr(column_of, f"{child_level}_code") if child_level else literal("")


def counts_statement(level: str, code: str, child_level: str | None, since: datetime,
                     until: datetime) -> Select[Any]:
    """Per child area and category: calls, serious calls, calls acknowledged > 2 min after
    receipt, and the SLA assessment (valid responses with an SLA, those within it)."""
    c = DashboardCall
    child = _child(c, child_level)
    return (select(child.label("child"), c.category, func.count().label("calls"),
                   func.sum(case((c.serious, 1), else_=0)).label("serious"),
                   func.sum(case((c.queue_s > 120.0, 1), else_=0)).label("late_ack"),
                   func.count(c.within_sla).label("sla_assessed"),
                   func.coalesce(func.sum(c.within_sla), 0).label("within_sla"))
            .where(c.received_at >= since, c.received_at < until, *_area(c, level, code))
            .group_by(child, c.category))


def bins_statement(level: str, code: str, child_level: str | None, since: datetime,
                   until: datetime) -> Select[Any]:
    """Per child area and response bin: the number of valid response times."""
    c = DashboardCall
    child = _child(c, child_level)
    return (select(child.label("child"), c.response_bin, func.count().label("n"))
            .where(c.received_at >= since, c.received_at < until, c.response_bin.is_not(None),
                   *_area(c, level, code))
            .group_by(child, c.response_bin))


def open_counts_statement(level: str, code: str, child_level: str | None, since: datetime,
                          unacknowledged_before: datetime) -> Select[Any]:
    """Per child area, live (as of the last refresh, a second ago): open calls, open
    serious calls, and calls still unacknowledged that came in before
    ``unacknowledged_before`` (``ix_dashboard_calls_open`` holds only open calls)."""
    c = DashboardCall
    child = _child(c, child_level)
    return (select(child.label("child"), func.count().label("open"),
                   func.sum(case((c.serious, 1), else_=0)).label("open_serious"),
                   func.sum(case((c.status.in_(UNACKNOWLEDGED) & (c.received_at < unacknowledged_before),
                                  1), else_=0)).label("unacknowledged"))
            .where(c.received_at >= since, c.status.in_(OPEN_STATUSES), *_area(c, level, code))
            .group_by(child))


def open_calls_statement(level: str, code: str, since: datetime, limit: int) -> Select[Any]:
    """The open calls of the area, newest first."""
    c = CallRecord
    columns: list[Any] = [c.id, c.received_at, c.category, c.serious, c.status, c.station_code,
                          c.sho_name, c.sho_rank, c.unstaffed, c.lat, c.lon]
    return (select(*columns)
            .where(c.received_at >= since, c.status.in_(OPEN_STATUSES), *_area(c, level, code))
            .order_by(c.received_at.desc()).limit(limit))


def map_calls_statement(level: str, code: str, since: datetime, limit: int) -> Select[Any]:
    """Today's calls of the area as points (what the map draws), open ones first, then
    newest first."""
    c = CallRecord
    is_open = case((c.status.in_(OPEN_STATUSES), 0), else_=1)
    columns: list[Any] = [c.lon, c.lat, c.category, c.status, c.serious]
    return (select(*columns)
            .where(c.received_at >= since, *_area(c, level, code))
            .order_by(is_open, c.received_at.desc()).limit(limit))


def straightforward_statement(level: str, code: str, child_level: str | None, since: datetime,
                              until: datetime) -> Select[Any]:
    """The same counts straight from ``calls`` (the benchmark's reference, and a check)."""
    c = CallRecord
    child = _child(c, child_level)
    return (select(child.label("child"), c.category, func.count().label("calls"),
                   func.sum(case((c.serious, 1), else_=0)).label("serious"))
            .where(c.received_at >= since, c.received_at < until, *_area(c, level, code))
            .group_by(child, c.category))
