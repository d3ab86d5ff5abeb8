"""The alert tick and the dashboard refresh run in a process of their own beside the
service on PostgreSQL (:mod:`api.watchers`): alerts it raises reach the service's live
feed, a killed watcher is started again, and it ends with the service."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import httpx
import psycopg
import pytest

from api.channels import FeedPublisher
from api.settings import Settings
from api.watchers import WatcherProcess
from bench._common import Server
from tests.callservice import LAHORE_POINT, call_body, headers, new_key, start_server

pytestmark = pytest.mark.integration

STARTED = re.compile(r"watcher process (\d+) started")


def watcher_pids(server: Server) -> list[int]:
    return [int(pid) for pid in STARTED.findall(server.log.read_text(errors="replace"))]


def alive(pid: int) -> bool:
    """Running (a zombie, ended but not reaped yet, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def wait_for(check: Callable[[], object], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s")


@pytest.fixture(scope="module")
def server(loaded_postgis: str) -> Iterator[Server]:
    started = start_server(loaded_postgis, extra_env={"SAFECITY_ALERT_TICK_S": "0.2",
                                                      "SAFECITY_HOTSPOT_SCAN_H": "0"})
    try:
        wait_for(lambda: watcher_pids(started), 60)
        yield started
    finally:
        started.stop()


def overdue_call(server: Server) -> str:
    """A call received six minutes ago that its station has not acknowledged: at the
    watcher's first look, an alert escalated to its district."""
    body = call_body(*LAHORE_POINT, at=datetime.now(UTC) - timedelta(minutes=6))
    answer = httpx.post(f"{server.url}/api/v1/calls", json=body, timeout=30,
                        headers=headers("call_taker", **{"Idempotency-Key": new_key("watch")}))
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id"]
    return call_id


def live_alert(server: Server, call_id_of: Callable[[Server], str]) -> str:
    """Subscribe to the district's live alert feed, take a call, and answer the feed's
    event about it (the alert went from the watcher process through the service)."""
    seen: list[str] = []
    subscribed = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{server.url}/api/v1/alerts/feed/district/PK617",
                          headers=headers("dpo", "PK617"), timeout=30) as stream:
            subscribed.set()
            for line in stream.iter_lines():
                seen.append(line)
                if len(seen) > 10_000 or any(f'"{c}"' in line for c in calls):
                    return

    calls: list[str] = []
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert subscribed.wait(30)
    time.sleep(0.3)
    calls.append(call_id_of(server))
    listener.join(30)
    assert not listener.is_alive(), "no live alert about the call within 30 s"
    return "\n".join(seen)


def test_the_watcher_runs_in_its_own_process_and_its_alerts_arrive_live(server: Server) -> None:
    pid = watcher_pids(server)[-1]
    assert pid != server.process.pid
    assert alive(pid)
    text = live_alert(server, overdue_call)
    assert "unacknowledged" in text


def test_the_dashboard_projection_is_kept_by_the_watcher(server: Server, loaded_postgis: str
                                                         ) -> None:
    call_id = overdue_call(server)
    with psycopg.connect(loaded_postgis, autocommit=True) as db:
        wait_for(lambda: db.execute("SELECT 1 FROM dashboard_calls WHERE call_id = %s",
                                    (call_id,)).fetchone() is not None, 15)


def test_a_killed_watcher_is_started_again(server: Server) -> None:
    before = watcher_pids(server)[-1]
    os.kill(before, signal.SIGKILL)
    wait_for(lambda: watcher_pids(server)[-1] != before, 30)
    assert "died" in server.log.read_text(errors="replace")
    assert "unacknowledged" in live_alert(server, overdue_call)


def test_the_watcher_ends_with_the_service(loaded_postgis: str) -> None:
    started = start_server(loaded_postgis, extra_env={"SAFECITY_HOTSPOT_SCAN_H": "0"})
    try:
        wait_for(lambda: watcher_pids(started), 60)
        pid = watcher_pids(started)[-1]
        started.process.send_signal(signal.SIGTERM)
        started.process.wait(15)
    finally:
        started.stop()
    wait_for(lambda: not alive(pid), 10)


def test_a_watcher_that_cannot_start_is_logged_and_tried_again(
        caplog: pytest.LogCaptureFixture) -> None:
    """The service takes calls without its watcher: a failed start is logged, and the
    periodic check tries again (until the service stops it)."""
    attempts: list[int] = []

    class Failing(WatcherProcess):
        async def _start(self) -> None:
            attempts.append(1)
            raise OSError("no fork server")

    async def scenario() -> None:
        watcher = Failing(cast("Settings", None), cast("FeedPublisher", None), dict)
        await watcher.start()
        await watcher.check()
        await watcher.stop()
        await watcher.check()  # stopped: not started again

    asyncio.run(scenario())
    assert len(attempts) == 2
    assert "did not start" in caplog.text


def test_the_relay_hands_a_burst_over_at_once_and_in_order() -> None:
    """What the watcher sent meanwhile reaches the channels in one hand-off to the
    request loop, in the order it was sent; the relay ends when the process's end closes."""
    import multiprocessing

    import msgspec

    published: list[tuple[bytes, list[str]]] = []
    hand_offs: list[int] = []

    class Recording(FeedPublisher):
        def __init__(self) -> None:  # no channels
            pass

        async def publish(self, payload: bytes, channels: Iterable[str]) -> bool:
            published.append((payload, list(channels)))
            return True

    class Counting(WatcherProcess):
        async def _publish_all(self, batch: list[tuple[list[str], bytes]]) -> None:
            hand_offs.append(len(batch))
            await super()._publish_all(batch)

    async def scenario() -> None:
        watcher = Counting(cast("Settings", None), Recording(), dict)
        watcher._loop = asyncio.get_running_loop()
        receiving, sending = multiprocessing.Pipe(duplex=False)
        encode = msgspec.msgpack.Encoder().encode
        for i in range(300):  # all sent before the relay starts: a burst
            sending.send_bytes(encode(([f"district:{i % 3}"], b"event %d" % i)))
        sending.close()
        relay = threading.Thread(target=watcher._relay, args=(receiving,))
        relay.start()
        while relay.is_alive():
            await asyncio.sleep(0.01)

    asyncio.run(scenario())
    assert published == [(b"event %d" % i, [f"district:{i % 3}"]) for i in range(300)]
    assert hand_offs == [256, 44]
