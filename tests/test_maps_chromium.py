"""Map pages in real headless Chromium (Playwright): drawn, labelled, credited, offline, small.

The service runs under uvicorn on a loopback port over the session PostGIS database with
a small generated history (loaded by ``synth load``'s function) and one finished Safe
City plan. Every map page is opened as a person would — a link carrying ``?token=`` —
at the tablet, phone and desktop sizes, and checked: the canvas is drawn, area and town
labels are placed, the legend and its minimum are text, the credits name GeoNames, no
request leaves 127.0.0.1, the page transfers at most 2 MB, axe-core finds no serious or
critical violation. Screenshots go to ``docs/screenshots/``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser import (  # the fixture is used by name
    VIEWPORTS,
    axe_violations,
    canvas_drawn,
    chromium,  # noqa: F401
    page_at,
    save_screenshot,
)
from tests.callservice import headers, start_server, token

pytestmark = pytest.mark.integration

DISTRICT = "PK633"  # Sheikhupura
STATION = "PK61701-007"
PAGE_LIMIT_BYTES = 2_000_000
GEONAMES_CREDIT = "GeoNames (geonames.org), CC BY 4.0"
PAGES: dict[str, tuple[str, str, str]] = {
    # name: (path and query, role, scope) — each page opened by a role that may read it
    "calls-district": (f"/maps/calls?level=district&code={DISTRICT}", "planner", "PK6"),
    "response-district": (f"/maps/response?level=district&code={DISTRICT}&min_count=2", "dpo", DISTRICT),
    "hotspots-region": ("/maps/hotspots?level=region&code=LHR", "rpo", "LHR"),
    "emerging-region": ("/maps/emerging?level=region&code=LHR", "rpo", "LHR"),
    "hotspots-province": ("/maps/hotspots?level=province", "ig", "PK6"),
    "calls-station": (f"/maps/calls?level=station&code={STATION}", "sho", STATION),
    "plan": ("", "planner", "PK6"),  # the plan's own map link, filled in by the fixture
}


@pytest.fixture(scope="module")
def service(loaded_postgis: str) -> Iterator[str]:
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    server = start_server(loaded_postgis)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def plan_map(service: str) -> str:
    """The map link of one finished MCLP plan of Lahore City."""
    with httpx.Client(base_url=service, timeout=60) as client:
        answer = client.post("/api/v1/plans", headers=headers("planner"),
                             json={"tehsil": "PK61702", "sites": 4, "radius_m": 500,
                                   "from": "2024-01-01", "until": "2024-04-01"})
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 240
        while True:
            plan = client.get(answer.headers["location"], headers=headers("planner")).json()
            if plan["state"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, plan
            time.sleep(0.2)
    assert plan["state"] == "succeeded", plan
    return str(plan["links"]["map"])


def page_path(name: str, plan_map: str) -> str:
    return plan_map if name == "plan" else PAGES[name][0]


def with_token(path: str, name: str) -> str:
    _, role, scope = PAGES[name]
    return f"{path}{'&' if '?' in path else '?'}token={token(role, scope)}"


def drawn_labels(page: Any) -> list[str]:
    """The labels the client placed (both label layers)."""
    texts: list[str] = page.evaluate("""() => window.safecityMap.props.layers
        .filter(layer => layer.id.startsWith('labels'))
        .flatMap(layer => layer.props.data.map(d => d.t))""")
    return texts


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
@pytest.mark.parametrize("name", list(PAGES))
def test_map_page_reads_without_context(service: str, plan_map: str, chromium: Any,  # noqa: F811
                                        name: str, viewport: str) -> None:
    path = page_path(name, plan_map)
    with page_at(chromium, VIEWPORTS[viewport]) as opened:
        page = opened.page
        page.goto(f"{service}{with_token(path, name)}")
        page.wait_for_selector("body[data-map-ready=true]", timeout=60_000)
        # the token was swapped for a cookie: the address no longer carries it
        assert page.url == f"{service}{path}"
        drawn = canvas_drawn(page)
        assert drawn > 0.03, f"{name}: canvas nearly blank ({drawn:.1%} of its pixels drawn)"
        labels = drawn_labels(page)
        assert len(labels) >= 3, f"{name}: labels {labels}"
        legend = page.get_by_role("region", name=page.locator("#legend-title").inner_text())
        assert legend.is_visible()
        assert page.locator("#legend .sc-classes li").count() >= 2
        assert "inimum" in page.locator("#legend .sc-minimum").text_content()
        credits = page.get_by_label("Map data credits")
        assert credits.is_visible()
        assert GEONAMES_CREDIT in credits.inner_text()
        assert "Made with Natural Earth" in credits.inner_text()
        assert page.locator("canvas").first.get_attribute("role") == "img"
        assert (page.locator("canvas").first.get_attribute("aria-label") or "").startswith("Map of")
        scale = page.locator("#scale").inner_text()
        assert scale.endswith((" km", " m")), scale
        page.wait_for_load_state("networkidle")
        assert not opened.blocked, f"requests left the machine: {opened.blocked}"
        assert not opened.errors, opened.errors
        assert opened.transferred <= PAGE_LIMIT_BYTES, f"{name}: {opened.transferred:,} bytes"
        if viewport == "tablet":
            violations = axe_violations(page)
            assert not violations, violations
        save_screenshot(page, f"map-{name}-{viewport}")


def test_province_page_is_small_and_coarser(service: str, chromium: Any) -> None:  # noqa: F811
    """The province asked at res 7 (~40,000 cells) is drawn at res 6 and says so."""
    with page_at(chromium) as opened:
        page = opened.page
        page.goto(f"{service}/maps/calls?level=province&res=7&token={token('ig')}")
        page.wait_for_selector("body[data-map-ready=true]", timeout=60_000)
        assert "H3 res 6" in page.locator("#legend .sc-sub").inner_text()
        assert "res 7 would be more than" in page.locator("#legend").inner_text()
        cells = page.evaluate("() => JSON.parse(document.getElementById('map-data').textContent)"
                              ".cells.h3.length")
        assert 4_000 < cells < 12_000
        page.wait_for_load_state("networkidle")
        assert opened.transferred <= PAGE_LIMIT_BYTES


def test_tooltip_leads_with_station_tehsil_and_district(service: str, chromium: Any) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS["desktop"]) as opened:
        page = opened.page
        page.goto(f"{service}/maps/hotspots?level=region&code=LHR&token={token('rpo', 'LHR')}")
        page.wait_for_selector("body[data-map-ready=true]", timeout=60_000)
        found = page.evaluate("""() => {
            const data = JSON.parse(document.getElementById('map-data').textContent);
            const c = data.cells;
            const pick = (want) => c.cls.findIndex((k, i) => want(data.classes[k].label) && c.at[i] >= 0);
            const hot = pick(label => label.startsWith('hot spot'));
            const few = pick(label => label.startsWith('too few'));
            const viewport = window.safecityMap.getViewports()[0];
            const where = (i) => { const [lat, lng] = h3.cellToLatLng(c.h3[i]);
                                   return viewport.project([lng, lat]); };
            const station = (i) => data.places.station.name[c.at[i]];
            return {hot: where(hot), hotStation: station(hot), few: where(few), fewStation: station(few)};
        }""")
        page.mouse.move(*found["hot"])
        tip = page.locator(".sc-tooltip")
        tip.wait_for(state="visible", timeout=10_000)
        lines = tip.inner_text().splitlines()
        assert lines[0].startswith(found["hotStation"])
        assert lines[1].startswith("Tehsil ")
        assert " · District " in lines[1]
        assert lines[2].startswith("hot spot")
        assert any(line.startswith("Gi* z:") for line in lines)
        assert lines[-1].startswith("H3 cell")  # the cell id comes last, not first
        page.mouse.move(*found["few"])
        page.wait_for_function("(name) => document.querySelector('.sc-tooltip').innerText"
                               ".startsWith(name)", arg=found["fewStation"], timeout=10_000)
        text = tip.inner_text()
        assert "too few calls" in text
        assert "Gi* z" not in text
        assert "p:" not in text


def test_keyboard_reaches_and_zooms_the_map(service: str, chromium: Any) -> None:  # noqa: F811
    """Tab lands on the map first; + zooms in, and the scale bar follows."""
    with page_at(chromium) as opened:
        page = opened.page
        page.goto(f"{service}/maps/calls?level=district&code={DISTRICT}&token={token('dpo', DISTRICT)}")
        page.wait_for_selector("body[data-map-ready=true]", timeout=60_000)
        before = page.locator("#scale").inner_text()
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.getAttribute('role')") == "img"
        page.keyboard.press("+")
        page.keyboard.press("+")
        page.wait_for_function("(before) => document.querySelector('#scale').innerText !== before",
                               arg=before, timeout=10_000)
        assert metres(page.locator("#scale").inner_text()) < metres(before)


def metres(scale: str) -> float:
    """The length a scale bar's text names (``5 km``, ``500 m``)."""
    number, unit = scale.split()
    return float(number.replace(",", "")) * (1000 if unit == "km" else 1)


def test_schema_page_loads_only_local_assets(service: str, chromium: Any) -> None:  # noqa: F811
    with page_at(chromium) as opened:
        page = opened.page
        page.goto(f"{service}/schema")
        page.get_by_text("safecity").first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        assert not opened.blocked, opened.blocked
        assert any(u.endswith("/static/vendor/redoc/redoc.standalone.js") for u in opened.requests)


# ------------------------------------------------------------------ the token and the scope


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


def test_map_link_token_becomes_a_cookie(service: str, chromium: Any) -> None:  # noqa: F811
    """A link with ?token= redirects to the clean URL; the cookie opens the next map."""
    page_url = f"{service}/maps/calls?level=district&code={DISTRICT}&res=7&category=fire,other_crime"
    status, hdrs, _ = fetch(f"{page_url}&token={token('dpo', DISTRICT)}")
    assert status == 303
    assert hdrs["location"] == page_url.removeprefix(service).replace(",", "%2C")
    cookie = hdrs["set-cookie"]
    assert cookie.startswith("safecity_map_token=")
    assert "HttpOnly" in cookie
    assert "Path=/maps" in cookie
    assert "samesite=strict" in cookie.lower()
    value = cookie.split(";", 1)[0]
    status, _, body = fetch(page_url, {"Cookie": value})
    assert status == 200, body
    assert "<html" in body.lower()
    # the cookie is for map pages only: the JSON API does not take it
    api = f"{service}/api/v1/heatmaps/calls?level=district&code={DISTRICT}&res=7"
    assert fetch(api, {"Cookie": value})[0] == 401
    # and in the browser: a second map opens on the cookie alone, no token in its URL
    with page_at(chromium) as opened:
        opened.page.goto(f"{page_url}&token={token('dpo', DISTRICT)}")
        opened.page.goto(f"{service}/maps/hotspots?level=district&code={DISTRICT}&res=7")
        opened.page.wait_for_selector("body[data-map-ready=true]", timeout=60_000)
        assert canvas_drawn(opened.page) > 0.03


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
    for remote in ("cdn.jsdelivr", "unpkg.com", "mapbox.com", "googleapis", "http://", "https://"):
        assert remote not in page, remote
    assert "© OpenStreetMap contributors" in page
    assert "COD-AB" in page
    assert GEONAMES_CREDIT in page
    assert "stand-in" in page


def test_assets_are_served_compressed(service: str) -> None:
    answer = httpx.get(f"{service}/static/vendor/deck.gl/dist.min.js",
                       headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.num_bytes_downloaded < 700_000 < len(answer.content)


def test_unknown_map_kind_is_404(service: str) -> None:
    assert fetch(f"{service}/maps/volcanoes", headers("planner"))[0] == 404
