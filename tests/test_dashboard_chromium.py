"""The area dashboard in real headless Chromium (Playwright on Debian's Chromium).

The service runs under uvicorn over the session PostGIS database with a small generated
history. Each test signs in through the real form (``tests/browser.py::signed_in``) and
uses the page as its user would: drills
down from the province to a station through the **Areas** links, sees a call posted
through the API appear in **Open calls**, sees an alert arrive in **Alerts** and
acknowledges it, at the tablet, phone and control-room sizes with a drawn map, no
request leaving 127.0.0.1, and no serious or critical axe-core violation. Screenshots go
to ``docs/screenshots/dash-*.png``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest

from tests.browser import (  # the fixture is used by name
    VIEWPORTS,
    OpenedPage,
    axe_violations,
    canvas_drawn,
    chromium,  # noqa: F401
    page_at,
    save_screenshot,
    signed_in,
)
from tests.callservice import LAHORE_POINT, headers, new_key, start_server

pytestmark = pytest.mark.integration

STATION = "PK61701-007"
PAGE_LIMIT_BYTES = 2_000_000
LIVE_WITHIN_S = 1.0
MAP_BACKGROUND = (243, 241, 236)


@pytest.fixture(scope="module")
def service(loaded_postgis: str) -> Iterator[str]:
    from tests.test_analytics_api import load_small_history

    load_small_history(loaded_postgis)
    DATABASE["url"] = loaded_postgis
    server = start_server(loaded_postgis)
    try:
        seed_today(server.url)
        counted(server.url, 40)
        yield server.url
    finally:
        server.stop()


PAKISTAN = ZoneInfo("Asia/Karachi")
"""The dashboard's day is Pakistan's."""


def seed_today(base_url: str, n: int = 40) -> None:
    """Calls of the last hours around Lahore through the API, most of them answered (the
    history is of 2024: without these, today's figures and points would be empty). All
    are received today in Pakistan (the dashboard's day): just after midnight there, the
    calls crowd into the minutes since, and their trails are shortened to end before now."""
    rng = np.random.default_rng(17)
    now = datetime.now(UTC)
    midnight = datetime.combine(now.astimezone(PAKISTAN).date(), dtime(), PAKISTAN).astimezone(UTC)
    if now - midnight < timedelta(seconds=70):  # today is seconds old: wait a minute
        time.sleep((midnight + timedelta(seconds=70) - now).total_seconds())
        now = datetime.now(UTC)
    earliest = max(now - timedelta(minutes=180), midnight + timedelta(seconds=30))
    latest = now - timedelta(minutes=20)
    if latest <= earliest:
        latest = now - timedelta(seconds=30)
    categories = ["other_crime", "traffic_accident", "dacoity_robbery", "harassment", "fire"]
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for i in range(n):
            received = earliest + (latest - earliest) * float(rng.uniform())
            body = {"lat": LAHORE_POINT[0] + float(rng.normal(0, 0.05)),
                    "lon": LAHORE_POINT[1] + float(rng.normal(0, 0.05)),
                    "category": categories[i % len(categories)], "received_at": received.isoformat()}
            answer = client.post("/api/v1/calls", json=body, headers=headers(
                "call_taker", **{"Idempotency-Key": new_key("seed")}))
            assert answer.status_code == 201, answer.text
            if i % 4 == 3:
                continue  # left open
            scale = min(1.0, ((now - received).total_seconds() / 60 - 0.25) / 19)
            steps = (("acknowledged", 1), ("dispatched", 3), ("on_scene", 8 + i % 9), ("closed", 19))
            for kind, minutes in steps:
                event = {"type": kind, "at": (received + timedelta(minutes=minutes * scale)).isoformat()}
                done = client.post(f"/api/v1/calls/{answer.json()['id']}/events", json=event,
                                   headers=headers("admin"))
                assert done.status_code in (200, 201), done.text


def counted(base_url: str, calls: int, timeout_s: float = 300.0) -> None:
    """Wait until the dashboard's projection has taken in the history and the seeded calls
    (a service started on a database holding a history catches up over its first ticks)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{base_url}/api/v1/dashboard/region/LHR", timeout=30,
                           headers=headers("rpo", "LHR"))
        assert answer.status_code == 200, answer.text
        if answer.json()["key_figures"]["calls_today"]["value"] >= calls:
            return
        assert time.monotonic() < deadline, "the projection did not catch up"
        time.sleep(0.5)


DATABASE: dict[str, str] = {}
"""The service's database (where the sign-in accounts are made)."""


def sign_in(opened: OpenedPage, base_url: str, role: str, scope: str) -> None:
    """The user signed in through the sign-in form (the account made on first use)."""
    signed_in(opened.page, base_url, role, scope, database_url=DATABASE["url"])


def open_dashboard(opened: OpenedPage, url: str) -> None:
    """Load ``url`` and wait until the map has drawn its layers."""
    answer = opened.page.goto(url)
    assert answer is not None
    assert answer.status == 200, answer.status
    opened.page.wait_for_selector("#dash-map[data-drawn='yes'] canvas", timeout=60_000)
    opened.page.wait_for_timeout(600)  # a few frames for the layers to reach the canvas


def shoot(page: Any, name: str) -> None:
    """A screenshot of the page's top (where a user lands)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    save_screenshot(page, name)


def page_errors(opened: OpenedPage) -> list[str]:
    """The page's errors (the trends panel's fragment included)."""
    return list(opened.errors)


def post_call(base_url: str, received_at: datetime | None = None) -> str:
    body: dict[str, Any] = {"lat": LAHORE_POINT[0], "lon": LAHORE_POINT[1], "category": "fire"}
    if received_at is not None:
        body["received_at"] = received_at.isoformat()
    answer = httpx.post(f"{base_url}/api/v1/calls", json=body, timeout=30,
                        headers=headers("call_taker", **{"Idempotency-Key": new_key("dash")}))
    assert answer.status_code == 201, answer.text
    call_id: str = answer.json()["id"]
    return call_id


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_region_dashboard_at_each_size(chromium: Any, service: str, size: str) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS[size]) as opened:
        sign_in(opened, service, "rpo", "LHR")
        open_dashboard(opened, f"{service}/dash/region/LHR")
        page = opened.page
        for name in ("Key figures", "Map", "Areas", "Open calls", "Alerts"):
            assert page.get_by_role("heading", name=name, exact=True).is_visible(), name
        assert page.get_by_role("button", name="Sign out").count() == 1
        assert canvas_drawn(page, "#dash-map canvas", MAP_BACKGROUND) > 0.05
        assert page.locator("#areas-table tbody tr").count() == 4  # Lahore region's districts
        assert opened.blocked == []
        assert page_errors(opened) == []
        assert opened.transferred <= PAGE_LIMIT_BYTES, opened.transferred
        # the page fits its width: nothing but the tables' own scrollers scrolls sideways
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size][0] + 1
        assert axe_violations(page) == []
        shoot(page, f"dash-region-{size}")


def test_drill_down_from_the_province_to_a_station(chromium: Any, service: str) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS["desktop"]) as opened:
        sign_in(opened, service, "ig", "PK6")
        open_dashboard(opened, f"{service}/dash/province/PK6")
        page = opened.page
        shoot(page, "dash-province-desktop")
        # a click on the map at the Lahore region's label point opens its dashboard
        box = page.locator("#dash-map canvas").first.bounding_box()
        assert box is not None
        x, y = page.evaluate("""() => {
            const m = document.getElementById('dash-map').scMap;
            const at = m.data.children.codes.indexOf('LHR');
            return m.deck.getViewports()[0].project(m.data.children.labels[at]);
        }""")
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.wait_for_timeout(300)
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_url("**/dash/region/LHR", timeout=120_000)
        page.wait_for_selector("#dash-map[data-drawn='yes'] canvas", timeout=60_000)
        # sort the Areas table by calls today, then follow the links down
        page.get_by_role("button", name="Calls today").click()
        assert page.locator("#areas-table th[aria-sort='ascending']").count() == 1
        for level, code in (("district", "PK617"), ("tehsil", "PK61701"), ("station", STATION)):
            page.locator(f"#areas-table a[href='/dash/{level}/{code}']").click()
            page.wait_for_url(f"**/dash/{level}/{code}", timeout=120_000)
            page.wait_for_selector("#dash-map[data-drawn='yes'] canvas", timeout=60_000)
            assert page.get_by_role("heading", name="Key figures").is_visible()
        assert page.locator("#areas-table").count() == 0  # a station has no child areas
        page.wait_for_timeout(600)
        assert canvas_drawn(page, "#dash-map canvas", MAP_BACKGROUND) > 0.05
        assert axe_violations(page) == []
        shoot(page, "dash-station-desktop")
        assert page_errors(opened) == []


def in_view(page: Any, locator: Any) -> bool:
    """Whether the element lies wholly inside the viewport, as the page is scrolled now."""
    box = locator.bounding_box()
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    return bool(box and box["x"] >= 0 and box["y"] >= 0
                and box["x"] + box["width"] <= width and box["y"] + box["height"] <= height)


def fits_its_width(page: Any, selector: str) -> bool:
    """Whether the scroll region shows all its content's width (nothing to scroll sideways)."""
    fits: bool = page.locator(selector).evaluate("s => s.scrollWidth <= s.clientWidth")
    return fits


def test_a_new_call_appears_in_open_calls_within_a_second(chromium: Any, service: str) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS["tablet"]) as opened:
        sign_in(opened, service, "dpo", "PK617")
        open_dashboard(opened, f"{service}/dash/district/PK617")
        page = opened.page
        page.wait_for_timeout(500)  # the feed subscribes after the page's scripts run
        started = time.monotonic()
        call_id = post_call(service)
        page.wait_for_selector(f"#calls-table tr[data-id='{call_id}']", timeout=5_000)
        took = time.monotonic() - started
        assert took <= LIVE_WITHIN_S, f"the call appeared after {took:.2f} s"
        row = page.locator(f"#calls-table tr[data-id='{call_id}']")
        assert "Fire" in row.inner_text()
        # the table has the page's width on a tablet: no column needs a sideways scroll
        assert fits_its_width(page, "#open-calls .sc-scroll")
        shoot(page, "dash-district-tablet")
        # its id links to the call's page, which shows its events
        row.get_by_role("link").click()
        page.wait_for_url(f"**/calls/{call_id}")
        assert page.get_by_role("heading", name="Events").is_visible()
        assert "received" in page.locator("table").inner_text()
        assert axe_violations(page) == []
        assert page_errors(opened) == []


def test_an_sho_on_a_tablet_sees_a_new_call_at_once(chromium: Any, service: str) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS["tablet"]) as opened:
        sign_in(opened, service, "sho", STATION)
        open_dashboard(opened, f"{service}/dash/station/{STATION}")
        page = opened.page
        page.wait_for_timeout(500)  # the feed subscribes after the page's scripts run
        call_id = post_call(service)
        row = page.locator(f"#calls-table tr[data-id='{call_id}']")
        row.wait_for(timeout=5_000)
        # where the SHO lands, without scrolling either way: the new call's row, its
        # category, its SHO and its status
        assert page.evaluate("window.scrollY") == 0
        assert in_view(page, row), row.bounding_box()
        category, sho = row.locator("td.sc-wrap").first, row.locator("td.sc-wrap").last
        for cell, what in ((category, "category"), (sho, "SHO on duty"),
                           (row.locator("td.sc-status"), "status")):
            assert in_view(page, cell), (what, cell.bounding_box())
        assert "Fire" in category.inner_text()
        assert fits_its_width(page, "#open-calls .sc-scroll")
        # a station's table has no Station column (every call there is the station's)
        assert page.locator("#calls-table thead th").all_inner_texts() == [
            "Call", "Received", "Age", "Category", "SHO on duty", "Status"]
        assert row.locator("td, th").count() == 6
        # the open calls come before the key figures on a station's dashboard
        headings = page.get_by_role("heading", level=2).all_inner_texts()
        assert headings.index("Open calls") < headings.index("Key figures"), headings
        assert axe_violations(page) == []
        assert page_errors(opened) == []
        shoot(page, "dash-station-tablet")


def test_alerts_arrive_live_and_acknowledge(chromium: Any, service: str) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS["phone"]) as opened:
        sign_in(opened, service, "sho", STATION)
        open_dashboard(opened, f"{service}/dash/station/{STATION}")
        page = opened.page
        page.wait_for_timeout(500)
        # a call nobody acknowledged for three minutes: the engine raises an alert at once
        call_id = post_call(service, datetime.now(UTC) - timedelta(minutes=3))
        item = page.locator("#alerts-list li", has=page.locator(f"a[href='/calls/{call_id}']"))
        item.wait_for(timeout=10_000)
        assert item.get_attribute("data-state") == "open"
        overdue = page.locator(f"#calls-table tr[data-id='{call_id}']")
        assert "sc-overdue" in (overdue.get_attribute("class") or "")  # past its threshold
        # on a phone the open calls fit its width: category, SHO and status without a
        # sideways scroll (the received time is left to the age and the call's page)
        assert fits_its_width(page, "#open-calls .sc-scroll")
        assert overdue.locator("td.sc-status").is_visible()
        shoot(page, "dash-station-phone")
        alert_id = item.get_attribute("data-alert")
        item.get_by_role("button", name="Acknowledge").click()
        page.wait_for_selector(f"#alerts-list li[data-alert='{alert_id}'][data-state='acknowledged']",
                               timeout=5_000)
        stored = httpx.get(f"{service}/api/v1/alerts/{alert_id}", headers=headers("sho", STATION),
                           timeout=30)
        assert stored.json()["alert"]["state"] == "acknowledged"
        assert stored.json()["alert"]["acknowledged_by"]
        assert axe_violations(page) == []
        assert page_errors(opened) == []


# ---------------------------------------------------------------------------- profile and heatmaps

HISTORY_REGION = "LHR"
PROFILE_WITHIN_MS = 120_000
"""The profile panel is its own fragment: it never waits for the trends panel's forecast."""


HISTORY: dict[str, str] = {}


@pytest.fixture(scope="module")
def history_service(history_postgis: str) -> Iterator[str]:
    """The service over the small generated history only (Jan–Mar 2024, no calls of today):
    the profile's 56 days are the history's last ones, not empty days before today."""
    HISTORY["url"] = history_postgis
    server = start_server(history_postgis)
    try:
        yield server.url
    finally:
        server.stop()


def heat_layer_cells(page: Any, kind: str) -> int:
    """Cells of the heatmap layer the dashboard's deck draws (0: no such layer)."""
    count: int = page.evaluate("""(kind) => {
        const m = document.getElementById('dash-map').scMap;
        const layer = m.deck.props.layers.find(l => l.id === 'heat-' + kind);
        return layer ? layer.props.data.length : 0;
    }""", kind)
    return count


def toggle_heatmap(page: Any, name: str, kind: str) -> dict[str, Any]:
    """Switch a heatmap on as a user would; its answer (status 200) once it is drawn."""
    with page.expect_response(lambda r: f"/heatmaps/{kind}" in r.url, timeout=300_000) as info:
        page.get_by_role("checkbox", name=name, exact=True).check()
    assert info.value.status == 200, info.value.text()
    page.wait_for_selector(f"#dash-map[data-heat='{kind}']", timeout=30_000)
    page.wait_for_timeout(600)
    body: dict[str, Any] = info.value.json()
    return body


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_profile_and_heatmaps_at_each_size(chromium: Any, history_service: str, size: str) -> None:  # noqa: F811
    """An RPO's region dashboard over a history: the heatmaps drawn when switched on (each
    fetched once, on demand, with its legend), the Daily calls and Calls by hour and weekday
    charts with the numbers they rest on."""
    with page_at(chromium, VIEWPORTS[size]) as opened:
        signed_in(opened.page, history_service, "rpo", HISTORY_REGION, database_url=HISTORY["url"])
        requested: list[str] = []
        opened.page.on("request", lambda r: requested.append(r.url))
        open_dashboard(opened, f"{history_service}/dash/region/{HISTORY_REGION}")
        page = opened.page
        assert not any("/heatmaps/" in url for url in requested)  # nothing before a toggle
        hot = toggle_heatmap(page, "Hotspot heatmap", "hotspots")
        assert hot["calls"] > 0
        assert hot["drawn"] > 0
        assert heat_layer_cells(page, "hotspots") == hot["drawn"]
        legend = page.get_by_role("region", name="Hotspot heatmap legend")
        text = legend.inner_text()
        assert f"{hot['calls']:,} calls" in text
        assert "all dates on record" in text
        assert "Minimum: 5 calls" in text
        assert "Gi* (Getis–Ord) z and p" in text
        page.locator("#map-section").scroll_into_view_if_needed()
        assert canvas_drawn(page, "#dash-map canvas", MAP_BACKGROUND) > 0.05
        save_screenshot(page, f"dash-heatmap-{size}")
        response = toggle_heatmap(page, "Response-time heatmap", "response")
        assert not page.get_by_role("checkbox", name="Hotspot heatmap").is_checked()  # one at a time
        assert heat_layer_cells(page, "hotspots") == 0
        assert heat_layer_cells(page, "response") == response["drawn"] > 0
        response_legend = page.get_by_role("region", name="Response-time heatmap legend")
        assert "Median minutes to scene" in response_legend.inner_text()
        page.get_by_role("checkbox", name="Response-time heatmap").uncheck()
        assert heat_layer_cells(page, "response") == 0
        assert page.locator("#heat-legend").inner_text() == ""
        assert sum("/heatmaps/" in url for url in requested) == 2  # each fetched once
        # the profile panel: the history's last 56 days
        daily = page.get_by_role("region", name="Daily calls")
        daily.wait_for(timeout=PROFILE_WITHIN_MS)
        chart = daily.get_by_role("img", name="Calls per day from 2024-02-05 to 2024-03-31")
        assert chart.is_visible()
        described = page.locator("#daily-desc").inner_text()
        total = int(described.split(" calls over 56 days")[0].replace(",", ""))
        assert total > 0
        grid = page.get_by_role("region", name="Calls by hour and weekday")
        window = "2024-02-05 to 2024-03-31"
        assert grid.get_by_role("img", name=f"Calls by hour and weekday, {window}").is_visible()
        assert f"In all {total:,} calls, {window} (56 days)" in page.locator("#grid-key").inner_text()
        assert "Busiest: " in page.locator("#grid-desc").inner_text()
        assert page.locator("#daily-title ~ svg rect").count() == 56
        assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[size][0] + 1
        assert page.get_by_role("heading", name="When the calls come").is_visible()
        page.evaluate("document.getElementById('profile-panel').scrollIntoView()")
        page.wait_for_timeout(200)
        save_screenshot(page, f"dash-profile-{size}")
        assert opened.blocked == []
        assert page_errors(opened) == []
        assert axe_violations(page) == []


def test_a_role_without_analytics_gets_no_heatmap_toggle(chromium: Any, history_service: str) -> None:  # noqa: F811
    with page_at(chromium, VIEWPORTS["tablet"]) as opened:
        signed_in(opened.page, history_service, "call_taker", "PK6", database_url=HISTORY["url"])
        answer = opened.page.goto(f"{history_service}/dash/region/{HISTORY_REGION}")
        assert answer is not None
        assert answer.status == 200
        page = opened.page
        assert page.get_by_role("checkbox", name="Today's calls").count() == 1
        assert page.get_by_role("checkbox", name="Hotspot heatmap").count() == 0
        assert page.get_by_role("checkbox", name="Response-time heatmap").count() == 0
