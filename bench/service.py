"""Call-intake benchmark: ``POST /api/v1/calls`` against a bare Litestar app, one run.

    python bench/service.py [--requests N] [--seconds S] [--json FILE]

Both servers run under uvicorn on loopback, with one and then two worker processes, and
are driven by the same closed-loop client over 32 keep-alive connections:

- **bare**: a Litestar app whose ``POST /api/v1/calls`` decodes the same msgspec body
  (:class:`api.domain.calls.schemas.CallCreate`) and answers a small struct: the HTTP,
  routing-table and (de)serialisation baseline every ratio is taken against;
- **floor**: the bare app plus one durable ``INSERT`` per request (five columns, one
  unique key) through the service's own group commit
  (:class:`api.domain.calls.intake.GroupCommit`) on the same database: the least any
  service that stores each call before answering can cost on this machine, where the
  database shares the cores with the servers and the client;
- **calls**: the real service on a scratch PostGIS database (``safecity jurisdictions
  load``): token check, routing, on-duty lookup, duplicate search, the call + event +
  audit transaction, and the live publish (in-memory channels with one worker, Redis
  with two, as deployed).

Each configuration sends at most ``--requests`` requests in at most ``--seconds`` seconds
after a warm-up; every body is a fresh call (own ``Idempotency-Key``) at a point inside
a station. Prints req/s, p50/p99 and each server's ratio to bare and to the durable floor; ``--json``
also writes ``ratio_one_worker`` (calls ÷ bare), ``p99_ms_one_worker``, the floor's ratios
(``floor_ratio_one_worker``, ``floor_ratio_two_workers``: floor ÷ bare) and the intake's
target, ``floor_ratio_calls_one_worker`` (calls ÷ floor, one worker; also
``floor_ratio_calls_two_workers``). The service's alert engine
evaluates every new call shortly after it is taken; so that a fast intake cannot hide work left undone,
each service run also reports how many calls were still waiting for their first
evaluation when the load stopped, and how long the engine took to finish them. The
client is a minimal HTTP/1.1 keep-alive loop, so it costs far less than the servers it
measures; all of it shares this machine's cores, which the table reports, with the CPU
time per request each side spent during the load (the server's request processes, what
they run beside them — the watcher process with the alert tick and the dashboard
refresh, the worker pool —, PostgreSQL, Redis, this client; from ``/proc``;
PostgreSQL's counts only the processes serving the bench's scratch database and the
server's background ones, not other databases' backends on a shared server) — where a
request's cost goes, not only how long it took.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from litestar import Litestar, Request, post  # noqa: E402
from litestar.datastructures import State  # noqa: E402

from api.domain.calls.schemas import CallCreate  # noqa: E402
from bench._common import (  # noqa: E402
    LOOPBACK,
    console,
    load_boundaries_into,
    print_table,
    scratch_database,
    start_uvicorn,
    write_json,
)

HOST = LOOPBACK
CONNECTIONS = 32
WARMUP = 300
SECRET = "bench-secret-" + "x" * 32
CATEGORIES = ("murder", "dacoity_robbery", "other_crime", "traffic_accident", "fire",
              "domestic_violence", "harassment", "information")


# ------------------------------------------------------------------ the bare app
class Taken(msgspec.Struct):
    """The bare app's answer."""

    id: str
    status: str
    category: str


@post("/api/v1/calls", status_code=201)
async def take(data: CallCreate) -> Taken:
    """Decode the call body and answer; nothing else."""
    return Taken(id=str(uuid.uuid4()), status="received", category=data.category)


def bare_app() -> Litestar:
    """The baseline: same route, same body type, no work behind it."""
    return Litestar(route_handlers=[take], debug=False)


# ------------------------------------------------------------------ the durable floor
FLOOR_URL_ENV = "SAFECITY_BENCH_FLOOR_URL"
FLOOR_TABLE = "bench_floor_calls"
_FLOOR_INSERT = (f"INSERT INTO {FLOOR_TABLE} (id, idempotency_key, lat, lon, category) "
                 "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id")


@post("/api/v1/calls", status_code=201)
async def take_durably(data: CallCreate, request: Request[Any, Any, Any],
                       state: State) -> Taken:
    """Decode, store one row (committed with others that arrived meanwhile), answer."""
    call_id = uuid.uuid4()
    key = request.headers.get("idempotency-key") or str(call_id)
    await state.floor.run((call_id, key, data.lat, data.lon, data.category))
    return Taken(id=str(call_id), status="received", category=data.category)


@asynccontextmanager
async def _floor_writer(app: Litestar) -> AsyncIterator[None]:
    from sqlalchemy import text  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    from api.db.engine import ASYNC_PG_DRIVER, postgres_url  # noqa: PLC0415
    from api.db.group_commit import GroupCommit  # noqa: PLC0415

    engine = create_async_engine(postgres_url(os.environ[FLOOR_URL_ENV], ASYNC_PG_DRIVER))
    async with engine.begin() as conn:
        await conn.execute(text(
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (id uuid PRIMARY KEY, idempotency_key "
            "text UNIQUE NOT NULL, lat float8 NOT NULL, lon float8 NOT NULL, category text)"))
    app.state.floor = GroupCommit(engine, _FLOOR_INSERT)
    try:
        yield
    finally:
        await engine.dispose()


def floor_app() -> Litestar:
    """The durable floor: the bare app that also stores each call before answering."""
    return Litestar(route_handlers=[take_durably], lifespan=[_floor_writer], debug=False)


# ------------------------------------------------------------------ the client
def make_requests(n: int, points: np.ndarray, token: str, seed: int) -> list[bytes]:
    """``n`` complete HTTP requests, each a new call with its own key."""
    rng = random.Random(seed)
    out: list[bytes] = []
    for i in range(n):
        lat, lon = points[rng.randrange(len(points))]
        body = msgspec.json.encode({"lat": float(lat) + rng.uniform(-2e-4, 2e-4),
                                    "lon": float(lon) + rng.uniform(-2e-4, 2e-4),
                                    "category": rng.choice(CATEGORIES),
                                    "caller_phone": f"0300{rng.randrange(10**7):07d}"})
        head = (f"POST /api/v1/calls HTTP/1.1\r\nHost: {HOST}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Authorization: Bearer {token}\r\nIdempotency-Key: bench-{seed}-{i}-{uuid.uuid4().hex}\r\n"
                "\r\n").encode()
        out.append(head + body)
    return out


@dataclass
class Result:
    sent: int = 0
    ok: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each side spent during the measured load (:func:`cpu_split`)."""
    warmed: int = 0
    """Calls the warm-up before the load created (it too stops at ``--seconds``)."""

    def cpu_ms_per_request(self, side: str) -> float:
        return 1000 * self.cpu.get(side, 0.0) / self.sent if self.sent else 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(np.asarray(self.latencies) * 1000, q)) if self.latencies else 0.0


async def _connection(port: int, requests: list[bytes], cursor: list[int], stop_at: float,
                      result: Result) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < stop_at and cursor[0] < len(requests):
            request = requests[cursor[0]]
            cursor[0] += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - started)
            result.sent += 1
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status in (200, 201):
                result.ok += 1
    finally:
        writer.close()


async def drive(port: int, requests: list[bytes], seconds: float) -> Result:
    """Closed loop: each connection sends its next request when the last is answered."""
    result = Result()
    cursor = [0]
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, requests, cursor, started + seconds, result)
                           for _ in range(CONNECTIONS)))
    result.seconds = time.perf_counter() - started
    return result


def measure(server_pid: int, port: int, requests: list[bytes], warmup: list[bytes],
            seconds: float, *, database_url: str | None = None) -> Result:
    """Warm up, then drive the measured load, accounting each side's CPU time over it
    (PostgreSQL's: the processes serving ``database_url``; none without one, as the bare
    app uses no database)."""
    warmed = asyncio.run(drive(port, warmup, seconds))
    pg_pids = postgres_pids(database_url) if database_url else set()  # the pools are open now
    before = cpu_split(server_pid, pg_pids)
    result = asyncio.run(drive(port, requests, seconds))
    result.cpu = {side: spent - before[side]
                  for side, spent in cpu_split(server_pid, pg_pids).items()}
    result.warmed = warmed.statuses.get(201, 0)
    return result


# ------------------------------------------------------------------ where the CPU goes
PROC = Path("/proc")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of ``pids`` (Linux ``/proc``; a process gone meanwhile counts 0)."""
    ticks = 0
    for pid in pids:
        try:
            fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command name) of every process."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                head, tail = (entry / "stat").read_text().rsplit(")", 1)
            except (FileNotFoundError, ProcessLookupError):
                continue
            found.append((int(entry.name), int(tail.split()[1]), head.split("(", 1)[1]))
    return found


def postgres_pids(url: str) -> set[int]:
    """The PostgreSQL processes working for ``url``'s database: its backends (the intake's,
    the alert engine's) and the server's own background processes (WAL writer,
    checkpointer, …), not the backends of other databases on a shared server."""
    import psycopg  # noqa: PLC0415

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                            "AND (datname = current_database() OR datname IS NULL)").fetchall()
    return {int(pid) for (pid,) in rows}


def cpu_split(server_pid: int, pg_pids: set[int] | None = None) -> dict[str, float]:
    """CPU seconds so far of the server's request processes (uvicorn and its workers), of
    what they started beside them (the watcher process with the alert tick and the
    dashboard refresh, the worker pool and its fork server), of PostgreSQL (the
    ``pg_pids`` given, else every ``postgres`` process: the intake's and the alert engine's
    backends, the WAL writer), of Redis, and of this client; zeros where there is no
    ``/proc``."""
    if not PROC.is_dir():
        return dict.fromkeys(SIDES, 0.0)
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, parent, _ in processes:
        children.setdefault(parent, []).append(pid)
    # one worker: uvicorn itself serves; several: the children it spawned do
    serving = [server_pid, *(pid for pid, parent, _ in processes
                             if parent == server_pid and "multiprocessing.spawn" in _cmdline(pid))]
    beside, todo = [], [c for pid in serving for c in children.get(pid, []) if c not in serving]
    while todo:
        pid = todo.pop()
        beside.append(pid)
        todo += children.get(pid, [])
    postgres = [pid for pid, _, name in processes
                if name == "postgres" and (pg_pids is None or pid in pg_pids)]
    return {"server": _cpu_seconds(serving),
            "beside": _cpu_seconds(beside),
            "postgres": _cpu_seconds(postgres),
            "redis": _cpu_seconds([pid for pid, _, name in processes
                                   if name.startswith("redis-server")]),
            "client": time.process_time()}


def _cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


@dataclass
class Backlog:
    """Calls the alert engine had not evaluated yet when the load stopped."""

    waiting: int
    drained_s: float | None
    """Seconds until none was left (``None``: still some after ``ALERT_DRAIN_S``)."""


ALERT_DRAIN_S = 120.0


def alert_backlog(url: str) -> Backlog:
    """Calls never evaluated (their ``alert_due.next_alert_at`` is their ``received_at``
    until the engine first looks at them) right now, then the time until there are none."""
    import psycopg  # noqa: PLC0415

    query = ("SELECT count(*) FROM alert_due JOIN calls ON calls.id = alert_due.call_id "
             "WHERE alert_due.next_alert_at = calls.received_at")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        waiting = int(row[0]) if row else 0
        left = waiting
        while left and time.perf_counter() - started < ALERT_DRAIN_S:
            time.sleep(0.1)
            row = conn.execute(query).fetchone()
            left = int(row[0]) if row else 0
    return Backlog(waiting, None if left else time.perf_counter() - started)


# ------------------------------------------------------------------ main
PG_SOCKET_DIR = Path("/var/run/postgresql")
SIDES = ("server", "beside", "postgres", "redis", "client")
"""The CPU table's columns: request processes, what they started beside them (watcher
process, worker pool), PostgreSQL, Redis, this client."""


def _unix_socket(url: str) -> str:
    """The same database over the server's Unix socket when it has one (as a service on
    the database host would connect; loopback TCP costs more per round trip)."""
    if not (PG_SOCKET_DIR / ".s.PGSQL.5432").exists():
        return url
    head, _, database = url.rpartition("/")
    user = head.split("//", 1)[1].split("@", 1)[0]
    return f"postgresql://{user}@/{database}?host={PG_SOCKET_DIR}"


def station_points() -> np.ndarray:
    """One interior point per station of the shipped set (lat, lon)."""
    import shapely  # noqa: PLC0415

    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    stations = punjab_boundary_set().stations
    points = shapely.point_on_surface(stations.geometry.values)
    return np.column_stack([shapely.get_y(points), shapely.get_x(points)])


def _ratio(result: Result, baseline: Result) -> float:
    """``result``'s rate as a share of ``baseline``'s (0 when the baseline answered nothing)."""
    return result.rate / baseline.rate if baseline.rate else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30000, help="per configuration, at most")
    parser.add_argument("--seconds", type=float, default=12.0, help="per configuration, at most")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
                        help="Redis for the two-worker service")
    args = parser.parse_args()

    from api.auth import mint_token  # noqa: PLC0415

    token = mint_token(SECRET, "call_taker", "PK6", "province", subject="bench")
    points = station_points()
    results: dict[str, Result] = {}
    backlogs: dict[str, Backlog] = {}
    with scratch_database("bench_service") as url:
        console.print("loading the boundary set into a scratch PostGIS database …")
        load_boundaries_into(url)
        service_env = {"DATABASE_URL": _unix_socket(url), "SAFECITY_JWT_SECRET": SECRET}
        floor_env: dict[str, str | None] = {FLOOR_URL_ENV: _unix_socket(url)}
        configs: list[tuple[str, int, str, dict[str, str | None]]] = [
            ("bare", 1, "bench.service:bare_app", {}),
            ("floor", 1, "bench.service:floor_app", floor_env),
            ("calls", 1, "api.app:app_factory", {**service_env, "REDIS_URL": None}),
            ("bare", 2, "bench.service:bare_app", {}),
            ("floor", 2, "bench.service:floor_app", floor_env),
            ("calls", 2, "api.app:app_factory", {**service_env, "REDIS_URL": args.redis_url})]
        for seed, (name, workers, factory, env) in enumerate(configs):
            console.print(f"{name}, {workers} worker(s): starting …")
            served = start_uvicorn(factory, workers=workers, env=env)
            try:
                requests = make_requests(args.requests, points, token, seed * 2)
                warmup = make_requests(WARMUP, points, token, seed * 2 + 1)
                result = measure(served.process.pid, served.port, requests, warmup,
                                 args.seconds, database_url=None if name == "bare" else url)
                if name == "calls":
                    backlogs[f"{name}_{workers}"] = backlog = alert_backlog(url)
            finally:
                served.stop()
            results[f"{name}_{workers}"] = result
            console.print(f"  {result.ok:,}/{result.sent:,} ok in {result.seconds:.1f} s: "
                          f"{result.rate:,.0f} req/s, p50 {result.percentile(50):.1f} ms, "
                          f"p99 {result.percentile(99):.1f} ms, statuses {result.statuses}")
            if name == "calls":
                drained = (f"all evaluated {backlog.drained_s:.1f} s later"
                           if backlog.drained_s is not None else
                           f"NOT all evaluated {ALERT_DRAIN_S:.0f} s later")
                console.print(f"  alert engine: {backlog.waiting:,} calls not yet evaluated "
                              f"when the load stopped; {drained}")
        import psycopg  # noqa: PLC0415

        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT count(*) FROM calls").fetchone()
    expected = sum(r.statuses.get(201, 0) + r.warmed
                   for k, r in results.items() if k.startswith("calls"))
    rows, cpu_rows = [], []
    for workers in (1, 2):
        bare = results[f"bare_{workers}"]
        floor = results[f"floor_{workers}"]
        for name, key in (("bare Litestar", "bare"), ("floor: bare + durable INSERT", "floor"),
                          ("POST /api/v1/calls", "calls")):
            r = results[f"{key}_{workers}"]
            ratio = r.rate / bare.rate if bare.rate else 0.0
            of_floor = r.rate / floor.rate if floor.rate else 0.0
            label = f"{name}, {workers} worker{'s' if workers > 1 else ''}"
            rows.append([label, f"{r.ok:,}", f"{r.rate:,.0f}", f"{r.percentile(50):.1f}",
                         f"{r.percentile(99):.1f}", f"{ratio:.2f}", f"{of_floor:.2f}"])
            cpu_rows.append([label, *(f"{r.cpu_ms_per_request(side):.3f}" for side in SIDES)])
    print_table(f"call intake vs bare app, {CONNECTIONS} connections, {os.cpu_count()} cores "
                "shared with the client",
                ["server", "ok", "req/s", "p50 ms", "p99 ms", "÷ bare", "÷ floor"], rows)
    print_table("CPU ms per request during the load", ["server", *SIDES], cpu_rows)
    console.print(f"calls stored: {stored[0] if stored else 0:,} (expected {expected:,}: every "
                  "201, the warm-ups' too)")
    payload = {
        "connections": CONNECTIONS, "cores": os.cpu_count(),
        "ratio_one_worker": results["calls_1"].rate / results["bare_1"].rate,
        "p99_ms_one_worker": results["calls_1"].percentile(99),
        "p50_ms_one_worker": results["calls_1"].percentile(50),
        "ratio_two_workers": results["calls_2"].rate / results["bare_2"].rate,
        "floor_ratio_one_worker": results["floor_1"].rate / results["bare_1"].rate,
        "floor_ratio_two_workers": results["floor_2"].rate / results["bare_2"].rate,
        # the target of a durable intake: the real service against the durable floor
        "floor_ratio_calls_one_worker": _ratio(results["calls_1"], results["floor_1"]),
        "floor_ratio_calls_two_workers": _ratio(results["calls_2"], results["floor_2"]),
        "p99_ms_two_workers": results["calls_2"].percentile(99),
        "rates": {k: r.rate for k, r in results.items()},
        "cpu_ms_per_request": {k: {side: r.cpu_ms_per_request(side) for side in SIDES}
                               for k, r in results.items()},
        "statuses": {k: {str(s): n for s, n in r.statuses.items()} for k, r in results.items()},
        "calls_stored": stored[0] if stored else 0, "calls_expected": expected,
        "alert_backlog": {k: {"waiting_at_end": b.waiting, "drained_s": b.drained_s}
                          for k, b in backlogs.items()},
    }
    write_json(args.json, payload)


if __name__ == "__main__":
    main()
