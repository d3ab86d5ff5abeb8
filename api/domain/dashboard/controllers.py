"""The area dashboard over HTTP: its JSON (``/api/v1/dashboard``) and its pages (``/``, ``/dash``).

The pages are server-rendered (the one Jinja environment of the map pages) and drawn by
vendored scripts only: ``/static/dash/dashboard.js`` (the live tables, sorting, the alert
buttons) and ``/static/dash/dash-map.js`` (deck.gl). Live parts are SSE streams of the
same feed services as the API (:mod:`api.domain.feeds`, alert feeds), under ``/dash``
so the page's sign-in reaches them.

The pages are for a signed-in user (the ``page_user`` dependency: the session of
``/login``, the same :class:`~api.auth.Principal` and rules as the API); their JSON and
streams also take a bearer token (``page_principal``). State-changing requests
(**Acknowledge**, **Resolve**) carry the session's CSRF token in the ``X-CSRF-Token``
header (from ``<meta name="csrf-token">`` of the base layout), checked by ``page_user``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent

from api.areas import Areas
from api.auth import SECURITY, Principal
from api.bodies import kept_response
from api.domain.accounts.services import PageUser, template_context
from api.domain.alerts.schemas import Alert
from api.domain.alerts.services import AlertService
from api.domain.calls.services import CallService
from api.domain.dashboard.services import DashboardService, StillMap
from api.domain.feeds.services import FeedService
from api.domain.maps.services import DECK_JS, script_json, templates
from api.errors import ForbiddenError
from api.hardening import NO_COMPRESSION
from api.pages import html_page
from api.streams import LAST_EVENT_ID, sse_response

H3_JS = "/static/vendor/h3-js/h3-js.umd.js"
HTMX_JS = "/static/vendor/htmx/htmx.min.js"
DASH_JS = "/static/dash/dashboard.js"
DASH_MAP_JS = "/static/dash/dash-map.js"
DASH_CSS = "/static/dash/dashboard.css"
AfterParam = Annotated[int | None, Parameter(
    ge=0, le=2**63 - 1, description="Replay from this event id (the page's mark); a "
    "reconnecting EventSource's Last-Event-ID takes precedence")]
StillVersion = Annotated[str | None, Parameter(
    query="v", max_length=200, description="The map layer's ``still_key``: with it the answer "
    "may be kept by the browser (a new boundary set is a new key)")]
STILL_MAX_AGE_S = 86_400
LEVEL_NAMES = {"province": "Province", "region": "Region", "district": "District",
               "tehsil": "Tehsil", "station": "Police station"}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def still_response(request: Request[Any, Any, Any], still: StillMap, asked: str | None
                   ) -> Response[bytes]:
    """The still part of a map as encoded once: 304 when the browser holds it (ETag),
    gzipped bytes when it accepts gzip. Kept by the browser for a day when asked for
    under its current key (the URL changes with the boundary set), else revalidated."""
    cache = (f"private, max-age={STILL_MAX_AGE_S}" if asked == still.key else "private, no-cache")
    return kept_response(request, still.body, still.gzipped, media_type="application/json",
                         etag=still.etag, headers={"Cache-Control": cache})


class DashboardApiController(Controller):
    """``GET /api/v1/dashboard/{level}/{code}``: the figures the pages show, as JSON."""

    path = "/dashboard"
    tags = ["dashboard"]
    security = SECURITY

    @get("/{level:str}/{code:str}", operation_id="dashboard")
    async def figures(self, level: str, code: str, dashboard: DashboardService,
                      principal: Principal,
                      parts: Annotated[str, Parameter(description="comma-separated: figures, "
                                                      "open_calls, alerts, map")] = "figures"
                      ) -> dict[str, Any]:
        """**Key figures** and **Areas** of an area (and, asked for, its open calls, alerts
        and map layer) — the same numbers as the dashboard page."""
        wanted = {p.strip() for p in parts.split(",") if p.strip()}
        out: dict[str, Any] = {}
        if "figures" in wanted:
            out.update(await dashboard.figures(principal, level, code))
        if "open_calls" in wanted:
            out["open_calls"] = await dashboard.open_calls(principal, level, code)
        if "alerts" in wanted:
            out["alerts"] = await dashboard.open_alerts(principal, level, code)
        if "map" in wanted:
            layer = await dashboard.map_layer(principal, level, code)
            layer["still"] = (f"/api/v1/dashboard/{layer['level']}/{layer['code']}/map/still"
                              f"?v={layer['still_key']}")
            out["map"] = layer
        return out

    @get("/{level:str}/{code:str}/map/still", operation_id="dashboardMapStill",
         opt={NO_COMPRESSION: True}, media_type="application/json")
    async def map_still(self, request: Request[Any, Any, Any], level: str, code: str, *,
                        dashboard: DashboardService, principal: Principal,
                        v: StillVersion = None) -> Response[bytes]:
        """The still part of an area's map (basemap, outline, child areas with names and
        label points, stations): what ``map.still`` of ``?parts=map`` names. It changes
        only with the boundary set: answered with an ETag (``If-None-Match`` → 304) and,
        under its current ``v``, kept by the client for a day."""
        return still_response(request, await dashboard.still_map(principal, level, code), v)


class DashboardPages(Controller):
    """The dashboard's pages and their live streams (see the module doc)."""

    tags = ["pages"]
    include_in_schema = False

    @get("/dash/{level:str}/{code:str}", media_type="text/html")
    async def area(self, level: str, code: str, *, dashboard: DashboardService,
                   page_user: PageUser) -> Response[Any]:
        """The area dashboard: Key figures, Map, Areas, Open calls, Alerts, trends."""
        principal = page_user.principal
        area = dashboard.area(principal, level, code)
        figures = (await dashboard.figures(principal, level, code)
                   if dashboard.may(principal, "stats.read") else None)
        calls = (await dashboard.open_calls(principal, level, code)
                 if dashboard.may(principal, "call.read") else None)
        alerts = (await dashboard.open_alerts(principal, level, code)
                  if dashboard.may(principal, "alert.read") else None)
        calls_after, alerts_after = await dashboard.feed_marks()
        crumbs = [dashboard.areas().get(lv, c) for lv, c in area.path.items()]
        map_urls = {"live": f"/dash/{area.level}/{area.code}/map.json",
                    "still": f"/dash/{area.level}/{area.code}/map/still.json"
                             f"?v={dashboard.still_key()}"}
        page = templates().get_template("dash/area.html").render(**template_context(
            page_user, area=area, level_name=LEVEL_NAMES[area.level], crumbs=crumbs,
            figures=figures, calls=calls, alerts=alerts,
            child_name=LEVEL_NAMES.get(figures["child_level"] or "", "") if figures else "",
            when=_when,
            feeds=dashboard.may(principal, "feed.read"),
            heatmaps=dashboard.may(principal, "analytics.read"),
            scripts={"deck": DECK_JS, "h3": H3_JS, "htmx": HTMX_JS, "dash": DASH_JS,
                     "map": DASH_MAP_JS, "css": DASH_CSS},
            map_urls=map_urls,
            boot=script_json({"level": area.level, "code": area.code,
                              "mapUrl": map_urls["live"], "stillUrl": map_urls["still"],
                              "feeds": dashboard.may(principal, "feed.read"),
                              "alertFeeds": dashboard.may(principal, "alert.read"),
                              "callsAfter": calls_after, "alertsAfter": alerts_after})))
        return html_page(page)

    @get("/dash/{level:str}/{code:str}/map.json")
    async def map_layer(self, level: str, code: str, dashboard: DashboardService,
                        page_principal: Principal) -> dict[str, Any]:
        """The live part of the page's map (today's calls, open alerts; JSON drawn by
        ``dash-map.js`` over the still part, ``still``)."""
        layer = await dashboard.map_layer(page_principal, level, code)
        layer["still"] = (f"/dash/{layer['level']}/{layer['code']}/map/still.json"
                          f"?v={layer['still_key']}")
        return layer

    @get("/dash/{level:str}/{code:str}/map/still.json", opt={NO_COMPRESSION: True},
         media_type="application/json")
    async def map_still(self, request: Request[Any, Any, Any], level: str, code: str, *,
                        dashboard: DashboardService, page_principal: Principal,
                        v: StillVersion = None) -> Response[bytes]:
        """The still part of the page's map (encoded once per area and boundary set; ETag,
        kept by the browser under its current ``v``)."""
        return still_response(request, await dashboard.still_map(page_principal, level, code), v)

    @get("/dash/{level:str}/{code:str}/calls/feed", media_type="text/event-stream")
    async def calls_feed(self, level: str, code: str, *, areas: Areas, feeds: FeedService,
                         page_principal: Principal,
                         last_event_id: Annotated[int | None, LAST_EVENT_ID] = None,
                         after: AfterParam = None) -> ServerSentEvent:
        """The area's call feed for the **Open calls** table."""
        return await sse_response(feeds, areas.get(level, code), page_principal,
                                  last_event_id if last_event_id is not None else after)

    @get("/dash/{level:str}/{code:str}/alerts/feed", media_type="text/event-stream")
    async def alerts_feed(self, level: str, code: str, *, areas: Areas, alert_feeds: FeedService,
                          page_principal: Principal,
                          last_event_id: Annotated[int | None, LAST_EVENT_ID] = None,
                          after: AfterParam = None) -> ServerSentEvent:
        """The area's alert feed for the **Alerts** list."""
        return await sse_response(alert_feeds, areas.get(level, code), page_principal,
                                  last_event_id if last_event_id is not None else after)

    @post("/dash/alerts/{alert_id:int}/{action:str}", status_code=200)
    async def alert_action(self, alert_id: int, action: str, *, alerts: AlertService,
                           page_user: PageUser) -> Alert:
        """**Acknowledge** or **Resolve** an alert through the alert service (the CSRF
        token checked by ``page_user``)."""
        state = {"acknowledge": "acknowledged", "resolve": "resolved"}.get(action)
        if state is None:
            raise ForbiddenError(f"unknown alert action {action!r}")
        return await alerts.move(alert_id, state, page_user.principal, None)

    @get("/calls/{call_id:uuid}", media_type="text/html")
    async def call_page(self, call_id: UUID, calls: CallService,
                        page_user: PageUser) -> Response[Any]:
        """One call and its events (the **Open calls** table links here)."""
        call = await calls.get_call(call_id, page_user.principal)
        events = await calls.list_events(call_id, page_user.principal)
        page = templates().get_template("dash/call.html").render(**template_context(
            page_user, call=call, events=events, when=_when, css=DASH_CSS))
        return html_page(page)
