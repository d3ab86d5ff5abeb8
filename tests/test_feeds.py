"""Live delivery: SSE and WebSocket feeds, two workers over Redis, Last-Event-ID replay.

Two uvicorn processes (A and B) share the session PostGIS database and the machine's
Redis (``REDIS_URL``); a third runs without ``REDIS_URL`` (the in-memory backend). A
subscriber on one process must receive what another process takes, and a subscriber
that reconnects with ``Last-Event-ID`` must get what it missed from the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest
import redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.callservice import (
    ATTOCK_POINT,
    LAHORE_POINT,
    LAHORE_STATION,
    REDIS_URL,
    Server,
    call_body,
    fresh_time,
    headers,
    post_call,
    start_server,
    token,
)

pytestmark = pytest.mark.integration

READ_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def redis_up() -> str:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError as exc:  # a clear failure, never a skip
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}; scripts/test.sh starts it")
    return REDIS_URL


@pytest.fixture(scope="module")
def workers(loaded_postgis: str, redis_up: str) -> Iterator[tuple[Server, Server]]:
    """Two service processes on two loopback ports, joined by Redis."""
    first = start_server(loaded_postgis, redis_url=redis_up)
    try:
        second = start_server(loaded_postgis, redis_url=redis_up)
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def attock_station(workers: tuple[Server, Server]) -> str:
    answer = httpx.post(f"{workers[0].url}/api/v1/route/", headers=headers("call_taker"),
                        json={"lat": ATTOCK_POINT[0], "lon": ATTOCK_POINT[1]}, timeout=30).json()
    return str(answer["station_code"])


@dataclass
class SSEEvent:
    id: int | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def message(self) -> Any:
        return json.loads(self.data)


class SSE:
    """A blocking reader of one text/event-stream response."""

    def __init__(self, server: Server, path: str, hdrs: dict[str, str]) -> None:
        self.client = httpx.Client(base_url=server.url,
                                   timeout=httpx.Timeout(30, read=READ_TIMEOUT_S))
        self._cm = self.client.stream("GET", path, headers=hdrs)
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._lines = self.response.iter_lines()

    def next(self) -> SSEEvent:
        found = SSEEvent()
        for line in self._lines:
            if line == "":
                if found.id is not None or found.data or found.comments:
                    return found
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                found.comments.append(value)
            elif name == "id":
                found.id = int(value)
            elif name == "event":
                found.event = value
            elif name == "data":
                found.data += value
        raise AssertionError("the stream ended")

    def subscribed(self) -> None:
        first = self.next()
        assert any(c.startswith("subscribed") for c in first.comments), first

    def next_event(self) -> SSEEvent:
        """The next real event (keep-alive comments skipped)."""
        while True:
            item = self.next()
            if item.id is not None:
                return item

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self.client.close()


def received_event_id(server: Server, call_id: str) -> int:
    trail = httpx.get(f"{server.url}/api/v1/calls/{call_id}/events",
                      headers=headers("admin"), timeout=30).json()
    assert trail[0]["type"] == "received"
    return int(trail[0]["id"])


def test_call_taken_by_one_worker_reaches_a_subscriber_on_the_other(
        workers: tuple[Server, Server], loaded_postgis: str) -> None:
    a, b = workers
    station = SSE(b, f"/api/v1/stations/{LAHORE_STATION}/feed", headers("sho", LAHORE_STATION))
    district = SSE(b, "/api/v1/feeds/district/PK617", headers("dpo", "PK617"))
    province = SSE(a, "/api/v1/feeds/province/PK6", headers("ig", "PK6"))
    try:
        for feed in (station, district, province):
            feed.subscribed()
        with httpx.Client(base_url=a.url, timeout=30) as client:
            response = post_call(client, call_body(*LAHORE_POINT, "murder",
                                                   caller_phone="03005550001"))
        assert response.status_code == 201, response.text
        call = response.json()
        got = station.next_event()
        assert got.event == "received"
        assert got.id == received_event_id(a, call["id"])
        message = got.message
        assert message["event_id"] == got.id
        assert message["call"]["id"] == call["id"]
        assert message["call"]["station_code"] == LAHORE_STATION
        assert message["call"]["caller_phone"] == "03005550001"  # an SHO calls back
        assert message["unstaffed"] is call["unstaffed"]
        assert district.next_event().message["call"]["id"] == call["id"]
        seen_by_ig = province.next_event().message["call"]
        assert seen_by_ig["id"] == call["id"]
        assert seen_by_ig["caller_phone"] is None  # the IG's desk does not get numbers
        assert seen_by_ig["caller_phone_hidden"] is True
        with psycopg.connect(loaded_postgis) as db:
            feeds = {row[0] for row in db.execute(
                "SELECT detail->>'feed' FROM audit_log WHERE action = 'feed.subscribe'")}
        assert {f"station:{LAHORE_STATION}", "district:PK617", "province:PK6"} <= feeds
    finally:
        for feed in (station, district, province):
            feed.close()


def test_last_event_id_replays_from_the_database_then_goes_live(
        workers: tuple[Server, Server], attock_station: str) -> None:
    a, b = workers
    t0 = fresh_time()
    with httpx.Client(base_url=a.url, timeout=30) as client:
        ids = [post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(minutes=20 * i))
                         ).json()["id"] for i in range(3)]
        events = [received_event_id(a, i) for i in ids]
        # B never saw these live: it must replay them from PostGIS
        feed = SSE(b, f"/api/v1/stations/{attock_station}/feed",
                   headers("sho", attock_station, **{"Last-Event-ID": str(events[0])}))
        try:
            feed.subscribed()
            replayed = [feed.next_event() for _ in range(2)]
            assert [e.id for e in replayed] == events[1:]
            assert [e.message["call"]["id"] for e in replayed] == ids[1:]
            live = post_call(client, call_body(*ATTOCK_POINT, at=t0 + timedelta(hours=2))).json()
            nxt = feed.next_event()
            assert nxt.message["call"]["id"] == live["id"]
            assert nxt.id is not None
            assert nxt.id > events[-1]
        finally:
            feed.close()
        # ?last_event_id= (for clients that cannot set the header) replays the same way
        by_query = SSE(b, f"/api/v1/stations/{attock_station}/feed?last_event_id={events[0]}",
                       headers("sho", attock_station))
        try:
            by_query.subscribed()
            assert [by_query.next_event().id for _ in range(2)] == events[1:]
        finally:
            by_query.close()


def test_transfer_is_delivered_to_both_stations(workers: tuple[Server, Server],
                                                attock_station: str) -> None:
    a, b = workers
    with httpx.Client(base_url=a.url, timeout=30) as client:
        call = post_call(client, call_body(*LAHORE_POINT)).json()
        old = SSE(b, f"/api/v1/stations/{LAHORE_STATION}/feed", headers("sho", LAHORE_STATION))
        new = SSE(a, f"/api/v1/stations/{attock_station}/feed", headers("sho", attock_station))
        try:
            old.subscribed()
            new.subscribed()
            moved = client.post(f"/api/v1/calls/{call['id']}/events",
                                json={"type": "transferred", "to_station": attock_station,
                                      "reason": "wrong jurisdiction"},
                                headers=headers("sho", LAHORE_STATION))
            assert moved.status_code == 201, moved.text
            for feed in (new, old):
                got = feed.next_event()
                assert got.event == "transferred"
                assert got.message["call"]["station_code"] == attock_station
                assert got.message["event"]["from_station_code"] == LAHORE_STATION
                assert got.id == moved.json()["event"]["id"]
        finally:
            old.close()
            new.close()


def test_websocket_feed_and_refusals(workers: tuple[Server, Server]) -> None:
    a, b = workers
    ws_base = b.url.replace("http://", "ws://")
    url = f"{ws_base}/api/v1/ws/stations/{LAHORE_STATION}?access_token={token('sho', LAHORE_STATION)}"
    with connect(url, open_timeout=30) as socket:
        hello = json.loads(socket.recv(timeout=READ_TIMEOUT_S))
        assert hello["type"] == "comment"
        assert hello["comment"].startswith("subscribed")
        with httpx.Client(base_url=a.url, timeout=30) as client:
            call = post_call(client, call_body(*LAHORE_POINT, "fire")).json()
        message = json.loads(socket.recv(timeout=READ_TIMEOUT_S))
        assert message["type"] == "received"
        assert message["call"]["id"] == call["id"]
    refusals = [
        (f"{ws_base}/api/v1/ws/stations/{LAHORE_STATION}", 4401),
        (f"{ws_base}/api/v1/ws/stations/{LAHORE_STATION}?access_token={token('sho', 'PK60101-001')}",
         4403),
        (f"{ws_base}/api/v1/ws/feeds/district/PK601?access_token={token('dpo', 'PK617')}", 4403),
        (f"{ws_base}/api/v1/ws/feeds/district/NOPE?access_token={token('ig')}", 4404),
        (f"{ws_base}/api/v1/ws/stations/{LAHORE_STATION}?access_token={token('sho', LAHORE_STATION)}"
         "&last_event_id=abc", 4400),
    ]
    for target, code in refusals:
        with connect(target, open_timeout=30) as socket, pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=READ_TIMEOUT_S)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == code, target


def test_websocket_area_feed_replays_with_last_event_id(workers: tuple[Server, Server]) -> None:
    a, b = workers
    with httpx.Client(base_url=a.url, timeout=30) as client:
        first = post_call(client, call_body(*LAHORE_POINT)).json()
        second = post_call(client, call_body(*LAHORE_POINT)).json()
    after = received_event_id(a, first["id"])
    ws = b.url.replace("http://", "ws://")
    url = (f"{ws}/api/v1/ws/feeds/tehsil/PK61701?access_token={token('dpo', 'PK617')}"
           f"&last_event_id={after}")
    with connect(url, open_timeout=30) as socket:
        assert json.loads(socket.recv(timeout=READ_TIMEOUT_S))["type"] == "comment"
        replayed = json.loads(socket.recv(timeout=READ_TIMEOUT_S))
        assert replayed["call"]["id"] == second["id"]
        assert replayed["event_id"] == received_event_id(a, second["id"])


def test_feed_refusals_over_sse(workers: tuple[Server, Server]) -> None:
    a, _ = workers
    with httpx.Client(base_url=a.url, timeout=30) as client:
        def status(path: str, hdrs: dict[str, str]) -> int:
            with client.stream("GET", path, headers=hdrs) as response:
                return response.status_code

        assert status(f"/api/v1/stations/{LAHORE_STATION}/feed", {}) == 401
        assert status(f"/api/v1/stations/{LAHORE_STATION}/feed", headers("sho", "PK60101-001")) == 403
        assert status("/api/v1/feeds/region/RWP", headers("rpo", "LHR")) == 403
        assert status("/api/v1/feeds/province/PK6", headers("dpo", "PK617")) == 403
        assert status("/api/v1/feeds/district/PK617", headers("planner")) == 403
        assert status("/api/v1/feeds/galaxy/PK617", headers("ig")) == 404
        assert status("/api/v1/feeds/district/PK617",
                      headers("dpo", "PK617", **{"Last-Event-ID": "x"})) == 400
        assert status("/api/v1/feeds/district/PK617",
                      headers("dpo", "PK617", **{"Last-Event-ID": str(2**64)})) == 400


def test_in_memory_backend_delivers_within_one_process(loaded_postgis: str) -> None:
    alone = start_server(loaded_postgis)  # no REDIS_URL: the in-memory backend
    try:
        feed = SSE(alone, "/api/v1/feeds/tehsil/PK61701", headers("dpo", "PK617"))
        try:
            feed.subscribed()
            with httpx.Client(base_url=alone.url, timeout=30) as client:
                call = post_call(client, call_body(*LAHORE_POINT)).json()
            assert feed.next_event().message["call"]["id"] == call["id"]
        finally:
            feed.close()
    finally:
        alone.stop()
