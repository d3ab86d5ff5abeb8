"""The call service over HTTP against real PostGIS: intake, idempotency, lifecycle,
duplicates, rosters, listing, audit and bad input.

The service runs in this process (the ``client`` fixture) on the session database loaded
by ``safecity jurisdictions load``; assertions about what was stored read the database
directly with psycopg.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from tests.callservice import (
    ATTOCK_POINT,
    LAHORE_PATH,
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
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def db(loaded_postgis: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(loaded_postgis, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def attock_station(client: ServiceClient) -> str:
    """The station covering ATTOCK_POINT (a district with no sample roster)."""
    answer = client.post("/api/v1/route/", headers=headers("call_taker"),
                         json={"lat": ATTOCK_POINT[0], "lon": ATTOCK_POINT[1]}).json()
    assert answer["district_code"] == "PK601"
    return str(answer["station_code"])


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point ``north_m``/``east_m`` metres from (lat, lon)."""
    return (lat + north_m / 111_320.0,
            lon + east_m / (111_320.0 * math.cos(math.radians(lat))))


def sho(station: str = LAHORE_STATION, **extra: str) -> dict[str, str]:
    return headers("sho", station, **extra)


def event(client: httpx.Client, call_id: str, body: dict[str, Any],
          role_headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post(f"/api/v1/calls/{call_id}/events", json=body,
                       headers=role_headers or sho())


# ---------------------------------------------------------------------- intake
def test_create_routes_stores_audits_and_answers_201(client: httpx.Client,
                                                     db: psycopg.Connection[Any]) -> None:
    body = call_body(*LAHORE_POINT, "murder", caller_phone="03001234567",
                     description="firing reported near the market")
    response = post_call(client, body)
    assert response.status_code == 201, response.text
    call = response.json()
    assert call["status"] == "received"
    assert {k: call[f"{k}_code"] for k in ("station", "tehsil", "district", "region")} == {
        k: LAHORE_PATH[k] for k in ("station", "tehsil", "district", "region")}
    assert call["station_name"].startswith("Lahore Cantt")
    assert (call["tehsil_name"], call["district_name"], call["region_name"]) == (
        "Lahore Cantt", "Lahore", "Lahore")
    assert call["method"] == "interior"
    assert call["out_of_coverage"] is False
    assert call["serious"] is True
    assert call["unstaffed"] is True  # no roster covers 2025 at this station
    assert call["sho_on_duty"] is None
    assert call["duplicate_of"] is None
    assert call["caller_phone"] == "03001234567"
    assert call["allowed_events"] == ["acknowledged", "transferred", "cancelled"]
    stored = db.execute("SELECT station_code, status, boundary_set, ST_AsText(geom) FROM calls "
                        "WHERE id = %s", (call["id"],)).fetchone()
    assert stored is not None
    assert stored[:2] == (LAHORE_STATION, "received")
    assert stored[2].startswith("punjab-")
    assert stored[3] == f"POINT({LAHORE_POINT[1]} {LAHORE_POINT[0]})"
    events = db.execute("SELECT type, status, station_code FROM call_events WHERE call_id = %s",
                        (call["id"],)).fetchall()
    assert events == [("received", "received", LAHORE_STATION)]
    audit = db.execute("SELECT actor, role, detail->>'station', detail->>'method' FROM audit_log "
                       "WHERE call_id = %s AND action = 'route'", (call["id"],)).fetchall()
    assert audit == [("test-call_taker", "call_taker", LAHORE_STATION, "interior")]


def test_out_of_coverage_point_goes_to_nearest_and_is_flagged(client: httpx.Client) -> None:
    # 1.5 km across the border east of Lahore: within the nearest-station limit
    response = post_call(client, call_body(31.55, 74.62))
    assert response.status_code == 201, response.text
    call = response.json()
    assert call["out_of_coverage"] is True
    assert call["method"] == "nearest"
    assert 1000 < call["distance_m"] < 2000
    assert call["station_code"] == "PK61701-038"


def test_same_key_same_body_is_the_same_call(client: httpx.Client,
                                             db: psycopg.Connection[Any]) -> None:
    key = new_key()
    at = fresh_time()
    first = post_call(client, call_body(*LAHORE_POINT, at=at), key=key)
    assert first.status_code == 201
    # the same instant written in another zone and 1 vs 1.0 are the same request
    again = post_call(client, {**call_body(*LAHORE_POINT, at=at),
                               "received_at": at.astimezone(UTC).isoformat().replace("+00:00", "Z")},
                      key=key)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    count = db.execute("SELECT count(*) FROM calls WHERE idempotency_key = %s", (key,)).fetchone()
    events = db.execute("SELECT count(*) FROM call_events WHERE call_id = %s",
                        (first.json()["id"],)).fetchone()
    assert count == (1,)
    assert events == (1,)


def test_same_key_other_body_is_409(client: httpx.Client) -> None:
    key = new_key()
    assert post_call(client, call_body(*LAHORE_POINT), key=key).status_code == 201
    other = post_call(client, call_body(*LAHORE_POINT, "fire"), key=key)
    assert other.status_code == 409
    assert "different request body" in other.json()["detail"]


def test_concurrent_retries_make_exactly_one_call(client: ServiceClient,
                                                  db: psycopg.Connection[Any]) -> None:
    key = new_key("concurrent")
    body = call_body(*LAHORE_POINT, "traffic_accident")

    async def burst() -> list[httpx.Response]:  # on the app's own loop, all at once
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     timeout=60) as concurrent:
            hdrs = headers("call_taker", **{"Idempotency-Key": key})
            return await asyncio.gather(*(concurrent.post("/api/v1/calls", json=body,
                                                          headers=hdrs) for _ in range(40)))

    responses = client.blocking_portal.call(burst)
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1, codes
    assert codes.count(200) == 39, codes
    assert len({r.json()["id"] for r in responses}) == 1
    assert db.execute("SELECT count(*) FROM calls WHERE idempotency_key = %s",
                      (key,)).fetchone() == (1,)


# ---------------------------------------------------------------------- lifecycle
def test_full_lifecycle_and_409_naming_allowed(client: httpx.Client,
                                               db: psycopg.Connection[Any]) -> None:
    at = fresh_time()
    call = post_call(client, call_body(*LAHORE_POINT, at=at)).json()
    wrong = event(client, call["id"], {"type": "on_scene"})
    assert wrong.status_code == 409
    assert wrong.json()["allowed"] == ["acknowledged", "transferred", "cancelled"]
    assert "acknowledged, transferred, cancelled" in wrong.json()["detail"]
    steps = ["acknowledged", "dispatched", "en_route", "on_scene", "closed"]
    for minutes, step in enumerate(steps, start=1):
        answer = event(client, call["id"], {"type": step,
                                            "at": (at + timedelta(minutes=minutes)).isoformat()})
        assert answer.status_code == 201, answer.text
        assert answer.json()["call"]["status"] == step
        assert answer.json()["event"]["from_status"] == (["received", *steps][minutes - 1])
    after = event(client, call["id"], {"type": "acknowledged"})
    assert after.status_code == 409
    assert after.json()["allowed"] == []
    trail = client.get(f"/api/v1/calls/{call['id']}/events", headers=sho()).json()
    assert [e["type"] for e in trail] == ["received", *steps]
    assert [e["id"] for e in trail] == sorted(e["id"] for e in trail)
    assert client.get(f"/api/v1/calls/{call['id']}", headers=sho()).json()["status"] == "closed"
    rows = db.execute("SELECT action FROM audit_log WHERE call_id = %s AND action LIKE 'event.%%'",
                      (call["id"],)).fetchall()
    assert sorted(r[0] for r in rows) == sorted(f"event.{s}" for s in steps)


def test_event_times_must_not_go_backwards_or_into_the_future(client: httpx.Client) -> None:
    at = fresh_time()
    call = post_call(client, call_body(*LAHORE_POINT, at=at)).json()
    early = event(client, call["id"], {"type": "acknowledged",
                                       "at": (at - timedelta(minutes=1)).isoformat()})
    assert early.status_code == 422
    assert "precedes" in early.json()["detail"]
    future = event(client, call["id"], {"type": "acknowledged",
                                        "at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()})
    assert future.status_code == 422
    naive = event(client, call["id"], {"type": "acknowledged", "at": "2025-01-01T10:00:00"})
    assert naive.status_code == 400


def test_transfer_moves_the_call_and_keeps_the_trail(client: httpx.Client, attock_station: str,
                                                     db: psycopg.Connection[Any]) -> None:
    at = fresh_time()
    call = post_call(client, call_body(*LAHORE_POINT, at=at)).json()
    assert event(client, call["id"], {"type": "transferred", "to_station": attock_station}
                 ).status_code == 422  # a reason is required
    moved = event(client, call["id"], {"type": "transferred", "to_station": attock_station,
                                       "reason": "caller is actually in Attock",
                                       "at": (at + timedelta(minutes=2)).isoformat()})
    assert moved.status_code == 201, moved.text
    body = moved.json()
    assert body["call"]["status"] == "transferred"
    assert body["call"]["station_code"] == attock_station
    assert body["call"]["district_code"] == "PK601"
    assert body["event"]["from_station_code"] == LAHORE_STATION
    # the old station no longer sees it; the new one must acknowledge it
    assert client.get(f"/api/v1/calls/{call['id']}", headers=sho()).status_code == 403
    ack = event(client, call["id"], {"type": "acknowledged"}, sho(attock_station))
    assert ack.status_code == 201, ack.text
    trail = db.execute("SELECT type, station_code, from_station_code, reason FROM call_events "
                       "WHERE call_id = %s ORDER BY id", (call["id"],)).fetchall()
    assert trail == [("received", LAHORE_STATION, None, None),
                     ("transferred", attock_station, LAHORE_STATION, "caller is actually in Attock"),
                     ("acknowledged", attock_station, None, None)]
    same = event(client, call["id"], {"type": "transferred", "to_station": attock_station,
                                      "reason": "again"}, sho(attock_station))
    assert same.status_code == 422
    unknown = event(client, call["id"], {"type": "transferred", "to_station": "NOPE-1",
                                         "reason": "x"}, sho(attock_station))
    assert unknown.status_code == 422


def test_cancel_needs_a_reason_and_ends_the_call(client: httpx.Client) -> None:
    call = post_call(client, call_body(*LAHORE_POINT, "hoax")).json()
    assert event(client, call["id"], {"type": "cancelled"}).status_code == 422
    done = event(client, call["id"], {"type": "cancelled", "reason": "hoax: prank caller"},
                 headers("call_taker"))
    assert done.status_code == 201
    assert done.json()["call"]["status"] == "cancelled"
    assert done.json()["call"]["allowed_events"] == []
    # a call taker may cancel or transfer, not act for the station
    other = post_call(client, call_body(*LAHORE_POINT)).json()
    assert event(client, other["id"], {"type": "acknowledged"},
                 headers("call_taker")).status_code == 403


# ---------------------------------------------------------------------- duplicates
def test_duplicate_linking_rules(client: httpx.Client) -> None:
    t0 = fresh_time()
    lat, lon = offset(*LAHORE_POINT, 800, 800)  # a spot of its own
    first = post_call(client, call_body(lat, lon, "murder", at=t0)).json()
    assert first["duplicate_of"] is None

    def linked(category: str, north: float, east: float, minutes: float) -> Any:
        point = offset(lat, lon, north, east)
        response = post_call(client, call_body(*point, category,
                                               at=t0 + timedelta(minutes=minutes)))
        assert response.status_code == 201, response.text
        assert response.json()["station_code"]  # still routed and delivered
        return response.json()["duplicate_of"]

    assert linked("dacoity_robbery", 100, 100, 5) == first["id"]  # same group, 141 m, 5 min
    assert linked("kidnapping", 0, 240, 14) == first["id"]  # at the edges
    assert linked("murder", 0, 0, -10) == first["id"]  # reported earlier than the first
    assert linked("fire", 10, 0, 1) is None  # another group
    assert linked("murder", -270, 0, 1) is None  # 270 m from the first, further from the rest
    assert linked("murder", 0, 0, 30) is None  # 16 minutes after the last linked one
    assert linked("information", 0, 0, 1) is None  # enquiries are never linked


def test_closed_calls_are_not_duplicate_targets(client: httpx.Client) -> None:
    t0 = fresh_time()
    lat, lon = offset(*LAHORE_POINT, -900, 300)
    first = post_call(client, call_body(lat, lon, "domestic_violence", at=t0)).json()
    for minutes, step in enumerate(("acknowledged", "closed"), start=1):
        assert event(client, first["id"], {"type": step,
                                           "at": (t0 + timedelta(minutes=minutes)).isoformat()},
                     headers("dpo", "PK617")).status_code == 201
    later = post_call(client, call_body(lat, lon, "harassment", at=t0 + timedelta(minutes=5)))
    assert later.json()["duplicate_of"] is None


def test_duplicate_distance_in_sql_is_the_python_one(db: psycopg.Connection[Any]) -> None:
    """The PostgreSQL intake decides "within 250 m" in SQL, the SQLite one with
    :func:`geo.distance.haversine_m`: the two formulas must agree near the limit and far
    from it (to a nanometre: numpy's vectorised sines may differ from libm's in the last
    bit, which moves a distance by ~1e-10 m)."""
    import random

    from api.db.intake_sql import haversine_sql
    from geo.crs import EARTH_RADIUS_M
    from geo.distance import haversine_m

    rng = random.Random(15)
    pairs = []
    for _ in range(400):
        lat, lon = rng.uniform(28, 34), rng.uniform(69.5, 75.5)
        bearing, metres = rng.uniform(0, 2 * math.pi), rng.choice([rng.uniform(0, 400), 250.0])
        pairs.append((lat, lon, *offset(lat, lon, metres * math.cos(bearing),
                                        metres * math.sin(bearing))))
    expression = haversine_sql("a.lat1", "a.lon1", "a.lat2", "a.lon2", "%s")
    rows = db.execute(
        f"SELECT {expression} FROM unnest(%s::float8[], %s::float8[], %s::float8[], "
        "%s::float8[]) WITH ORDINALITY AS a(lat1, lon1, lat2, lon2, n) ORDER BY n",
        (EARTH_RADIUS_M, *([p[i] for p in pairs] for i in range(4)))).fetchall()
    expected = haversine_m(*(np.array([p[i] for p in pairs]) for i in range(4)))
    assert np.abs(np.array([r[0] for r in rows]) - expected).max() < 1e-9


# ---------------------------------------------------------------------- rosters
def test_roster_on_duty_and_unstaffed_calls(client: httpx.Client, attock_station: str) -> None:
    t0 = fresh_time().replace(hour=0, minute=0, second=0)
    shifts = [
        {"officer_name": "Inspector Test One", "rank": "Inspector", "phone": "03000000001",
         "start": (t0 + timedelta(hours=8)).isoformat(), "end": (t0 + timedelta(hours=20)).isoformat()},
        {"officer_name": "SI Test Two", "rank": "Sub-Inspector",
         "start": (t0 + timedelta(hours=20)).isoformat(), "end": (t0 + timedelta(hours=30)).isoformat()},
    ]
    url = f"/api/v1/stations/{attock_station}/roster"
    put = client.put(url, json={"shifts": shifts}, headers=sho(attock_station))
    assert put.status_code == 200, put.text
    assert put.json()["revision"] >= 1
    assert [s["officer_name"] for s in put.json()["shifts"]] == ["Inspector Test One", "SI Test Two"]
    assert client.get(url, headers=headers("dpo", "PK601")).json()["shifts"] == put.json()["shifts"]

    def on_duty(hours: float) -> Any:
        at = (t0 + timedelta(hours=hours)).isoformat()
        answer = client.get(f"/api/v1/stations/{attock_station}/on-duty", params={"at": at},
                            headers=headers("call_taker"))
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert on_duty(9)["on_duty"]["officer_name"] == "Inspector Test One"
    assert on_duty(20)["on_duty"]["officer_name"] == "SI Test Two"  # [start, end)
    assert on_duty(31)["unstaffed"] is True
    staffed = post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(hours=10))).json()
    assert staffed["station_code"] == attock_station
    assert staffed["unstaffed"] is False
    assert staffed["sho_on_duty"]["officer_name"] == "Inspector Test One"
    assert staffed["sho_on_duty"]["phone"] == "03000000001"
    gap = post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(hours=31)))
    assert gap.status_code == 201
    assert gap.json()["unstaffed"] is True
    assert gap.json()["station_code"] == attock_station  # never lost

    overlap = [shifts[0], {**shifts[1], "start": (t0 + timedelta(hours=19)).isoformat()}]
    assert client.put(url, json={"shifts": overlap}, headers=sho(attock_station)).status_code == 422
    backwards = [{**shifts[0], "end": shifts[0]["start"]}]
    assert client.put(url, json={"shifts": backwards}, headers=sho(attock_station)).status_code == 422
    nul = [{**shifts[0], "officer_name": "a\u0000b"}]
    assert client.put(url, json={"shifts": nul}, headers=sho(attock_station)).status_code == 400
    naive = [{**shifts[0], "start": "2025-01-01T08:00:00"}]
    assert client.put(url, json={"shifts": naive}, headers=sho(attock_station)).status_code == 400
    assert client.put("/api/v1/stations/NOPE-001/roster", json={"shifts": shifts},
                      headers=headers("admin")).status_code == 404
    assert client.put(url, json={"shifts": shifts}, headers=sho()).status_code == 403
    # a refused replacement leaves the roster as it was
    assert client.get(url, headers=sho(attock_station)).json()["shifts"] == put.json()["shifts"]


def test_a_roster_changed_behind_the_service_is_honoured(client: httpx.Client, attock_station: str,
                                                        db: psycopg.Connection[Any]) -> None:
    """The intake guesses the SHO on duty from a per-process cache; the database checks
    the guess, so a roster written behind the service's back (another worker, a manual
    fix) counts from the next call on, in both directions."""
    t0 = fresh_time().replace(hour=0, minute=0, second=0)
    before = post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(hours=9)))
    assert before.json()["unstaffed"] is True  # and the cache now knows nobody is on duty
    db.execute("INSERT INTO station_rosters (station_code, revision, updated_at, updated_by, "
               "shift_count) VALUES (%s, 1, now(), 'test', 1) ON CONFLICT DO NOTHING",
               (attock_station,))
    shift = db.execute(
        "INSERT INTO roster_shifts (station_code, officer_name, rank, phone, starts_at, ends_at) "
        "VALUES (%s, 'Inspector Behind The Back', 'Inspector', '03001112223', %s, %s) "
        "RETURNING id", (attock_station, t0 + timedelta(hours=8), t0 + timedelta(hours=16))
    ).fetchone()
    assert shift is not None
    staffed = post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(hours=10)))
    assert staffed.status_code == 201, staffed.text
    assert staffed.json()["unstaffed"] is False
    assert staffed.json()["sho_on_duty"]["officer_name"] == "Inspector Behind The Back"
    stored = db.execute("SELECT sho_shift_id, sho_name, unstaffed FROM calls WHERE id = %s",
                        (staffed.json()["id"],)).fetchone()
    assert stored == (shift[0], "Inspector Behind The Back", False)
    db.execute("DELETE FROM roster_shifts WHERE id = %s", (shift[0],))
    gone = post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(hours=11)))
    assert gone.json()["unstaffed"] is True
    assert gone.json()["sho_on_duty"] is None


def test_sample_roster_loads_with_the_cli(loaded_postgis: str, client: httpx.Client,
                                         tmp_path: Path) -> None:
    env = {"DATABASE_URL": loaded_postgis, "SAFECITY_JWT_SECRET": SECRET, "PATH": "/usr/bin:/bin",
           "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "api.cli", "roster", "load",
                           "data/roster_sample.csv"], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1,513 shifts for 101 stations" in done.stdout + done.stderr

    def on_duty(station: str, at: str) -> Any:
        return client.get(f"/api/v1/stations/{station}/on-duty", params={"at": at},
                          headers=headers("dpo", "PK617")).json()

    assert on_duty("PK61701-001", "2026-11-25T23:00:00+05:00")["on_duty"]["rank"] == "Sub-Inspector"
    assert on_duty("PK61701-001", "2026-11-25T10:00:00+05:00")["on_duty"]["rank"] == "Inspector"
    assert on_duty("PK61701-003", "2026-11-25T23:00:00+05:00")["unstaffed"] is True  # planted gap
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("station,name\nPK61701-001,X\n")
    bad = subprocess.run([sys.executable, "-m", "api.cli", "roster", "load", str(wrong)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "lacks column" in bad.stdout + bad.stderr


# ---------------------------------------------------------------------- reads
def test_list_filters_and_cursor_pages(client: httpx.Client, attock_station: str) -> None:
    t0 = fresh_time()
    made = [post_call(client, call_body(*ATTOCK_POINT, "fire" if i % 2 else "other_crime",
                                        at=t0 + timedelta(minutes=20 * i))).json()["id"]
            for i in range(5)]
    params: dict[str, Any] = {"station": attock_station, "since": t0.isoformat(),
              "until": (t0 + timedelta(hours=2)).isoformat(), "limit": 2}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = client.get("/api/v1/calls", params={**params, **({"cursor": cursor} if cursor else {})},
                          headers=headers("dpo", "PK601"))
        assert page.status_code == 200, page.text
        seen += [c["id"] for c in page.json()["items"]]
        pages += 1
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(made))  # newest first, each once
    fires = client.get("/api/v1/calls", params={**params, "category": "fire", "limit": 10},
                       headers=headers("dpo", "PK601")).json()["items"]
    assert [c["id"] for c in fires] == [made[3], made[1]]
    received = client.get("/api/v1/calls", params={**params, "status": "received", "limit": 10},
                          headers=headers("dpo", "PK601")).json()["items"]
    assert len(received) == 5


def test_reads_are_audited(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    call = post_call(client, call_body(*LAHORE_POINT)).json()
    assert client.get(f"/api/v1/calls/{call['id']}", headers=headers("dpo", "PK617")).status_code == 200
    assert client.get(f"/api/v1/calls/{call['id']}/events", headers=sho()).status_code == 200
    rows = db.execute("SELECT action, role FROM audit_log WHERE call_id = %s ORDER BY id",
                      (call["id"],)).fetchall()
    assert rows == [("route", "call_taker"), ("call.read", "dpo"), ("call.events", "sho")]
    listed = client.get("/api/v1/calls", params={"station": LAHORE_STATION, "limit": 3},
                        headers=sho()).json()["items"]
    entry = db.execute("SELECT detail FROM audit_log WHERE action = 'call.list' AND role = 'sho' "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    assert entry is not None
    assert entry[0]["calls"] == [c["id"] for c in listed]


# ---------------------------------------------------------------------- bad input
BAD_CALLS: list[tuple[str, Any, int, str]] = [
    ("latitude out of range", {"lat": 95, "lon": 74.3, "category": "fire"}, 400, "lat"),
    ("latitude as text", {"lat": "north", "lon": 74.3, "category": "fire"}, 400, "lat"),
    ("missing category", {"lat": 31.5, "lon": 74.3}, 400, "category"),
    ("unknown field", {"lat": 31.5, "lon": 74.3, "category": "fire", "x": 1}, 400, "x"),
    ("outside Pakistan", {"lat": 28.61, "lon": 77.21, "category": "fire"}, 422, "outside"),
    ("no station within the limit", {"lat": 31.55, "lon": 74.70, "category": "fire"}, 422,
     "no station"),
    ("unknown category", {"lat": 31.5, "lon": 74.3, "category": "alien"}, 422, "unknown category"),
    ("negative radius", {"lat": 31.5, "lon": 74.3, "category": "fire", "radius_m": -5}, 400,
     "radius_m"),
    ("naive received_at", {"lat": 31.5, "lon": 74.3, "category": "fire",
                           "received_at": "2025-01-01T10:00:00"}, 400, "received_at"),
    ("future received_at", {"lat": 31.5, "lon": 74.3, "category": "fire",
                            "received_at": "2099-01-01T10:00:00+05:00"}, 422, "future"),
    ("received_at in year 1", {"lat": 31.5, "lon": 74.3, "category": "fire",
                               "received_at": "0001-01-01T00:05:00+00:00"}, 422, "between 2000"),
    ("NUL in the description", {"lat": 31.5, "lon": 74.3, "category": "fire",
                                "description": "a\u0000b"}, 400, "description"),
    ("phone with letters", {"lat": 31.5, "lon": 74.3, "category": "fire",
                            "caller_phone": "call me"}, 400, "caller_phone"),
    ("description too long", {"lat": 31.5, "lon": 74.3, "category": "fire",
                              "description": "x" * 2001}, 400, "description"),
    ("a list, not an object", [1, 2], 400, ""),
]


@pytest.mark.parametrize(("case", "body", "status", "mentions"), BAD_CALLS,
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_call_bodies_are_4xx_with_a_message(client: httpx.Client, case: str, body: Any,
                                                status: int, mentions: str) -> None:
    response = client.post("/api/v1/calls", json=body,
                           headers=headers("call_taker", **{"Idempotency-Key": new_key()}))
    assert response.status_code == status, (case, response.text)
    assert mentions in str(response.json()), response.text


def test_malformed_requests_are_4xx(client: httpx.Client) -> None:
    hdrs = headers("call_taker", **{"Idempotency-Key": new_key(), "Content-Type": "application/json"})
    assert client.post("/api/v1/calls", content=b'{"lat": 31.5,', headers=hdrs).status_code == 400
    body = call_body(*LAHORE_POINT)
    no_key = client.post("/api/v1/calls", json=body, headers=headers("call_taker"))
    assert no_key.status_code == 400
    assert "Idempotency-Key" in no_key.text
    long_key = client.post("/api/v1/calls", json=body,
                           headers=headers("call_taker", **{"Idempotency-Key": "k" * 300}))
    assert long_key.status_code == 400
    assert client.get("/api/v1/calls/not-a-uuid", headers=sho()).status_code == 404
    missing = client.get("/api/v1/calls/00000000-0000-4000-8000-000000000000", headers=headers("admin"))
    assert missing.status_code == 404
    assert "no call" in missing.json()["detail"]
    assert client.post("/api/v1/calls/00000000-0000-4000-8000-000000000000/events",
                       json={"type": "acknowledged"}, headers=headers("admin")).status_code == 404
    call = post_call(client, call_body(*LAHORE_POINT)).json()
    assert event(client, call["id"], {"type": "teleported"}).status_code == 400
    assert event(client, call["id"], {"type": "acknowledged", "to_station": "X"}).status_code == 422
    for params in ({"limit": 0}, {"limit": 501}, {"cursor": "garbage!"},
                   {"since": "2025-01-02T00:00:00+00:00", "until": "2025-01-01T00:00:00+00:00"},
                   {"since": "2025-01-01T00:00:00"}, {"status": "lost"}):
        answer = client.get("/api/v1/calls", params=params, headers=headers("admin"))
        assert answer.status_code == 400, (params, answer.text)
    assert client.get("/api/v1/calls", params={"station": "NOPE"},
                      headers=headers("admin")).status_code == 422
    assert client.get(f"/api/v1/stations/{LAHORE_STATION}/on-duty", params={"at": "yesterday"},
                      headers=sho()).status_code == 400
    # times a client may send but no database column holds (year 10000 in UTC)
    edge = "9999-12-31T23:00:00-05:00"
    assert client.get(f"/api/v1/stations/{LAHORE_STATION}/on-duty", params={"at": edge},
                      headers=sho()).status_code == 422
    assert client.get("/api/v1/calls", params={"since": edge},
                      headers=headers("admin")).status_code == 422
    shift = {"officer_name": "X", "rank": "SI", "start": "9999-12-31T20:00:00-05:00", "end": edge}
    assert client.put(f"/api/v1/stations/{LAHORE_STATION}/roster", json={"shifts": [shift]},
                      headers=headers("admin")).status_code == 422
