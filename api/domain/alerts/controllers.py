"""``/alerts``: list, read, acknowledge and resolve alerts, and their live feed."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, WebSocket, get, post, websocket
from litestar.params import Parameter
from litestar.response import ServerSentEvent

from api.areas import Areas
from api.auth import SECURITY, Authenticator, Principal
from api.bodies import BODY_OPT, takes_gzip
from api.domain.alerts.feeds import AlertFeedService
from api.domain.alerts.schemas import Alert, AlertAction, AlertPage, AlertWithHistory
from api.domain.alerts.services import DEFAULT_PAGE, MAX_PAGE, AlertService
from api.exports import MAX_ROWS, export_file, export_format
from api.streams import LAST_EVENT_ID, LAST_EVENT_ID_QUERY, serve_socket, sse_response
from api.workers import WorkerPool

AlertId = Annotated[int, Parameter(ge=1, le=2**63 - 1, description="An alert's id")]


class AlertController(Controller):
    path = "/alerts"
    tags = ["alerts"]
    security = SECURITY

    @get("/", operation_id="listAlerts")
    async def list_alerts(
        self, *, alerts: AlertService, principal: Principal,
        level: Annotated[str | None, Parameter(max_length=16)] = None,
        code: Annotated[str | None, Parameter(max_length=64)] = None,
        state_: Annotated[str | None, Parameter(query="state", max_length=16)] = None,
        type_: Annotated[str | None, Parameter(query="type", max_length=24)] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Parameter(max_length=20)] = None,
    ) -> AlertPage:
        """Alerts in an area within the caller's scope, newest first."""
        return await alerts.list_alerts(principal, level=level, code=code, state=state_,
                                        type=type_, limit=limit, cursor=cursor)

    @get("/export", opt=BODY_OPT, operation_id="exportAlerts", media_type="text/csv",
         responses_description="the alerts as CSV, GeoJSON or GeoParquet")
    async def export_alerts(
        self, *, request: Request[Any, Any, Any], alerts: AlertService, principal: Principal,
        workers: WorkerPool,
        level: Annotated[str | None, Parameter(max_length=16)] = None,
        code: Annotated[str | None, Parameter(max_length=64)] = None,
        state_: Annotated[str | None, Parameter(query="state", max_length=16)] = None,
        type_: Annotated[str | None, Parameter(query="type", max_length=24)] = None,
        fmt: Annotated[str | None, Parameter(query="format", max_length=16,
                                             description="csv (default), geojson or geoparquet")] = None,
    ) -> Response[bytes]:
        """The alerts the list would show (same scope and filters), oldest first, as one
        file with station, tehsil and district names and a position (the call's or the
        hot-spot cell's centre)."""
        chosen = export_format(fmt)
        conditions = alerts.conditions(principal, level=level, code=code, state=state_, type=type_)
        frame = await alerts.export_rows(principal, conditions, max_rows=MAX_ROWS)
        meta = {"kind": "alerts", "scope": {"role": principal.role, "level": principal.level,
                                            "code": principal.scope},
                "filters": {k: v for k, v in {"level": level, "code": code, "state": state_,
                                              "type": type_}.items() if v},
                "rows": len(frame)}
        name = f"alerts-{principal.level}-{principal.scope}"
        return await export_file(frame, chosen, meta, name, workers=workers,
                                 gzip_it=takes_gzip(request), receive=request.receive)

    @get("/{alert_id:int}", operation_id="getAlert")
    async def get_alert(self, alert_id: AlertId, alerts: AlertService,
                        principal: Principal) -> AlertWithHistory:
        """One alert with its escalation history."""
        return await alerts.get_alert(alert_id, principal)

    @post("/{alert_id:int}/acknowledge", operation_id="acknowledgeAlert", status_code=200)
    async def acknowledge(self, alert_id: AlertId, alerts: AlertService, principal: Principal,
                          data: AlertAction | None = None) -> Alert:
        """Take responsibility: an acknowledged alert stops escalating."""
        return await alerts.move(alert_id, "acknowledged", principal, data.note if data else None)

    @post("/{alert_id:int}/resolve", operation_id="resolveAlert", status_code=200)
    async def resolve(self, alert_id: AlertId, alerts: AlertService, principal: Principal,
                      data: AlertAction | None = None) -> Alert:
        """Close the alert (the engine also resolves breaches and waits that cleared)."""
        return await alerts.move(alert_id, "resolved", principal, data.note if data else None)

    @get("/feed/{level:str}/{code:str}", operation_id="alertFeed",
         media_type="text/event-stream")
    async def feed(self, *, level: str, code: str, areas: Areas, alert_feeds: AlertFeedService,
                   principal: Principal,
                   last_event_id: Annotated[int | None, LAST_EVENT_ID] = None,
                   query_event_id: Annotated[int | None, LAST_EVENT_ID_QUERY] = None) -> ServerSentEvent:
        """SSE of the alerts addressed to a command level (or above) in its area."""
        return await sse_response(alert_feeds, areas.get(level, code), principal, last_event_id,
                                query_event_id)


@websocket("/ws/alerts/{level:str}/{code:str}")
async def alert_feed_socket(socket: WebSocket[Any, Any, Any], level: str, code: str, *, areas: Areas,
                            alert_feeds: AlertFeedService, authenticator: Authenticator) -> None:
    """A command level's alert feed over WebSocket (``?access_token=``, ``?last_event_id=``)."""
    await serve_socket(socket, level, code, areas=areas, feeds=alert_feeds,
                       authenticator=authenticator)
