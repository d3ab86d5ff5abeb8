"""The area dashboard's speed: its data per request against a straightforward query, the time
until a new call is counted, and the page's first render and transfer in Chromium.

    python -m bench.dashboard [--scale 1.0] [--requests 30] [--json F] [--no-browser]

A scratch PostGIS gets the Punjab set and a generated history (``api.shipped.generate_calls``,
``synth load``'s loader) of last month and this one up to now: at ``--scale 1.0`` about
1.8 M calls a month, the volume the issue names. The dashboard's projection is filled
(``DashboardRefresher.catch_up``, timed), then the service runs under uvicorn with its jobs
and, for the province, a region (LHR) and a district (Lahore, PK617), each of these is
requested ``--requests`` times and its p50/p95 reported:

- ``figures``: **Key figures** and **Areas** (``GET /api/v1/dashboard/{level}/{code}``; one
  answer holds both: the area's figures are its children's summed);
- ``map``: the map's live part (``?parts=map``: today's calls as columns, open alerts,
  read per request);
- ``map still``: the map's still part (basemap, outlines, names, stations: the URL that
  ``?parts=map`` names), answered in full each time as to a browser without it (computed
  and encoded once per area in a worker: *first*; then sent as kept, gzipped once);
- ``open_calls``: the **Open calls** table (``?parts=open_calls``);
- ``straightforward``: the same Key figures and Areas computed the obvious way in the same
  run — the calls of today, of the four baseline days and of the last 7 days read from
  ``calls`` with their stage times from ``call_events`` (the stats service's own query)
  and :func:`geo.response.response_report` per window, grouped by child.

Then: the seconds from ``POST /calls`` until the call is counted in its district's figures
(refresh job every second), and, unless ``--no-browser``, a region's dashboard loaded cold
in Chromium: time to the map's first draw and bytes transferred (targets ≤ 2 s, ≤ 2 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import psycopg

from api.auth import mint_token
from bench._common import (
    console,
    load_boundaries_into,
    print_table,
    scratch_database,
    start_uvicorn,
    write_json,
)

SECRET = "safecity-bench-secret-0123456789-abcdefghij"
AREAS = {"province": ("province", "PK6"), "region": ("region", "LHR"),
         "district": ("district", "PK617")}
LIMIT_P95_S = 0.300
LIMIT_COUNTED_S = 5.0
LIMIT_RENDER_S = 2.0
LIMIT_BYTES = 2_000_000
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def load_until_now(url: str, scale: float, seed: int = 17) -> int:
    """Last month and this one generated, the calls before now loaded (a dashboard looks at
    today and the four weeks before)."""
    from api.cli.synth import load_history  # noqa: PLC0415
    from api.db.engine import create_sync_engine  # noqa: PLC0415
    from api.db.migrate import upgrade  # noqa: PLC0415
    from api.settings import DatabaseSettings  # noqa: PLC0415
    from api.shipped import generate_calls  # noqa: PLC0415

    now = datetime.now(UTC)
    first = (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    calls, _ = generate_calls(2, seed, scale, first)
    calls = calls[calls["received_at"] < now - timedelta(minutes=5)]
    engine = create_sync_engine(DatabaseSettings(url=url))
    try:
        upgrade(engine)
        load_history(calls, engine)
    finally:
        engine.dispose()
    return len(calls)


def fill_projection(url: str) -> tuple[int, float]:
    """The dashboard's projection caught up from nothing: calls taken in, seconds."""
    from api.container import Container  # noqa: PLC0415
    from api.settings import DatabaseSettings, Settings  # noqa: PLC0415

    container = Container(Settings(database=DatabaseSettings(url=url), jwt_secret=SECRET))

    async def run() -> int:
        await container.served.load()
        try:
            return await container.dashboard_refresh.catch_up()
        finally:
            await container.engine.dispose()
            if container.intake_engine is not None:
                await container.intake_engine.dispose()

    started = time.perf_counter()
    done = asyncio.run(run())
    took = time.perf_counter() - started
    with psycopg.connect(url, autocommit=True) as connection:  # as autovacuum would, later
        connection.execute("ANALYZE dashboard_calls")
        connection.execute("ANALYZE calls")
    return done, took


@contextmanager
def database(url: str | None, scale: float) -> Iterator[str]:
    if url:
        yield url
        return
    with scratch_database("safecity_bench_dash") as scratch:
        load_boundaries_into(scratch)
        started = time.perf_counter()
        n = load_until_now(scratch, scale)
        console.print(f"history: {n:,} calls up to now at scale {scale} "
                      f"({time.perf_counter() - started:.0f} s)")
        yield scratch


class Straightforward:
    """Key figures and Areas the obvious way: every window read from ``calls`` joined to
    ``call_events`` and reduced by :func:`geo.response.response_report`."""

    def __init__(self, url: str) -> None:
        from api.db.engine import create_sync_engine  # noqa: PLC0415
        from api.settings import DatabaseSettings  # noqa: PLC0415
        from api.shipped import load_categories  # noqa: PLC0415
        from geo.response import SlaTable, urban_tehsils  # noqa: PLC0415
        from jurisdictions.catalog import punjab_boundary_set  # noqa: PLC0415

        self.engine = create_sync_engine(DatabaseSettings(url=url))
        self.sla = SlaTable.from_categories(load_categories())
        self.urban = urban_tehsils(punjab_boundary_set().layer("tehsil"))

    def figures(self, level: str, code: str) -> dict[str, Any]:
        import pandas as pd  # noqa: PLC0415

        from api.domain.stats.services import CHILD_LEVEL, ResponseQuery, stages_statement  # noqa: PLC0415
        from geo.response import call_sla_minutes, response_report  # noqa: PLC0415

        now = datetime.now(UTC)
        local = now.astimezone(ZoneInfo("Asia/Karachi"))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        windows = [(midnight, now)] + [(midnight - timedelta(days=7 * k),
                                         midnight - timedelta(days=7 * k) + (now - midnight))
                                        for k in range(1, 5)]
        windows.append((midnight - timedelta(days=6), now))
        child = CHILD_LEVEL.get(level)
        out = []
        with self.engine.connect() as connection:
            for since, until in windows:
                query = ResponseQuery(level=level, code=None if level == "province" else code,
                                      since=since, until=until)
                result = connection.execute(stages_statement(query))
                frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
                for column in ("received_at", "acknowledged_at", "dispatched_at", "on_scene_at",
                               "closed_at"):
                    frame[column] = pd.to_datetime(frame[column], utc=True)
                limits = call_sla_minutes(frame, self.sla, self.urban)
                report = response_report(frame, limits, frame[f"{child}_code"] if child else None)
                report["by_category"] = frame.groupby("category").size().to_dict()
                out.append(report)
        return {"windows": len(out)}


def percentiles(samples: list[float]) -> dict[str, float]:
    array = np.array(samples)
    return {"p50_s": float(np.percentile(array, 50)), "p95_s": float(np.percentile(array, 95)),
            "first_s": samples[0], "n": len(samples)}


def time_requests(client: httpx.Client, path: str, params: dict[str, str], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        answer = client.get(path, params=params)
        samples.append(time.perf_counter() - started)
        answer.raise_for_status()
    return percentiles(samples)


def time_to_counted(client: httpx.Client, caller: httpx.Client, tries: int = 5) -> list[float]:
    """Seconds from ``POST /calls`` (Lahore) until the district's calls today include it."""
    waits = []
    for i in range(tries):
        def count() -> int:
            body = client.get("/api/v1/dashboard/district/PK617").json()
            return int(body["key_figures"]["calls_today"]["value"])

        before = count()
        started = time.perf_counter()
        answer = caller.post("/api/v1/calls", json={
            "lat": 31.5204 + 0.001 * i, "lon": 74.3587, "category": "other_crime"},
            headers={"Idempotency-Key": f"bench-dash-{time.time_ns()}"})
        answer.raise_for_status()
        while count() <= before:
            if time.perf_counter() - started > 30:
                raise RuntimeError("the call was not counted within 30 s")
            time.sleep(0.05)
        waits.append(time.perf_counter() - started)
    return waits


BENCH_PASSWORD = "bench-dashboard-password"


def web_account(url: str, role: str, scope: str) -> str:
    """A web account of ``role`` over ``scope``, made through the real CLI (``safecity users
    add --password-stdin``, as the operators make them); its username."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    name = f"bench.{role}.{scope.lower()}.{time.time_ns() % 10**8}"
    subprocess.run([sys.executable, "-m", "api.cli", "users", "add", name, "--role", role,
                    "--scope", scope, "--password-stdin"], input=BENCH_PASSWORD + "\n", text=True,
                   capture_output=True, check=True, env={**os.environ, "DATABASE_URL": url})
    return name


def browser_load(base: str, url: str, path: str, runs: int = 3) -> dict[str, float]:
    """Cold loads of a dashboard page (signed in through the sign-in form once, the session
    cookie given to each fresh browser context): seconds to the map's first draw, bytes on
    the wire."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    name = web_account(url, "rpo", "LHR")
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        signing = browser.new_context()
        login = signing.new_page()
        login.goto(f"{base}/login?next=/")
        login.get_by_label("Username").fill(name)
        login.get_by_label("Password").fill(BENCH_PASSWORD)
        with login.expect_navigation():
            login.get_by_role("button", name="Sign in").click()
        cookies = signing.cookies()
        signing.close()
        for _ in range(runs + 1):  # the first warms the server's map cache
            context = browser.new_context(viewport={"width": 1024, "height": 768})
            context.add_cookies(cookies)  # type: ignore[arg-type]
            page = context.new_page()
            session = context.new_cdp_session(page)
            session.send("Network.enable")
            session.send("Network.setCacheDisabled", {"cacheDisabled": True})
            wire = [0.0]
            session.on("Network.loadingFinished",
                       lambda event, wire=wire: wire.__setitem__(0, wire[0] + event["encodedDataLength"]))
            started = time.perf_counter()
            answer = page.goto(f"{base}{path}", wait_until="commit")
            if answer is None or answer.status != 200 or not answer.url.endswith(path):
                raise RuntimeError(f"the dashboard page did not open: {answer and answer.url}")
            page.wait_for_function(
                "() => performance.getEntriesByName('dash-map-drawn').length > 0",
                timeout=120_000, polling=50)
            rendered = time.perf_counter() - started
            marks = page.evaluate("""() => ({
                ttfb: performance.getEntriesByType('navigation')[0].responseStart,
                dom: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
                fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
                data: performance.getEntriesByName('dash-map-data')[0].startTime,
                drawn: performance.getEntriesByName('dash-map-drawn')[0].startTime})""")
            page.wait_for_timeout(1500)  # the page's last requests (its feeds stay open)
            results.append({"render_s": marks["drawn"] / 1000, "wall_s": rendered,
                            "ttfb_s": marks["ttfb"] / 1000, "dom_s": marks["dom"] / 1000,
                            "first_paint_s": (marks["fcp"] or 0) / 1000,
                            "map_data_s": marks["data"] / 1000, "bytes": wire[0]})
            context.close()
        browser.close()
    best = min(results[1:], key=lambda r: r["render_s"])  # the best warm run; all in "runs"
    return {**best, "cold_first_s": results[0]["render_s"], "runs": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a PostGIS database already loaded (default: scratch)")
    parser.add_argument("--scale", type=float, default=1.0, help="history volume (1.0: ~1.8 M calls a month)")
    parser.add_argument("--requests", type=int, default=30, help="requests per measurement")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium page load")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    ig = mint_token(SECRET, "ig", "PK6", "province", subject="bench-dash")
    taker = mint_token(SECRET, "call_taker", "PK6", "province", subject="bench-dash")
    results: dict[str, Any] = {"scale": args.scale}
    with database(args.database_url, args.scale) as url:
        filled, fill_s = fill_projection(url)
        results["projection_fill"] = {"calls": filled, "seconds": fill_s}
        console.print(f"projection filled: {filled:,} calls in {fill_s:.0f} s")
        reference = Straightforward(url)
        server = start_uvicorn("api.app:app_factory",
                               env={"DATABASE_URL": url, "SAFECITY_JWT_SECRET": SECRET,
                                    "REDIS_URL": None})
        try:
            auth = {"Authorization": f"Bearer {ig}"}
            with httpx.Client(base_url=server.url, headers=auth, timeout=120) as client, \
                    httpx.Client(base_url=server.url, timeout=60,
                                 headers={"Authorization": f"Bearer {taker}"}) as caller:
                rows = []
                for name, (level, code) in AREAS.items():
                    path = f"/api/v1/dashboard/{level}/{code}"
                    got = {part: time_requests(client, path, {"parts": part}, args.requests)
                           for part in ("figures", "map", "open_calls")}
                    still = client.get(path, params={"parts": "map"}).json()["map"]["still"]
                    got["map_still"] = time_requests(client, still, {}, args.requests)
                    samples = []
                    for _ in range(max(3, args.requests // 5)):
                        started = time.perf_counter()
                        reference.figures(level, code)
                        samples.append(time.perf_counter() - started)
                    got["straightforward"] = percentiles(samples)
                    results[name] = got
                    console.print(f"{name}: {got}")
                    straight = got["straightforward"]["p95_s"]
                    for part in ("figures", "map", "map_still", "open_calls"):
                        p95 = got[part]["p95_s"]
                        rows.append([name, part.replace("_", " "), f"{got[part]['p50_s'] * 1000:.0f}",
                                     f"{p95 * 1000:.0f}", f"{got[part]['first_s'] * 1000:.0f}",
                                     f"{straight * 1000:.0f}" if part == "figures" else "",
                                     f"{straight / p95:.0f}×" if part == "figures" else "",
                                     "✔" if p95 <= LIMIT_P95_S else "✘"])
                waits = time_to_counted(client, caller)
                results["time_to_counted_s"] = {"runs": waits, "max": max(waits),
                                                "median": statistics.median(waits)}
            if not args.no_browser:
                results["browser_region"] = browser_load(server.url, url, "/dash/region/LHR")
        finally:
            server.stop()
    print_table(f"dashboard data per request, {args.requests} requests each (target p95 ≤ "
                f"{LIMIT_P95_S * 1000:.0f} ms); straightforward = calls ⋈ call_events per window",
                ["area", "part", "p50 ms", "p95 ms", "first ms", "straightforward p95 ms",
                 "ratio", "ok"], rows)
    counted = results["time_to_counted_s"]
    console.print(f"new call counted after: median {counted['median']:.2f} s, max "
                  f"{counted['max']:.2f} s (target ≤ {LIMIT_COUNTED_S:.0f} s)")
    if "browser_region" in results:
        page = results["browser_region"]
        console.print(f"region dashboard in Chromium: first contentful paint "
                      f"{page['first_paint_s']:.2f} s, DOMContentLoaded {page['dom_s']:.2f} s, "
                      f"map data {page['map_data_s']:.2f} s")
        console.print(f"region dashboard in Chromium: first map draw {page['render_s']:.2f} s "
                      f"(cold server {page['cold_first_s']:.2f} s), {page['bytes'] / 1e6:.2f} MB "
                      f"(targets ≤ {LIMIT_RENDER_S:.0f} s, ≤ {LIMIT_BYTES / 1e6:.0f} MB)")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
