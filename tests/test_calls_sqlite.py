"""The call service on the embedded back end (SQLite + SpatiaLite, no ``DATABASE_URL``):
the same models, migrations and code paths as on PostGIS, exercised end to end."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.callservice import (
    LAHORE_POINT,
    LAHORE_STATION,
    ROOT,
    SECRET,
    ServiceClient,
    call_body,
    fresh_time,
    headers,
    new_key,
    post_call,
    service_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def stored(path: Path) -> closing[Any]:
    """A connection to the service's file through the SQLite library the service uses: a
    second copy of SQLite in one process (the standard ``sqlite3`` beside ``pysqlite3``)
    shares neither its locks nor its view of the write-ahead log, and read a row the
    service had committed as missing (sqlite.org, "How to corrupt", 2.2.1)."""
    from api.db.engine import sqlite_dbapi

    return closing(sqlite_dbapi().connect(str(path)))


@pytest.fixture(scope="module")
def sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("embedded") / "safecity.sqlite"
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env.update(SAFECITY_SQLITE_PATH=str(path), SAFECITY_JWT_SECRET=SECRET)
    for command in (["jurisdictions", "load"], ["roster", "load", "data/roster_sample.csv"]):
        done = subprocess.run([sys.executable, "-m", "api.cli", *command], cwd=ROOT, env=env,
                              capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    return path


@pytest.fixture(scope="module")
def client(sqlite_file: Path) -> Iterator[ServiceClient]:
    """The service in this process on the SQLite file (alert ticks every second)."""
    from api.container import Container

    with ServiceClient(Container(service_settings(None, sqlite_path=sqlite_file))) as started:
        yield started


def test_intake_lifecycle_and_duplicates_on_sqlite(client: ServiceClient, sqlite_file: Path) -> None:
    key = new_key()
    body = call_body(*LAHORE_POINT, "murder", caller_phone="03001112222",
                     at=fresh_time())
    first = post_call(client, body, key=key)
    assert first.status_code == 201, first.text
    again = post_call(client, body, key=key)
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    assert post_call(client, {**body, "category": "fire"}, key=key).status_code == 409
    call = first.json()
    assert call["station_code"] == LAHORE_STATION
    near = post_call(client, {**call_body(LAHORE_POINT[0] + 0.001, LAHORE_POINT[1],
                                          "kidnapping"),
                              "received_at": _after(body["received_at"], minutes=5)})
    assert near.json()["duplicate_of"] == call["id"]
    sho = headers("sho", LAHORE_STATION)
    wrong = client.post(f"/api/v1/calls/{call['id']}/events", json={"type": "closed"},
                        headers=sho)
    assert wrong.status_code == 409
    for minutes, step in enumerate(("acknowledged", "dispatched", "on_scene", "closed"), 1):
        answer = client.post(f"/api/v1/calls/{call['id']}/events", headers=sho,
                             json={"type": step,
                                   "at": _after(body["received_at"], minutes=minutes)})
        assert answer.status_code == 201, answer.text
    trail = client.get(f"/api/v1/calls/{call['id']}/events", headers=sho).json()
    assert [e["type"] for e in trail] == ["received", "acknowledged", "dispatched",
                                          "on_scene", "closed"]
    listed = client.get("/api/v1/calls", params={"station": LAHORE_STATION, "limit": 1},
                        headers=headers("dpo", "PK617")).json()
    assert len(listed["items"]) == 1
    assert listed["next_cursor"]
    duty = client.get(f"/api/v1/stations/{LAHORE_STATION}/on-duty",
                      params={"at": "2026-11-25T23:00:00+05:00"}, headers=sho).json()
    assert duty["on_duty"]["rank"] == "Sub-Inspector"
    with stored(sqlite_file) as db:
        assert db.execute("SELECT count(*) FROM calls WHERE idempotency_key = ?",
                          (key,)).fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM audit_log WHERE action = 'route'").fetchone() == (2,)


def _after(iso: str, *, minutes: int) -> str:
    return (datetime.fromisoformat(iso) + timedelta(minutes=minutes)).isoformat()


def test_alerts_are_raised_on_the_embedded_back_end(client: ServiceClient,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The alert engine runs in the embedded service too (real clock, 1 s ticks): a call
    received 12 minutes ago and never acknowledged is escalated to the region."""
    import time
    from datetime import UTC

    received = datetime.now(UTC) - timedelta(minutes=12)
    call = post_call(client, call_body(LAHORE_POINT[0] - 0.01, LAHORE_POINT[1] + 0.01,
                                       "rape", at=received)).json()
    deadline = time.monotonic() + 30
    found: dict[str, dict[str, object]] = {}
    while time.monotonic() < deadline and len(found) < 2:
        items = client.get("/api/v1/alerts", params={"limit": 100},
                           headers=headers("admin")).json()["items"]
        found = {a["type"]: a for a in items if call["id"] in a["call_ids"]}
        time.sleep(0.3)
    assert set(found) == {"unacknowledged", "response_breach"}
    assert found["unacknowledged"]["level"] == "region"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_call_from_islamabad_is_named_on_sqlite(client: ServiceClient, sqlite_file: Path) -> None:
    """Migration 0006 on SQLite: the column exists and keeps the province's name."""
    key = new_key()
    taken = post_call(client, call_body(33.6844, 73.0479, "fire", at=fresh_time()), key=key)
    assert taken.status_code == 201, taken.text
    call = taken.json()
    assert call["outside_punjab"] == "Islamabad Capital Territory"
    assert call["transfer_suggested"] is True
    with stored(sqlite_file) as conn:
        row = conn.execute("SELECT outside_punjab FROM calls WHERE idempotency_key = ?",
                           (key,)).fetchone()
    assert row == ("Islamabad Capital Territory",)


def test_idempotency_keys_are_scoped_to_the_callers_area_on_sqlite(client: ServiceClient) -> None:
    from tests.test_hardening import keys_stay_in_their_area

    assert len(set(keys_stay_in_their_area(client)[:3])) == 3
