"""``safecity synth load`` in bulk (api.db.history_load): the column-wise rows and snapshots
are exactly what the call service writes, and loads into PostGIS (into empty tables with
the indexes built afterwards, and into tables that already hold calls) and into SQLite
write them, once.

The references are the service's own code, call by call: ``CallService.as_call`` encoded
with msgspec for every snapshot, ``geo.synth.idempotency_key``, ``uuid.uuid5`` and the
service's ``request_hash`` for the keys, and the trail rules written out per call.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import psycopg
import pytest

LIFECYCLE = (("acknowledged", "acknowledged_at"), ("dispatched", "dispatched_at"),
             ("on_scene", "on_scene_at"), ("closed", "closed_at"))


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def boundaries() -> Any:
    from jurisdictions.catalog import punjab_boundary_set

    return punjab_boundary_set()


@pytest.fixture(scope="module")
def areas(boundaries: Any) -> Any:
    from api.areas import Areas

    return Areas(boundaries)


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """A small generated month, plus calls with the awkward values a generator never makes:
    phones needing JSON escapes, non-ASCII, empty or missing; whole-number and tiny-fraction
    coordinates; a time on a whole second; a value whose 7th decimal is a near tie."""
    from api.cli.synth import LOAD_COLUMNS
    from api.shipped import generate_calls

    calls, _ = generate_calls(1, 7, 0.002, "2024-03")
    frame = pd.DataFrame(calls[list(LOAD_COLUMNS)])
    odd = frame.iloc[:8].copy()
    odd["call_id"] = frame["call_id"].max() + 1 + np.arange(len(odd))
    odd["caller_phone"] = ['0300 "quoted"', "back\\slash", "tab\tand\nnewline\x01", "٠٣٠٠ دوست",
                           "", None, "+92 (42) 111-222", "03001234567"]
    odd["lat"] = [31.0, 31.5, 30.12345675, 31.00000005, 29.99999999999, 31.2345678, 32.1, 33.0]
    odd["lon"] = [74.0, 74.25, 73.00000015, 72.1234567890123, 74.00000004999, 71.5, 70.000001, 73.5]
    odd["received_at"] = odd["received_at"].dt.floor("s")  # no fraction: msgspec drops it
    return pd.concat([frame, odd], ignore_index=True)


def _service(areas: Any, version: str) -> Any:
    from api.domain.calls.categories import Categories
    from api.domain.calls.services import CallContext, CallService

    context = CallContext(router=lambda: None, areas=lambda: areas, boundary_set=lambda: version,
                          categories=Categories(), publisher=None)

    class Service:  # as_call reads nothing but the context: no database session needed
        ctx = context
        as_call = CallService.as_call

    return Service()


def _record(row: Any, status: str, updated: Any) -> Any:
    """The call as stored, as it stood after one of its events."""
    from api.db.call_models import CallRecord

    phone = row["caller_phone"]
    return CallRecord(
        id=uuid.UUID(str(row["id"])), status=status, category=row["category"], serious=bool(row["serious"]),
        lat=float(row["lat"]), lon=float(row["lon"]), radius_m=None,
        # an empty number is no number in the snapshot (the loader's rule, as before)
        caller_phone=phone if isinstance(phone, str) and phone else None, description=None,
        received_at=pd.Timestamp(row["received_at"]).to_pydatetime(),
        created_at=pd.Timestamp(row["received_at"]).to_pydatetime(),
        updated_at=pd.Timestamp(updated).to_pydatetime(),
        station_code=row["station_code"], tehsil_code=row["tehsil_code"],
        district_code=row["district_code"], region_code=row["region_code"],
        boundary_set=row["boundary_set"], method=row["method"], out_of_coverage=bool(row["out_of_coverage"]),
        distance_m=None, sho_shift_id=None, sho_name=None, sho_rank=None, sho_phone=None,
        sho_shift_start=None, sho_shift_end=None, unstaffed=False, duplicate_of=None,
        created_by=row["created_by"])


def _reference_trail(call: Any, klass: dict[str, str]) -> list[tuple[str, pd.Timestamp, str | None]]:
    """One call's trail, written out per call: received; the lifecycle times it has in the
    state machine's order; hoax and dropped calls cancelled at their close with the class
    as reason; information calls acknowledged and closed at their close."""
    closed = call["closed_at"]
    kind = klass.get(str(call["category"]), "case")
    cancelled = kind in ("hoax", "dropped") and pd.notna(closed)
    information = kind == "information" and pd.notna(closed)
    events: list[tuple[str, pd.Timestamp, str | None]] = [("received", call["received_at"], None)]
    for event, column in LIFECYCLE:
        at = call[column]
        if information and event in ("acknowledged", "closed"):
            at = closed
        elif cancelled or pd.isna(at):
            continue
        events.append((event, at, None))
    if cancelled:
        events.append(("cancelled", closed, str(call["category"])))
    return events


@pytest.fixture(scope="module")
def prepared(history: pd.DataFrame, boundaries: Any, areas: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    from api.cli.synth import prepare_history

    ordered = history.sort_values(["received_at", "call_id"], kind="stable").reset_index(drop=True)
    return prepare_history(ordered, str(boundaries.version), areas)


# --------------------------------------------------------------------------- column-wise = per call

def test_snapshots_equal_the_call_services_encoding(prepared: tuple[pd.DataFrame, pd.DataFrame],
                                                    areas: Any, boundaries: Any) -> None:
    """Every event's snapshot is byte for byte ``msgspec.json.encode(as_call(record))``."""
    rows, trail = prepared
    service = _service(areas, str(boundaries.version))
    encoder = msgspec.json.Encoder()
    by_id = {row["id"]: row for row in rows.to_dict("records")}
    assert len(trail) > 2 * len(rows)
    for event in trail.to_dict("records"):
        record = _record(by_id[event["call_id"]], event["status"], event["at"])
        expected = encoder.encode(service.as_call(record, None)).decode()
        assert event["snapshot"] == expected, (event["call_id"], event["type"])
    # the awkward values went through the escaping path and decode back to themselves
    phones = {msgspec.json.decode(s)["caller_phone"] for s in trail["snapshot"]}
    assert {'0300 "quoted"', "back\\slash", "tab\tand\nnewline\x01", "٠٣٠٠ دوست", None} <= phones


def test_keys_ids_and_hashes_equal_the_per_call_rules(history: pd.DataFrame,
                                                      prepared: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from api.db.history_load import LOAD_NAMESPACE
    from api.domain.calls.intake import request_hash
    from api.domain.calls.schemas import CallCreate
    from geo.h3cells import latlng_to_cells
    from geo.synth import idempotency_key

    rows, _ = prepared
    source = history.set_index("call_id")
    keys = rows["idempotency_key"].tolist()
    assert len(set(keys)) == len(keys)
    for row in rows.to_dict("records"):
        call = source.loc[int(str(row["idempotency_key"]).split("-")[1])]
        at = pd.Timestamp(call["received_at"]).tz_convert("UTC")
        key = idempotency_key(int(str(row["idempotency_key"]).split("-")[1]), at, float(call["lat"]),
                              float(call["lon"]), str(call["category"]))
        assert row["idempotency_key"] == key
        assert row["id"] == uuid.uuid5(LOAD_NAMESPACE, key)
        phone = call["caller_phone"]
        body = CallCreate(lat=float(call["lat"]), lon=float(call["lon"]), category=str(call["category"]),
                          caller_phone=phone if isinstance(phone, str) and phone else None)
        assert row["request_hash"] == request_hash(body, at.to_pydatetime())
    cells = latlng_to_cells(rows["lat"].to_numpy(), rows["lon"].to_numpy(), 9).astype(np.int64)
    assert rows["h3_r9"].tolist() == cells.tolist()


def test_trails_and_call_state_follow_the_per_call_rules(history: pd.DataFrame,
                                                         prepared: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from api.shipped import load_categories

    table = load_categories()
    klass = dict(zip(table["code"], table["call_class"], strict=True))
    rows, trail = prepared
    ordered = history.sort_values(["received_at", "call_id"], kind="stable").reset_index(drop=True)
    expected_rows, status, updated = [], [], []
    for call, call_id in zip(ordered.to_dict("records"), rows["id"], strict=True):
        events = _reference_trail(call, klass)
        previous = [None, *(kind for kind, _at, _reason in events[:-1])]
        expected_rows += [(call_id, kind, pd.Timestamp(at), before, reason)
                          for (kind, at, reason), before in zip(events, previous, strict=True)]
        status.append(events[-1][0])
        updated.append(max(pd.Timestamp(at) for _kind, at, _reason in events))
    got = list(zip(trail["call_id"], trail["type"], trail["at"], trail["from_status"], trail["reason"],
                   strict=True))
    assert got == expected_rows
    assert (trail["status"] == trail["type"]).all()
    assert rows["status"].tolist() == status
    assert rows["updated_at"].tolist() == updated
    assert set(trail["type"]) == {"received", "acknowledged", "dispatched", "on_scene", "closed", "cancelled"}


def test_a_changed_call_schema_stops_the_load_before_writing(history: pd.DataFrame, boundaries: Any,
                                                             areas: Any) -> None:
    """The snapshots are written column by column between the separators of the call's one
    encoder: a field added to ``Call`` stops the load (no value for it), and so does a value
    the column-wise encoders write differently from the domain's encoder."""
    import dataclasses

    from api.cli.synth import history_form
    from api.db.history_load import prepare
    from api.domain.calls.schemas import Call
    from api.domain.calls.wire import CallEncoder

    class Wider(Call):
        priority: int = 0

    form = history_form(areas)
    calls, version = history.iloc[:200], str(boundaries.version)
    prepare(calls, version, form)
    with pytest.raises(KeyError, match="priority"):
        prepare(calls, version, dataclasses.replace(form, template=CallEncoder(Wider).template))
    spaced = dataclasses.replace(form, canonical=lambda text: text.replace('"lat":', '"lat": '))
    with pytest.raises(RuntimeError, match="wire form changed"):
        prepare(calls, version, spaced)


def test_fixed_point_and_time_encoders_match_python() -> None:
    """The key's ``{x:.7f}`` and ``isoformat()`` written column-wise, on hard values."""
    from datetime import UTC, datetime, timedelta

    from api.db.history_load import fixed7, iso_times, json_floats

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(23.0, 80.0, 20_000), [1.0, 31.0, 74.00000005, 74.00000015,
                                                                0.5, 0.00000005, -31.5, 123456.12345675,
                                                                2.5e-8, 1e9 + 0.5]])
    ties = np.round(rng.uniform(23, 80, 2000), 7) + 5e-8  # the 8th decimal on a tie
    values = np.concatenate([values, ties])
    assert fixed7(values).to_pylist() == [f"{v:.7f}" for v in values]
    assert json_floats(values).to_pylist() == [msgspec.json.encode(float(v)).decode() for v in values]
    micros = np.concatenate([rng.integers(1_600_000_000_000_000, 1_800_000_000_000_000, 5000),
                             [1_700_000_000_000_000, 1_700_000_000_000_001, 1_700_000_000_100_000]])
    moments = [datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(m)) for m in micros]
    assert iso_times(micros, "+00:00").to_pylist() == [m.isoformat() for m in moments]
    assert iso_times(micros, "Z").to_pylist() == [msgspec.json.encode(m).decode().strip('"') for m in moments]


# --------------------------------------------------------------------------- PostGIS

def _engine(url: str) -> Any:
    from api.db.engine import create_sync_engine
    from api.db.migrate import upgrade
    from api.settings import DatabaseSettings

    engine = create_sync_engine(DatabaseSettings(url=url))
    upgrade(engine)
    return engine


def _schema(conn: psycopg.Connection[Any]) -> tuple[list[Any], list[Any]]:
    indexes = conn.execute("SELECT tablename, indexname, indexdef FROM pg_indexes "
                           "WHERE tablename IN ('calls', 'call_events') ORDER BY 1, 2").fetchall()
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated "
        "FROM pg_constraint WHERE conrelid IN ('calls'::regclass, 'call_events'::regclass) "
        "ORDER BY 1, 2").fetchall()
    return indexes, constraints


def _events_in_time_order(conn: psycopg.Connection[Any], since: int = 0) -> bool:
    """Whether the ids of events ``> since`` follow (time, call id) and leave no gap."""
    found = conn.execute(
        "SELECT bool_and(id = first + rank - 1) FROM (SELECT id, min(id) OVER () AS first, "
        "row_number() OVER (ORDER BY at, call_id, id) AS rank FROM call_events WHERE id > %s) t",
        (since,)).fetchone()
    return bool(found and found[0])


def _database_matches(conn: psycopg.Connection[Any], rows: pd.DataFrame, trail: pd.DataFrame) -> None:
    """The tables hold exactly ``rows`` and ``trail`` (as prepare_history gives them)."""
    from api.db.history_load import CALL_COLUMNS, EVENT_COLUMNS

    stored = pd.DataFrame(conn.execute(
        f"SELECT {', '.join(CALL_COLUMNS)}, ST_X(geom), ST_Y(geom), ST_SRID(geom), "
        "sho_name IS NULL AND duplicate_of IS NULL AND NOT EXISTS (SELECT FROM alert_due "
        "WHERE call_id = calls.id) FROM calls ORDER BY id"
    ).fetchall(), columns=[*CALL_COLUMNS, "x", "y", "srid", "blank"])
    expected = rows.sort_values("id", key=lambda s: s.astype(str)).reset_index(drop=True)
    assert len(stored) == len(expected)
    def plain(values: pd.Series) -> list[Any]:
        values = values.astype(object)
        return values.where(values.notna(), None).tolist()

    for column in CALL_COLUMNS:
        assert plain(stored[column]) == plain(expected[column]), column
    assert stored["x"].tolist() == expected["lon"].tolist()
    assert stored["y"].tolist() == expected["lat"].tolist()
    assert set(stored["srid"]) == {4326}
    assert stored["blank"].all()
    events = conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)}, from_station_code, note "
                          "FROM call_events ORDER BY id").fetchall()
    assert all(e[-2] is None and e[-1] is None for e in events)
    key = lambda e: (str(e[0]), e[1], e[2])  # noqa: E731 -- call, type, time: unique per event
    want = sorted((tuple(e) for e in trail[list(EVENT_COLUMNS)].itertuples(index=False)), key=key)
    assert sorted((e[:-2] for e in events), key=key) == want


@pytest.mark.integration
def test_postgis_fresh_load_then_incremental_loads(fresh_postgis_url: str, history: pd.DataFrame,
                                                   prepared: tuple[pd.DataFrame, pd.DataFrame],
                                                   boundaries: Any) -> None:
    """Into empty tables: COPY with the indexes built afterwards (the same indexes and
    keys, validated); then a load of a superset adds only the missing calls and their
    events; a third load adds nothing. The tables end up exactly as prepared."""
    from api.cli.synth import load_history

    engine = _engine(fresh_postgis_url)
    half = history.sample(frac=0.5, random_state=1)
    try:
        with psycopg.connect(fresh_postgis_url, autocommit=True) as conn:
            schema = _schema(conn)
            first = load_history(half, engine, boundaries=boundaries)
            assert first.rebuilt_indexes
            assert (first.inserted, first.already_present) == (len(half), 0)
            assert _schema(conn) == schema
            assert _events_in_time_order(conn)
            last_id = conn.execute("SELECT max(id) FROM call_events").fetchone()[0]
            assert last_id == first.events

            second = load_history(history, engine, boundaries=boundaries)
            assert not second.rebuilt_indexes
            assert (second.inserted, second.already_present) == (len(history) - len(half), len(half))
            assert second.events + first.events == len(prepared[1])
            assert _events_in_time_order(conn, since=last_id)

            third = load_history(history, engine, boundaries=boundaries)
            assert (third.inserted, third.events, third.already_present) == (0, 0, len(history))
            _database_matches(conn, *prepared)
            assert _schema(conn) == schema
    finally:
        engine.dispose()


@pytest.mark.integration
def test_postgis_snapshots_round_trip_through_as_call(fresh_postgis_url: str, history: pd.DataFrame,
                                                      boundaries: Any, areas: Any, tmp_path: Path) -> None:
    """Loaded in one go through the CLI (file, migration, progress): event ids follow
    time, and each stored snapshot is what ``as_call`` gives for the stored call as it
    stood after that event."""
    from datetime import UTC

    from sqlalchemy.orm import Session

    from api.db.call_models import CallRecord

    url = fresh_postgis_url
    path = tmp_path / "calls.parquet"
    history.to_parquet(path)
    # in its own process: settings are read once per process (get_settings is cached), so
    # an in-process runner would write wherever an earlier test pointed this process
    done = subprocess.run([sys.executable, "-m", "api.cli", "synth", "load", str(path)],
                          env={**os.environ, "DATABASE_URL": url}, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    engine = _engine(url)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM calls").fetchone() == (len(history),)
            assert _events_in_time_order(conn)
            sample = conn.execute(
                "SELECT call_id, status, at, snapshot FROM call_events ORDER BY md5(id::text) LIMIT 400"
            ).fetchall()
        service = _service(areas, str(boundaries.version))
        encoder = msgspec.json.Encoder()
        with Session(engine) as session:
            for call_id, status, at, snapshot in sample:
                record = session.get(CallRecord, call_id)
                assert record is not None
                session.expunge(record)
                record.status, record.updated_at = status, at.astimezone(UTC)
                if not record.caller_phone:
                    record.caller_phone = None
                assert snapshot == encoder.encode(service.as_call(record, None)).decode()
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- SQLite

@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Any]:
    from api.db.engine import create_sync_engine
    from api.db.migrate import upgrade
    from api.settings import DatabaseSettings

    engine = create_sync_engine(DatabaseSettings(sqlite_path=tmp_path / "safecity.sqlite"))
    upgrade(engine)
    yield engine
    engine.dispose()


def test_sqlite_load_writes_the_prepared_rows_once(sqlite_engine: Any, history: pd.DataFrame,
                                                   prepared: tuple[pd.DataFrame, pd.DataFrame],
                                                   boundaries: Any) -> None:
    from sqlalchemy import text

    from api.cli.synth import load_history

    rows, trail = prepared
    report = load_history(history, sqlite_engine, boundaries=boundaries, chunk=1000)
    assert (report.inserted, report.events, report.rebuilt_indexes) == (len(history), len(trail), False)
    again = load_history(history, sqlite_engine, boundaries=boundaries, chunk=1000)
    assert (again.inserted, again.events) == (0, 0)
    with sqlite_engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT idempotency_key, request_hash FROM calls")).all())
        snapshots = conn.execute(text("SELECT snapshot FROM call_events ORDER BY id")).scalars().all()
    assert stored == dict(zip(rows["idempotency_key"], rows["request_hash"], strict=True))
    assert sorted(snapshots) == sorted(trail["snapshot"])
