"""Taking a call on PostgreSQL in one round trip: the statement and the on-duty cache.

The intake path used to ask the database four times per call (who is on duty, which
open calls are near, then the write) plus a liveness ping. Here everything the write
depends on is decided inside the one statement that writes it:

- the **duplicate search** runs as CTEs (the same H3 disk, time window, 500-row cap,
  open statuses, related categories and haversine distance as
  :meth:`CallService._duplicate_of`, which the SQLite path still uses), and the call,
  its ``received`` event (whose snapshot gets the ``duplicate_of`` it found) and the
  routing audit entry are written from its answer;
- the **SHO on duty** is predicted in memory (:class:`DutyCache`) and *checked* by the
  statement: it reads the roster row the old query read and writes nothing unless it is
  the predicted one. A roster replaced meanwhile (by any process) makes the statement
  answer ``ok = false``; the caller reloads and tries again. The cache is therefore never
  trusted, only used to guess.

Still one statement (data-modifying CTEs), so still atomic and still durable at commit,
and the ``ON CONFLICT (idempotency_key) DO NOTHING`` keeps deciding concurrent retries.
:class:`OneStatement` runs it with group commit (:class:`GroupCommit`): calls that arrive
while a write is in flight are sent together as one pipelined transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from advanced_alchemy.types import GUID, DateTimeUTC
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    String,
    TextualSelect,
    TypeDecorator,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeEngine

from api.db.call_models import metadata
from api.domain.stations.services import DutyShift
from api.errors import UnavailableError, is_connection_failure

MAX_CANDIDATES = 500
"""Duplicate candidates read per call (earliest first), as in the SQLite path."""

DISK_CELLS = 19
"""Cells in an H3 disk of radius 2 (no pentagon lies near Punjab)."""

_CALLS = metadata.tables["calls"]
_EVENTS = metadata.tables["call_events"]
_AUDIT = metadata.tables["audit_log"]
_SHIFTS = metadata.tables["roster_shifts"]

_CALL_COMPUTED = {"geom", "duplicate_of"}
"""Call columns the statement computes (the point from lat/lon, the link from the search)."""
_SKIPPED = {"sa_orm_sentinel"}


def _columns(table: Any, skip: Iterable[str]) -> list[Any]:
    skipped = set(skip) | _SKIPPED
    return [c for c in table.columns if c.name not in skipped]


_TIME = DateTime(timezone=True)


def _wire(column: Any) -> TypeEngine[Any]:
    """A bind type asyncpg takes Python values of as they are (no SQLAlchemy processing):
    the project's UUID and UTC time decorators become the plain PostgreSQL types."""
    kind = column.type
    if isinstance(kind, GUID):
        return PG_UUID(as_uuid=True)
    if isinstance(kind, DateTimeUTC):
        return _TIME
    if isinstance(kind, TypeDecorator):
        raise TypeError(f"no plain bind type for {column} ({kind!r})")
    wire: TypeEngine[Any] = kind
    return wire


def haversine_sql(lat1: str, lon1: str, lat2: str, lon2: str, radius: str) -> str:
    """The great-circle distance of :func:`api.domain.calls.services._haversine_m` as SQL,
    term for term (PostgreSQL calls the same libm functions, so the two agree to the bit
    and a call 250 m away is linked, or not, by both back ends alike)."""
    return (f"2 * {radius} * asin(sqrt(least(1.0, "
            f"sin((radians({lat2}) - radians({lat1})) / 2) ^ 2 "
            f"+ cos(radians({lat1})) * cos(radians({lat2})) "
            f"* sin(radians({lon2} - {lon1}) / 2) ^ 2)))")


@cache
def take_statement() -> TextualSelect:
    """The one statement that takes a call on PostgreSQL.

    Binds: every call column as ``call_<name>`` (but ``geom`` and ``duplicate_of``), every
    event column as ``event_<name>`` (but ``id``, ``call_id``, ``snapshot``), the audit
    entry as ``audit_<name>`` (its ``detail`` as JSON text, without ``duplicate_of``), the
    snapshot as ``snap_head`` + the link + ``snap_tail``, the duplicate search
    (``search``, ``cells``, ``since``, ``until``, ``open``, ``related``, ``radius``,
    ``earth_r``), the predicted shift (``call_sho_*``) and the alert deadline (``due``:
    an ``alert_due`` row is written unless it is ``NULL``). Answers exactly one row: ``ok``
    (the prediction held), ``event_id`` (``NULL`` when nothing was written) and
    ``duplicate_of``.

    Safe as a generic (cached) plan, even one made while ``calls`` was nearly empty: each
    cell of the disk (``cells``, an array) is one range of the ``(h3_r9, received_at)``
    index, asked as row comparisons that no other index can serve, and the candidates
    are materialised before they are sorted and cut to 500. A plan free to choose took
    the ``(received_at, id)`` index and walked the whole time window, which grows with
    every call (9 ms and more). The intake's connections also turn sequential scans off
    (see :class:`api.container.Container`), for the same reason.
    """
    call_columns = _columns(_CALLS, _CALL_COMPUTED)
    event_columns = _columns(_EVENTS, {"id", "call_id", "snapshot"})
    audit_columns = _columns(_AUDIT, {"id", "call_id", "detail"})
    binds = [bindparam(f"call_{c.name}", type_=_wire(c)) for c in call_columns]
    binds += [bindparam(f"event_{c.name}", type_=_wire(c)) for c in event_columns]
    binds += [bindparam(f"audit_{c.name}", type_=_wire(c)) for c in audit_columns]
    binds += [bindparam("cells", type_=ARRAY(BigInteger))]
    binds += [bindparam("audit_detail", type_=String), bindparam("snap_head", type_=String),
              bindparam("snap_tail", type_=String), bindparam("search", type_=Boolean),
              bindparam("since", type_=_TIME), bindparam("until", type_=_TIME),
              bindparam("open", type_=ARRAY(String)), bindparam("related", type_=ARRAY(String)),
              bindparam("radius", type_=Double), bindparam("earth_r", type_=Double),
              bindparam("due", type_=_TIME)]
    distance = haversine_sql(":call_lat", ":call_lon", "cand.lat", "cand.lon", ":earth_r")
    shift_matches = " AND ".join(
        f"{column} IS NOT DISTINCT FROM :call_{bound}"
        for column, bound in (("id", "sho_shift_id"), ("officer_name", "sho_name"),
                              ("rank", "sho_rank"), ("phone", "sho_phone"),
                              ("starts_at", "sho_shift_start"), ("ends_at", "sho_shift_end")))
    call_values = ", ".join(
        [f":call_{c.name}" for c in call_columns]
        + ["ST_SetSRID(ST_MakePoint(:call_lon, :call_lat), 4326)", "dup.id"])
    sql = f"""
WITH duty AS (
    SELECT id, officer_name, rank, phone, starts_at, ends_at FROM roster_shifts
    WHERE station_code = :call_station_code AND starts_at <= :call_received_at
      AND ends_at > :call_received_at
    ORDER BY starts_at DESC LIMIT 1),
guard AS (
    SELECT coalesce((SELECT {shift_matches} FROM duty), :call_sho_shift_id IS NULL) AS ok),
disk AS MATERIALIZED (
    SELECT near_cell.* FROM unnest(:cells) AS cell(h3) CROSS JOIN LATERAL (
        SELECT id, duplicate_of, received_at, lat, lon, category, status FROM calls
        WHERE :search AND (h3_r9, received_at) >= (cell.h3, :since)
          AND (h3_r9, received_at) <= (cell.h3, :until)) AS near_cell),
cand AS (
    SELECT * FROM disk ORDER BY received_at, id LIMIT {MAX_CANDIDATES}),
near AS (
    SELECT id, duplicate_of, received_at FROM cand
    WHERE status = ANY(:open) AND category = ANY(:related) AND {distance} <= :radius),
dup AS (
    SELECT coalesce(
        (SELECT id FROM near WHERE duplicate_of IS NULL ORDER BY received_at, id LIMIT 1),
        (SELECT duplicate_of FROM near ORDER BY received_at, id LIMIT 1)) AS id),
new_call AS (
    INSERT INTO calls ({", ".join(c.name for c in call_columns)}, geom, duplicate_of)
    SELECT {call_values} FROM dup, guard WHERE guard.ok
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, duplicate_of),
new_event AS (
    INSERT INTO call_events (call_id, {", ".join(c.name for c in event_columns)}, snapshot)
    SELECT new_call.id, {", ".join(f":event_{c.name}" for c in event_columns)},
        :snap_head || coalesce('"' || new_call.duplicate_of::text || '"', 'null') || :snap_tail
    FROM new_call
    RETURNING id),
new_audit AS (
    INSERT INTO audit_log (call_id, {", ".join(c.name for c in audit_columns)}, detail)
    SELECT new_call.id, {", ".join(f":audit_{c.name}" for c in audit_columns)},
        CAST(:audit_detail AS jsonb)
            || jsonb_build_object('duplicate_of', new_call.duplicate_of::text)
    FROM new_call),
new_due AS (
    INSERT INTO alert_due (call_id, next_alert_at)
    SELECT new_call.id, :due FROM new_call WHERE :due IS NOT NULL)
SELECT (SELECT ok FROM guard) AS ok, (SELECT id FROM new_event) AS event_id,
    (SELECT duplicate_of FROM new_call) AS duplicate_of
"""
    return text(sql).bindparams(*binds).columns(
        ok=Boolean, event_id=BigInteger, duplicate_of=PG_UUID(as_uuid=True))


class Taken(NamedTuple):
    """What :func:`take_statement` answers."""

    ok: bool
    """The on-duty guess held (``False``: nothing was written, guess again)."""
    event_id: int | None
    """The ``received`` event's id; ``None`` when the idempotency key exists."""
    duplicate_of: uuid.UUID | None


MAX_BATCH = 64
"""Calls written by one pipelined transaction at most."""

WRITERS = 1
"""Transactions writing calls at once per process (each holds a pooled connection). One:
calls that arrive while it is in flight make the next batch larger, so there are fewer
commits and statements for PostgreSQL to run on the same cores. Measured with
``bench/service.py``-style load (30,000 calls, alert engine on): one worker 2,480 and
2,434 calls/s, p99 ~37 ms with one writer against 2,044 and 2,041, p99 42–44 ms with
two; two workers (Redis) 2,126 and 2,123 against 1,886 and 2,015."""


class GroupCommit:
    """One SQL statement run for many callers with group commit.

    Arguments that arrive while a write is in flight queue up; the next writer sends all
    of them (up to :data:`MAX_BATCH`) as one pipelined batch on a pooled connection's
    asyncpg driver: one round trip, one implicit transaction, one commit (one WAL flush)
    for the lot. Each statement runs after the one before it in the batch and sees what
    it wrote; nothing is answered before the commit. A batch that fails writes nothing
    (one transaction), and its statements are retried one by one so one bad call cannot
    fail the others. A lone statement is simply autocommitted. :meth:`run` answers the
    statement's one row.
    """

    def __init__(self, engine: AsyncEngine, sql: str, *, max_batch: int = MAX_BATCH,
                 writers: int = WRITERS) -> None:
        self.engine = engine
        self.sql = sql
        self.max_batch = max_batch
        self.max_writers = writers
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._writers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.written = 0

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """The asyncpg connection of a pooled connection; 503 when the database cannot be
        reached (a broken connection is invalidated, so the pool does not hand it out)."""
        try:
            async with self.engine.connect() as pooled:
                driver = (await pooled.get_raw_connection()).driver_connection
                try:
                    yield driver
                except Exception as exc:
                    if is_connection_failure(exc):
                        await pooled.invalidate(exc)
                    raise
        except Exception as exc:
            if is_connection_failure(exc):
                raise UnavailableError("the database is unreachable; retry (with the same "
                                       "Idempotency-Key for calls)") from exc
            raise

    async def run(self, args: tuple[Any, ...]) -> Any:
        """Queue one statement's arguments; its row once the batch holding it committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((args, future))
        if self._writers < self.max_writers:
            self._writers += 1
            task = asyncio.create_task(self._write())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _write(self) -> None:
        try:
            while self._queue:
                batch = self._queue[:self.max_batch]
                del self._queue[:self.max_batch]
                await self._write_batch(batch)
        finally:
            self._writers -= 1

    async def _write_batch(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]
                           ) -> None:
        try:
            async with self.connection() as connection:
                if len(batch) == 1:
                    rows = [await connection.fetchrow(self.sql, *batch[0][0])]
                else:
                    rows = await connection.fetchmany(self.sql, [args for args, _ in batch])
        except UnavailableError as exc:
            _fail(batch, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            for item in batch:  # nothing was written: each statement on its own
                await self._write_batch([item])
            return
        except BaseException as exc:  # cancelled at shutdown: nobody waits for ever
            _fail(batch, exc)
            raise
        self.batches += 1
        self.written += len(batch)
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():
                future.set_result(row)


class OneStatement(GroupCommit):
    """:func:`take_statement` compiled once for asyncpg and run with group commit: the
    calls of one batch link duplicates and resolve repeated keys exactly as if they had
    come one at a time."""

    def __init__(self, engine: AsyncEngine, *, max_batch: int = MAX_BATCH,
                 writers: int = WRITERS) -> None:
        compiled = take_statement().compile(dialect=engine.dialect)
        super().__init__(engine, str(compiled), max_batch=max_batch, writers=writers)
        self.names = tuple(compiled.positiontup or ())

    async def take(self, params: dict[str, Any]) -> Taken:
        """Take one call (its binds by name); the statement's answer after the commit."""
        row = await self.run(tuple(params[name] for name in self.names))
        duplicate_of = row["duplicate_of"]
        return Taken(row["ok"], row["event_id"],
                     None if duplicate_of is None else uuid.UUID(bytes=duplicate_of.bytes))


def _fail(batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]],
          exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


_SHIFT_COLUMNS = "id, officer_name, rank, phone, starts_at, ends_at"
_WINDOW_OF_STATION = (f"SELECT {_SHIFT_COLUMNS} FROM roster_shifts WHERE station_code = $1 "
                      "AND starts_at < $3 AND ends_at > $2")
_WINDOW_OF_ALL = (f"SELECT station_code, {_SHIFT_COLUMNS} FROM roster_shifts "
                  "WHERE starts_at < $2 AND ends_at > $1")


class _Window:
    """The shifts of one station (or of all) overlapping ``[lo, hi)``, as read at one time."""

    __slots__ = ("hi", "lo", "shifts")

    def __init__(self, lo: datetime, hi: datetime, shifts: dict[str, tuple[DutyShift, ...]]
                 ) -> None:
        self.lo, self.hi, self.shifts = lo, hi, shifts

    def covers(self, at: datetime) -> bool:
        return self.lo <= at < self.hi


def on_duty_in(shifts: Iterable[DutyShift], at: datetime) -> DutyShift | None:
    """The shift covering ``at`` (``start <= at < end``), latest start first: the rule of
    :meth:`api.domain.stations.services.RosterService.on_duty`."""
    best: DutyShift | None = None
    for shift in shifts:
        if shift.starts_at <= at < shift.ends_at and (best is None
                                                       or shift.starts_at > best.starts_at):
            best = shift
    return best


class DutyCache:
    """A guess of who is on duty, per process; :func:`take_statement` checks every guess.

    Calls taken now are answered from one window of every station's roster around the
    clock (one query, read again when the clock leaves it); a call reported at another
    time reads a window of its own station. When the database refuses a guess, the
    station's entries are dropped, so the next attempt reads what is there now.
    """

    NOW_WINDOW = timedelta(hours=12)
    STATION_WINDOW = timedelta(hours=12)

    def __init__(self) -> None:
        self._all: _Window | None = None
        self._distrusted: set[str] = set()
        """Stations whose part of ``_all`` the database refused since it was read."""
        self._own: dict[str, _Window] = {}
        self._loading = asyncio.Lock()

    def predict(self, station: str, at: datetime) -> tuple[bool, DutyShift | None]:
        """``(known, shift)``: whether the cache can say, and what it says."""
        own = self._own.get(station)
        if own is not None and own.covers(at):
            return True, on_duty_in(own.shifts.get(station, ()), at)
        every = self._all
        if every is not None and every.covers(at) and station not in self._distrusted:
            return True, on_duty_in(every.shifts.get(station, ()), at)
        return False, None

    def forget(self, station: str) -> None:
        """The database disagreed: read this station's roster again next time."""
        self._own.pop(station, None)
        self._distrusted.add(station)

    async def load(self, conn: Any, station: str, at: datetime, now: datetime
                   ) -> DutyShift | None:
        """Read what :meth:`predict` could not say (one query on the asyncpg connection
        ``conn``), keep it, answer it."""
        if abs(at - now) < self.NOW_WINDOW / 2:
            await self._load_all(conn, now)
            known, shift = self.predict(station, at)
            if known:
                return shift
        lo, hi = at - self.STATION_WINDOW, at + self.STATION_WINDOW
        rows = await conn.fetch(_WINDOW_OF_STATION, station, lo, hi)
        shifts = tuple(DutyShift(*row) for row in rows)
        self._own[station] = _Window(lo, hi, {station: shifts})
        return on_duty_in(shifts, at)

    async def _load_all(self, conn: Any, now: datetime) -> None:
        async with self._loading:
            every = self._all
            if every is not None and every.covers(now - self.NOW_WINDOW / 2) \
                    and every.covers(now + self.NOW_WINDOW / 2):
                return  # read by another request while this one waited
            lo, hi = now - self.NOW_WINDOW, now + self.NOW_WINDOW
            shifts: dict[str, list[DutyShift]] = {}
            for row in await conn.fetch(_WINDOW_OF_ALL, lo, hi):
                shifts.setdefault(row[0], []).append(DutyShift(*row[1:]))
            self._all = _Window(lo, hi, {k: tuple(v) for k, v in shifts.items()})
            self._distrusted = set()
