"""Call intake under analytic load: helpline-15 calls at a steady rate while analysts ask
for the heaviest work the service offers, against the same intake alone, one run.

    python bench/mixed_load.py [--seconds S] [--rate R] [--months M] [--scale F]
                               [--batch N] [--json FILE]

One uvicorn worker on a scratch PostGIS database (``safecity jurisdictions load``, a
generated call history of ``--months`` months at ``--scale`` and ``safecity dashboard
refresh``, as after any history load), with its worker pool as
deployed (``SAFECITY_WORKERS``, default one process). Two phases of ``--seconds`` each:

- **alone**: ``POST /api/v1/calls`` at ``--rate`` calls a second, *open loop*: each call
  is sent at its scheduled time whether or not earlier ones were answered (over as many
  keep-alive connections as that needs), and its latency is counted from that time, so
  a stall shows in full instead of slowing the sender down;
- **under load**: the same intake while, from a separate process, analysts send batch
  routing (``--batch`` points, default 100,000, each with an uncertainty radius of
  50–2,000 m), emerging hot spots over the longest range allowed
  (``SAFECITY_MAX_STEPS`` weeks, province, res 7), province Gi* at res 8, the calls and
  response heat maps of the province and a Safe City plan for Lahore City, each as fast
  as it is admitted: a 503 is retried a second later.

Prints the intake's p50/p99/max, calls answered and lost (a call is lost when it got no
201; every 201 is checked to be stored), each heavy endpoint's answers, 503s (pool busy
or deadline) and throughput, and the targets: under load p99 ≤ 50 ms, max ≤ 250 ms, no
call lost. ``--json`` writes the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    LOOPBACK,
    console,
    load_boundaries_into,
    load_generated_history,
    print_table,
    scratch_database,
    start_uvicorn,
    write_json,
)
from bench.service import SECRET, _unix_socket, make_requests, station_points  # noqa: E402

HISTORY_START = "2024-01"
PLAN_TEHSIL = "PK61702"  # Lahore City: the most demand
TARGET_P99_MS, TARGET_MAX_MS = 50.0, 250.0
KEEP_ALIVE_S = 4.0
"""An idle connection is not reused after this (uvicorn closes them after 5 s), as HTTP
clients do."""
REQUEST_TIMEOUT_S = 30.0
"""An intake request unanswered this long is lost."""
ANALYSTS_PER_KIND = 2
"""Analysts sending each kind of heavy request at once (more than the pool admits)."""
HEAVY = ("batch routing", "emerging hot spots", "Gi* res 8", "heat maps", "plan")


# ------------------------------------------------------------------ the history
def load_history(url: str, months: int, scale: float) -> tuple[int, datetime]:
    """A generated history in the database: how many calls, and the start of the last week
    that began before the history ended (Pakistan time; the emerging window ends there)."""
    calls = load_generated_history(url, months, 7, scale, HISTORY_START)
    # the dashboard's projection filled as after any history load (docs/dashboard.md), so
    # the watcher process does not spend the run catching up with a year of events
    subprocess.run([sys.executable, "-m", "api.cli", "dashboard", "refresh"], check=True,
                   env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL)
    start = datetime.fromisoformat(f"{HISTORY_START}-01").replace(tzinfo=ZoneInfo("Asia/Karachi"))
    year, month = divmod(start.month - 1 + months, 12)
    end = start.replace(year=start.year + year, month=month + 1)
    return calls, end - timedelta(days=end.weekday())  # a Monday: whole weeks


# ------------------------------------------------------------------ the intake, open loop
@dataclass
class Intake:
    sent: int = 0
    answered: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    connections: int = 0

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    def ms(self, q: float | None) -> float:
        if not self.latencies:
            return 0.0
        values = np.asarray(self.latencies) * 1000
        return float(values.max() if q is None else np.percentile(values, q))


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])


async def open_loop(port: int, requests: list[bytes], rate: float) -> Intake:
    """Send ``requests`` at ``rate`` a second on schedule; each latency from its due time."""
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    result = Intake()

    def reuse() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """An idle connection the server has not closed for idleness yet, else ``None``."""
        while idle:
            reader, writer, since = idle.pop()
            if loop.time() - since < KEEP_ALIVE_S:
                return reader, writer
            writer.close()
        return None

    async def one(request: bytes, due: float) -> None:
        connection = reuse()
        try:
            if connection is None:
                connection = await asyncio.open_connection(LOOPBACK, port)
                result.connections += 1
            reader, writer = connection
            writer.write(request)
            status = await asyncio.wait_for(_read_answer(reader), REQUEST_TIMEOUT_S)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            result.statuses[type(exc).__name__] = result.statuses.get(type(exc).__name__, 0) + 1
            if connection is not None:
                connection[1].close()
            return
        result.latencies.append(loop.time() - due)
        result.statuses[str(status)] = result.statuses.get(str(status), 0) + 1
        if status == 201:
            result.answered += 1
        idle.append((*connection, loop.time()))

    tasks = []
    start = loop.time() + 0.05
    for i, request in enumerate(requests):
        due = start + i / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        result.sent += 1
        tasks.append(asyncio.ensure_future(one(request, due)))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    return result


# ------------------------------------------------------------------ the analysts
@dataclass
class Heavy:
    ok: int = 0
    busy: int = 0
    deadline: int = 0
    other: dict[str, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)


def batch_body(points: int, seed: int = 5) -> bytes:
    """``points`` inside Punjab's stations, each with a 50–2,000 m uncertainty radius."""
    import msgspec  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    stations = station_points()
    picked = stations[rng.integers(0, len(stations), points)]
    jitter = rng.uniform(-0.01, 0.01, (points, 2))
    radius = np.exp(rng.uniform(np.log(50), np.log(2000), points))
    return msgspec.json.encode({"points": [
        {"lat": float(lat), "lon": float(lon), "radius_m": round(float(r), 1)}
        for (lat, lon), r in zip(picked + jitter, radius, strict=True)]})


@dataclass(frozen=True)
class Analysts:
    """What the analysts' process is told: where, who, how long, how much."""

    url: str
    token: str
    seconds: float
    batch_points: int
    since: str
    until: str
    """The emerging hot-spot window."""


async def _analysts(plan: Analysts, batch: bytes) -> dict[str, dict[str, Any]]:
    import httpx  # noqa: PLC0415

    auth = {"Authorization": f"Bearer {plan.token}"}
    results = {name: Heavy() for name in HEAVY}
    seconds = plan.seconds
    stop_at = time.monotonic() + seconds
    emerging = {"level": "province", "res": 7, "from": plan.since, "until": plan.until,
                "step": "week"}
    requests: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "batch routing": [("POST", "/api/v1/route/batch", {"content": batch})],
        "emerging hot spots": [("GET", "/api/v1/hotspots/emerging", {"params": emerging})],
        "Gi* res 8": [("GET", "/api/v1/hotspots", {"params": {"level": "province", "res": 8}})],
        "heat maps": [("GET", "/api/v1/heatmaps/calls", {"params": {"level": "province", "res": 8}}),
                      ("GET", "/api/v1/heatmaps/response", {"params": {"level": "province", "res": 7}})],
    }

    def count(heavy: Heavy, answer: httpx.Response, began: float) -> None:
        if answer.status_code in (200, 202):
            heavy.ok += 1
            heavy.seconds.append(time.monotonic() - began)
        elif answer.status_code == 503 and "deadline" in answer.text:
            heavy.deadline += 1
        elif answer.status_code == 503:
            heavy.busy += 1
        else:
            key = str(answer.status_code)
            heavy.other[key] = heavy.other.get(key, 0) + 1

    async def analyst(name: str, http: httpx.AsyncClient, turn: int) -> None:
        heavy = results[name]
        while time.monotonic() < stop_at:
            method, path, extra = requests[name][turn % len(requests[name])]
            turn += 1
            began = time.monotonic()
            answer = await http.request(method, path, headers=auth, **extra)
            count(heavy, answer, began)
            if answer.status_code != 200:
                await asyncio.sleep(1.0)

    async def planner(http: httpx.AsyncClient) -> None:
        heavy = results["plan"]
        body: dict[str, Any] = {"tehsil": PLAN_TEHSIL, "sites": 5, "radius_m": 500.0, "time_limit_s": 30.0}
        while time.monotonic() < stop_at:
            began = time.monotonic()
            posted = await http.post("/api/v1/plans", json=body, headers=auth)
            if posted.status_code != 202:
                count(heavy, posted, began)
                await asyncio.sleep(1.0)
                continue
            link = posted.json()["links"]["self"]
            while True:
                await asyncio.sleep(1.0)
                state = (await http.get(link, headers=auth)).json()
                if state["state"] in ("succeeded", "failed"):
                    break
            if state["state"] == "succeeded":
                heavy.ok += 1
                heavy.seconds.append(time.monotonic() - began)
            else:
                error = str(state.get("error"))
                key = "deadline" if "deadline" in error else f"failed: {error[:60]}"
                heavy.other[key] = heavy.other.get(key, 0) + 1

    limits = httpx.Limits(max_connections=2 * ANALYSTS_PER_KIND * len(requests))
    async with httpx.AsyncClient(base_url=plan.url, timeout=600, limits=limits) as http:
        analysts = [asyncio.ensure_future(analyst(name, http, turn)) for name in requests
                    for turn in range(ANALYSTS_PER_KIND)]
        analysts.append(asyncio.ensure_future(planner(http)))
        # at the end, requests still out are abandoned: their connections close, and the
        # service stops their work (a client gone)
        _, pending = await asyncio.wait(analysts, timeout=seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return {name: {"ok": h.ok, "busy": h.busy, "deadline": h.deadline, "other": h.other,
                   "mean_s": float(np.mean(h.seconds)) if h.seconds else None}
            for name, h in results.items()}


def analysts_main(plan: Analysts, out: Any) -> None:
    """The analysts' process: their encoding and reading of megabytes never share the
    intake client's loop or interpreter, and, being the load generator (in a control room
    they sit on other machines), it yields the shared cores to the service under test."""
    os.nice(10)
    batch = batch_body(plan.batch_points)
    out.put(asyncio.run(_analysts(plan, batch)))


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase")
    parser.add_argument("--rate", type=float, default=100.0, help="calls a second")
    parser.add_argument("--months", type=int, default=12, help="of generated history")
    parser.add_argument("--scale", type=float, default=0.03, help="of Punjab's call volume")
    parser.add_argument("--batch", type=int, default=100_000, help="points per routing batch")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    from api.auth import mint_token  # noqa: PLC0415
    from api.settings import read_worker_settings  # noqa: PLC0415

    caller = mint_token(SECRET, "call_taker", "PK6", "province", subject="bench-intake")
    analyst = mint_token(SECRET, "planner", "PK6", "province", subject="bench-analyst")
    points = station_points()
    calls_per_phase = int(args.seconds * args.rate)
    max_steps = read_worker_settings().max_steps
    with scratch_database("bench_mixed") as url:
        console.print("loading the boundary set and a generated history …")
        load_boundaries_into(url)
        history, end = load_history(url, args.months, args.scale)
        since = (end - timedelta(weeks=max_steps)).isoformat()
        console.print(f"{history:,} calls up to {end.date()}; emerging window {since} – {end.isoformat()}")
        served = start_uvicorn("api.app:app_factory", env={
            "DATABASE_URL": _unix_socket(url), "SAFECITY_JWT_SECRET": SECRET, "REDIS_URL": None})
        try:
            time.sleep(5)  # the worker pool warms up (boundary set, router)
            warmup = make_requests(200, points, caller, 100)
            asyncio.run(open_loop(served.port, warmup, args.rate))
            console.print(f"intake alone, {args.rate:g} calls/s for {args.seconds:g} s …")
            alone = asyncio.run(open_loop(served.port, make_requests(calls_per_phase, points,
                                                                      caller, 101), args.rate))
            console.print(f"intake under analytic load for {args.seconds:g} s …")
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            analysts = context.Process(target=analysts_main, args=(Analysts(
                served.url, analyst, args.seconds + 2.0, args.batch, since, end.isoformat()), queue))
            analysts.start()
            time.sleep(2.0)  # the analysts fill the pool first
            loaded = asyncio.run(open_loop(served.port, make_requests(calls_per_phase, points,
                                                                       caller, 102), args.rate))
            heavy: dict[str, dict[str, Any]] = queue.get(timeout=args.seconds + 900)
            analysts.join(60)
        finally:
            served.stop()
        import psycopg  # noqa: PLC0415

        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM calls WHERE idempotency_key LIKE 'bench-%'"
                               ).fetchone()
            stored = int(row[0]) if row else 0
    report(args, Outcome(history, alone, loaded, heavy, stored,
                         expected=len(warmup) + alone.answered + loaded.answered))


@dataclass
class Outcome:
    """One run's figures."""

    history: int
    alone: Intake
    loaded: Intake
    heavy: dict[str, dict[str, Any]]
    stored: int
    expected: int


def report(args: argparse.Namespace, outcome: Outcome) -> None:
    history, alone, loaded, heavy = outcome.history, outcome.alone, outcome.loaded, outcome.heavy
    stored, expected = outcome.stored, outcome.expected
    rows = []
    for name, r in (("intake alone", alone), ("intake under analytic load", loaded)):
        rows.append([name, f"{r.sent:,}", f"{r.answered:,}", f"{r.lost:,}", f"{r.ms(50):.1f}",
                     f"{r.ms(99):.1f}", f"{r.ms(None):.1f}", str(r.connections)])
    print_table(f"POST /api/v1/calls at {args.rate:g}/s, open loop, {args.seconds:g} s each, "
                f"one worker, {os.cpu_count()} cores", ["", "sent", "answered", "lost", "p50 ms",
                                                       "p99 ms", "max ms", "connections"], rows)
    minutes = (args.seconds + 2.0) / 60
    heavy_rows = [[name, str(h["ok"]), f"{h['ok'] / minutes:.1f}", str(h["busy"]), str(h["deadline"]),
                   ", ".join(f"{k}: {v}" for k, v in h["other"].items()) or "–",
                   f"{h['mean_s']:.1f}" if h["mean_s"] is not None else "–"]
                  for name, h in heavy.items()]
    print_table(f"analysts meanwhile ({history:,} calls of history; batch {args.batch:,} points)",
                ["endpoint", "answered", "per minute", "503 busy", "503 deadline", "other",
                 "mean s"], heavy_rows)
    p99_ratio = loaded.ms(99) / alone.ms(99) if alone.ms(99) else 0.0
    checks = [["p99 under load", f"{loaded.ms(99):.1f} ms", f"≤ {TARGET_P99_MS:g} ms",
               _mark(loaded.ms(99) <= TARGET_P99_MS)],
              ["max under load", f"{loaded.ms(None):.1f} ms", f"≤ {TARGET_MAX_MS:g} ms",
               _mark(loaded.ms(None) <= TARGET_MAX_MS)],
              ["calls lost under load", str(loaded.lost), "0", _mark(loaded.lost == 0)],
              ["p99 under load ÷ alone", f"{p99_ratio:.2f}", "", ""],
              ["calls stored / answered", f"{stored:,} / {expected:,}", "equal",
               _mark(stored == expected)]]
    print_table("targets", ["figure", "measured", "target", ""], checks)
    write_json(args.json, {
        "rate": args.rate, "seconds": args.seconds, "cores": os.cpu_count(),
        "history_calls": history, "batch_points": args.batch,
        "intake": {name: {"sent": r.sent, "answered": r.answered, "lost": r.lost,
                          "p50_ms": r.ms(50), "p99_ms": r.ms(99), "max_ms": r.ms(None),
                          "statuses": r.statuses, "connections": r.connections}
                   for name, r in (("alone", alone), ("under_load", loaded))},
        "heavy": heavy, "p99_ratio": p99_ratio, "calls_stored": stored, "calls_expected": expected,
        "targets_met": loaded.ms(99) <= TARGET_P99_MS and loaded.ms(None) <= TARGET_MAX_MS
        and loaded.lost == 0,
    })


def _mark(ok: bool) -> str:
    return "✔" if ok else "✘"


if __name__ == "__main__":
    main()
