"""The dashboard's trends panel, ``GET /dash/{level}/{code}/trends``, from a real server on
PostGIS with the small generated history, read in headless Chromium as an officer would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser import (  # the fixture is used by name
    axe_violations,
    chromium,  # noqa: F401
    page_at,
    save_screenshot,
)
from tests.callservice import headers, start_server

pytestmark = pytest.mark.integration

DISTRICT = "PK633"  # Sheikhupura
PANEL = f"/dash/district/{DISTRICT}/trends"
PROFILE = f"/dash/district/{DISTRICT}/profile"


@pytest.fixture(scope="module")
def service(history_postgis: str) -> Iterator[str]:

    server = start_server(history_postgis)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def panel_html(service: str) -> str:
    with httpx.Client(base_url=service, timeout=240) as client:
        answer = client.get(PANEL, headers=headers("dpo", DISTRICT))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


def test_panel_shows_summary_series_rising_and_scored_forecast(panel_html: str) -> None:
    assert "dispatched cases in Sheikhupura: " in panel_html
    assert "in the week from 2024-03-25" in panel_html
    assert '<svg role="img"' in panel_html
    assert "<polyline points=" in panel_html
    assert 'aria-label="Rising tehsils"' in panel_html
    assert "Risk 2024-04-01 – 2024-04-08" in panel_html
    assert 'aria-label="Forecast scores"' in panel_html
    assert "Baseline</th><td>" in panel_html
    assert "<html" not in panel_html  # a fragment, for htmx to swap in
    assert "Daily calls" not in panel_html  # the profile is a panel of its own


def test_profile_panel_of_the_last_56_days(profile_html: str) -> None:
    assert ">When the calls come</h2>" in profile_html
    assert ">Daily calls</h3>" in profile_html
    assert 'aria-label="Calls per day from 2024-02-05 to 2024-03-31: lowest ' in profile_html
    assert ">Calls by hour and weekday</h3>" in profile_html
    assert 'aria-label="Calls by hour and weekday, 2024-02-05 to 2024-03-31: busiest hour ' in profile_html
    assert "<html" not in profile_html


@pytest.fixture(scope="module")
def profile_html(service: str) -> str:
    with httpx.Client(base_url=service, timeout=240) as client:
        answer = client.get(PROFILE, headers=headers("dpo", DISTRICT))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    return answer.text


@pytest.mark.parametrize("path", [PANEL, PROFILE])
@pytest.mark.parametrize(("hdrs", "status"), [
    ({}, 303),  # a page without a session goes to the sign-in form
    (headers("dpo", "PK617"), 403),
    (headers("call_taker", "PK6"), 403),
])
def test_panel_is_scoped(service: str, path: str, hdrs: dict[str, str], status: int) -> None:
    answer = httpx.get(f"{service}{path}", headers=hdrs, timeout=60)
    assert answer.status_code == status, answer.text


def test_panel_reads_in_chromium(service: str, panel_html: str, profile_html: str,
                                 chromium: Any) -> None:  # noqa: F811
    """Loaded into the dashboard's sections as htmx would; accessible names, no axe violation."""
    with page_at(chromium) as opened:
        page = opened.page
        page.goto(f"{service}/health")  # the service's origin, so axe loads from it
        page.set_content('<!doctype html><html lang="en"><head><title>Sheikhupura</title></head><body>'
                         f'<main><section id="profile-panel">{profile_html}</section>'
                         f'<section id="trends-panel">{panel_html}</section></main></body></html>')
        assert page.get_by_role("heading", name="Trends and next week's risk").is_visible()
        assert page.get_by_role("img", name="Calls per week from").is_visible()
        assert page.get_by_role("table", name="Rising tehsils").is_visible()
        scores = page.get_by_role("table", name="Forecast scores")
        assert scores.get_by_role("rowheader", name="Baseline").is_visible()
        daily = page.get_by_role("region", name="Daily calls")
        assert daily.get_by_role("img", name="Calls per day from 2024-02-05").is_visible()
        hours = page.get_by_role("region", name="Calls by hour and weekday")
        grid = hours.get_by_role("img", name="Calls by hour and weekday, 2024-02-05")
        assert grid.is_visible()
        described = " ".join(page.locator(f"#{i}").inner_text()
                             for i in (grid.get_attribute("aria-describedby") or "").split())
        assert "calls, 2024-02-05 to 2024-03-31 (56 days)" in described
        assert "Busiest: " in described
        assert axe_violations(page) == []
        save_screenshot(page, "trends-panel")
        hours.get_by_text("Calls by hour and weekday (table)").click()
        table = hours.get_by_role("table", name="Calls by hour and weekday")
        assert table.locator("tbody tr").count() == 7
        cells = [int(t) for t in table.locator("tbody td").all_inner_texts()]
        assert len(cells) == 7 * 24
        assert sum(cells) > 0
        assert not opened.blocked
