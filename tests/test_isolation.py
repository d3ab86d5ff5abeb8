"""Nothing an analyst asks for stalls a helpline-15 call: heavy work runs in the worker
pool (``api/workers.py``, ``docs/isolation.md``), bounded, cancelled, and stopped with
the service.

The service here has one worker and no queue, and a 4 s deadline on batch routing, so a
batch of a few thousand points with 50 km uncertainty circles (the largest allowed, a
few milliseconds each) is reliably slow: it fills the pool, runs past its deadline, or
is left by its client. Functional checks, never timed ones: a call is answered *while*
such a batch is still running.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psycopg
import pytest

from api.auth import mint_token
from api.errors import UnavailableError, UnprocessableError
from api.settings import DatabaseSettings, Settings, WorkerSettings
from api.workers import WorkerPool, ping
from tests.callservice import (
    LAHORE_POINT,
    SECRET,
    ServiceClient,
    call_body,
    headers,
    new_key,
    service_settings,
    start_server,
)
from tests.slow_jobs import allocate, sleep_then_touch

pytestmark = pytest.mark.integration

WORKERS = WorkerSettings(processes=1, queue=0, route_batch_s=4.0, max_cube=200_000)
PLANNER = headers("planner")
DISTRICT = "PK633"  # Sheikhupura, where the small history has calls


def slow_batch(points: int = 3000) -> dict[str, Any]:
    """``points`` spread over central Punjab, each with the largest uncertainty circle."""
    rng = np.random.default_rng(points)
    lat, lon = rng.uniform(30.0, 32.0, points), rng.uniform(72.0, 74.0, points)
    return {"points": [{"lat": float(a), "lon": float(o), "radius_m": 50_000.0}
                       for a, o in zip(lat, lon, strict=True)]}


async def until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Wait (polling) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def client(loaded_postgis: str) -> Iterator[ServiceClient]:
    from api.container import Container
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    with ServiceClient(Container(service_settings(loaded_postgis, workers=WORKERS))) as started:
        yield started


@pytest.fixture(scope="module")
def db(loaded_postgis: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(loaded_postgis, autocommit=True) as conn:
        yield conn


def actor(role: str) -> tuple[str, dict[str, str]]:
    """A subject no other test uses, so its audit entries are its own."""
    subject = f"isolation-{role}-{uuid.uuid4().hex[:8]}"
    token = mint_token(SECRET, role, "PK6", "province", subject=subject)
    return subject, {"Authorization": f"Bearer {token}"}


def audited(db: psycopg.Connection[Any], subject: str) -> list[str]:
    return [row[0] for row in db.execute("SELECT action FROM audit_log WHERE actor = %s",
                                         (subject,)).fetchall()]


def worker_pid(client: ServiceClient) -> int:
    pid: int = client.blocking_portal.call(client.container.workers.run, "analytics", ping)
    return pid


def test_a_full_pool_refuses_heavy_work_with_503_never_a_call(client: ServiceClient) -> None:
    pool = client.container.workers

    async def scenario() -> tuple[httpx.Response, httpx.Response, bool, httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     timeout=60) as http:
            batch = asyncio.ensure_future(http.post("/api/v1/route/batch", json=slow_batch(),
                                                    headers=PLANNER))
            await until(lambda: pool.counts.running == 1)
            refused = await http.get("/api/v1/hotspots", headers=PLANNER,
                                     params={"level": "district", "code": DISTRICT})
            call = await http.post("/api/v1/calls", json=call_body(*LAHORE_POINT),
                                   headers=headers("call_taker", **{"Idempotency-Key": new_key()}))
            batch_still_running = not batch.done()
            return refused, call, batch_still_running, await batch

    refused, call, batch_still_running, batch = client.blocking_portal.call(scenario)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == str(WORKERS.retry_after_s)
    assert "busy" in refused.json()["detail"]
    assert call.status_code == 201, call.text  # taken while the batch was being routed
    assert batch_still_running
    assert batch.status_code == 503  # then the batch ran past its deadline
    assert "deadline of 4 s" in batch.json()["detail"]


def test_a_job_past_its_deadline_is_stopped_and_decides_nothing(
        client: ServiceClient, db: psycopg.Connection[Any]) -> None:
    before = worker_pid(client)
    subject, hdrs = actor("planner")
    answer = client.post("/api/v1/route/batch", json=slow_batch(), headers=hdrs)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == str(WORKERS.retry_after_s)
    assert "did not finish within its deadline" in answer.json()["detail"]
    assert worker_pid(client) != before  # the worker running it was ended and replaced
    assert audited(db, subject) == []  # no decision was given, none is recorded
    assert client.post("/api/v1/route/batch", json={"points": slow_batch(5)["points"]},
                       headers=hdrs).status_code == 200  # and the next batch is served


def test_a_client_that_goes_away_stops_its_job(client: ServiceClient,
                                               db: psycopg.Connection[Any]) -> None:
    pool = client.container.workers
    before = worker_pid(client)
    gone_before = pool.counts.cancelled.get("client gone", 0)
    subject, hdrs = actor("planner")
    body = msgspec.json.encode(slow_batch())

    async def scenario() -> list[int]:
        left = asyncio.Event()
        body_sent = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await left.wait()
            return {"type": "http.disconnect"}

        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(int(message["status"]))

        path = "/api/v1/route/batch"
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 50001),
                 "server": ("127.0.0.1", 80),
                 "headers": [(b"content-type", b"application/json"),
                             (b"content-length", str(len(body)).encode()),
                             *((k.lower().encode(), v.encode()) for k, v in hdrs.items())]}
        request = asyncio.ensure_future(client.app(scope, receive, send))  # type: ignore[arg-type]
        await until(lambda: pool.counts.running == 1)
        left.set()  # the client closes the connection
        await asyncio.wait_for(request, 30)
        return statuses

    statuses = client.blocking_portal.call(scenario)
    assert pool.counts.cancelled["client gone"] == gone_before + 1
    assert statuses == [499]
    assert worker_pid(client) != before
    assert audited(db, subject) == []


def test_emerging_hot_spots_are_bounded_in_steps_and_cells(client: ServiceClient) -> None:
    path = "/api/v1/hotspots/emerging"
    params: dict[str, Any] = {"level": "district", "code": DISTRICT, "from": "2000-01-03",
                              "step": "week"}
    too_long = client.get(path, params=params, headers=PLANNER)
    assert too_long.status_code == 422, too_long.text
    assert "at most 156 weeks" in too_long.json()["detail"]
    assert re.search(r"spans 1,\d{3} weeks", too_long.json()["detail"])  # the window's own span
    page = client.get("/maps/emerging", params=params, headers=PLANNER)
    assert page.status_code == 422
    window = {"level": "district", "code": DISTRICT, "from": "2024-01-01", "until": "2024-04-01"}
    too_fine = client.get(path, params={**window, "res": 9}, headers=PLANNER)
    assert too_fine.status_code == 422, too_fine.text
    assert "200,000 cell-steps" in too_fine.json()["detail"]
    assert client.get(path, params={**window, "res": 7}, headers=PLANNER).status_code == 200
    # without from=, the window starts at the first call: checked in the worker
    until_only = client.get(path, params={"level": "district", "code": DISTRICT,
                                          "until": "2024-04-01"}, headers=PLANNER)
    assert until_only.status_code == 200, until_only.text


def _pool(url: str, **workers: Any) -> WorkerPool:
    return WorkerPool(Settings(database=DatabaseSettings(url=url),
                               workers=WorkerSettings(processes=1, **workers)))


def test_cancelled_jobs_never_finish_and_the_pool_goes_on(loaded_postgis: str,
                                                          tmp_path: Path) -> None:
    """A waiting job cancelled never reaches a worker; a running one is stopped before its
    side effect; the worker is replaced and serves the next job."""
    running_file, queued_file, next_file = (tmp_path / name for name in ("running", "queued", "next"))

    async def scenario() -> tuple[int, int]:
        pool = _pool(loaded_postgis, queue=1)
        pool.start()
        try:
            first = await pool.run("analytics", ping)
            running = asyncio.ensure_future(pool.run("analytics", sleep_then_touch, 2.0,
                                                     str(running_file)))
            await until(lambda: pool.counts.running == 1)
            queued = asyncio.ensure_future(pool.run("analytics", sleep_then_touch, 0.0,
                                                    str(queued_file)))
            await until(lambda: pool.counts.waiting == 1)
            queued.cancel()
            running.cancel()
            await asyncio.gather(queued, running, return_exceptions=True)
            await asyncio.sleep(3.0)  # past the moment the running job would have finished
            second = await pool.run("analytics", sleep_then_touch, 0.0, str(next_file))
            return first, second
        finally:
            await pool.close()

    first, second = asyncio.run(scenario())
    assert not running_file.exists()
    assert not queued_file.exists()
    assert next_file.exists()
    assert second != first


def test_a_kind_holding_its_share_yields_to_a_kind_that_was_refused(loaded_postgis: str,
                                                                      tmp_path: Path) -> None:
    """Alone, one kind may fill the pool; once another kind is refused, a kind holding its
    fair share is refused in turn, so the next free slot goes to the one that waited."""
    async def scenario() -> None:
        pool = _pool(loaded_postgis, queue=3)  # capacity 4: a fair share of 1 per kind
        assert pool.fair_share == 1
        pool.start()
        try:
            await pool.run("analytics", ping)
            heat_maps = [asyncio.ensure_future(pool.run(
                "analytics", sleep_then_touch, 1.0, str(tmp_path / f"heat{i}"))) for i in range(4)]
            await until(lambda: pool.counts.running + pool.counts.waiting == 4)
            with pytest.raises(UnavailableError, match="busy"):
                pool.admit("route batch")
            await heat_maps[0]  # a slot is free again
            with pytest.raises(UnavailableError, match="hold their share"):
                pool.admit("analytics")
            pool.admit("route batch")  # the kind that waited is let in
            await asyncio.gather(*heat_maps)
        finally:
            await pool.close()

    asyncio.run(scenario())
    assert all((tmp_path / f"heat{i}").exists() for i in range(4))


def test_a_worker_killed_outside_a_job_is_replaced(loaded_postgis: str) -> None:
    """A worker that dies while idle (the kernel's OOM killer, an operator) breaks pebble's
    pool; the next job gets a new pool and is served."""
    async def scenario() -> tuple[int, int]:
        pool = _pool(loaded_postgis)
        pool.start()
        try:
            first = await pool.run("analytics", ping)
            os.kill(first, signal.SIGKILL)
            await asyncio.sleep(1.0)  # pebble notices
            return first, await pool.run("analytics", ping)
        finally:
            await pool.close()

    first, second = asyncio.run(scenario())
    assert second != first


def test_a_job_over_the_memory_ceiling_is_a_422_naming_it(loaded_postgis: str) -> None:
    async def scenario() -> tuple[str, float]:
        pool = _pool(loaded_postgis, memory_mb=3000)
        pool.start()
        try:
            with pytest.raises(UnprocessableError) as refused:
                await pool.run("analytics", allocate, 4000)
            return str(refused.value), await pool.run("analytics", allocate, 100)
        finally:
            await pool.close()

    message, fine = asyncio.run(scenario())
    assert "3,000 MB" in message
    assert fine > 0


@pytest.mark.slow
def test_sigterm_stops_the_service_within_seconds_during_heavy_work(loaded_postgis: str) -> None:
    """A real uvicorn process, a batch that would take a minute, SIGTERM: the batch is
    answered 503 at once, the workers end, and the process exits within seconds."""
    import psutil

    server = start_server(loaded_postgis, extra_env={"SAFECITY_DEADLINE_ROUTE_BATCH_S": "600"})
    outcome: dict[str, Any] = {}

    def post() -> None:
        try:
            outcome["answer"] = httpx.post(f"{server.url}/api/v1/route/batch",
                                           json=slow_batch(25_000), headers=PLANNER, timeout=300)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    try:
        children = psutil.Process(server.process.pid).children(recursive=True)
        assert children  # the fork server and the worker
        sender = threading.Thread(target=post)
        sender.start()
        time.sleep(3.0)
        assert sender.is_alive()  # the batch is being routed
        asked = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(30)
        took = time.monotonic() - asked
        sender.join(30)
        _, alive = psutil.wait_procs(children, timeout=10)
    finally:
        server.stop()
    assert took < 10, f"the service took {took:.1f} s to stop"
    # uvicorn ends by raising the signal it handled again, once its shutdown is done
    assert server.process.returncode in (0, -signal.SIGTERM), server.log_text()
    assert "Traceback" not in server.log_text()
    assert not alive
    answer = outcome.get("answer")
    assert answer is not None, outcome.get("error")
    assert answer.status_code == 503
    assert "stopping" in answer.json()["detail"]
