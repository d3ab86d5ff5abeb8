"""Map page benchmark: bytes on the wire and time to the first drawn map, in headless Chromium.

    python bench/maps.py [--database-url URL] [--scale 0.02] [--runs 3] [--pages a,b] [--json FILE]

The service runs under uvicorn on a loopback port over PostGIS: a scratch database with
the Punjab set and a generated history (3 months at ``--scale`` of full volume) unless
``--database-url`` names one already loaded, plus one MCLP plan of Lahore City. Each map
page (province, region LHR, district PK633, station PK61701-007 × calls, response,
hotspots, emerging; the plan map) is opened once to warm the server, then ``--runs``
times in a fresh browser context (empty cache), and the best run is kept:

- **bytes**: everything the page transferred (``encodedDataLength`` of every response:
  compressed as sent), and the same decoded;
- **first render**: navigation start to the client's ``safecity-map-ready`` mark (deck.gl
  has drawn its first frame on the full-size canvas with every layer loaded: the map as it
  stays), server time to first byte included.

Baseline, measured in the same run: the **floor** — a page that loads only the same
vendored scripts (h3-js, deck.gl) from the service and draws one empty deck.gl map. Every
map page pays it; the ratio column is page ÷ floor. The targets of issue 16 (≤ 2 MB,
first render ≤ 3 s) are checked in the table and in ``--json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.auth import mint_token
from bench._common import (
    console,
    load_boundaries_into,
    print_table,
    scratch_database,
    start_uvicorn,
    write_json,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECRET = "safecity-bench-secret-0123456789-abcdefghij"
LIMIT_BYTES = 2_000_000
LIMIT_RENDER_S = 3.0
AREAS = {"province": "level=province", "region": "level=region&code=LHR",
         "district": "level=district&code=PK633", "station": "level=station&code=PK61701-007"}
KINDS = ("calls", "response", "hotspots", "emerging")
FLOOR_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>floor</title>
<script src="/static/vendor/h3-js/h3-js.umd.js" defer></script>
<script src="/static/vendor/deck.gl/dist.min.js" defer></script></head>
<body style="margin:0"><div id="map" style="position:fixed;inset:0"></div>
<script>
document.addEventListener("DOMContentLoaded", () => {
  const map = new deck.Deck({parent: document.getElementById("map"), controller: true,
    initialViewState: {longitude: 72.7, latitude: 30.9, zoom: 6}, layers: [],
    onAfterRender: () => performance.getEntriesByName("safecity-map-ready").length ||
      performance.mark("safecity-map-ready")});
});
</script></body></html>"""


@contextmanager
def database(url: str | None, scale: float) -> Iterator[str]:
    """``url`` as it is, or a scratch PostGIS with the Punjab set and a generated history."""
    if url:
        yield url
        return
    with scratch_database("safecity_bench_maps") as scratch, tempfile.TemporaryDirectory() as work:
        load_boundaries_into(scratch)
        calls = str(Path(work) / "calls.parquet")
        env = {**os.environ, "DATABASE_URL": scratch}
        for command in (["synth", "calls", "--months", "3", "--seed", "11", "--scale", str(scale),
                         "--start", "2024-01", "--out", calls], ["synth", "load", calls]):
            subprocess.run([sys.executable, "-m", "api.cli", *command], env=env, check=True,
                           stdout=subprocess.DEVNULL)
        console.print(f"history: 3 months at scale {scale} (safecity synth calls | synth load)")
        yield scratch


def run_plan(base: str, token: str) -> str:
    """The map link of a finished MCLP plan of Lahore City (5 new sites)."""
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=60) as client:
        answer = client.post("/api/v1/plans", headers=auth,
                             json={"tehsil": "PK61702", "sites": 5, "radius_m": 500})
        answer.raise_for_status()
        deadline = time.monotonic() + 300
        while True:
            plan = client.get(answer.headers["location"], headers=auth).json()
            if plan["state"] in ("succeeded", "failed"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"plan not finished: {plan}")
            time.sleep(0.5)
    if plan["state"] != "succeeded":
        raise RuntimeError(f"plan failed: {plan}")
    return str(plan["links"]["map"])


def measure(browser: Any, base: str, path: str, token: str, *, floor: bool = False) -> dict[str, float]:
    """One cold load of ``path``: bytes in and time to the ready mark (seconds)."""
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.add_cookies([{"name": "safecity_map_token", "value": token, "url": f"{base}/maps"}])
    if floor:
        context.route(f"{base}{path}", lambda route: route.fulfill(body=FLOOR_HTML, content_type="text/html"))
    page = context.new_page()
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    session.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes = {"wire": 0.0, "decoded": 0.0}

    def finished(event: dict[str, Any]) -> None:
        sizes["wire"] += event["encodedDataLength"]

    def received(event: dict[str, Any]) -> None:
        sizes["decoded"] += event["dataLength"]

    session.on("Network.loadingFinished", finished)
    session.on("Network.dataReceived", received)
    try:
        page.goto(f"{base}{path}", wait_until="commit", timeout=300_000)
        page.wait_for_function("() => performance.getEntriesByName('safecity-map-ready').length > 0",
                               timeout=120_000, polling=50)
        timing = page.evaluate("""() => ({
            ready: performance.getEntriesByName('safecity-map-ready')[0].startTime,
            ttfb: performance.getEntriesByType('navigation')[0].responseStart})""")
        page.wait_for_load_state("networkidle")
        return {"bytes": sizes["wire"], "decoded_bytes": sizes["decoded"],
                "render_s": timing["ready"] / 1000, "ttfb_s": timing["ttfb"] / 1000}
    finally:
        context.close()


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """The fastest run (bytes are the same in every run)."""
    return min(runs, key=lambda r: r["render_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="a PostGIS database already loaded (default: a scratch one)")
    parser.add_argument("--scale", type=float, default=0.02, help="history volume (share of full scale)")
    parser.add_argument("--runs", type=int, default=3, help="cold loads per page (best kept)")
    parser.add_argument("--pages", help="comma-separated subset, e.g. district/calls,plan")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    token = mint_token(SECRET, "ig", "PK6", "province", subject="bench-maps")
    pages = {f"{area}/{kind}": f"/maps/{kind}?{query}" for area, query in AREAS.items() for kind in KINDS}
    wanted = set(args.pages.split(",")) if args.pages else None
    with database(args.database_url, args.scale) as url:
        server = start_uvicorn("api.app:app_factory",
                               env={"DATABASE_URL": url, "SAFECITY_JWT_SECRET": SECRET, "REDIS_URL": None})
        try:
            if wanted is None or "plan" in wanted:
                pages["plan"] = run_plan(server.url, token)
            if wanted is not None:
                pages = {name: path for name, path in pages.items() if name in wanted}
            results: dict[str, dict[str, float]] = {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                floor = best([measure(browser, server.url, "/static/floor.html", token, floor=True)
                              for _ in range(args.runs)])
                for name, path in pages.items():
                    measure(browser, server.url, path, token)  # warm the server's caches
                    runs = [measure(browser, server.url, path, token) for _ in range(args.runs)]
                    results[name] = best(runs)
                    console.print(f"{name}: {results[name]}")
                browser.close()
        finally:
            server.stop()

    rows = [["floor", f"{floor['bytes'] / 1e6:.2f}", "1.00",
             f"{floor['render_s']:.2f}", "1.00", "", ""]]
    for name, got in results.items():
        rows.append([name, f"{got['bytes'] / 1e6:.2f}", f"{got['bytes'] / floor['bytes']:.2f}",
                     f"{got['render_s']:.2f}", f"{got['render_s'] / floor['render_s']:.2f}",
                     f"{got['ttfb_s']:.2f}",
                     "✔" if got["bytes"] <= LIMIT_BYTES and got["render_s"] <= LIMIT_RENDER_S else "✘"])
    print_table(f"map pages, best of {args.runs} cold loads (targets ≤ {LIMIT_BYTES / 1e6:.0f} MB, "
                f"first render ≤ {LIMIT_RENDER_S:.0f} s); floor: h3-js + deck.gl drawing an empty map",
                ["page", "MB", "× floor", "render s", "× floor", "server s", "ok"], rows)
    write_json(args.json, {
        "floor": floor, "pages": results,
        "max_bytes": max(r["bytes"] for r in results.values()),
        "max_render_s": max(r["render_s"] for r in results.values()),
        "all_within_targets": all(r["bytes"] <= LIMIT_BYTES and r["render_s"] <= LIMIT_RENDER_S
                                  for r in results.values()),
    })


if __name__ == "__main__":
    main()
