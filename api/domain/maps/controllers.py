"""``GET /maps/{kind}``: an analytics result as an offline map page (the one deck.gl client).

Scoped like the analytics endpoints (``analytics.read``, the area inside the token's
scope). A map page is opened by navigating a browser to it, and a navigation cannot set
an ``Authorization`` header, so these pages, and only these, also take the token from
``?token=`` (or ``?access_token=``) and from a cookie:

- a URL with a token is answered with ``303 See Other`` to the same URL without it, and
  the token moves into the ``safecity_map_token`` cookie (HttpOnly, SameSite=Strict, path
  ``/maps``, ``Secure`` over HTTPS, a session cookie: the token's own expiry still
  applies). The swap happens only for a token whose role may open the page (checked
  first: a link cannot plant a session that opens nothing) and only when the browser
  says the link was not followed from another site (``Sec-Fetch-Site``, ``Origin``):
  a page elsewhere cannot log a user in as someone else (login CSRF). The token then
  stays out of the address bar, the history, bookmarks and shared links; it is seen
  once, by the server (whose access log redacts it; keep it out of proxy logs too);
- the cookie is read only under ``/maps``: the JSON API never accepts it, so a page on
  another site cannot make a browser call the API with it, and SameSite=Strict keeps it
  off every request another site starts.

A user signed in to the web pages (``/login``) needs no token: the session cookie
(SameSite=Strict) is accepted here as on every page, as the same :class:`Principal`.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.datastructures import Cookie
from litestar.params import Parameter
from litestar.response import Redirect

from api.auth import SECURITY, Action, Authenticator, Principal
from api.bodies import BODY_OPT, Body, body_job, takes_gzip
from api.domain.accounts.services import SESSION_COOKIE, AccountService, SignInRequiredError
from api.domain.analytics.schemas import (
    CategoryParam,
    CodeParam,
    FromParam,
    KParam,
    LevelParam,
    SeriousParam,
    UntilParam,
)
from api.domain.analytics.services import AnalyticsService, cell_query
from api.domain.maps.plans import plan_map_job
from api.domain.maps.services import AUTO_RES, OVERLAY_KINDS, map_page_job, overlay_job
from api.domain.plans.services import PlanService
from api.errors import ForbiddenError, NotFoundError
from api.workers import WorkerPool

MAP_COOKIE = "safecity_map_token"
URL_TOKEN_PARAMS = ("token", "access_token")
"""Query parameters a browser link may carry the token in."""


def _url_token(request: Request[Any, Any, Any]) -> str | None:
    for name in URL_TOKEN_PARAMS:
        value: str | None = request.query_params.get(name)
        if value:
            return value
    return None


async def provide_map_principal(request: Request[Any, Any, Any], authenticator: Authenticator,
                                accounts: AccountService) -> Principal:
    """The caller of a map page: a token in the URL, else ``Authorization: Bearer``, else
    the signed-in user's session, else the map cookie (the ``map_principal`` dependency).

    A token in the URL is checked on its own (it is about to become the cookie); the
    header and the cookie go through the same check as every other endpoint; a session
    gives the same :class:`Principal` as every page (``docs/web.md``).
    """
    in_url = _url_token(request)
    if in_url:
        return authenticator.principal(None, in_url)
    session = request.cookies.get(SESSION_COOKIE)
    if session and not request.headers.get("authorization"):
        user = await accounts.page_user(session)
        if user is not None:
            return user.principal
    header, cookie = request.headers.get("authorization"), request.cookies.get(MAP_COOKIE)
    if not header and not cookie and "text/html" in request.headers.get("accept", ""):
        # a browser navigating here with no credentials at all: to the sign-in form
        raise SignInRequiredError.at(request.url.path, request.url.query)
    return authenticator.principal(header, cookie)


def _without_token(request: Request[Any, Any, Any]) -> str:
    """This request's path and query with the token parameters left out."""
    kept = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)
            if k not in URL_TOKEN_PARAMS]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


MapToken = Annotated[str | None, Parameter(
    description="Bearer token for a browser link: answered with a redirect to this URL "
                "without it, the token set as a cookie")]
"""The ``?token=`` of a map page (read by :func:`provide_map_principal`; declared so the
schema documents it)."""


CROSS_SITE = frozenset({"cross-site", "same-site"})
"""``Sec-Fetch-Site`` values of a request another site (or a sibling subdomain) started; a
typed or bookmarked link is ``none``, a link on this service ``same-origin``."""


def token_to_cookie(request: Request[Any, Any, Any], principal: Principal,
                    action: Action) -> Response[Any] | None:
    """For a map link carrying its token (already verified by :func:`provide_map_principal`):
    a redirect to the same page without it that sets the token as a ``/maps``-only
    HttpOnly, SameSite=Strict cookie, so the token leaves the address bar and history.
    Refused (403, no cookie) when the token's role may not ``action`` or another site
    started the request. ``None`` when the URL carries no token."""
    in_url = _url_token(request)
    if not in_url:
        return None
    principal.require(action)
    _refuse_cross_site(request)
    cookie = Cookie(key=MAP_COOKIE, value=in_url, path="/maps", httponly=True,
                    samesite="strict", secure=request.url.scheme == "https")
    return Redirect(_without_token(request), status_code=303, cookies=[cookie],
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def _refuse_cross_site(request: Request[Any, Any, Any]) -> None:
    fetch_site = request.headers.get("sec-fetch-site", "").lower()
    origin = request.headers.get("origin")
    if fetch_site in CROSS_SITE or (origin is not None
                                    and urlsplit(origin).netloc != request.headers.get("host")):
        raise ForbiddenError("a map link with a token must be opened directly, not from "
                             "another site")


def _html(page: Body) -> Response[Any]:
    return page.response("text/html",  # Litestar adds the charset
                         {"Cache-Control": "private, no-store"})


class MapController(Controller):
    """Map pages for RPOs and CPOs; every asset they load comes from this service."""

    path = "/maps"
    opt = BODY_OPT  # gzipped in the worker (api.bodies)
    tags = ["maps"]
    security = SECURITY

    @get("/{kind:str}", operation_id="mapPage", media_type="text/html")
    async def page(self, *, kind: str, request: Request[Any, Any, Any], analytics: AnalyticsService,
                   map_principal: Principal,
                   level: LevelParam = "province", code: CodeParam = None,
                   res: Annotated[int | None, Parameter(description="H3 resolution (5–10); default: "
                                                        "the finest that keeps the area readable")] = None,
                   since: FromParam = None, until: UntilParam = None, category: CategoryParam = None,
                   serious: SeriousParam = None,
                   fdr: Annotated[bool | None, Parameter(description="FDR correction (default: on "
                                                         "for emerging, off otherwise)")] = None,
                   k: KParam = 1,
                   step: Annotated[str, Parameter(description="week or month (emerging)")] = "week",
                   min_count: Annotated[int, Parameter(description="fewer is too few calls: valid "
                                                       "times in a cell (response), calls in a cell "
                                                       "and its k-ring (hotspots, emerging)")] = 5,
                   token: MapToken = None,
                   ) -> Response[Any]:
        """calls, response, hotspots or emerging as an HTML map (deck.gl, no internet needed)."""
        query = cell_query(level=level, code=code, res=AUTO_RES if res is None else res,
                           since=since, until=until, category=category, serious=serious,
                           fdr=fdr if fdr is not None else kind == "emerging", k=k, step=step,
                           min_count=min_count)
        # role and scope are checked before a link's token may become the cookie
        checked = analytics.authorized(map_principal, query, kind)
        redirect = token_to_cookie(request, map_principal, "analytics.read")
        if redirect is not None:
            return redirect
        # computed and drawn in a worker process, stopped if the browser goes away
        return _html(await analytics.offload_body(kind, checked, map_page_job, res is not None,
                                                  gzip_it=takes_gzip(request),
                                                  receive=request.receive))


class PlanMapController(Controller):
    """A plan's map page; a browser link carries its token as ``?token=`` (or
    ``?access_token=``), swapped for the ``/maps`` cookie as on the analytics map pages."""

    path = "/maps/plans"
    opt = BODY_OPT  # gzipped in the worker (api.bodies)
    tags = ["maps"]
    security = SECURITY

    @get("/{plan_id:uuid}", operation_id="planMapPage", media_type="text/html")
    async def page(self, plan_id: UUID, *, request: Request[Any, Any, Any], plans: PlanService,
                   workers: WorkerPool, map_principal: Principal, token: MapToken = None
                   ) -> Response[Any]:
        """Demand cells by coverage, coverage disks and sites (deck.gl, no internet needed)."""
        redirect = token_to_cookie(request, map_principal, "plan.read")
        if redirect is not None:
            return redirect
        row, sites, demand = await plans.map_data(plan_id, map_principal)
        version = str(plans.boundaries.version)
        return _html(await workers.run("analytics", body_job, takes_gzip(request), plan_map_job,
                                       row, sites, demand, version, receive=request.receive))


class DashHeatmapController(Controller):
    """``/dash/{level}/{code}/heatmaps/{kind}``: a heatmap over the area dashboard's map.

    The dashboard's **Hotspot heatmap** and **Response-time heatmap** toggles fetch it when
    switched on. The session's principal (``page_principal``: the signed-in page, or a
    bearer token) is checked by the analytics service's own rules (``analytics.read`` and
    the area in scope), the cells are those of ``/api/v1/hotspots`` and
    ``/api/v1/heatmaps/response`` with their defaults (all dates, dispatched cases, k 1,
    minimum 5) at the map pages' resolution for the area, classed by the map pages' legend.
    """

    path = "/dash"
    opt = BODY_OPT  # gzipped in the worker (api.bodies)
    tags = ["dashboard"]
    include_in_schema = False

    @get("/{level:str}/{code:str}/heatmaps/{kind:str}", media_type="application/json")
    async def overlay(self, *, level: str, code: str, kind: str, request: Request[Any, Any, Any],
                      analytics: AnalyticsService, page_principal: Principal) -> Response[bytes]:
        """The cells drawn (H3, class, figures) and the legend's classes and notes."""
        if kind not in OVERLAY_KINDS:
            raise NotFoundError(f"no heatmap {kind!r} on the dashboard; heatmaps are "
                                f"{', '.join(OVERLAY_KINDS)}")
        level = level.strip().lower()
        query = cell_query(level=level, code=None if level == "province" else code, res=AUTO_RES,
                           since=None, until=None, category=None, serious=None, fdr=False)
        checked = analytics.authorized(page_principal, query, kind)
        body = await analytics.offload_body(kind, checked, overlay_job,
                                            gzip_it=takes_gzip(request), receive=request.receive)
        return body.response("application/json", {"Cache-Control": "private, no-store"})
