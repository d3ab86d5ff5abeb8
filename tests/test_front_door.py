"""The front door: ``/``, ``/maps`` and ``/docs`` answer a person with a browser; the API
docs render with no network; every authentication failure is a clear 401 in JSON."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.browser import VIEWPORTS, canvas_drawn, chromium, page_at, save_screenshot  # noqa: F401
from tests.callservice import SECRET, ServiceClient, token

pytestmark = pytest.mark.integration

KINDS = ("calls", "response", "hotspots", "emerging")


def test_landing_page_names_the_maps_the_docs_and_sign_in(client: ServiceClient) -> None:
    answer = client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.text
    for href in ('href="/maps"', 'href="/docs"', 'href="/login"'):
        assert href in page
    for kind in KINDS:
        assert f'href="/maps/{kind}"' in page
    assert "Content-Security-Policy" in page
    assert "http://" not in page
    assert "https://" not in page  # nothing from another host


def test_maps_index_links_every_map_page_for_several_areas(client: ServiceClient) -> None:
    answer = client.get("/maps")
    assert answer.status_code == 200
    page = answer.text
    for kind in KINDS:
        assert f'href="/maps/{kind}?level=province"' in page
        assert f'href="/maps/{kind}?level=district&amp;code=PK617"' in page
    assert "safecity token --role ROLE --scope CODE" in page
    # each link is a real page: it answers (401 without a token, 200 with one)
    assert client.get("/maps/calls", params={"level": "district", "code": "PK617"}).status_code == 401


def test_docs_leads_to_the_schema_page(client: ServiceClient) -> None:
    answer = client.get("/docs", follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"] == "/schema"
    schema = client.get("/schema")
    assert schema.status_code == 200
    assert "/static/vendor/redoc/redoc.standalone.js" in schema.text
    assert "cdn" not in schema.text.lower()
    spec = client.get("/schema/openapi.json").json()
    assert "/api/v1/calls/export" in spec["paths"]
    assert "/api/v1/alerts/export" in spec["paths"]
    assert "/" not in spec["paths"]  # the pages are not API


def _claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "t", "role": "admin", "scope": "PK6", "lvl": "province", "iss": "safecity",
            "iat": now - 120, "exp": now + 600, **extra}


def bad_authorization() -> dict[str, tuple[bytes | None, str]]:
    """Each wrong ``Authorization`` and what the 401 says, made when a test asks (the
    tokens' times are relative to now: made at collection they expired before the test
    ran in a long suite)."""
    return {
        "none": (None, "a bearer token is required"),
        "basic": (b"Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        "no scheme": (token("admin").encode(), "must be 'Bearer <token>'"),
        "garbage": (b"Bearer abc", "not a JSON Web Token"),
        "bad bytes": (b"Bearer t7e3.t7e3.t7e3", "not a JSON Web Token"),
        "latin-1": (b"Bearer \xb7\xb7\xb7", "not a JSON Web Token"),
        "other secret": (b"Bearer " + jwt.encode(_claims(), "another-secret-0123456789-abcdefghijkl",
                                                 algorithm="HS256").encode(), "does not match"),
        "alg none": (b"Bearer " + jwt.encode(_claims(), None, algorithm="none").encode(), "HS256"),
        "expired": (b"Bearer " + jwt.encode(_claims(exp=int(time.time()) - 60), SECRET,
                                            algorithm="HS256").encode(), "token expired"),
        "other issuer": (b"Bearer " + jwt.encode(_claims(iss="elsewhere"), SECRET,
                                                 algorithm="HS256").encode(), "not issued by safecity"),
        "unknown role": (b"Bearer " + jwt.encode(_claims(role="king"), SECRET,
                                                 algorithm="HS256").encode(), "unknown role"),
    }


@pytest.mark.parametrize("case", list(bad_authorization()))
@pytest.mark.parametrize("path", ["/api/v1/calls", "/api/v1/calls/export", "/api/v1/alerts",
                                  "/api/v1/hotspots", "/maps/calls"])
def test_every_auth_failure_is_a_clear_401_in_json(client: ServiceClient, case: str, path: str) -> None:
    value, says = bad_authorization()[case]
    answer = client.get(path, headers=[(b"authorization", value)] if value is not None else [])
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    detail = answer.json()["detail"]
    assert says in detail
    assert "codec" not in detail
    assert "padding" not in detail
    assert "segments" not in detail


def test_a_malformed_token_in_a_map_link_is_a_clear_401(client: ServiceClient) -> None:
    answer = client.get("/maps/calls", params={"token": "t7e3.t7e3.t7e3"}, follow_redirects=False)
    assert answer.status_code == 401
    assert "not a JSON Web Token" in answer.json()["detail"]


def test_the_front_pages_and_the_docs_render_with_no_network(server: Any, chromium: Any  # noqa: F811
                                                             ) -> None:
    with page_at(chromium, VIEWPORTS["desktop"]) as opened:
        page = opened.page
        page.goto(f"{server.url}/")
        page.get_by_role("link", name="Maps").first.wait_for()
        save_screenshot(page, "front-landing")
        page.get_by_role("link", name="Maps").first.click()
        page.get_by_role("heading", name="Gi* hot spots").wait_for()
        assert page.url.endswith("/maps")
        save_screenshot(page, "front-maps-index")
        page.goto(f"{server.url}/docs")
        assert page.url.endswith("/schema")
        page.locator("h2", has_text="ExportCalls").first.wait_for(timeout=60_000)
        page.wait_for_load_state("networkidle")
        assert page.locator("h2", has_text="ExportAlerts").count() == 1
        assert canvas_drawn(page, "body", background=(255, 255, 255)) > 0.05
        save_screenshot(page, "front-docs-offline")
        assert not opened.blocked, opened.blocked
        assert not [e for e in opened.errors if "Content Security Policy" not in e], opened.errors
