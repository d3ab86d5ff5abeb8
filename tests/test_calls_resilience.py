"""The database goes away and comes back while calls are being posted with retries.

The test runs its own PostgreSQL (``initdb`` + ``pg_ctl`` on a spare loopback port, in a
temporary directory), so the machine's server is never touched. While the outage lasts
the service must answer 503 with ``Retry-After``; afterwards every call that was answered
201 or 200 must be in the database exactly once, with the id the client was given.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.callservice import (
    LAHORE_POINT,
    LAHORE_STATION,
    ROOT,
    Server,
    call_body,
    free_port,
    headers,
    new_key,
    start_server,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CALLS = 240
CONCURRENCY = 8
OUTAGE_S = 4.0


def _pg_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not versions:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return versions[-1].parent


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster owned by this test."""

    directory: Path
    port: int
    bin: Path = field(default_factory=_pg_bin)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/safecity"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}\n{done.stderr}")

    def init(self) -> None:
        self.directory.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory.parent, "postgres")
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self.directory / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync")
        self.start()
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE safecity")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=100")
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-o", options, "-w",
                  "-l", str(self.directory / "postgres.log"), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "fast", "-w", "stop")


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="safecity-pg-"))
    cluster = Postgres(root / "cluster", free_port())
    cluster.init()
    try:
        env = {**os.environ, "DATABASE_URL": cluster.url}
        done = subprocess.run([sys.executable, "-m", "api.cli", "jurisdictions", "load"], cwd=ROOT,
                              env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.fail(f"safecity jurisdictions load failed:\n{done.stdout}\n{done.stderr}")
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):  # already down
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(own_postgres: Postgres) -> Iterator[Server]:
    started = start_server(own_postgres.url)
    yield started
    started.stop()


@dataclass
class Outcome:
    answered: dict[str, str] = field(default_factory=dict)
    """Idempotency-Key -> call id, for every 201 or 200 the client received."""
    created: int = 0
    replayed: int = 0
    unavailable: int = 0
    retry_after: set[str] = field(default_factory=set)
    probes: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    """Reads tried while the database was down: status and Retry-After."""
    transport_errors: int = 0
    other: dict[int, int] = field(default_factory=dict)


async def _post_all(server: Server, postgres: Postgres, outcome: Outcome) -> None:
    keys = [new_key("resilience") for _ in range(CALLS)]
    bodies = [call_body(*LAHORE_POINT, "other_crime") for _ in range(CALLS)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(CALLS):
        queue.put_nowait(i)
    outage_started = asyncio.Event()

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                try:
                    response = await client.post(
                        "/api/v1/calls", json=bodies[i],
                        headers=headers("call_taker", **{"Idempotency-Key": keys[i]}))
                except httpx.HTTPError:
                    outcome.transport_errors += 1
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code in (200, 201):
                    call_id = response.json()["id"]
                    assert outcome.answered.get(keys[i], call_id) == call_id
                    outcome.answered[keys[i]] = call_id
                    if response.status_code == 201:
                        outcome.created += 1
                    else:
                        outcome.replayed += 1
                    # a client that lost the answer would retry: do so for every 10th call
                    if i % 10 == 0 and response.status_code == 201:
                        continue
                    break
                if response.status_code == 503:
                    outcome.unavailable += 1
                    outcome.retry_after.add(response.headers.get("retry-after", ""))
                    await asyncio.sleep(0.25)
                    continue
                outcome.other[response.status_code] = outcome.other.get(response.status_code, 0) + 1
                break
            if len(outcome.answered) >= CALLS // 3 and not outage_started.is_set():
                outage_started.set()

    async def outage(client: httpx.AsyncClient) -> None:
        await outage_started.wait()
        await asyncio.to_thread(postgres.stop)
        some_call = next(iter(outcome.answered.values()))
        probes = {"read": f"/api/v1/calls/{some_call}", "list": "/api/v1/calls",
                  "feed": "/api/v1/feeds/district/PK617",
                  "roster": f"/api/v1/stations/{LAHORE_STATION}/roster"}
        for name, path in probes.items():
            response = await client.get(path, headers=headers("dpo", "PK617"))
            outcome.probes[name] = (response.status_code, response.headers.get("retry-after"))
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(postgres.start)

    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as client:
        await asyncio.gather(outage(client), *(worker(client) for _ in range(CONCURRENCY)))


def test_every_answered_call_is_stored_exactly_once(server: Server, own_postgres: Postgres) -> None:
    outcome = Outcome()
    asyncio.run(_post_all(server, own_postgres, outcome))
    assert outcome.other == {}, outcome.other
    assert outcome.unavailable > 0, "the outage was never seen: the test proved nothing"
    assert outcome.retry_after == {"5"}, outcome.retry_after
    assert outcome.probes == dict.fromkeys(("read", "list", "feed", "roster"), (503, "5"))
    assert len(outcome.answered) == CALLS
    assert outcome.created == CALLS  # each key created once, however often it was retried
    with psycopg.connect(own_postgres.url) as conn:
        rows = conn.execute("SELECT idempotency_key, id::text, count(*) OVER (PARTITION BY "
                            "idempotency_key) FROM calls WHERE idempotency_key = ANY(%s)",
                            (list(outcome.answered),)).fetchall()
        events = conn.execute("SELECT count(*) FROM call_events e JOIN calls c ON c.id = e.call_id "
                              "WHERE c.idempotency_key = ANY(%s)", (list(outcome.answered),)
                              ).fetchone()
    assert len(rows) == CALLS
    assert all(count == 1 for _, _, count in rows)
    assert {key: call_id for key, call_id, _ in rows} == outcome.answered
    assert events == (CALLS,)  # one 'received' event each, none doubled by retries
    print(f"\nresilience: {CALLS} calls, {outcome.unavailable} answers 503 during a "
          f"{OUTAGE_S:.0f} s outage, {outcome.transport_errors} transport errors, "
          f"{outcome.replayed} replays answered 200; every call stored exactly once")
