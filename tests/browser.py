"""Browser tests on Playwright for Python, driving Debian's Chromium (no downloaded browser).

Shared by every test that opens a page (the map pages now, the dashboard next). Not a
test module: import the fixtures (``from tests.browser import chromium  # noqa: F401``)
and the helpers.

- :func:`chromium`: one headless ``/usr/bin/chromium`` per test module (the test fails,
  never skips, when it is missing).
- :func:`page_at`: a fresh context at a viewport (closed on leaving the ``with``) whose
  every request is recorded and any request to a host other than 127.0.0.1 is aborted and
  listed — a page that needs the internet breaks visibly here, as on a closed police network.
- :func:`axe_violations`: loads the vendored axe-core from the service into the page and
  returns the serious and critical violations.
- :func:`canvas_drawn`: how many pixels of the page's canvas differ from its background
  (a blank WebGL canvas counts 0).
- :func:`save_screenshot`: a small palette PNG under ``docs/screenshots/``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
AXE_URL = "/static/vendor/axe-core/axe.min.js"
"""The vendored axe-core as the service serves it (pages allow scripts from their own origin only)."""
SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORTS = {"tablet": (1024, 768), "phone": (390, 844), "desktop": (1920, 1080)}
"""The sizes every page must work at (issue 17)."""
LOCAL_HOSTS = {"127.0.0.1"}


@dataclass
class OpenedPage:
    """A page in its own context, with what it asked for and what went wrong."""

    page: Any
    context: Any
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bytes_in: list[int] = field(default_factory=lambda: [0])

    @property
    def transferred(self) -> int:
        """Bytes received over the network since the context opened (headers and bodies as
        sent: compressed when the server compressed)."""
        return self.bytes_in[0]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (one per test module)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing (Debian package chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def page_at(browser: Any, viewport: tuple[int, int] = VIEWPORTS["tablet"]) -> Iterator[OpenedPage]:
    """A new context and page at ``viewport``: requests leaving 127.0.0.1 are aborted and
    kept in ``blocked``; page errors and console errors are kept in ``errors``."""
    width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    opened = OpenedPage(page, context)

    def route(handle: Any) -> None:
        url = handle.request.url
        opened.requests.append(url)
        host = urlsplit(url).hostname
        if url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            handle.continue_()
        else:
            opened.blocked.append(url)
            handle.abort()

    context.route("**/*", route)
    page.on("pageerror", lambda error: opened.errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: opened.errors.append(f"console: {message.text}")
            if message.type == "error" else None)
    session = context.new_cdp_session(page)
    session.send("Network.enable")

    def finished(event: dict[str, Any]) -> None:
        opened.bytes_in[0] += int(event.get("encodedDataLength", 0))

    session.on("Network.loadingFinished", finished)
    try:
        yield opened
    finally:
        context.close()


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """axe-core's violations of ``impacts`` on the page as it is now (id, impact, help, nodes)."""
    page.add_script_tag(url=AXE_URL)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]


def canvas_drawn(page: Any, selector: str = "canvas", background: tuple[int, int, int] = (243, 241, 236),
                 tolerance: int = 24) -> float:
    """Share of the first ``selector`` canvas's pixels, as shown on screen, that differ
    from ``background`` (the page colour behind a transparent WebGL canvas): 0 when blank."""
    import numpy as np
    from PIL import Image

    png = page.locator(selector).first.screenshot()
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    differs = np.abs(image - np.asarray(background)).sum(axis=2) > tolerance
    return float(differs.mean())


def save_screenshot(page: Any, name: str, colours: int = 96) -> Path:
    """A palette PNG of the viewport under ``docs/screenshots/`` (small enough for git)."""
    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    path = SCREENSHOTS / f"{name}.png"
    image.quantize(colours, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


SIGN_IN_PASSWORD = "browser-test-password"
_ACCOUNTS: dict[tuple[str, str, str], str] = {}
"""Accounts already made, by (database, role, scope): one per role and scope per test run."""


def account(database_url: str, role: str, scope: str = "PK6") -> str:
    """A web account of ``role`` over ``scope`` in the database at ``database_url``, made once
    through the real CLI (``safecity users add --password-stdin``); its username."""
    import os
    import subprocess
    import sys
    import uuid

    key = (database_url, role, scope)
    if key not in _ACCOUNTS:
        name = f"{role}.{scope.lower()}.{uuid.uuid4().hex[:6]}"
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", "users", "add", name, "--role", role, "--scope", scope,
             "--password-stdin"], input=SIGN_IN_PASSWORD + "\n", capture_output=True, text=True,
            env={**os.environ, "DATABASE_URL": database_url}, check=False)
        if done.returncode != 0:
            pytest.fail(f"safecity users add failed:\n{done.stdout}\n{done.stderr}")
        _ACCOUNTS[key] = name
    return _ACCOUNTS[key]


def signed_in(page: Any, base_url: str, role: str, scope: str = "PK6", *, database_url: str,
              next_path: str = "/") -> str:
    """Sign ``page`` in as a ``role`` of ``scope`` through the real form (Username, Password,
    Sign in), landing on ``next_path``; the account is made on first use. Its username."""
    from urllib.parse import quote

    name = account(database_url, role, scope)
    page.goto(f"{base_url}/login?next={quote(next_path, safe='/')}")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(SIGN_IN_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    return name
