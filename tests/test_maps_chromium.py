"""Map pages in real headless Chromium: hexagons drawn, and no request leaves the machine.

The service runs under uvicorn on a loopback port over the session PostGIS database with
a small generated history (loaded by ``synth load``'s function). Chromium is driven over
the DevTools protocol: every request the page makes is recorded from
``Network.requestWillBeSent``, and screenshots are taken until deck.gl has drawn.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.callservice import headers, start_server, token

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
DISTRICT = "PK633"
SHOTS = Path(tempfile.gettempdir()) / "safecity-map-shots"


@pytest.fixture(scope="module")
def service(loaded_postgis: str) -> Iterator[str]:
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    server = start_server(loaded_postgis)
    try:
        yield server.url
    finally:
        server.stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, hdrs: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names) and body of one GET, redirects not followed."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=hdrs or {}), timeout=120) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


class Browser:
    """Headless Chromium on a DevTools websocket (one page)."""

    def __init__(self) -> None:
        from websockets.sync.client import connect

        self.profile = tempfile.mkdtemp(prefix="safecity-chromium-")
        self.proc = subprocess.Popen([
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={self.profile}", "--enable-unsafe-swiftshader", "--window-size=1200,800",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as answer:
            page = next(t for t in json.load(answer) if t["type"] == "page")
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None)
        self.seq = 0
        self.requests: list[str] = []
        self.errors: list[str] = []
        for method in ("Network.enable", "Page.enable", "Runtime.enable"):
            self.call(method)
        self.call("Emulation.setDeviceMetricsOverride", width=1200, height=800, deviceScaleFactor=1,
                  mobile=False)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.seq += 1
        ident = self.seq
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            event = message.get("method")
            if event == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
            elif event == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(message["params"])[:500])
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def render(self, url: str, shot: str, timeout_s: float = 90) -> int:
        """Open ``url``, wait until more than 500 coloured pixels are drawn (or time out),
        keep the screenshot as ``SHOTS/<shot>.png``; the coloured pixel count."""
        self.call("Page.navigate", url=url)
        png, coloured = b"", 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            time.sleep(1.5)
            png = self.screenshot()
            coloured = coloured_pixels(png)
            if coloured > 500:
                break
        SHOTS.mkdir(exist_ok=True)
        (SHOTS / f"{shot}.png").write_bytes(png)
        return coloured

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def coloured_pixels(png: bytes) -> int:
    """Saturated pixels in the map area (left of the legend, above the attribution)."""
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    area = image[:-40, :900]
    saturation = area.max(axis=2) - area.min(axis=2)
    return int((saturation > 60).sum())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (Debian package chromium)")
    opened = Browser()
    try:
        yield opened
    finally:
        opened.close()


# the region's RPO for the region maps, a planner for the district ones
@pytest.mark.parametrize(("kind", "query", "role", "scope"), [
    ("calls", f"level=district&code={DISTRICT}&res=8", "planner", "PK6"),
    ("response", f"level=district&code={DISTRICT}&res=7&min_count=2", "dpo", DISTRICT),
    ("hotspots", "level=region&code=LHR&res=7", "rpo", "LHR"),
    ("emerging", "level=region&code=LHR&res=7", "rpo", "LHR"),
])
def test_map_page_draws_hexagons_offline(service: str, browser: Browser, *, kind: str, query: str,
                                         role: str, scope: str) -> None:
    browser.requests.clear()
    url = f"{service}/maps/{kind}?{query}"
    coloured = browser.render(f"{url}&token={token(role, scope)}", kind)
    assert coloured > 500, f"no hexagons drawn on {url} ({coloured} coloured pixels); errors {browser.errors}"
    remote = [u for u in browser.requests
              if not u.startswith("data:") and urlsplit(u).hostname != "127.0.0.1"]
    assert not remote, f"requests left the machine: {remote}"
    assert any(u.endswith("/static/pydeck/index.js") for u in browser.requests)
    assert not browser.errors, browser.errors
    # the token was swapped for a cookie: the page's address no longer carries it
    shown = browser.call("Runtime.evaluate", expression="location.href")["result"]["value"]
    assert shown == url


def test_map_link_token_becomes_a_cookie(service: str, browser: Browser) -> None:
    """A link with ?token= redirects to the clean URL; the cookie opens the next map."""
    page = f"{service}/maps/calls?level=district&code={DISTRICT}&res=7&category=fire,other_crime"
    status, hdrs, _ = fetch(f"{page}&token={token('dpo', DISTRICT)}")
    assert status == 303
    assert hdrs["location"] == page.removeprefix(service).replace(",", "%2C")
    cookie = hdrs["set-cookie"]
    assert cookie.startswith("safecity_map_token=")
    assert "HttpOnly" in cookie
    assert "Path=/maps" in cookie
    assert "samesite=lax" in cookie.lower()
    value = cookie.split(";", 1)[0]
    status, _, body = fetch(page, {"Cookie": value})
    assert status == 200, body
    assert "<html" in body.lower()
    # the cookie is for map pages only: the JSON API does not take it
    api = f"{service}/api/v1/heatmaps/calls?level=district&code={DISTRICT}&res=7"
    assert fetch(api, {"Cookie": value})[0] == 401
    # and in the browser: a second map opens on the cookie alone, no token in its URL
    browser.errors.clear()
    browser.call("Page.navigate", url=f"{page}&token={token('dpo', DISTRICT)}")
    time.sleep(1.0)
    browser.call("Page.navigate", url=f"{service}/maps/hotspots?level=district&code={DISTRICT}&res=7")
    deadline, coloured = time.monotonic() + 90, 0
    while time.monotonic() < deadline and coloured <= 500:
        time.sleep(1.5)
        coloured = coloured_pixels(browser.screenshot())
    assert coloured > 500, browser.errors


@pytest.mark.parametrize(("hdrs", "query", "status"), [
    ({}, "", 401),
    ({}, "&token=not-a-token", 401),
    ({"Cookie": "safecity_map_token=not-a-token"}, "", 401),
    (headers("call_taker"), "", 403),
    (headers("dpo", "PK617"), "", 403),
    (headers("dpo", DISTRICT), "", 200),
    (headers("planner"), "", 200),
    (headers("dpo", DISTRICT), "&level=province", 403),
])
def test_map_pages_are_scoped(service: str, hdrs: dict[str, str], query: str, status: int) -> None:
    got, answer_headers, body = fetch(
        f"{service}/maps/calls?level=district&code={DISTRICT}&res=7{query}", hdrs)
    assert got == status, body
    if status == 401:
        assert answer_headers["www-authenticate"].startswith("Bearer")


def test_map_html_names_no_remote_asset(service: str) -> None:
    status, _, page = fetch(f"{service}/maps/hotspots?level=district&code={DISTRICT}",
                            headers("planner"))
    assert status == 200
    assert "cdn.jsdelivr" not in page
    assert "unpkg.com" not in page
    assert "mapbox.com" not in page
    assert "© OpenStreetMap contributors" in page
    assert "COD-AB" in page
    assert "stand-in" in page


def test_unknown_map_kind_is_404(service: str) -> None:
    assert fetch(f"{service}/maps/volcanoes", headers("planner"))[0] == 404
