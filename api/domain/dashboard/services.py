"""The area dashboard's data: **Key figures**, **Areas**, the map layer, open calls, alerts.

One source of truth with the API: the intervals and SLA shares come from
:mod:`geo.response` (the same functions ``GET /stats/response`` uses), applied once per
call by :class:`DashboardRefresher` into ``dashboard_calls``; scope is
:class:`api.auth.Principal`'s. Figures of an area are read grouped by its child areas,
so the area's figures are its children summed (percentiles from summed 30-s bins: within
30 s of the exact ones) and the **Areas** table costs nothing more.

Each figure comes with its baseline: the mean (counts) or the pooled value (percentiles,
SLA share) of the same weekday in each of the last four weeks up to the same time of
day (to the quarter hour). Past days do not change, so their aggregates are kept for a
few minutes per area (:data:`PAST_TTL_S`); what is live (today, open calls) is read on
every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import anyio
import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.areas import PARENT_LEVEL, Area, Areas
from api.auth import Principal
from api.db import dashboard as sql
from api.db.alert_models import AlertEventRecord, AlertRecord
from api.db.call_models import CallEventRecord, CallRecord
from api.db.dashboard_models import RESPONSE_BIN_S, RESPONSE_BINS
from api.db.transactions import write_transaction
from api.domain.dashboard.maplayer import STILL_FORMAT, static_map_bytes_job
from api.domain.maps.services import DECIMALS
from api.domain.stats.services import ResponseQuery, stages_statement
from api.errors import ForbiddenError
from api.workers import WorkerPool
from geo.aggregate import LOCAL_TZ
from geo.response import SlaTable, call_intervals, call_sla_minutes, within_sla

CHILD_LEVEL = {parent: child for child, parent in PARENT_LEVEL.items()}
BASELINE_WEEKS = 4
PAST_TTL_S = 600.0
"""How long aggregates of past days are kept per area (late events change them little)."""
SETTLED = timedelta(minutes=10)
TODAY_TTL_S = 60.0
"""Today's hours that ended more than :data:`SETTLED` ago are kept this long (new calls
fall in the hours read live; a call's later events reach the earlier hours' response
figures within a minute)."""
OPEN_WINDOW = timedelta(hours=24)
"""Open calls are looked for among the calls of the last 24 h (older open calls are the
alert engine's business; the ``received_at`` index keeps this read short)."""
UNACKNOWLEDGED_AFTER = timedelta(minutes=2)
OPEN_ROWS = 200
MAP_POINTS = 5000
"""Today's calls drawn on a map at most (open ones first): a province's day is ~60,000."""
REFRESH_EVENTS = 20_000
"""Call events taken in per refresh transaction (a tick's; a second holds ~100 at full scale)."""
CATCH_UP_EVENTS = 200_000


def bin_percentile(bins: Mapping[int, int], q: float) -> float | None:
    """The ``q`` quantile (0–1, numpy's linear interpolation between order statistics) of
    values known only by their :data:`RESPONSE_BIN_S` bins, each bin's values taken as
    spread evenly through it; seconds, ``None`` for no values."""
    if not bins:
        return None
    keys = np.array(sorted(bins), dtype=np.float64)
    counts = np.array([bins[int(k)] for k in keys], dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return None
    before = np.concatenate(([0.0], np.cumsum(counts)[:-1]))

    def order_statistic(k: float) -> float:
        at = int(np.searchsorted(before + counts, k, side="right"))
        at = min(at, len(keys) - 1)
        return float((keys[at] + (k - before[at] + 0.5) / counts[at]) * RESPONSE_BIN_S)

    rank = q * (total - 1)
    low, high = np.floor(rank), np.ceil(rank)
    a, b = order_statistic(low), order_statistic(high)
    return float(a + (b - a) * (rank - low))


@dataclass
class Tally:
    """Sums of one area over one window (addable: children into their parent)."""

    calls: int = 0
    serious: int = 0
    late_ack: int = 0
    sla_assessed: int = 0
    within_sla: int = 0

    def __post_init__(self) -> None:
        self.by_category: dict[str, int] = {}
        self.bins: dict[int, int] = {}

    def add(self, other: Tally) -> None:
        self.calls += other.calls
        self.serious += other.serious
        self.late_ack += other.late_ack
        self.sla_assessed += other.sla_assessed
        self.within_sla += other.within_sla
        for key, n in other.by_category.items():
            self.by_category[key] = self.by_category.get(key, 0) + n
        for bin_, n in other.bins.items():
            self.bins[bin_] = self.bins.get(bin_, 0) + n


@dataclass
class Live:
    open: int = 0
    open_serious: int = 0
    unacknowledged: int = 0


def _merged(*parts: dict[str, Tally]) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for part in parts:
        for key, tally in part.items():
            out.setdefault(key, Tally()).add(tally)
    return out


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60.0, 2)


class DashboardService:
    """Reads the dashboard's figures for areas in a principal's scope (see module doc)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], areas: Callable[[], Areas], *,
                 version: Callable[[], str], category_label: Callable[[str], str], workers: WorkerPool,
                 clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.areas = areas
        self.version = version
        self.category_label = category_label
        """A category's label (the call service's :class:`Categories`)."""
        self.workers = workers
        self.clock = clock
        self._past: dict[tuple[Any, ...], tuple[float, dict[str, Tally]]] = {}
        self._maps: dict[tuple[str, str, str], StillMap] = {}

    # ------------------------------------------------------------------ access
    def area(self, principal: Principal, level: str, code: str) -> Area:
        """The area after the checks: 404 unknown, 403 outside the principal's scope."""
        area = self.areas().get(level, code)
        principal.require_scope(area.path, f"the {level} {code}")
        return area

    @staticmethod
    def may(principal: Principal, action: Any) -> bool:
        try:
            principal.require(action)
        except ForbiddenError:
            return False
        return True

    # ------------------------------------------------------------------ windows
    def windows(self) -> dict[str, Any]:
        """Today (local midnight to now), the baseline days' windows, the last 7 days."""
        now = self.clock()
        local = now.astimezone(ZoneInfo(LOCAL_TZ))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        so_far = now - midnight
        quarter = timedelta(minutes=15 * (int(so_far.total_seconds()) // 900))
        baseline = [(midnight - timedelta(days=7 * k), midnight - timedelta(days=7 * k) + quarter)
                    for k in range(1, BASELINE_WEEKS + 1)]
        return {"now": now, "midnight": midnight, "baseline": baseline,
                "week_start": midnight - timedelta(days=6), "local_date": local.date()}

    # ------------------------------------------------------------------ reads
    async def _tallies(self, area: Area, since: datetime, until: datetime) -> dict[str, Tally]:
        """Per child code (``""`` for a station, which has none): the sums of the window."""
        child = CHILD_LEVEL.get(area.level)
        out: dict[str, Tally] = {}
        async with self.sessions() as session:
            counts = (await session.execute(
                sql.counts_statement(area.level, area.code, child, since, until))).all()
            bins = (await session.execute(
                sql.bins_statement(area.level, area.code, child, since, until))).all()
        for row in counts:
            tally = out.setdefault(str(row.child), Tally())
            tally.calls += int(row.calls)
            tally.serious += int(row.serious or 0)
            tally.late_ack += int(row.late_ack or 0)
            tally.sla_assessed += int(row.sla_assessed or 0)
            tally.within_sla += int(row.within_sla or 0)
            tally.by_category[str(row.category)] = int(row.calls)
        for row in bins:
            out.setdefault(str(row.child), Tally()).bins[int(row.response_bin)] = int(row.n)
        return out

    async def _past_tallies(self, area: Area, since: datetime, until: datetime, *,
                            ttl_s: float = PAST_TTL_S) -> dict[str, Tally]:
        key = (area.level, area.code, since, until)
        found = self._past.get(key)
        if found is not None and time.monotonic() - found[0] < ttl_s:
            return found[1]
        value = await self._tallies(area, since, until)
        if len(self._past) > 4096:
            self._past.clear()
        self._past[key] = (time.monotonic(), value)
        return value

    async def _live(self, area: Area, now: datetime) -> dict[str, Live]:
        child = CHILD_LEVEL.get(area.level)
        async with self.sessions() as session:
            rows = (await session.execute(sql.open_counts_statement(
                area.level, area.code, child, now - OPEN_WINDOW, now - UNACKNOWLEDGED_AFTER))).all()
        return {str(r.child): Live(int(r.open), int(r.open_serious or 0), int(r.unacknowledged or 0))
                for r in rows}

    # ------------------------------------------------------------------ figures
    def _figures(self, today: Tally, baseline: list[Tally], week: Tally, live: Live
                 ) -> dict[str, Any]:
        pooled = Tally()
        for day in baseline:
            pooled.add(day)
        days = len(baseline) or 1

        def mean(values: list[int]) -> float:
            return round(sum(values) / days, 1)

        def share(t: Tally) -> float | None:
            return round(t.within_sla / t.sla_assessed, 3) if t.sla_assessed else None

        codes = sorted(set(today.by_category) | set(pooled.by_category) | set(week.by_category))
        return {
            "calls_today": {"value": today.calls, "baseline": mean([d.calls for d in baseline])},
            "calls_today_by_category": [
                {"category": c, "label": self.category_label(c),
                 "value": today.by_category.get(c, 0),
                 "baseline": mean([d.by_category.get(c, 0) for d in baseline])} for c in codes],
            "calls_7d": {"value": week.calls, "baseline": None},
            "calls_7d_by_category": [{"category": c, "label": self.category_label(c),
                                      "value": week.by_category.get(c, 0)} for c in codes],
            "open_calls": {"value": live.open, "baseline": None},
            "serious_calls": {"value": today.serious,
                              "baseline": mean([d.serious for d in baseline])},
            "open_serious_calls": {"value": live.open_serious, "baseline": None},
            "unacknowledged_2min": {"value": live.unacknowledged, "baseline": None},
            "acknowledged_late": {"value": today.late_ack,
                                  "baseline": mean([d.late_ack for d in baseline])},
            "response_p50_min": {"value": _minutes(bin_percentile(today.bins, 0.5)),
                                 "baseline": _minutes(bin_percentile(pooled.bins, 0.5))},
            "response_p90_min": {"value": _minutes(bin_percentile(today.bins, 0.9)),
                                 "baseline": _minutes(bin_percentile(pooled.bins, 0.9))},
            "within_sla": {"value": share(today), "baseline": share(pooled)},
        }

    async def figures(self, principal: Principal, level: str, code: str) -> dict[str, Any]:
        """**Key figures** of the area and the same per child area (**Areas**)."""
        principal.require("stats.read")
        area = self.area(principal, level, code)
        w = self.windows()
        # today: the hours that ended 10 min ago and more re-read every minute, the rest live
        cut = max(w["midnight"], (w["now"] - SETTLED).replace(minute=0, second=0, microsecond=0))
        today = await self._tallies(area, cut, w["now"])
        if cut > w["midnight"]:
            earlier = await self._past_tallies(area, w["midnight"], cut, ttl_s=TODAY_TTL_S)
            today = _merged(earlier, today)
        baseline = [await self._past_tallies(area, a, b) for a, b in w["baseline"]]
        past_week = await self._past_tallies(area, w["week_start"], w["midnight"])
        live = await self._live(area, w["now"])
        child = CHILD_LEVEL.get(area.level)
        areas = self.areas()
        codes = ([a.code for a in areas.children(area)] if child else [""])

        def figures_of(keys: list[str]) -> dict[str, Any]:
            t, week, lv = Tally(), Tally(), Live()
            days = [Tally() for _ in baseline]
            for key in keys:
                t.add(today.get(key, Tally()))
                week.add(today.get(key, Tally()))
                week.add(past_week.get(key, Tally()))
                for day, source in zip(days, baseline, strict=True):
                    day.add(source.get(key, Tally()))
                found = live.get(key)
                if found:
                    lv.open += found.open
                    lv.open_serious += found.open_serious
                    lv.unacknowledged += found.unacknowledged
            return self._figures(t, days, week, lv)

        return {
            "area": {"level": area.level, "code": area.code, "name": area.name},
            "as_of": w["now"], "local_date": w["local_date"].isoformat(),
            "baseline_days": [a.date().isoformat() for a, _ in w["baseline"]],
            "key_figures": figures_of(codes),
            "child_level": child,
            "areas": [{"level": child, "code": c, "name": areas.name(child, c),
                       **figures_of([c])} for c in codes] if child else [],
        }

    # ------------------------------------------------------------------ live lists
    async def open_calls(self, principal: Principal, level: str, code: str) -> list[dict[str, Any]]:
        """The area's open calls, newest first (ids, not callers: no phone numbers)."""
        principal.require("call.read")
        area = self.area(principal, level, code)
        now = self.clock()
        async with self.sessions() as session:
            rows = (await session.execute(sql.open_calls_statement(
                area.level, area.code, now - OPEN_WINDOW, OPEN_ROWS))).all()
        areas = self.areas()
        return [{"id": str(r.id), "received_at": r.received_at,
                 "age_s": round((now - r.received_at).total_seconds()),
                 "category": r.category, "category_label": self.category_label(r.category),
                 "serious": bool(r.serious), "status": r.status, "station_code": r.station_code,
                 "station_name": areas.name("station", r.station_code),
                 "sho": " ".join(x for x in (r.sho_rank, r.sho_name) if x) or None,
                 "unstaffed": bool(r.unstaffed),
                 "overdue": r.status in sql.UNACKNOWLEDGED
                 and now - r.received_at > UNACKNOWLEDGED_AFTER}
                for r in rows]

    async def open_alerts(self, principal: Principal, level: str, code: str,
                          limit: int = 100) -> list[dict[str, Any]]:
        """Alerts of the area not yet resolved, newest first, with their call's place."""
        principal.require("alert.read")
        area = self.area(principal, level, code)
        a = AlertRecord
        statement = (select(a.id, a.type, a.state, a.level, a.summary, a.raised_at, a.call_id,
                            a.station_code, CallRecord.lon, CallRecord.lat)
                     .outerjoin(CallRecord, CallRecord.id == a.call_id)
                     .where(a.state != "resolved").order_by(a.id.desc()).limit(limit))
        if area.level != "province":
            statement = statement.where(getattr(a, f"{area.level}_code") == area.code)
        async with self.sessions() as session:
            rows = (await session.execute(statement)).all()
        return [{"id": r.id, "type": r.type, "state": r.state, "level": r.level,
                 "summary": r.summary, "raised_at": r.raised_at,
                 "call_id": str(r.call_id) if r.call_id else None, "station_code": r.station_code,
                 "lon": r.lon, "lat": r.lat} for r in rows]

    async def feed_marks(self) -> tuple[int, int]:
        """The last call event and alert event ids: a page's live feeds replay from these,
        so nothing that happens between its rendering and its subscription is lost."""
        async with self.sessions() as session:
            calls = await session.scalar(select(func.max(CallEventRecord.id)))
            alerts = await session.scalar(select(func.max(AlertEventRecord.id)))
        return int(calls or 0), int(alerts or 0)

    # ------------------------------------------------------------------ map
    def still_key(self) -> str:
        """What the still part of every map depends on: the boundary set and the encoding
        (in the still part's URL, so a new boundary set is a new URL for the browser)."""
        return f"{self.version()}.{STILL_FORMAT}"

    async def still_map(self, principal: Principal, level: str, code: str, *,
                        background: bool = False) -> StillMap:
        """The still part of the area's map (basemap, outline, children with names,
        stations) as encoded bytes: computed and encoded in a worker the first time, then
        kept per area and boundary set. The same scope checks as every part."""
        area = self.area(principal, level, code)
        version = self.version()
        key = (version, area.level, area.code)
        still = self._maps.get(key)
        if still is None:
            body, gzipped, etag = await self.workers.run(
                "analytics", static_map_bytes_job, area.level, area.code, version,
                background=background)
            still = StillMap(self.still_key(), body, gzipped, etag)
            if len(self._maps) > 256:
                self._maps.clear()
            self._maps[key] = still
        return still

    async def map_layer(self, principal: Principal, level: str, code: str) -> dict[str, Any]:
        """The live part of the map: today's calls (if the role may read calls; as columns,
        category and status as indexes into ``categories`` and ``statuses``) and open
        alerts (if it may read alerts). The still part is :meth:`still_map` (its key in
        ``still_key``: the client fetches and keeps it once per boundary set)."""
        area = self.area(principal, level, code)
        w = self.windows()
        calls = compact_calls([])
        if self.may(principal, "call.read"):
            async with self.sessions() as session:
                rows = (await session.execute(sql.map_calls_statement(
                    area.level, area.code, w["midnight"], MAP_POINTS))).all()
            calls = compact_calls(rows)
        alerts = []
        if self.may(principal, "alert.read"):
            alerts = [{"id": x["id"], "lon": x["lon"], "lat": x["lat"], "summary": x["summary"],
                       "state": x["state"]}
                      for x in await self.open_alerts(principal, level, code) if x["lon"] is not None]
        return {"level": area.level, "code": area.code, "name": area.name,
                "still_key": self.still_key(), "calls": calls, "alerts": alerts}


@dataclass(frozen=True, slots=True)
class StillMap:
    """The still part of one area's map, encoded once (:func:`encode_still`)."""

    key: str
    """:meth:`DashboardService.still_key` when it was made."""
    body: bytes
    """JSON."""
    gzipped: bytes
    """The same JSON, gzip-compressed."""
    etag: str


def compact_calls(rows: Any) -> dict[str, list[Any]]:
    """Today's calls as the map draws them: columns of positions (``DECIMALS``), category
    and status as indexes into the ``categories`` and ``statuses`` lists, serious as 0/1."""
    lon: list[float] = []
    lat: list[float] = []
    category: list[int] = []
    status: list[int] = []
    serious: list[int] = []
    categories: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for r in rows:
        lon.append(round(r.lon, DECIMALS))
        lat.append(round(r.lat, DECIMALS))
        category.append(categories.setdefault(r.category, len(categories)))
        status.append(statuses.setdefault(r.status, len(statuses)))
        serious.append(1 if r.serious else 0)
    return {"lon": lon, "lat": lat, "category": category, "status": status, "serious": serious,
            "categories": list(categories), "statuses": list(statuses)}


class DashboardRefresher:
    """Keeps ``dashboard_calls`` up to date: every call with an event after the mark is
    recomputed (intervals and SLA by :mod:`geo.response`) and replaced, and the mark moved,
    in one transaction. Several processes may run it: the mark's row lock orders them."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sla: SlaTable,
                 urban: Callable[[], Mapping[str, bool]], clock: Callable[[], datetime],
                 batch: int = REFRESH_EVENTS) -> None:
        self.sessions = sessions
        self.sla = sla
        self.urban = urban
        self.clock = clock
        self.batch = batch
        self.mark: int | None = None
        """The mark after this refresher's last refresh (``None`` before the first)."""

    async def run(self) -> int:
        """One refresh; the number of calls recomputed (0: up to date)."""
        async with self.sessions() as session:
            async with session.begin():  # a plain read first: most ticks find nothing new
                mark = await sql.read_mark(session, lock=False)
                self.mark = mark
                if await sql.events_until(session, mark, self.batch) == mark:
                    return 0
            # then the writer's transaction (on SQLite it holds the lock before reading)
            async with write_transaction(session):
                return await self._refresh(session)

    async def position(self) -> tuple[int, int]:
        """The projection's mark and the id of the last call event (equal: up to date)."""
        async with self.sessions() as session, session.begin():
            mark = await sql.read_mark(session, lock=False)
            last = await session.scalar(select(func.max(CallEventRecord.id)))
        return mark, int(last or 0)

    async def _refresh(self, session: AsyncSession) -> int:
        mark = await sql.read_mark(session, lock=True)
        self.mark = mark
        last = await sql.events_until(session, mark, self.batch)
        if last == mark:
            return 0
        changed = sql.changed_calls(mark, last)
        statement = (stages_statement(ResponseQuery())
                     .add_columns(CallRecord.serious, CallRecord.status)
                     .where(CallRecord.id.in_(changed)))
        result = await session.execute(statement)
        frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
        columns = await anyio.to_thread.run_sync(lambda: self.columns(frame))
        await sql.replace_calls(session, changed, columns)
        await sql.write_mark(session, last, self.clock())
        self.mark = last
        return len(frame)

    async def catch_up(self, batch: int = CATCH_UP_EVENTS,
                       progress: Callable[[int, int], None] | None = None) -> int:
        """Refresh until the mark stops moving, in larger batches (``safecity dashboard
        refresh``, the benchmark's first fill: a database that already holds a history);
        the calls recomputed. ``progress(calls so far, mark)`` after each batch."""
        total, self.batch, kept = 0, batch, self.batch
        try:
            while True:
                before = self.mark
                total += await self.run()
                if progress is not None and self.mark is not None:
                    progress(total, self.mark)
                if self.mark == before:
                    break
        finally:
            self.batch = kept
        return total

    def columns(self, frame: pd.DataFrame) -> dict[str, list[Any]]:
        """The projection's rows of the calls in ``frame`` (a :func:`stages_statement` read),
        column by column (:func:`api.db.transactions.insert_columns`); ``None`` where an
        interval or verdict is not valid."""
        if frame.empty:
            return {}
        for column in ("received_at", "acknowledged_at", "dispatched_at", "on_scene_at", "closed_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        intervals = call_intervals(frame)
        limits = call_sla_minutes(frame, self.sla, self.urban())
        within = within_sla(intervals, limits).to_numpy()
        queue = intervals.seconds["queue"].to_numpy()
        response = intervals.seconds["response"].to_numpy()
        bins = np.minimum(np.floor(np.nan_to_num(response, nan=0.0) / RESPONSE_BIN_S),
                          RESPONSE_BINS - 1).astype(np.int64)
        return {
            "call_id": [i if isinstance(i, UUID) else UUID(str(i)) for i in frame["id"].tolist()],
            "received_at": list(frame["received_at"].dt.to_pydatetime()),
            **{name: frame[name].astype(str).tolist()
               for name in ("station_code", "tehsil_code", "district_code", "region_code",
                            "category", "status")},
            "serious": frame["serious"].astype(bool).tolist(),
            "queue_s": _valid(queue, queue),
            "response_s": _valid(response, response),
            "response_bin": _valid(bins, response),
            "within_sla": _valid(np.nan_to_num(within).astype(np.int64), within),
        }


def _valid(values: npt.NDArray[Any], validity: npt.NDArray[np.float64]) -> list[Any]:
    """``values`` as Python numbers, ``None`` where ``validity`` is not finite."""
    out = values.astype(object)
    out[~np.isfinite(validity)] = None
    return out.tolist()  # type: ignore[no-any-return]
