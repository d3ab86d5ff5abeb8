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
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
DISTRICT = "PK633"
SHOTS = Path(tempfile.gettempdir()) / "safecity-map-shots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def service(loaded_postgis: str) -> Iterator[str]:
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": loaded_postgis}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.app:app_factory",
                             "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"the service did not start:\n{err[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


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


@pytest.mark.parametrize(("kind", "query"), [
    ("calls", f"level=district&code={DISTRICT}&res=8"),
    ("response", f"level=district&code={DISTRICT}&res=7&min_count=2"),
    ("hotspots", "level=region&code=LHR&res=7"),
    ("emerging", "level=region&code=LHR&res=7"),
])
def test_map_page_draws_hexagons_offline(service: str, browser: Browser, kind: str, query: str) -> None:
    browser.requests.clear()
    url = f"{service}/maps/{kind}?{query}"
    browser.call("Page.navigate", url=url)
    png, coloured = b"", 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(1.5)
        png = browser.screenshot()
        coloured = coloured_pixels(png)
        if coloured > 500:
            break
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / f"{kind}.png").write_bytes(png)
    assert coloured > 500, f"no hexagons drawn on {url} ({coloured} coloured pixels); errors {browser.errors}"
    remote = [u for u in browser.requests
              if not u.startswith("data:") and urlsplit(u).hostname != "127.0.0.1"]
    assert not remote, f"requests left the machine: {remote}"
    assert any(u.endswith("/static/pydeck/index.js") for u in browser.requests)
    assert not browser.errors, browser.errors


def test_map_html_names_no_remote_asset(service: str) -> None:
    with urllib.request.urlopen(f"{service}/maps/hotspots?level=district&code={DISTRICT}") as answer:
        page = answer.read().decode()
    assert "cdn.jsdelivr" not in page
    assert "unpkg.com" not in page
    assert "mapbox.com" not in page
    assert "© OpenStreetMap contributors" in page
    assert "COD-AB" in page
    assert "stand-in" in page


def test_unknown_map_kind_is_404(service: str) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{service}/maps/volcanoes")
    assert caught.value.code == 404
