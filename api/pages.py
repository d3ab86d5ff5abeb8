"""The one Jinja environment of every server-rendered page, and how a page is answered.

Map pages (:mod:`api.domain.maps.page`, drawn in worker processes), the sign-in page,
the dashboard and the consoles render templates of ``api/templates`` through
:func:`templates`; pages for a signed-in user extend ``base.html`` (the header with the
user, the nav and **Sign out**; blocks ``title``, ``head`` and ``main``).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Response
from litestar.datastructures import Cookie

from geo.aggregate import LOCAL_TZ

PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
"""Content Security Policy of the pages: everything from this service (a closed network
has nothing else), no inline scripts, never framed by another site, forms post here only."""


@cache
def templates() -> Any:
    """The Jinja environment over ``api/templates`` (autoescaped HTML)."""
    from jinja2 import Environment, PackageLoader, select_autoescape  # noqa: PLC0415

    env = Environment(loader=PackageLoader("api", "templates"), autoescape=select_autoescape(),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = local_time
    return env


def local_time(moment: datetime, pattern: str = "%H:%M") -> str:
    """A time as Punjab reads it (Asia/Karachi, the analytics' local zone): the ``local`` filter."""
    return moment.astimezone(ZoneInfo(LOCAL_TZ)).strftime(pattern)


def render(name: str, **context: Any) -> str:
    """The template ``name`` rendered with ``context``."""
    return str(templates().get_template(name).render(**context))


def html_page(body: str, *, status: int = 200, cookies: list[Cookie] | None = None,
              headers: dict[str, str] | None = None) -> Response[str]:
    """An HTML answer that no cache keeps, no other site frames, with the pages' CSP."""
    return Response(body, status_code=status, media_type="text/html",
                    cookies=cookies or [],
                    headers={"Cache-Control": "private, no-store", "Content-Security-Policy": PAGE_CSP,
                             "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
                             "X-Content-Type-Options": "nosniff", **(headers or {})})
