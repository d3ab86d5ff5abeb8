"""Alert rules: one day of full-scale Punjab traffic evaluated, and the per-event overhead.

1. **A day of rules.** One day of a generated full-scale month (about 60k calls with their
   lifecycle events) is loaded into a scratch PostGIS database, every call is made due,
   and :meth:`AlertEngine.run_due` evaluates all four call rules (unacknowledged with
   escalation, response breach, repeat location and caller) as of the end of the day.
   The baseline is reading the same calls and events with the engine's own queries and
   no rules or writes: the ratio says what the rules and alert writes add to the I/O.
2. **Per-event overhead.** ``POST /api/v1/calls/{id}/events`` (acknowledgements, 32
   connections, closed loop) against a service with the rules on (the call's deadline
   is rewritten with the event; the engine runs every second beside it) and the same
   service with ``SAFECITY_ALERTS=0``. Prints req/s, p50/p99 and the ratio (on ÷ off).

``python bench/alerts.py [--events N] [--seconds S] [--json FILE]``; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    console,
    load_boundaries_into,
    print_table,
    scratch_database,
    start_uvicorn,
    write_json,
)
from bench.service import (
    CONNECTIONS,
    HOST,
    SECRET,
    Result,
    _unix_socket,
    make_requests,
    measure,
    station_points,
)


def load_day(url: str, seed: int, scale: float = 1.0) -> tuple[int, datetime]:
    """One day of a generated month (``scale`` 1: full Punjab volume) in the database;
    (calls, the day's end)."""
    import pandas as pd  # noqa: PLC0415

    from api.cli.synth import load_history  # noqa: PLC0415
    from api.db.engine import create_sync_engine  # noqa: PLC0415
    from api.db.migrate import upgrade  # noqa: PLC0415
    from api.settings import DatabaseSettings  # noqa: PLC0415
    from api.shipped import generate_calls  # noqa: PLC0415

    console.print(f"generating a month at scale {scale:g} …")
    calls, _ = generate_calls(1, seed, scale, "2024-03")
    local = pd.to_datetime(calls["received_at"], utc=True).dt.tz_convert("Asia/Karachi")
    day = calls[local.dt.day == 12].reset_index(drop=True)
    console.print(f"loading one day: {len(day):,} calls …")
    engine = create_sync_engine(DatabaseSettings(url=url))
    try:
        upgrade(engine)
        load_history(day, engine)
    finally:
        engine.dispose()
    end: datetime = pd.Timestamp("2024-03-13", tz="Asia/Karachi").to_pydatetime()
    return len(day), end


async def evaluate_day(url: str, end: datetime) -> dict[str, float]:
    """Seconds to read the day (baseline) and to evaluate every rule over it."""
    from sqlalchemy import select, text  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import async_sessionmaker  # noqa: PLC0415

    from api.db.call_models import CallEventRecord, CallRecord  # noqa: PLC0415
    from api.db.engine import async_engine  # noqa: PLC0415
    from api.domain.alerts.engine import _FACT_COLUMNS, AlertContext, AlertEngine  # noqa: PLC0415
    from api.domain.alerts.rules import AlertPolicy  # noqa: PLC0415
    from api.settings import DatabaseSettings, Settings  # noqa: PLC0415
    from api.shipped import load_categories  # noqa: PLC0415
    from geo.response import SlaTable, urban_tehsils  # noqa: PLC0415
    from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

    engine = async_engine(Settings(database=DatabaseSettings(url=url)))
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    urban = urban_tehsils(punjab_boundary_set().layer("tehsil"))
    try:
        started = time.perf_counter()
        async with sessions() as session:
            ids = list((await session.execute(select(CallRecord.id))).scalars())
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                await session.execute(select(*_FACT_COLUMNS).where(CallRecord.id.in_(chunk)))
                await session.execute(select(CallEventRecord.call_id, CallEventRecord.type,
                                             CallEventRecord.at)
                                      .where(CallEventRecord.call_id.in_(chunk)))
        read_s = time.perf_counter() - started
        async with sessions() as session, session.begin():
            await session.execute(text(
                "INSERT INTO alert_due (call_id, next_alert_at) SELECT id, received_at FROM calls "
                "ON CONFLICT (call_id) DO UPDATE SET next_alert_at = excluded.next_alert_at"))
        ctx = AlertContext(sessions=sessions, policy=AlertPolicy.load(),
                           sla=SlaTable.from_categories(load_categories()), urban=lambda: urban,
                           publisher=None)
        started = time.perf_counter()
        report = await AlertEngine(ctx).run_due(end + timedelta(hours=1))
        rules_s = time.perf_counter() - started
    finally:
        await engine.dispose()
    return {"read_s": read_s, "rules_s": rules_s, "calls": report.calls, "raised": report.raised,
            "resolved": report.resolved, "escalated": report.escalated}


def event_requests(call_ids: list[str], token: str) -> list[bytes]:
    """One acknowledgement per call, as complete HTTP requests."""
    body = msgspec.json.encode({"type": "acknowledged"})
    return [(f"POST /api/v1/calls/{call_id}/events HTTP/1.1\r\nHost: {HOST}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
             f"Authorization: Bearer {token}\r\n\r\n").encode() + body for call_id in call_ids]


def event_overhead(url: str, events: int, seconds: float) -> dict[str, Result]:
    import psycopg  # noqa: PLC0415

    from api.auth import mint_token  # noqa: PLC0415

    points = station_points()
    env = {"DATABASE_URL": _unix_socket(url), "SAFECITY_JWT_SECRET": SECRET, "REDIS_URL": None,
           "SAFECITY_HOTSPOT_SCAN_H": "0"}
    results: dict[str, Result] = {}
    for seed, (name, enabled) in enumerate((("rules off", "0"), ("rules on", "1"))):
        served = start_uvicorn("api.app:app_factory", env={**env, "SAFECITY_ALERTS": enabled})
        try:
            taker = mint_token(SECRET, "call_taker", "PK6", "province", subject=f"bench-{seed}")
            asyncio.run(_drive_all(served.port, make_requests(events + 200, points, taker, 10 + seed)))
            with psycopg.connect(url) as conn:
                ids = [str(r[0]) for r in conn.execute(
                    "SELECT id FROM calls WHERE created_by = %s ORDER BY created_at",
                    (f"bench-{seed}",)).fetchall()]
            admin = mint_token(SECRET, "admin", "PK6", "province", subject="bench")
            requests = event_requests(ids, admin)
            result = measure(served.process.pid, served.port, requests[200:], requests[:200],
                         seconds)
        finally:
            served.stop()
        results[name] = result
        console.print(f"  {name}: {result.ok:,}/{result.sent:,} ok, {result.rate:,.0f} req/s, "
                      f"p50 {result.percentile(50):.1f} ms, p99 {result.percentile(99):.1f} ms, "
                      f"statuses {result.statuses}")
    return results


async def _drive_all(port: int, requests: list[bytes]) -> None:
    from bench.service import drive  # noqa: PLC0415

    await drive(port, requests, 600.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per configuration")
    parser.add_argument("--seconds", type=float, default=20.0, help="per configuration, at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="share of Punjab's call volume (1: full scale, ~60k calls a day)")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--profile", type=Path, default=None,
                        help="write a cProfile of the rules pass here")
    args = parser.parse_args()
    with scratch_database("bench_alerts") as url:
        console.print("loading the boundary set into a scratch PostGIS database …")
        load_boundaries_into(url)
        calls, end = load_day(url, args.seed, args.scale)
        if args.profile:
            import cProfile  # noqa: PLC0415

            with cProfile.Profile() as profile:
                day = asyncio.run(evaluate_day(url, end))
            profile.dump_stats(args.profile)
        else:
            day = asyncio.run(evaluate_day(url, end))
        console.print("per-event overhead …")
        events = event_overhead(url, args.events, args.seconds)
    off, on = events["rules off"], events["rules on"]
    ratio = on.rate / off.rate if off.rate else 0.0
    print_table(f"one day of traffic at scale {args.scale:g} ({calls:,} calls), all call rules",
                ["pass", "seconds", "calls/s", "ratio"],
                [["read calls + events (baseline)", f"{day['read_s']:.2f}",
                  f"{calls / day['read_s']:,.0f}", "1.00"],
                 ["evaluate rules + write alerts", f"{day['rules_s']:.2f}",
                  f"{calls / day['rules_s']:,.0f}", f"{day['rules_s'] / day['read_s']:.2f}"]])
    console.print(f"alerts raised {day['raised']:,.0f}, escalated {day['escalated']:,.0f}, "
                  f"resolved {day['resolved']:,.0f}")
    print_table(f"POST /api/v1/calls/{{id}}/events, {CONNECTIONS} connections, "
                f"{os.cpu_count()} cores shared with the client",
                ["service", "ok", "req/s", "p50 ms", "p99 ms", "ratio"],
                [[name, f"{r.ok:,}", f"{r.rate:,.0f}", f"{r.percentile(50):.1f}",
                  f"{r.percentile(99):.1f}", f"{r.rate / off.rate:.2f}" if off.rate else "–"]
                 for name, r in events.items()])
    write_json(args.json, {
        "day_calls": calls, "day_read_s": day["read_s"], "day_rules_s": day["rules_s"],
        "day_alerts_raised": day["raised"], "events_ratio_on_off": ratio,
        "events_rate_on": on.rate, "events_rate_off": off.rate,
        "events_p99_ms_on": on.percentile(99), "events_p99_ms_off": off.percentile(99)})


if __name__ == "__main__":
    main()
