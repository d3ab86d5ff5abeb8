"""The front door, for a person who types the service's address into a browser.

- ``GET /``: a small landing page (``api/templates/landing.html``) naming what is here:
  the maps, the API documentation, sign-in. It is one handler, :func:`landing`, listed
  apart in :data:`FRONT_ROUTES`, so the dashboard can take ``/`` over by replacing it.
- ``GET /maps``: the index of map pages (``api/templates/maps_index.html``): what each
  shows, a link per area level, how to open one with a token.
- ``GET /docs``: a redirect to ``/schema``, the OpenAPI docs, served offline (Redoc from
  ``/static``, :mod:`api.domain.maps.assets`).

None of these pages shows data, so none needs a token; the pages they link to do.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from litestar import Response, get
from litestar.response import Redirect

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


@cache
def _templates() -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: PLC0415

    return Environment(loader=PackageLoader("api", "templates"), autoescape=select_autoescape())


def _page(template: str, **context: Any) -> Response[str]:
    body = _templates().get_template(template).render(csp=PAGE_POLICY, **context)
    return Response(body, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


def _area_query(level: str, code: str) -> str:
    return f"?level={level}" + (f"&code={code}" if code else "")


@get("/", include_in_schema=False, sync_to_thread=False)
def landing() -> Response[str]:
    """The landing page (the dashboard replaces this handler when it arrives)."""
    return _page("landing.html", kinds=MAP_KINDS)


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
"""``/``: swap this list for the dashboard's handler."""
FRONT_ROUTES = [maps_index, docs]
"""``/maps`` and ``/docs``."""
