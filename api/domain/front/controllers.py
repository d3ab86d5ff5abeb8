"""The front door, for a person who types the service's address into a browser.

- ``GET /``: for a signed-in user, a redirect to their own area's dashboard
  (``/dash/{level}/{code}``); for anyone else a small landing page
  (``api/templates/landing.html``) naming what is here: sign-in, the maps, the API docs.
- ``GET /maps``: the index of map pages (``api/templates/maps_index.html``): what each
  shows, a link per area level, how to open one with a token.
- ``GET /docs``: a redirect to ``/schema``, the OpenAPI docs, served offline (Redoc from
  ``/static``, :mod:`api.domain.maps.assets`).

None of these pages shows data, so none needs a session or token; the pages they link
to do.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.response import Redirect

from api.areas import Areas
from api.domain.accounts.services import SESSION_COOKIE, AccountService
from api.pages import render
from jurisdictions.limits import PROVINCE_CODE

PAGE_POLICY = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'none'"
"""Content Security Policy of these pages: nothing from another host, no script at all."""

MAP_KINDS: tuple[tuple[str, str, str], ...] = (
    ("calls", "Calls per cell", "How many calls came from each H3 cell of an area."),
    ("response", "Median minutes to scene",
     "How long police took to reach each cell's calls, with the share over the time limit."),
    ("hotspots", "Gi* hot spots",
     "Cells with significantly more calls than their surroundings (Getis-Ord Gi*)."),
    ("emerging", "Emerging hot spots",
     "New, intensifying, persistent or fading hot spots week by week."),
)
"""The map pages under ``/maps/{kind}``: path, title, what it shows."""

EXAMPLE_AREAS: tuple[tuple[str, str, str], ...] = (
    ("Punjab", "province", ""), ("Lahore district", "district", "PK617"),
    ("Lahore City tehsil", "tehsil", "PK61702"),
)
"""Areas the index links to (any level and code the caller's scope covers works)."""


def _page(template: str, **context: Any) -> Response[str]:
    body = render(template, csp=PAGE_POLICY, **context)  # the one environment (api/pages.py)
    return Response(body, media_type="text/html",
                    headers={"Cache-Control": "no-cache"})


def _area_query(level: str, code: str) -> str:
    return f"?level={level}" + (f"&code={code}" if code else "")


@get("/", include_in_schema=False)
async def landing(request: Request[Any, Any, Any], accounts: AccountService,
                  areas: Areas) -> Response[Any]:
    """A signed-in user's front door is their own area's dashboard; anyone else gets the
    landing page (sign in, maps, API docs)."""
    token = request.cookies.get(SESSION_COOKIE)
    user = await accounts.page_user(token) if token else None
    if user is None:
        return _page("landing.html", kinds=MAP_KINDS)
    area = areas.find(user.principal.scope)
    level, code = (area.level, area.code) if area else ("province", PROVINCE_CODE)
    return Redirect(f"/dash/{level}/{code}", status_code=303,
                    headers={"Cache-Control": "no-store"})


@get("/maps", include_in_schema=False, sync_to_thread=False)
def maps_index() -> Response[str]:
    """Every map page, with a link per example area."""
    areas = [(name, _area_query(level, code)) for name, level, code in EXAMPLE_AREAS]
    return _page("maps_index.html", kinds=MAP_KINDS, areas=areas)


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs() -> Redirect:
    """The API documentation lives at ``/schema`` (Litestar's OpenAPI path)."""
    return Redirect("/schema", status_code=302)


LANDING_ROUTES = [landing]
"""``/``: the landing page, or the signed-in user's dashboard."""
FRONT_ROUTES = [maps_index, docs]
"""``/maps`` and ``/docs``."""
