"""The SQL of call intake, named and explained (the stores in :mod:`api.db.intake` run it).

- :func:`take_call_statement`: PostgreSQL takes a call in **one statement** (data-modifying
  CTEs, so atomic and durable at commit): it checks the guessed SHO on duty, searches
  for the open call this one repeats, and writes the call, its ``received`` trail entry
  (whose snapshot gets the link it found), the routing audit entry and the alert
  deadline.
- :data:`NEARBY_CALLS`: the duplicate candidates, for SQLite, which takes a call in one
  transaction of several statements and filters the candidates in Python.
- :data:`ON_DUTY`, :data:`SHIFTS_OF_STATION`, :data:`SHIFTS_OF_ALL`: who is on duty.
- :func:`haversine_sql`: :func:`geo.distance.haversine_m` as SQL, term for term.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    String,
    TextualSelect,
    bindparam,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from api.db.call_models import NEAR_DISK_CELLS, CallRecord, RosterShift, metadata
from api.db.transactions import wire_type

MAX_CANDIDATES = 500
"""Duplicate candidates read per call (earliest first), on both back ends."""

_CALLS = metadata.tables["calls"]
_EVENTS = metadata.tables["call_events"]
_AUDIT = metadata.tables["audit_log"]

CALL_COMPUTED = frozenset({"geom", "duplicate_of"})
"""Call columns the statements compute (the point from lat/lon, the link from the search)."""
_SKIPPED = frozenset({"sa_orm_sentinel"})


def columns(table: Any, skip: Iterable[str]) -> list[Any]:
    """A table's columns but ``skip`` (and advanced-alchemy's ORM sentinel)."""
    skipped = set(skip) | _SKIPPED
    return [c for c in table.columns if c.name not in skipped]


CALL_COLUMNS = tuple(c.name for c in columns(_CALLS, CALL_COMPUTED))
"""What a new call's row (:class:`api.db.intake.NewCall`) holds."""
EVENT_COLUMNS = tuple(c.name for c in columns(_EVENTS, {"id", "call_id", "snapshot"}))
"""What a new trail entry holds besides its id, its call and its snapshot."""
AUDIT_COLUMNS = tuple(c.name for c in columns(_AUDIT, {"id", "call_id", "detail"}))
"""What an audit entry holds besides its id, its call and its detail."""

_TIME = DateTime(timezone=True)


def haversine_sql(lat1: str, lon1: str, lat2: str, lon2: str, radius: str) -> str:
    """:func:`geo.distance.haversine_m` as SQL, term for term (the two agree to a
    nanometre; ``tests/test_calls.py`` compares them on PostgreSQL)."""
    return (f"2 * {radius} * asin(sqrt(least(1.0, "
            f"sin((radians({lat2}) - radians({lat1})) / 2) ^ 2 "
            f"+ cos(radians({lat1})) * cos(radians({lat2})) "
            f"* sin(radians({lon2} - {lon1}) / 2) ^ 2)))")


@cache
def take_call_statement() -> TextualSelect:
    """The one statement that takes a call on PostgreSQL.

    Binds: every call column as ``call_<name>`` (but ``geom`` and ``duplicate_of``), every
    trail column as ``event_<name>`` (but ``id``, ``call_id``, ``snapshot``), the audit
    entry as ``audit_<name>`` (its ``detail`` as JSON text, without ``duplicate_of``), the
    snapshot as ``snap_head`` + the link + ``snap_tail`` (the call's wire form cut around
    its ``duplicate_of`` value: :meth:`api.domain.calls.wire.CallEncoder.around`), the
    duplicate search (``search``, ``cells``, ``since``, ``until``, ``open``, ``related``,
    ``radius``, ``earth_r``), the guessed shift (``call_sho_*``) and the alert deadline
    (``due``: an ``alert_due`` row unless ``NULL``). Answers exactly one row: ``ok`` (the
    guess held; otherwise nothing was written), ``event_id`` (``NULL`` when the
    idempotency key exists) and ``duplicate_of``.

    The CTEs, in order:

    - ``duty``/``guard``: the roster row on duty at ``received_at``, read as
      :data:`ON_DUTY` reads it; nothing is written unless it is the guessed one. A roster
      replaced meanwhile (by any process) makes the answer ``ok = false``.
    - ``disk``/``cand``: calls in the H3 disk around the call, within the time window,
      earliest 500. Each cell of the disk is one range of the ``(h3_r9, received_at)``
      index, asked as row comparisons no other index can serve, and the candidates are
      materialised before they are sorted and cut, so even a generic (cached) plan made
      while ``calls`` was nearly empty stays an index seek per cell. A plan free to
      choose took the ``(received_at, id)`` index and walked the whole window, which
      grows with every call (9 ms and more). The intake's connections also turn
      sequential scans off (:mod:`api.db.engine`), for the same reason.
    - ``near``/``dup``: open calls of a related category within ``radius`` metres; the
      first original among them, else the original the first one repeats.
    - ``new_call``, ``new_event``, ``new_audit``, ``new_due``: the writes.
      ``ON CONFLICT (idempotency_key) DO NOTHING`` decides concurrent retries.
    """
    call_columns = columns(_CALLS, CALL_COMPUTED)
    event_columns = columns(_EVENTS, {"id", "call_id", "snapshot"})
    audit_columns = columns(_AUDIT, {"id", "call_id", "detail"})
    binds = [bindparam(f"call_{c.name}", type_=wire_type(c)) for c in call_columns]
    binds += [bindparam(f"event_{c.name}", type_=wire_type(c)) for c in event_columns]
    binds += [bindparam(f"audit_{c.name}", type_=wire_type(c)) for c in audit_columns]
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


NEARBY_CALLS = (
    select(CallRecord.id, CallRecord.duplicate_of, CallRecord.received_at, CallRecord.lat,
           CallRecord.lon, CallRecord.category, CallRecord.status)
    .where(CallRecord.h3_r9.in_([bindparam(f"c{i}") for i in range(NEAR_DISK_CELLS)]),
           CallRecord.received_at >= bindparam("since"),
           CallRecord.received_at <= bindparam("until"))
    .order_by(CallRecord.received_at, CallRecord.id).limit(MAX_CANDIDATES))
"""Duplicate candidates on SQLite: the ``cand`` CTE of :func:`take_call_statement`, one
index seek per cell (binds ``c0`` … ``c18``, ``since``, ``until``)."""

ON_DUTY = (select(RosterShift.id, RosterShift.officer_name, RosterShift.rank, RosterShift.phone,
                  RosterShift.starts_at, RosterShift.ends_at)
           .where(RosterShift.station_code == bindparam("station"),
                  RosterShift.starts_at <= bindparam("at"), RosterShift.ends_at > bindparam("at"))
           .order_by(RosterShift.starts_at.desc()).limit(1))
"""The shift covering ``at`` at ``station`` (``start <= at < end``), latest start first:
the rule of the one-statement ``duty`` CTE and of ``GET /stations/{code}/on-duty``."""

_SHIFT_COLUMNS = (RosterShift.station_code, RosterShift.id, RosterShift.officer_name,
                  RosterShift.rank, RosterShift.phone, RosterShift.starts_at, RosterShift.ends_at)
SHIFTS_OF_STATION = (select(*_SHIFT_COLUMNS)
                     .where(RosterShift.station_code == bindparam("station"),
                            RosterShift.starts_at < bindparam("hi"),
                            RosterShift.ends_at > bindparam("lo")))
"""One station's shifts overlapping ``[lo, hi)`` (the on-duty cache's window)."""
SHIFTS_OF_ALL = select(*_SHIFT_COLUMNS).where(RosterShift.starts_at < bindparam("hi"),
                                               RosterShift.ends_at > bindparam("lo"))
"""Every station's shifts overlapping ``[lo, hi)``."""
