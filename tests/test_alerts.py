"""The four alerts end to end on PostGIS: calls and events with explicit times through the
API, the engine run at chosen instants by an injected clock (no sleeping).

The module has its own database (alerts must not mix with other modules' calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.callservice import (
    LAHORE_POINT,
    LAHORE_STATION,
    ServiceClient,
    headers,
    new_key,
    service_settings,
)
from tests.conftest import load_jurisdictions, scratch_postgis

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FakeClock:
    """The service's clock, moved by the tests."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def alerts_db() -> Iterator[str]:
    with scratch_postgis("safecity_alerts") as url:
        yield load_jurisdictions(url)


def serve(url: str, clock: FakeClock, **alert_settings: Any) -> ServiceClient:
    """The service in this process on ``url`` with ``clock`` (no ticking unless asked)."""
    from api.container import Container
    from api.settings import AlertSettings

    options = {"tick_s": 0.0, "hotspot_scan_h": 0.0, **alert_settings}
    return ServiceClient(Container(service_settings(url, alerts=AlertSettings(**options)),
                                   clock=clock))


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(scope="module")
def client(alerts_db: str, clock: FakeClock) -> Iterator[ServiceClient]:
    with serve(alerts_db, clock) as test_client:
        yield test_client


def run_engine(client: Any, at: datetime) -> Any:
    """Evaluate what is due at ``at`` (the service's clock is moved there first)."""
    client.container.clock.now = at
    return client.blocking_portal.call(client.container.alert_engine.run_due)


def take(client: Any, lat: float, lon: float, category: str, at: datetime, **extra: Any) -> dict[str, Any]:
    clock = client.container.clock
    clock.now = max(clock.now, at)
    answer = client.post("/api/v1/calls", json={"lat": lat, "lon": lon, "category": category,
                                                "received_at": at.isoformat(), **extra},
                         headers=headers("call_taker", **{"Idempotency-Key": new_key("alert")}))
    assert answer.status_code == 201, answer.text
    call: dict[str, Any] = answer.json()
    return call


def post_event(client: Any, call: dict[str, Any], kind: str, at: datetime, **extra: Any) -> None:
    clock = client.container.clock
    clock.now = max(clock.now, at)
    answer = client.post(f"/api/v1/calls/{call['id']}/events",
                         json={"type": kind, "at": at.isoformat(), **extra},
                         headers=headers("admin"))
    assert answer.status_code == 201, answer.text


def alerts_of(client: Any, call: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/alerts", params={"limit": 500, **({"type": kind} if kind else {})},
                        headers=headers("admin"))
    assert answer.status_code == 200, answer.text
    return [a for a in answer.json()["items"] if call["id"] in a["call_ids"]]


def history(client: Any, alert: dict[str, Any]) -> list[tuple[str, str]]:
    answer = client.get(f"/api/v1/alerts/{alert['id']}", headers=headers("admin"))
    assert answer.status_code == 200, answer.text
    return [(e["type"], e["level"]) for e in answer.json()["history"]]


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    import math

    return (lat + north_m / 111_320, lon + east_m / (111_320 * math.cos(math.radians(lat))))


def test_unacknowledged_escalates_station_district_region_then_resolves(client: Any) -> None:
    t0 = T0 + timedelta(days=20)
    call = take(client, *LAHORE_POINT, "other_crime", t0)
    run_engine(client, t0 + timedelta(minutes=1, seconds=59))
    assert alerts_of(client, call) == []  # not yet due
    run_engine(client, t0 + timedelta(minutes=2))
    [alert] = alerts_of(client, call, "unacknowledged")
    assert (alert["state"], alert["level"], alert["code"], alert["escalation"]) == (
        "open", "station", LAHORE_STATION, 0)
    assert alert["due_at"].startswith((t0 + timedelta(minutes=2)).isoformat()[:19])
    run_engine(client, t0 + timedelta(minutes=4, seconds=59))
    assert alerts_of(client, call, "unacknowledged")[0]["escalation"] == 0
    run_engine(client, t0 + timedelta(minutes=5))
    [alert] = alerts_of(client, call, "unacknowledged")
    assert (alert["level"], alert["code"], alert["escalation"]) == ("district", "PK617", 1)
    run_engine(client, t0 + timedelta(minutes=10))
    [alert] = alerts_of(client, call, "unacknowledged")
    assert (alert["level"], alert["code"], alert["escalation"]) == ("region", "LHR", 2)
    post_event(client, call, "acknowledged", t0 + timedelta(minutes=11))
    run_engine(client, t0 + timedelta(minutes=11, seconds=1))
    [alert] = alerts_of(client, call, "unacknowledged")
    assert alert["state"] == "resolved"
    assert alert["resolution"] == "auto: acknowledged"
    assert alert["resolved_at"].startswith((t0 + timedelta(minutes=11)).isoformat()[:19])
    assert history(client, alert) == [("raised", "station"), ("escalated", "district"),
                                      ("escalated", "region"), ("resolved", "region")]
    assert alerts_of(client, call, "response_breach") == []  # other crime is not serious


def test_breach_fires_at_the_sla_and_resolves_when_on_scene(client: Any) -> None:
    t0 = T0 + timedelta(days=22)
    call = take(client, *LAHORE_POINT, "murder", t0)  # serious; Lahore City is urban: 10 min
    post_event(client, call, "acknowledged", t0 + timedelta(minutes=1))
    post_event(client, call, "dispatched", t0 + timedelta(minutes=3))
    run_engine(client, t0 + timedelta(minutes=9, seconds=59))
    assert alerts_of(client, call) == []
    run_engine(client, t0 + timedelta(minutes=10))
    [breach] = alerts_of(client, call, "response_breach")
    assert (breach["state"], breach["level"], breach["code"]) == ("open", "district", "PK617")
    assert breach["detail"]["sla_min"] == 10
    post_event(client, call, "on_scene", t0 + timedelta(minutes=14))
    run_engine(client, t0 + timedelta(minutes=14, seconds=5))
    [breach] = alerts_of(client, call, "response_breach")
    assert breach["state"] == "resolved"
    assert breach["resolution"] == "auto: on scene after 14 min"
    assert alerts_of(client, call, "unacknowledged") == []  # acknowledged within 2 min


def test_no_alert_when_everything_happens_in_time(client: Any) -> None:
    t0 = T0 + timedelta(days=24)
    call = take(client, *LAHORE_POINT, "dacoity_robbery", t0)
    for minutes, kind in ((1, "acknowledged"), (2, "dispatched"), (8, "on_scene"), (30, "closed")):
        post_event(client, call, kind, t0 + timedelta(minutes=minutes))
    run_engine(client, t0 + timedelta(hours=2))
    assert alerts_of(client, call) == []
    stored = client.blocking_portal.call(_next_alert_at, client, call["id"])
    assert stored is None  # nothing left to watch


def test_events_entered_late_withdraw_the_alerts_they_show_were_never_due(client: Any) -> None:
    t0 = T0 + timedelta(days=25)
    call = take(client, *LAHORE_POINT, "murder", t0)  # serious: 10 min SLA in Lahore City
    run_engine(client, t0 + timedelta(minutes=12))
    assert {a["type"] for a in alerts_of(client, call)} == {"unacknowledged", "response_breach"}
    # the station's log, typed in afterwards: acknowledged at 1 min, on scene at 9
    post_event(client, call, "acknowledged", t0 + timedelta(minutes=1))
    post_event(client, call, "dispatched", t0 + timedelta(minutes=2))
    post_event(client, call, "on_scene", t0 + timedelta(minutes=9))
    report = run_engine(client, t0 + timedelta(minutes=13))
    assert report.resolved == 2
    withdrawn = alerts_of(client, call)
    assert [a["state"] for a in withdrawn] == ["resolved", "resolved"]
    assert all(a["resolution"].startswith("auto: withdrawn") for a in withdrawn)
    assert [h for h, _ in history(client, withdrawn[0])] == ["raised", "resolved"]
    run_engine(client, t0 + timedelta(hours=2))
    assert [a["state"] for a in alerts_of(client, call)] == ["resolved", "resolved"]


async def _next_alert_at(client: Any, call_id: str) -> Any:
    from sqlalchemy import text

    async with client.container.sessions() as session:
        return await session.scalar(
            text("SELECT next_alert_at FROM alert_due WHERE call_id = :id"), {"id": call_id})


def test_a_transfer_restarts_the_wait_at_the_new_station(client: Any) -> None:
    t0 = T0 + timedelta(days=26)
    call = take(client, *LAHORE_POINT, "other_crime", t0)
    run_engine(client, t0 + timedelta(minutes=3))
    [first] = alerts_of(client, call, "unacknowledged")
    target = "PK61701-008"
    post_event(client, call, "transferred", t0 + timedelta(minutes=4), to_station=target,
               reason="wrong side of the canal")
    run_engine(client, t0 + timedelta(minutes=5, seconds=30))
    waits = {a["detail"]["station"]: a for a in alerts_of(client, call, "unacknowledged")}
    assert waits[LAHORE_STATION]["state"] == "resolved"
    assert waits[LAHORE_STATION]["resolution"] == "auto: transferred"
    assert waits[LAHORE_STATION]["id"] == first["id"]
    assert target not in waits  # the new station's 2 minutes are not over
    run_engine(client, t0 + timedelta(minutes=6))
    waits = {a["detail"]["station"]: a for a in alerts_of(client, call, "unacknowledged")}
    assert (waits[target]["state"], waits[target]["code"]) == ("open", target)


def test_repeat_location_needs_three_calls_within_100_m_and_ignores_duplicates(client: Any) -> None:
    t0 = T0 + timedelta(days=1)
    base = offset(*LAHORE_POINT, 900, 0)
    first = take(client, *base, "other_crime", t0)
    second = take(client, *offset(*base, 40, 30), "harassment", t0 + timedelta(hours=2))
    # linked as a duplicate of the open second call (same group, 250 m, 15 min): left out
    dup = take(client, *offset(*base, 50, 20), "harassment", t0 + timedelta(hours=2, minutes=5))
    assert dup["duplicate_of"] == second["id"]
    far = take(client, *offset(*base, 400, 0), "other_crime", t0 + timedelta(hours=3))
    run_engine(client, t0 + timedelta(hours=3, seconds=1))
    assert alerts_of(client, first, "repeat") == []
    third = take(client, *offset(*base, -30, 50), "fire", t0 + timedelta(hours=5))
    run_engine(client, t0 + timedelta(hours=5, seconds=1))
    [repeat] = alerts_of(client, first, "repeat")
    assert repeat["detail"]["basis"] == "location"
    assert repeat["call_ids"] == [first["id"], second["id"], third["id"]]
    assert far["id"] not in repeat["call_ids"]
    assert dup["id"] not in repeat["call_ids"]
    fourth = take(client, *offset(*base, 10, 10), "other_crime", t0 + timedelta(hours=20))
    run_engine(client, t0 + timedelta(hours=20, seconds=1))
    [repeat] = alerts_of(client, first, "repeat")
    assert repeat["call_ids"][-1] == fourth["id"]
    assert ("updated", "station") in history(client, repeat)
    # 25 hours after the first call only three of them are within a day of the next
    late = take(client, *offset(*base, 5, 5), "other_crime", t0 + timedelta(hours=30))
    run_engine(client, t0 + timedelta(hours=30, seconds=1))
    assert [a["id"] for a in alerts_of(client, late, "repeat")] != [repeat["id"]]


def test_repeat_caller_from_anywhere(client: Any) -> None:
    t0 = T0 + timedelta(days=3)
    phone = "03214567890"
    calls = [take(client, *offset(*LAHORE_POINT, 2000 * i, 0), "other_crime",
                  t0 + timedelta(hours=3 * i), caller_phone=phone) for i in range(3)]
    run_engine(client, t0 + timedelta(hours=7))
    found = [a for a in alerts_of(client, calls[0], "repeat") if a["detail"]["basis"] == "caller"]
    assert len(found) == 1
    assert found[0]["call_ids"] == [c["id"] for c in calls]
    assert phone not in str(found[0])  # the alert names calls, never the number


def test_acknowledge_stops_escalation_resolve_ends_it_and_scope_applies(client: Any) -> None:
    t0 = T0 + timedelta(days=4)
    call = take(client, *LAHORE_POINT, "other_crime", t0)
    run_engine(client, t0 + timedelta(minutes=3))
    [alert] = alerts_of(client, call, "unacknowledged")
    url = f"/api/v1/alerts/{alert['id']}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=headers("call_taker")).status_code == 403
    assert client.get(url, headers=headers("sho", "PK61701-008")).status_code == 403
    assert client.get(url, headers=headers("dpo", "PK601")).status_code == 403
    assert client.get(url, headers=headers("sho", LAHORE_STATION)).status_code == 200
    listed = client.get("/api/v1/alerts", params={"level": "district", "code": "PK601"},
                        headers=headers("dpo", "PK617"))
    assert listed.status_code == 403
    mine = client.get("/api/v1/alerts", headers=headers("sho", LAHORE_STATION)).json()["items"]
    assert alert["id"] in [a["id"] for a in mine]
    assert all(a["station_code"] == LAHORE_STATION for a in mine)
    acked = client.post(f"{url}/acknowledge", json={"note": "on it"},
                        headers=headers("sho", LAHORE_STATION))
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged"
    run_engine(client, t0 + timedelta(minutes=12))
    [alert] = alerts_of(client, call, "unacknowledged")
    assert (alert["state"], alert["escalation"]) == ("acknowledged", 0)
    again = client.post(f"{url}/acknowledge", headers=headers("sho", LAHORE_STATION))
    assert again.status_code == 409
    assert again.json()["allowed"] == ["resolved"]
    done = client.post(f"{url}/resolve", json={"note": "SHO reached the caller by phone"},
                       headers=headers("dpo", "PK617"))
    assert done.status_code == 200
    assert done.json()["state"] == "resolved"
    assert done.json()["resolved_by"] == "dpo:test-dpo"
    assert client.post(f"{url}/resolve", headers=headers("admin")).status_code == 409
    assert client.get("/api/v1/alerts", params={"state": "bogus"},
                      headers=headers("admin")).status_code == 400


def test_alert_feed_sends_escalations_to_the_level_they_reach(client: Any) -> None:
    import json

    t0 = T0 + timedelta(days=5)
    call = take(client, *LAHORE_POINT, "other_crime", t0)
    token = headers("dpo", "PK617")["Authorization"].split()[1]
    with client.websocket_connect(f"/api/v1/ws/alerts/district/PK617?access_token={token}") as ws:
        assert json.loads(ws.receive_text())["type"] == "comment"
        run_engine(client, t0 + timedelta(minutes=3))  # station level only: not sent here
        run_engine(client, t0 + timedelta(minutes=5))
        message = json.loads(ws.receive_text())
    assert message["type"] == "alert.escalated"
    assert message["alert"]["level"] == "district"
    assert message["alert"]["call_ids"] == [call["id"]]
    # a reconnecting subscriber is replayed what it missed, from the database
    replay = (f"/api/v1/ws/alerts/district/PK617?access_token={token}"
              f"&last_event_id={message['event_id'] - 1}")
    with client.websocket_connect(replay) as ws:
        assert json.loads(ws.receive_text())["type"] == "comment"
        again = json.loads(ws.receive_text())
    assert again == message
    station_token = headers("sho", "PK61701-008")["Authorization"].split()[1]
    from litestar.exceptions import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(
            f"/api/v1/ws/alerts/district/PK617?access_token={station_token}") as ws:
        ws.receive_text()
    assert refused.value.code == 4403


def test_a_restarted_service_raises_what_fell_due_while_it_was_down(alerts_db: str) -> None:
    t0 = T0 + timedelta(days=6)
    clock = FakeClock(t0)
    with serve(alerts_db, clock) as first:
        call = take(first, *LAHORE_POINT, "kidnapping", t0)  # serious
    clock.now = t0 + timedelta(minutes=25)  # down for 25 minutes
    with serve(alerts_db, clock, tick_s=0.05) as second:
        import time

        deadline = time.monotonic() + 30
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(found) < 2:
            found = alerts_of(second, call)
            time.sleep(0.1)
    kinds = {a["type"]: a for a in found}
    assert set(kinds) == {"unacknowledged", "response_breach"}
    unack = kinds["unacknowledged"]
    assert (unack["level"], unack["escalation"]) == ("region", 2)
    assert unack["due_at"].startswith((t0 + timedelta(minutes=2)).isoformat()[:19])
    assert unack["raised_at"].startswith(clock.now.isoformat()[:19])


def test_response_statistics_api_and_cli_agree_with_geo_on_the_same_calls(
        client: Any, alerts_db: str) -> None:
    import json
    import os
    import subprocess
    import sys

    import numpy as np
    import pandas as pd

    from api.shipped import load_categories
    from geo.response import SlaTable, response_report

    t0 = T0 + timedelta(days=40)
    plans = [("murder", 1, 3, 9), ("dacoity_robbery", 2, 4, 16), ("other_crime", 1, 5, 25),
             ("kidnapping", 3, 6, None), ("murder", 0.5, 2, 7)]
    rows = []
    for i, (category, ack, disp, scene) in enumerate(plans):
        at = t0 + timedelta(hours=5 * i)
        place = offset(*LAHORE_POINT, 150 * i, 0)
        call = take(client, *place, category, at)
        assert call["station_code"] == LAHORE_STATION
        times = {"acknowledged": ack, "dispatched": disp, "on_scene": scene}
        for kind, minutes in times.items():
            if minutes is not None:
                post_event(client, call, kind, at + timedelta(minutes=minutes))
        rows.append({"received_at": at, "category": category,
                     **{f"{k}_at": at + timedelta(minutes=m) if m is not None else pd.NaT
                        for k, m in times.items()}, "closed_at": pd.NaT})
    params = {"level": "station", "code": LAHORE_STATION, "from": t0.isoformat(),
              "until": (t0 + timedelta(days=1)).isoformat()}
    answer = client.get("/api/v1/stats/response", params=params, headers=headers("planner"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    frame = pd.DataFrame(rows)
    sla = SlaTable.from_categories(load_categories())
    expected = response_report(frame, sla.minutes(frame["category"], pd.Series([True] * len(frame))))
    assert body["calls"] == 5
    for name, stats in expected["intervals"].items():
        for key, value in stats.items():
            assert body["intervals"][name][key] == pytest.approx(value), (name, key)
    response = body["intervals"]["response"]
    assert (response["count"], response["missing"], response["excluded"]) == (4, 1, 0)
    assert response["p50_min"] == pytest.approx(float(np.percentile([9, 16, 25, 7], 50)))
    assert response["p90_min"] == pytest.approx(float(np.percentile([9, 16, 25, 7], 90)))
    assert response["within_sla"] == pytest.approx(2 / 4)  # murder 9 and 7 within 10; 16, 25 out
    assert sum(map(sum, body["hour_weekday"]["count"])) == 4
    assert client.get("/api/v1/stats/response", params=params,
                      headers=headers("call_taker")).status_code == 403
    assert client.get("/api/v1/stats/response", params={**params, "level": "district",
                                                         "code": "PK601"},
                      headers=headers("dpo", "PK617")).status_code == 403
    assert client.get("/api/v1/stats/response", params={**params, "level": "galaxy"},
                      headers=headers("admin")).status_code == 400
    by_child = client.get("/api/v1/stats/response", headers=headers("dpo", "PK617"),
                          params={**params, "level": "tehsil", "code": "PK61701", "by": "child"})
    assert by_child.status_code == 200, by_child.text
    [child] = by_child.json()["children"]
    assert child["code"] == LAHORE_STATION
    assert child["intervals"] == body["intervals"]

    env = {**os.environ, "DATABASE_URL": alerts_db}
    done = subprocess.run([sys.executable, "-m", "api.cli", "stats", "response", "--level",
                           "station", "--code", LAHORE_STATION, "--from", params["from"],
                           "--until", params["until"], "--json"],
                          env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["intervals"] == body["intervals"]


def test_two_workers_never_raise_the_same_alert_twice(alerts_db: str) -> None:
    """Two service processes evaluate the same due calls at once (real clock, 0.1 s ticks):
    every alert exists once and was raised once."""
    import time

    import httpx
    import psycopg

    from tests.callservice import start_server

    env = {"SAFECITY_ALERT_TICK_S": "0.1", "SAFECITY_HOTSPOT_SCAN_H": "0"}
    workers = [start_server(alerts_db, extra_env=env) for _ in range(2)]
    try:
        received = datetime.now(UTC) - timedelta(minutes=12)  # every deadline has passed
        ids: list[str] = []
        with httpx.Client(timeout=30) as http:
            for i in range(40):
                lat, lon = offset(*LAHORE_POINT, 1000 * (i // 8) + 5000, 1000 * (i % 8))
                body = {"lat": lat, "lon": lon, "received_at": received.isoformat(),
                        "category": "murder" if i % 2 else "other_crime"}
                answer = http.post(f"{workers[i % 2].url}/api/v1/calls", json=body,
                                   headers=headers("call_taker", **{"Idempotency-Key": new_key("w2")}))
                assert answer.status_code == 201, answer.text
                ids.append(answer.json()["id"])
        sql_url = alerts_db.replace("postgresql://", "postgresql://", 1)
        deadline = time.monotonic() + 60
        with psycopg.connect(sql_url, autocommit=True) as db:
            while time.monotonic() < deadline:
                due = db.execute("SELECT count(*) FROM alert_due WHERE call_id = ANY(%s::uuid[])",
                                 (ids,)).fetchone()
                if due is not None and due[0] == 0:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # both engines idle again
            rows = db.execute(
                "SELECT a.type, a.call_id::text, a.escalation, "
                "(SELECT count(*) FROM alert_events e WHERE e.alert_id = a.id AND e.type = 'raised') "
                "FROM alerts a WHERE a.call_id = ANY(%s::uuid[])", (ids,)).fetchall()
    finally:
        logs = [w.log_text() for w in workers]
        for worker in workers:
            worker.stop()
    unack = [r for r in rows if r[0] == "unacknowledged"]
    breach = [r for r in rows if r[0] == "response_breach"]
    assert sorted(r[1] for r in unack) == sorted(ids)  # one each, no more
    assert sorted(r[1] for r in breach) == sorted(ids[1::2])  # the murders
    assert all(r[2] == 2 for r in unack)  # straight to the region: 10 minutes passed
    assert all(r[3] == 1 for r in rows), "an alert was raised twice"
    assert not any("Traceback" in log for log in logs), logs


def test_emerging_hot_spots_raise_alerts_through_the_framework(client: Any, alerts_db: str) -> None:
    """Alert 3: the detector of the hot-spot issue, on a generated history in the database,
    raises one alert per new (or intensifying) cell, addressed to the cell's district;
    the planted new hot spots are among them, and a rescan raises nothing twice."""
    import dataclasses

    from api.cli.synth import load_history
    from api.db.engine import create_sync_engine
    from api.domain.alerts.rules import AlertPolicy
    from api.domain.alerts.services import HotspotScanner
    from api.settings import DatabaseSettings
    from api.shipped import generate_calls

    calls, truth = generate_calls(6, 3, 0.005, "2024-01")
    engine = create_sync_engine(DatabaseSettings(url=alerts_db))
    try:
        load_history(calls, engine)
    finally:
        engine.dispose()
    parts = client.container
    ctx = dataclasses.replace(parts.alert_context, policy=AlertPolicy(
        hotspot_step="month", hotspot_steps=6, hotspot_res=8))
    scanner = HotspotScanner(ctx, parts.analytics, parts.served.router)
    now = datetime(2024, 7, 2, 12, tzinfo=UTC)
    report = client.blocking_portal.call(scanner.scan, now)
    listed = client.get("/api/v1/alerts", params={"type": "emerging_hotspot", "limit": 500},
                        headers=headers("admin")).json()["items"]
    assert report.raised == len(listed) > 0
    cells = {a["detail"]["h3"]: a for a in listed}
    planted_new = [h for h in truth["hotspots"] if h["class"] == "new"]
    found = [h for h in planted_new if h["h3"] in cells]
    print(f"\nemerging hot-spot alerts: {len(listed)} raised; planted new hot spots alerted "
          f"{len(found)}/{len(planted_new)}")
    assert len(found) >= 0.75 * len(planted_new)
    for hotspot in found:
        alert = cells[hotspot["h3"]]
        assert alert["detail"]["class"] in ("new hot spot", "intensifying hot spot")
        assert (alert["level"], alert["code"]) == ("district", hotspot["district_code"])
        assert alert["due_at"].startswith("2024-05-31T19:00:00")  # June, Pakistan time
    again = client.blocking_portal.call(scanner.scan, now + timedelta(hours=6))
    assert again.raised == 0
